//! Lição 06: `Pool`. Depois de `Process` e `Queue`, o passo seguinte é um grupo de processos
//! trabalhadores que recebem o trabalho: `multiprocessing.Pool`.

use std::collections::HashSet;
use std::error::Error;
use std::process;

use shared::Pool;

// Função que cada processo do pool executa para um número
fn quadrado(numero: u64) -> (u64, u64, u32) {
    (numero, numero * numero, process::id())
}

fn main() -> Result<(), Box<dyn Error>> {
    // Rust: o equivalente de `if __name__ == '__main__':` (ver a lição 01)
    shared::lesson::init()?;

    println!("Processo principal {} inicializado", process::id());

    // Criação de um pool com dois processos trabalhadores
    let resultados = {
        let pool = Pool::new(2)?;
        // Distribui os números entre os processos e junta os resultados em ordem
        pool.map(quadrado, 0..10)?
    }; // Rust: o fim do bloco é o fim do `with`: o pool é terminado

    for (numero, resultado, pid) in &resultados {
        println!("Processo {pid} calculou {numero}² = {resultado}");
    }
    let pids: HashSet<u32> = resultados.iter().map(|&(_, _, pid)| pid).collect();
    println!("Processos usados: {}", pids.len());

    println!("Processo principal {} finalizado", process::id());
    Ok(())
}
