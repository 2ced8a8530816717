//! A program of its own: `shared::init()?` is only the `__main__` guard, so the program's
//! command line stays its own, and its children run their targets under every start method.
//!
//! ```text
//! cargo run -q -p shared --example own_arguments -- input.txt --verbose -h
//! ```

use std::error::Error;

use shared::{Process, Queue, StartMethod};

fn double(x: u64, results: Queue<u64>) -> Result<(), Box<dyn Error>> {
    results.put(x * 2)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    shared::init()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("args {args:?}");
    for method in [
        StartMethod::Fork,
        StartMethod::Spawn,
        StartMethod::Forkserver,
    ] {
        let results = Queue::new()?;
        let mut child = Process::new(double, (21, results.clone())).start_method(method);
        child.start()?;
        let doubled = results.get()?;
        child.join()?;
        println!("{method} {doubled} {:?}", child.exitcode());
    }
    Ok(())
}
