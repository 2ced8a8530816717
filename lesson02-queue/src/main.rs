//! Lição 02: compartilhamento de recursos com `Queue`. Espelha a segunda listagem da página
//! "Processos": o filho coloca uma mensagem na fila e o principal a lê depois do `join`.

use std::error::Error;
use std::process;
use std::thread;
use std::time::Duration;

use shared::{Process, Queue};

fn main() -> Result<(), Box<dyn Error>> {
    // Rust: o equivalente de `if __name__ == '__main__':` (ver a lição 01)
    shared::lesson::init()?;

    println!("Processo principal {} inicializado", process::id());

    // Criação de uma fila para compartilhar recursos
    let queue = Queue::new()?;

    // Criação de um processo
    let mut processo = Process::new(funcao_processo, (queue.clone(),));
    processo.start()?;

    // Aguarda o término do processo
    processo.join()?;

    // Lê a mensagem da fila
    let mensagem = queue.get()?;
    println!("Mensagem lida: {mensagem}");

    println!("Processo principal {} finalizado", process::id());
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
