//! The programs `shared/tests/mpi.rs` runs under `mpirun`, one per scenario (the first
//! argument): the MPI pool's results beside the local pool's, and each failure it states.
//! Every line it prints is one the test checks.

use std::error::Error;

use shared::{MpiPool, Pool, PoolError, StartMethod};

fn quadrado(numero: u64) -> u64 {
    numero * numero
}

fn soma(a: i64, b: i64, c: i64) -> i64 {
    a + b + c
}

fn falha_no_tres(numero: u64) -> Result<u64, String> {
    if numero == 3 {
        Err(format!("{numero} não serve"))
    } else {
        Ok(numero)
    }
}

fn panico_no_cinco(numero: u64) -> u64 {
    assert!(numero != 5, "o cinco entrou em pânico");
    numero
}

fn morre(_: u64) -> u64 {
    // The task kills its own rank, as the OOM killer would.
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    0
}

/// Returns its bytes reversed: large items exercise MPI's rendezvous sends both ways.
fn reverso(bytes: serde_bytes::ByteBuf) -> serde_bytes::ByteBuf {
    let mut bytes = bytes.into_vec();
    bytes.reverse();
    serde_bytes::ByteBuf::from(bytes)
}

fn pid(_: u64) -> u32 {
    std::process::id()
}

fn main() -> Result<(), Box<dyn Error>> {
    shared::init()?;
    let scenario = std::env::args().nth(1).unwrap_or_default();
    match scenario.as_str() {
        "results" => results(),
        "task-errors" => task_errors(),
        "worker-dies" => worker_dies(),
        "return-while-running" => return_while_running(),
        "forged-order" => forged_order(std::env::args().nth(2).unwrap_or_default()),
        "no-pool" => {
            println!("rank 0 made no pool");
            Ok(())
        }
        "exit-code" => {
            let pool = MpiPool::new()?;
            println!("{:?}", pool.map(quadrado, 0..3)?);
            std::process::exit(3)
        }
        other => Err(format!("unknown scenario {other:?}").into()),
    }
}

/// Every mapping method gives what the local pool gives, in the same order.
fn results() -> Result<(), Box<dyn Error>> {
    let mpi = MpiPool::new()?;
    let local = Pool::builder()
        .processes(2)
        .start_method(StartMethod::Fork)
        .build()?;
    let items: Vec<u64> = (0..100).collect();
    let triples: Vec<(i64, i64, i64)> = (0..50).map(|i| (i, -2 * i, 7)).collect();
    check(
        "map",
        mpi.map(quadrado, items.clone())?,
        local.map(quadrado, items.clone())?,
    );
    for chunksize in [1, 3, 200] {
        let name = format!("chunked({chunksize}).map");
        let got = mpi.chunked(chunksize).map(quadrado, items.clone())?;
        check(
            &name,
            got,
            local.chunked(chunksize).map(quadrado, items.clone())?,
        );
    }
    check(
        "starmap",
        mpi.starmap(soma, triples.clone())?,
        local.starmap(soma, triples.clone())?,
    );
    let got = mpi.chunked(4).starmap(soma, triples.clone())?;
    check(
        "chunked(4).starmap",
        got,
        local.chunked(4).starmap(soma, triples)?,
    );
    check(
        "apply",
        mpi.apply(soma, (1, 2, 3))?,
        local.apply(soma, (1, 2, 3))?,
    );
    let pending = mpi.apply_async(quadrado, (12,))?;
    let mapped = mpi.map_async(quadrado, 0..10)?;
    check("map_async", mapped.get()?, local.map(quadrado, 0..10)?);
    check("apply_async", pending.get()?, local.apply(quadrado, (12,))?);
    let got: Vec<u64> = mpi.imap(quadrado, 0..300)?.collect::<Result<_, _>>()?;
    let want: Vec<u64> = local.imap(quadrado, 0..300)?.collect::<Result<_, _>>()?;
    check("imap", got, want);
    let got: Vec<u64> = mpi
        .chunked(7)
        .imap(quadrado, 0..300)?
        .collect::<Result<_, _>>()?;
    check("chunked(7).imap", got, local.map(quadrado, 0..300)?);
    let mut got: Vec<u64> = mpi
        .imap_unordered(quadrado, 0..300)?
        .collect::<Result<_, _>>()?;
    got.sort_unstable();
    check("imap_unordered (sorted)", got, local.map(quadrado, 0..300)?);
    // Items of 1 MiB, far above any eager limit: every send waits for its receive.
    let big: Vec<serde_bytes::ByteBuf> = (0..8u8)
        .map(|i| serde_bytes::ByteBuf::from(vec![i; 1 << 20]))
        .chain([serde_bytes::ByteBuf::from((0..=255).collect::<Vec<u8>>())])
        .collect();
    let got = mpi.chunked(1).map(reverso, big.clone())?;
    check(
        "chunked(1).map of 1 MiB items",
        got,
        local.chunked(1).map(reverso, big.clone())?,
    );
    let got = mpi.chunked(3).map(reverso, big.clone())?;
    check(
        "chunked(3).map of 1 MiB items",
        got,
        local.chunked(3).map(reverso, big)?,
    );
    // An endless input: only what is consumed is computed.
    let got: Vec<u64> = mpi.imap(quadrado, 0..)?.take(5).collect::<Result<_, _>>()?;
    check("imap of an endless input", got, vec![0, 1, 4, 9, 16]);
    // The chunks ran on worker ranks: other processes than this one, at most one per rank.
    let pids = mpi.chunked(1).map(pid, 0..20)?;
    let distinct: std::collections::BTreeSet<u32> = pids.into_iter().collect();
    let here = std::process::id();
    println!(
        "pids: {} distinct, rank 0 among them: {}",
        distinct.len(),
        distinct.contains(&here)
    );
    let zero = |pool_map: Result<Vec<u64>, PoolError>| error_text(pool_map);
    check(
        "a chunk size of 0",
        zero(mpi.chunked(0).map(quadrado, [1])),
        zero(local.chunked(0).map(quadrado, [1])),
    );
    mpi.close();
    local.close();
    check(
        "map after close",
        error_text(mpi.map(quadrado, [1])),
        error_text(local.map(quadrado, [1])),
    );
    mpi.join()?;
    local.join()?;
    println!("results: done");
    Ok(())
}

