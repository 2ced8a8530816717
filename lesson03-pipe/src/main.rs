//! Lição 03: comunicação por `Pipe`. Os slides comparam o `Pipe` a um cano com uma pessoa em
//! cada ponta: quando uma fala, a outra escuta; depois a outra responde e a primeira escuta.

use std::error::Error;
use std::process;

use shared::{Connection, Pipe, Process};

fn main() -> Result<(), Box<dyn Error>> {
    // Rust: o equivalente de `if __name__ == '__main__':` (ver a lição 01)
    shared::init()?;

    println!("Processo principal {} inicializado", process::id());

    // Criação do cano: uma ponta para cada pessoa
    let (ponta_principal, ponta_filho) = Pipe::new()?;

    // Criação de um processo que fica com a outra ponta
    let mut processo = Process::new(pessoa, (ponta_filho,));
    processo.start()?;

    // Uma pessoa fala...
    ponta_principal.send(&format!(
        "Olá, aqui é o processo principal {}",
        process::id()
    ))?;

    // ...e escuta a resposta
    let resposta: String = ponta_principal.recv()?;
    println!("Processo principal {} ouviu: {resposta}", process::id());

    processo.join()?;
    println!("Processo principal {} finalizado", process::id());
    Ok(())
}

// Função da pessoa na outra ponta do cano
fn pessoa(conexao: Connection) -> Result<(), Box<dyn Error>> {
    println!("Processo {} iniciado", process::id());
    let mensagem: String = conexao.recv()?;
    println!("Processo {} ouviu: {mensagem}", process::id());
    conexao.send(&format!("Olá, aqui é o processo {}", process::id()))?;
    conexao.close();
    println!("Processo {} finalizado", process::id());
    Ok(())
}
