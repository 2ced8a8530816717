//! The programs `shared/tests/mpi.rs` runs under `mpirun`, one per scenario (the first
//! argument): the MPI pool's results beside the local pool's, and each failure it states.
//! Every line it prints is one the test checks.

use std::error::Error;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use shared::futures::{ReturnWhen, as_completed, wait};
use shared::{MpiPool, MpiPoolExecutor, Pool, PoolError, ProcessPoolExecutor, StartMethod};

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

/// Keeps its rank busy until rank 0 opens the gate at `caminho` (see [`Portao`]); returns
/// its process id.
fn espera(caminho: String) -> Result<u32, String> {
    let mut conexao = UnixStream::connect(&caminho).map_err(|e| format!("{caminho}: {e}"))?;
    let mut byte = [0u8; 1];
    conexao
        .read_exact(&mut byte)
        .map_err(|e| format!("{caminho}: {e}"))?;
    Ok(std::process::id())
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
        "get-timeout" => get_timeout(),
        "executor" => executor(),
        "executor-cancel" => executor_cancel(),
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
    // The chunks ran on worker ranks: other processes than this one, at most one per rank.
    // Run while both ranks are free (every call so far has settled): the first two chunks
    // then go one to each. After the endless `imap` below, a rank may still hold a chunk of
    // it, and the other could run all twenty.
    let pids = mpi.chunked(1).map(pid, 0..20)?;
    let distinct: std::collections::BTreeSet<u32> = pids.into_iter().collect();
    let here = std::process::id();
    println!(
        "pids: {} distinct, rank 0 among them: {}",
        distinct.len(),
        distinct.contains(&here)
    );
    // An endless input: only what is consumed is computed.
    let got: Vec<u64> = mpi.imap(quadrado, 0..)?.take(5).collect::<Result<_, _>>()?;
    check("imap of an endless input", got, vec![0, 1, 4, 9, 16]);
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

/// A gate that keeps worker ranks busy, without a sleep: each [`espera`] task connects to
/// rank 0's socket and waits for a byte. Once rank 0 has accepted `n` connections, `n`
/// ranks are inside a task, and stay there until [`Portao::abrir`]. (The ranks run on this
/// one machine, as `mpirun -n 3` starts them here.)
struct Portao {
    caminho: PathBuf,
    ouvinte: UnixListener,
    conexoes: Vec<UnixStream>,
}

impl Portao {
    fn novo(nome: &str) -> Result<Portao, Box<dyn Error>> {
        let caminho =
            std::env::temp_dir().join(format!("shared-mpi-{}-{nome}.sock", std::process::id()));
        let _ = std::fs::remove_file(&caminho);
        let ouvinte = UnixListener::bind(&caminho)?;
        Ok(Portao {
            caminho,
            ouvinte,
            conexoes: Vec::new(),
        })
    }

    fn caminho(&self) -> String {
        self.caminho.display().to_string()
    }

    /// Waits until `n` more tasks are inside [`espera`].
    fn aguardar(&mut self, n: usize) -> Result<(), Box<dyn Error>> {
        for _ in 0..n {
            self.conexoes.push(self.ouvinte.accept()?.0);
        }
        Ok(())
    }

    /// Lets every task inside [`espera`] return.
    fn abrir(&mut self) -> Result<(), Box<dyn Error>> {
        for mut conexao in self.conexoes.drain(..) {
            conexao.write_all(&[1])?;
        }
        Ok(())
    }
}

impl Drop for Portao {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.caminho);
    }
}

/// `get_timeout`, `wait_timeout` and `next_timeout` give up in time while both ranks are
/// busy, and lose nothing: the results come once the ranks are free.
fn get_timeout() -> Result<(), Box<dyn Error>> {
    let pool = MpiPool::new()?;
    let mut portao = Portao::novo("get-timeout")?;
    let primeiro = pool.apply_async(espera, (portao.caminho(),))?;
    let segundo = pool.apply_async(espera, (portao.caminho(),))?;
    portao.aguardar(2)?;
    let na_fila = pool.apply_async(quadrado, (4,))?;
    let mut lazy = pool.imap(quadrado, 0..3)?;
    let curto = Duration::from_millis(50);
    println!("running: {}", error_text(primeiro.get_timeout(curto)));
    println!("queued: {}", error_text(na_fila.get_timeout(curto)));
    println!(
        "queued wait_timeout: {}, ready: {}",
        na_fila.wait_timeout(curto),
        na_fila.ready()
    );
    let next = lazy.next_timeout(curto).map(error_text);
    println!("imap next_timeout: {next:?}");
    portao.abrir()?;
    let pids = [primeiro.get()?, segundo.get()?];
    println!(
        "then: {}, pids differ: {}",
        na_fila.get()?,
        pids[0] != pids[1]
    );
    let rest: Vec<u64> = lazy.collect::<Result<_, _>>()?;
    println!("imap then: {rest:?}");
    println!(
        "get_timeout of a finished call: {:?}",
        na_fila.get_timeout(Duration::ZERO)
    );
    Ok(())
}

