//! Lição 08: `Manager`. Um gerente é um processo servidor que guarda objetos (um dicionário,
//! uma trava) e entrega aos outros processos procuradores (proxies) para eles: assim os
//! processos compartilham estruturas que não cabem num `Value`.

use std::error::Error;
use std::process;

use shared::{DictProxy, LockProxy, Manager, ManagerError, Process};

fn main() -> Result<(), Box<dyn Error>> {
    // Rust: o equivalente de `if __name__ == '__main__':` (ver a lição 01)
    shared::lesson::init()?;

    println!("Processo principal {} inicializado", process::id());
    let texto: Vec<String> = "o rato roeu a roupa do rei de roma e a rainha de raiva roeu o resto"
        .split_whitespace()
        .map(String::from)
        .collect();

    // Rust: `with Manager() as gerente:` vira um bloco; o servidor para no `shutdown()`
    {
        let gerente = Manager::new()?;
        let contagem: DictProxy<String, u32> = gerente.dict()?;
        let trava = gerente.lock()?;
        let metade = texto.len() / 2;
        let mut processos: Vec<Process> = [&texto[..metade], &texto[metade..]]
            .into_iter()
            .map(|parte| Process::new(contar, (parte.to_vec(), contagem.clone(), trava.clone())))
            .collect();
        for processo in &mut processos {
            processo.start()?;
        }
        for processo in &mut processos {
            processo.join()?;
        }

        // Só as palavras que aparecem mais de uma vez, em ordem alfabética
        let mut itens = contagem.items()?;
        itens.sort();
        for (palavra, vezes) in itens {
            if vezes > 1 {
                println!("{palavra}: {vezes}");
            }
        }
        println!("Palavras diferentes: {}", contagem.len()?);
        // Rust: a saída do `with`, que o Python faz sozinho (o drop também faria, sem dizer
        // se falhou)
        gerente.shutdown()?;
    }

    println!("Processo principal {} finalizado", process::id());
    Ok(())
}

// Função que cada processo executa: conta as suas palavras no dicionário compartilhado
fn contar(
    palavras: Vec<String>,
    contagem: DictProxy<String, u32>,
    trava: LockProxy,
) -> Result<(), ManagerError> {
    for palavra in &palavras {
        // Rust: `with trava:` é a guarda, que solta a trava no fim de cada volta
        let _guarda = trava.acquire()?;
        let vezes = contagem.get(palavra)?.unwrap_or(0);
        contagem.set(palavra, &(vezes + 1))?;
    }
    println!(
        "Processo {} contou {} palavras",
        process::id(),
        palavras.len()
    );
    Ok(())
}
