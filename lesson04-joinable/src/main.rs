//! Lição 04: `JoinableQueue`. Os slides terminam com a tabela de métodos de `Queue` (qsize,
//! put, get, empty, full, task_done, join); esta lição usa todos numa só fila. O par desta
//! lição com threads é `src/bin/lesson04-joinable-threads.rs`.

use std::error::Error;
use std::process;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use shared::{JoinableQueue, Process};

// Contador global: cada processo tem a sua cópia desta variável
static CONCLUIDAS: AtomicUsize = AtomicUsize::new(0);

fn main() -> Result<(), Box<dyn Error>> {
    // Rust: o equivalente de `if __name__ == '__main__':` (ver a lição 01)
    shared::lesson::init()?;

    println!("Processo principal {} inicializado", process::id());

    // Criação de uma fila com no máximo 3 itens
    let fila = JoinableQueue::with_maxsize(3)?;
    for i in 1..=3 {
        fila.put(format!("Tarefa {i}"))?;
    }
    println!(
        "qsize(): {} empty(): {} full(): {}",
        fila.qsize(),
        py(fila.empty()),
        py(fila.full())
    );

    // Criação de um processo trabalhador (daemon: termina com o principal)
    let mut processo = Process::new(trabalhador, (fila.clone(),)).daemon(true);
    processo.start()?;

    // Aguarda até que cada tarefa tenha seu task_done()
    fila.join();
    println!(
        "qsize(): {} empty(): {} full(): {}",
        fila.qsize(),
        py(fila.empty()),
        py(fila.full())
    );
    println!(
        "Tarefas concluídas, segundo o principal: {}",
        CONCLUIDAS.load(Ordering::Relaxed)
    );

    println!("Processo principal {} finalizado", process::id());
    Ok(())
}

// Função que consome tarefas da fila para sempre
fn trabalhador(fila: JoinableQueue<String>) -> Result<(), Box<dyn Error>> {
    println!("Processo {} iniciado", process::id());
    loop {
        let tarefa = fila.get()?;
        thread::sleep(Duration::from_millis(500));
        println!("Processo {} concluiu: {tarefa}", process::id());
        CONCLUIDAS.fetch_add(1, Ordering::Relaxed);
        fila.task_done()?;
    }
}

// Rust: escreve um booleano como o Python (`True`/`False`), para imprimir as mesmas linhas
fn py(valor: bool) -> &'static str {
    if valor { "True" } else { "False" }
}
