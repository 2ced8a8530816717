//! Lição 01: criando processos. Espelha a listagem "Criando Processos em Python".

use std::error::Error;
use std::process;
use std::thread;
use std::time::Duration;

use shared::Process;

fn main() -> Result<(), Box<dyn Error>> {
    // Rust: o equivalente de `if __name__ == '__main__':`; um filho criado pelo método
    // spawn roda só a sua função e termina aqui (e as opções da lição, como
    // `--start-method spawn`, são lidas aqui)
    shared::lesson::init()?;

    println!("Processo principal {} inicializado", process::id());

    // Criação de um processo
    let mut processo = Process::new(funcao_processo, ());
    processo.start()?;

    println!("Processo principal {} finalizado", process::id());

    // Aguarda o término do processo
    processo.join()?;
    Ok(())
}

// Função que será executada em um processo
fn funcao_processo() {
    println!("Processo {} iniciado", process::id());
    thread::sleep(Duration::from_secs(2));
    println!("Processo {} finalizado", process::id());
}