/// A task's `Err` or panic fails that call only; the pool goes on.
fn task_errors() -> Result<(), Box<dyn Error>> {
    let pool = MpiPool::new()?;
    let error = pool.map(falha_no_tres, 0..10).unwrap_err();
    println!("map with an Err: {error}");
    let error = pool.chunked(1).map(panico_no_cinco, 0..10).unwrap_err();
    println!(
        "map with a panic: is a task error: {}",
        error.is_task_error()
    );
    println!("map with a panic: {error}");
    let results: Vec<String> = pool
        .imap(falha_no_tres, 2..5)?
        .map(|result| match result {
            Ok(value) => value.to_string(),
            Err(error) => error.to_string(),
        })
        .collect();
    println!("imap with an Err: {results:?}");
    println!("the pool goes on: {:?}", pool.map(quadrado, 0..5)?);
    Ok(())
}

/// Rank 0 sends worker rank 1 an order a peer might forge: the rank answers (never runs
/// it, never panics), and the pool refuses to go on, saying why.
fn forged_order(which: String) -> Result<(), Box<dyn Error>> {
    use shared::__private::{Forgery, send_forged_order};
    let forgery = match which.as_str() {
        "garbage" => Forgery::Garbage,
        "unsealed" => Forgery::Unsealed,
        "sealed-non-entry" => Forgery::SealedNonEntry,
        other => return Err(format!("unknown forgery {other:?}").into()),
    };
    let pool = MpiPool::new()?;
    println!("before: {:?}", pool.map(quadrado, 0..3)?);
    send_forged_order(1, forgery)?;
    println!("after: {}", error_text(pool.map(quadrado, 0..3)));
    Ok(())
}

/// A task kills its own rank: `mpirun` ends the job; the last line is never printed.
fn worker_dies() -> Result<(), Box<dyn Error>> {
    let pool = MpiPool::new()?;
    println!("before: {:?}", pool.map(quadrado, 0..3)?);
    let outcome: Result<Vec<u64>, PoolError> = pool.chunked(1).map(morre, 0..4);
    println!("after the death (never printed): {outcome:?}");
    Ok(())
}

/// Rank 0 returns with calls still queued and running: the ranks are stopped cleanly.
fn return_while_running() -> Result<(), Box<dyn Error>> {
    let pool = MpiPool::new()?;
    let unread = pool.chunked(1).map_async(quadrado, 0..1000)?;
    let also_unread = pool.apply_async(quadrado, (3,))?;
    // Rust: nothing terminates the pool or forgets its calls before the exit step runs.
    std::mem::forget((pool, unread, also_unread));
    println!("rank 0 returns without waiting");
    Ok(())
}

fn check<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) {
    if got == want {
        println!("{what}: same as the local pool");
    } else {
        println!("{what}: DIFFERENT: {got:?} != {want:?}");
    }
}

fn error_text<T>(result: Result<T, PoolError>) -> String {
    match result {
        Ok(_) => "no error".to_owned(),
        Err(error) => error.to_string(),
    }
}