/// The executor's results beside the local executor's, its futures' states, a panicking
/// task, done callbacks, `as_completed` and `wait`.
fn executor() -> Result<(), Box<dyn Error>> {
    let mpi = MpiPoolExecutor::new()?;
    let local = ProcessPoolExecutor::builder()
        .max_workers(2)
        .mp_context(StartMethod::Fork)
        .build()?;
    check(
        "submit",
        mpi.submit(soma, (1, 2, 3))?.result()?,
        local.submit(soma, (1, 2, 3))?.result()?,
    );
    let got: Vec<u64> = mpi.map(quadrado, 0..100)?.collect::<Result<_, _>>()?;
    let want: Vec<u64> = local.map(quadrado, 0..100)?.collect::<Result<_, _>>()?;
    check("map", got, want);
    let minute = Some(Duration::from_secs(60));
    let got: Vec<u64> = mpi
        .map_with(quadrado, 0..100, 7, minute)?
        .collect::<Result<_, _>>()?;
    let want: Vec<u64> = local
        .map_with(quadrado, 0..100, 7, minute)?
        .collect::<Result<_, _>>()?;
    check("map_with(7, 60 s)", got, want);
    let got: Vec<String> = mpi.map(falha_no_tres, 2..5)?.map(item_text).collect();
    let want: Vec<String> = local.map(falha_no_tres, 2..5)?.map(item_text).collect();
    check("map with an Err", got, want);
    check(
        "map chunksize 0",
        error_text(mpi.map_with(quadrado, 0..3, 0, None)),
        error_text(local.map_with(quadrado, 0..3, 0, None)),
    );
    let panicked = mpi.submit(panico_no_cinco, (5,))?;
    let error = panicked.result().unwrap_err();
    println!("panic: is a task error: {}", error.is_task_error());
    println!(
        "panic: exception is the same: {}",
        panicked.exception().map(|e| e.to_string()) == Some(error.to_string())
    );
    let next = mpi.submit(quadrado, (6,))?;
    println!("after the panic: {}", next.result()?);
    println!(
        "finished future: done {}, running {}, cancelled {}",
        next.done(),
        next.running(),
        next.cancelled()
    );
    let (enviar, receber) = std::sync::mpsc::channel();
    let future = mpi.submit(quadrado, (21,))?;
    future.add_done_callback(move |f| enviar.send(f.result().ok()).unwrap_or(()));
    println!("callback: {:?}", receber.recv()?);
    let futures: Vec<_> = (0..6)
        .map(|x| mpi.submit(quadrado, (x,)))
        .collect::<Result<_, _>>()?;
    let mut completed = Vec::new();
    for future in as_completed(&futures, None) {
        completed.push(future?.result()?);
    }
    completed.sort_unstable();
    println!("as_completed: {completed:?}");
    let mixed = [
        mpi.submit(falha_no_tres, (3,))?,
        mpi.submit(falha_no_tres, (4,))?,
    ];
    let all = wait(&mixed, None, ReturnWhen::AllCompleted);
    let first_failure = wait(&mixed, None, ReturnWhen::FirstException);
    println!(
        "wait: {} done, {} not done; first exception: {} done",
        all.done.len(),
        all.not_done.len(),
        first_failure.done.len()
    );
    mpi.shutdown(true, false)?;
    local.shutdown(true, false)?;
    check(
        "submit after shutdown",
        error_text(mpi.submit(quadrado, (1,))),
        error_text(local.submit(quadrado, (1,))),
    );
    println!("executor: done");
    Ok(())
}

/// A call no rank has been given can be cancelled; one running cannot; `shutdown` with
/// `cancel_futures` cancels every call still queued.
fn executor_cancel() -> Result<(), Box<dyn Error>> {
    let executor = MpiPoolExecutor::new()?;
    let mut portao = Portao::novo("executor-cancel")?;
    let ocupados = [
        executor.submit(espera, (portao.caminho(),))?,
        executor.submit(espera, (portao.caminho(),))?,
    ];
    portao.aguardar(2)?;
    let na_fila = executor.submit(quadrado, (9,))?;
    println!(
        "queued: running {}, done {}",
        na_fila.running(),
        na_fila.done()
    );
    println!(
        "busy: running {}, cancel {}",
        ocupados[0].running(),
        ocupados[0].cancel()
    );
    println!(
        "result_timeout of a busy one: {}",
        error_text(ocupados[1].result_timeout(Duration::from_millis(50)))
    );
    let (enviar, receber) = std::sync::mpsc::channel();
    na_fila.add_done_callback(move |f| enviar.send(f.cancelled()).unwrap_or(()));
    println!("cancel: {}", na_fila.cancel());
    println!(
        "cancelled: {}, done {}, result: {}, callback saw cancelled: {}",
        na_fila.cancelled(),
        na_fila.done(),
        error_text(na_fila.result()),
        receber.recv()?
    );
    println!("cancel again: {}", na_fila.cancel());
    let fila: Vec<_> = (0..3)
        .map(|x| executor.submit(quadrado, (x,)))
        .collect::<Result<_, _>>()?;
    executor.shutdown(false, true)?;
    let results: Vec<String> = fila.iter().map(|f| error_text(f.result())).collect();
    println!("shutdown(cancel_futures): {results:?}");
    println!(
        "submit after shutdown: {}",
        error_text(executor.submit(quadrado, (1,)))
    );
    portao.abrir()?;
    let pids: Vec<u32> = ocupados
        .iter()
        .map(|f| f.result())
        .collect::<Result<_, _>>()?;
    println!("the busy ones then: {} results", pids.len());
    executor.shutdown(true, false)?;
    println!("executor-cancel: done");
    Ok(())
}

fn item_text(item: Result<u64, PoolError>) -> String {
    match item {
        Ok(value) => value.to_string(),
        Err(error) => error.to_string(),
    }
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
