//! A lição 06 (`Pool`) sobre MPI: o mesmo `map`, com os trabalhadores nos outros processos
//! (ranks) de um `mpirun`, numa máquina ou em várias.
//!
//! ```text
//! cargo build --release -p shared --features mpi --example mpi_pool
//! mpirun --allow-run-as-root --oversubscribe -n 3 target/release/examples/mpi_pool
//! ```

use std::collections::HashSet;
use std::error::Error;
use std::process;

use shared::MpiPool;

// Função que cada processo do pool executa para um número
fn quadrado(numero: u64) -> (u64, u64, u32) {
    (numero, numero * numero, process::id())
}

fn main() -> Result<(), Box<dyn Error>> {
    // Rust: sob `mpirun`, os ranks 1.. viram trabalhadores aqui e não seguem adiante
    shared::init()?;

    println!("Processo principal {} inicializado", process::id());

    // Criação de um pool com os outros ranks do `mpirun` como trabalhadores
    let resultados = {
        let pool = MpiPool::new()?;
        // Distribui os números entre os processos e junta os resultados em ordem
        pool.map(quadrado, 0..10)?
    };

    for (numero, resultado, pid) in &resultados {
        println!("Processo {pid} calculou {numero}² = {resultado}");
    }
    let pids: HashSet<u32> = resultados.iter().map(|&(_, _, pid)| pid).collect();
    println!("Processos usados: {}", pids.len());

    println!("Processo principal {} finalizado", process::id());
    Ok(())
}
