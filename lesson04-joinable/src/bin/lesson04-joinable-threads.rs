//! Lição 04, com threads: o mesmo programa de `src/main.rs` com uma `Thread` e a fila de
//! threads (`queue.Queue` no Python) no lugar de um `Process` e da `JoinableQueue`, como na
//! tabela «Queue: Threads vs Processing» dos slides.

use std::error::Error;
use std::process;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use shared::{Thread, ThreadQueue};

// Contador global: threads do mesmo processo compartilham esta variável
static CONCLUIDAS: AtomicUsize = AtomicUsize::new(0);

fn main() -> Result<(), Box<dyn Error>> {
    // Rust: o equivalente de `if __name__ == '__main__':` (ver a lição 01)
    shared::lesson::init()?;

    println!("Processo principal {} inicializado", process::id());

    // Criação de uma fila com no máximo 3 itens
    let fila = ThreadQueue::with_maxsize(3);
    for i in 1..=3 {
        fila.put(format!("Tarefa {i}"))?;
    }
    println!(
        "qsize(): {} empty(): {} full(): {}",
        fila.qsize(),
        py(fila.empty()),
        py(fila.full())
    );

    // Criação de uma thread trabalhadora (daemon: termina com o principal)
    let mut thread = Thread::new(trabalhador, (fila.clone(),)).daemon(true);
    thread.start()?;

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
fn trabalhador(fila: ThreadQueue<String>) -> Result<(), Box<dyn Error>> {
    println!(
        "Thread {} do processo {} iniciada",
        shared::get_native_id(),
        process::id()
    );
    loop {
        let tarefa = fila.get()?;
        thread::sleep(Duration::from_millis(500));
        println!("Thread {} concluiu: {tarefa}", shared::get_native_id());
        CONCLUIDAS.fetch_add(1, Ordering::Relaxed);
        fila.task_done()?;
    }
}

// Rust: escreve um booleano como o Python (`True`/`False`), para imprimir as mesmas linhas
fn py(valor: bool) -> &'static str {
    if valor { "True" } else { "False" }
}
