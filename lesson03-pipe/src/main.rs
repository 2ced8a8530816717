//! Lição 03: comunicação por `Pipe`. Os slides comparam o `Pipe` a um cano com uma pessoa em
//! cada ponta: quando uma fala, a outra escuta; depois a outra responde e a primeira escuta.
//! Com `--ouvir ENDEREÇO` num terminal e `--conectar ENDEREÇO` em outro, as duas pessoas são
//! dois programas sem parentesco.

use std::error::Error;
use std::process;

use shared::lesson::ProgramOption;
use shared::{Client, Connection, Listener, Pipe, Process};

fn main() -> Result<(), Box<dyn Error>> {
    // Rust: o equivalente de `if __name__ == '__main__':` (ver a lição 01), com as opções
    // dos dois terminais
    let opcoes = shared::lesson::init_with(&OPCOES)?;
    // New! o cano entre dois terminais: cada um é uma pessoa
    match (opcoes.get("ouvir"), opcoes.get("conectar")) {
        (Some(_), Some(_)) => {
            shared::lesson::argument_error("use --ouvir ou --conectar, não os dois")
        }
        (Some(endereco), None) => return ouvir(endereco),
        (None, Some(endereco)) => return conectar(endereco),
        (None, None) => {}
    }

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

// New! Dois terminais: `multiprocessing.connection.Listener` e `Client` num endereço
const OPCOES: [ProgramOption; 2] = [
    ProgramOption {
        name: "ouvir",
        value: "ENDEREÇO",
        help: "espera, neste endereço, a pessoa de outro terminal (@nome não cria arquivo)",
    },
    ProgramOption {
        name: "conectar",
        value: "ENDEREÇO",
        help: "liga para a pessoa que espera neste endereço e fala primeiro",
    },
];

// A chave que as duas pontas precisam ter (o `authkey` do Python)
const CHAVE: &[u8] = b"licao03";

// A pessoa que espera a ligação: a mesma `pessoa` de antes, na ponta que o Listener aceitou
fn ouvir(endereco: &str) -> Result<(), Box<dyn Error>> {
    let listener = Listener::bind(endereco, 1, Some(CHAVE))?;
    println!(
        "Processo {} esperando em {}",
        process::id(),
        listener.address()
    );
    pessoa(listener.accept()?)
}

// A pessoa que liga: fala primeiro e escuta a resposta, como o principal
fn conectar(endereco: &str) -> Result<(), Box<dyn Error>> {
    let conexao = Client::connect(endereco, Some(CHAVE))?;
    println!("Processo {} conectado a {endereco}", process::id());
    conexao.send(&format!("Olá, aqui é o processo {}", process::id()))?;
    let resposta: String = conexao.recv()?;
    println!("Processo {} ouviu: {resposta}", process::id());
    println!("Processo {} finalizado", process::id());
    Ok(())
}
