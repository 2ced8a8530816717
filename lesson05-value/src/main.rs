//! Lição 05: `Value`. A página "Processos" cita `Value` como um jeito de compartilhar recursos,
//! e os slides falam em "lock/unlock do acesso"; esta lição mostra os dois numa só listagem.

use std::error::Error;
use std::process;

use shared::{Process, Target, Value};

const VEZES: i32 = 100_000;

fn main() -> Result<(), Box<dyn Error>> {
    // Rust: o equivalente de `if __name__ == '__main__':` (ver a lição 01)
    shared::lesson::init()?;

    println!("Processo principal {} inicializado", process::id());

    // Rust: `for funcao in (somar_sem_trava, somar_com_trava):` vira duas chamadas, porque
    // cada função tem um tipo próprio (um filho spawn a recria pelo tipo)
    executar("somar_sem_trava", somar_sem_trava)?;
    executar("somar_com_trava", somar_com_trava)?;

    println!("Processo principal {} finalizado", process::id());
    Ok(())
}

// Rust: o corpo do `for` da listagem, para uma `funcao` de nome `nome`
fn executar<F>(nome: &str, funcao: F) -> Result<(), Box<dyn Error>>
where
    F: Target<(Value<i32>,)> + Copy,
{
    // Criação de um inteiro na memória compartilhada, começando em 0
    let contador = Value::new(0)?;

    // Criação de quatro processos que somam no mesmo contador
    let mut processos: Vec<Process> = (0..4)
        .map(|_| Process::new(funcao, (contador.clone(),)))
        .collect();
    for processo in &mut processos {
        processo.start()?;
    }

    // Aguarda o término dos processos
    for processo in &mut processos {
        processo.join()?;
    }

    println!("{nome}: {} de {}", contador.value()?, 4 * VEZES);
    Ok(())
}

// Função que soma 1 ao contador, sem trava: ler e escrever são dois passos
fn somar_sem_trava(contador: Value<i32>) -> Result<(), Box<dyn Error>> {
    for _ in 0..VEZES {
        contador.set_value(contador.value()? + 1)?;
    }
    Ok(())
}

// Função que soma 1 ao contador segurando a trava do Value
fn somar_com_trava(contador: Value<i32>) -> Result<(), Box<dyn Error>> {
    for _ in 0..VEZES {
        let mut valor = contador.get_lock()?;
        *valor += 1;
    }
    Ok(())
}
