//! Lição 02, segunda parte: dois processos compartilham uma `Queue`. Espelha a terceira
//! listagem da página "Processos": um processo produz a mensagem, outro a aguarda e a lê.

use std::error::Error;
use std::process;
use std::thread;
use std::time::Duration;

use shared::{Process, Queue};

fn main() -> Result<(), Box<dyn Error>> {
    // Rust: o equivalente de `if __name__ == '__main__':` (ver a lição 01)
    shared::lesson::init()?;

    println!("Processo principal {} inicializado", process::id());

    // Criação de uma fila
    let queue = Queue::new()?;

    // Criação de um processo
    let mut processo = Process::new(funcao_processo, (queue.clone(),));
    processo.start()?;

    // Criação de um segundo processo
    let mut processo2 = Process::new(aguardar_mensagens, (queue.clone(),));
    processo2.start()?;

    println!("Processo principal {} finalizado", process::id());

    // Aguarda o término dos processos
    processo.join()?;
    processo2.join()?;
    Ok(())
}

// Função que será executada em um processo
fn funcao_processo(queue: Queue<String>) -> Result<(), Box<dyn Error>> {
    println!("Processo {} iniciado", process::id());
    thread::sleep(Duration::from_secs(2));
    queue.put(format!("Mensagem do processo {}", process::id()))?;
    println!("Processo {} finalizado", process::id());
    Ok(())
}

// Função que aguarda existir mensagens em uma fila
fn aguardar_mensagens(queue: Queue<String>) -> Result<(), Box<dyn Error>> {
    println!("Processo {} iniciado", process::id());
    let mensagem = queue.get()?;
    println!("Mensagem lida: {mensagem}");
    println!("Processo {} finalizado", process::id());
    Ok(())
}
