//! What happens when `main` forgets `shared::init()` under the spawn or forkserver start method.
//!
//! A spawned child runs the program again from the top, like a Python script without
//! `if __name__ == "__main__":`. Without `init()` to send it to its target, the child runs
//! `main`, prints its line, and reaches `start()`: that fails with `ProcessError::MissingInit`
//! instead of starting a child of its own, and so on forever. The parent sees the child exit
//! with 1. Under forkserver the server is such a fresh run: it runs `main` instead of serving,
//! fails the same way, and the parent's `start()` fails, saying what is missing.
//!
//! ```text
//! cargo run -q -p shared --example forgot_init
//! cargo run -q -p shared --example forgot_init -- --start-method forkserver
//! ```

use shared::{Process, StartMethod};

fn filho() {
    println!("filho {}", std::process::id());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Missing on purpose: shared::init()?;
    // So the command line is read by hand: `--start-method forkserver`, else spawn.
    let args: Vec<String> = std::env::args().collect();
    let method = match args.get(1..3) {
        Some([option, method]) if option == "--start-method" => method.parse()?,
        _ => StartMethod::Spawn,
    };
    shared::set_start_method(method);
    println!("main {}", std::process::id());
    let mut processo = Process::new(filho, ());
    processo.start()?;
    processo.join()?;
    println!("exitcode {:?}", processo.exitcode());
    Ok(())
}
