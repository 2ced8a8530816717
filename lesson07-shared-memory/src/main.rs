//! Lição 07: `SharedMemory`. Além de `Queue`, `Pipe` e `Value`, o Python 3.8 trouxe
//! `multiprocessing.shared_memory`: um bloco de bytes que vários processos mapeiam, achado
//! pelo nome. Nenhuma mensagem passa por cano ou fila: os dois processos veem a mesma memória.

use std::error::Error;
use std::process;
use std::sync::atomic::Ordering;

use shared::{Process, SharedMemory};

fn main() -> Result<(), Box<dyn Error>> {
    // Rust: o equivalente de `if __name__ == '__main__':` (ver a lição 01)
    shared::lesson::init()?;

    println!("Processo principal {} inicializado", process::id());

    // Criação de um bloco de 64 bytes de memória compartilhada
    let memoria = SharedMemory::create(64)?;

    let mut processo = Process::new(escrever, (memoria.name().to_owned(),));
    processo.start()?;
    processo.join()?;

    // O principal lê os mesmos bytes que o filho escreveu
    let tamanho = usize::from(memoria.buf()[0].load(Ordering::Relaxed));
    let mensagem = String::from_utf8(memoria.read(1..1 + tamanho)?)?;
    println!("Mensagem lida: {mensagem}");

    // Rust: `unlink()` antes de `close()`, porque `close()` consome o handle
    memoria.unlink()?;
    memoria.close();
    println!("Processo principal {} finalizado", process::id());
    Ok(())
}

// Função que o processo filho executa: escreve uma mensagem no bloco compartilhado
fn escrever(nome: String) -> Result<(), Box<dyn Error>> {
    let memoria = SharedMemory::attach(&nome)?;
    let mensagem = format!("Olá do processo {}", process::id()).into_bytes();
    // Rust: um byte guarda até 255; `try_from` recusa um tamanho maior, como o Python
    memoria.buf()[0].store(u8::try_from(mensagem.len())?, Ordering::Relaxed);
    memoria.write_at(1, &mensagem)?;
    println!(
        "Processo {} escreveu {} bytes",
        process::id(),
        mensagem.len()
    );
    memoria.close();
    Ok(())
}
