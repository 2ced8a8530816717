//! What happens when `main` forgets `shared::init()` under the spawn start method.
//!
//! A spawned child runs the program again from the top, like a Python script without
//! `if __name__ == "__main__":`. Without `init()` to send it to its target, the child runs
//! `main`, prints its line, and reaches `start()`: that fails with `ProcessError::MissingInit`
//! instead of starting a child of its own, and so on forever. The parent sees the child exit
//! with 1.
//!
//! ```text
//! cargo run -q -p shared --example forgot_init
//! ```

use shared::{Process, StartMethod};

fn filho() {
    println!("filho {}", std::process::id());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Missing on purpose: shared::init()?;
    shared::set_start_method(StartMethod::Spawn);
    println!("main {}", std::process::id());
    let mut processo = Process::new(filho, ());
    processo.start()?;
    processo.join()?;
    println!("exitcode {:?}", processo.exitcode());
    Ok(())
}
