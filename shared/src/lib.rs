//! Python's `multiprocessing` for Rust: [`Process`], [`Queue`], [`JoinableQueue`],
//! [`Pipe`]/[`Connection`], [`Listener`]/[`Client`] and [`wait`], [`Lock`], [`RLock`],
//! [`Condition`], [`Semaphore`], [`Event`], [`Barrier`], [`Value`], [`Array`] and a [`Pool`] of
//! workers across real OS processes, with the fork, spawn and
//! forkserver start methods.
//! Items cross as MessagePack (serde + rmp-serde), so anything serde handles can be sent.
//! Their counterparts inside one process, Python's `threading.Thread` and `queue.Queue`, are
//! [`Thread`] and [`ThreadQueue`], with the same API.
//!
//! This is the library under the lessons of a Portuguese-language course on processes; each
//! lesson mirrors a Python listing line by line. It is meant to be used after the lessons too.
//!
//! # Quick start
//!
//! The crate is not on crates.io: depend on it by path or by git. Items you send through a
//! [`Queue`] or a [`Pipe`] are serialized with serde, so your own types need serde's `derive`;
//! a [`Value`] holds any `bytemuck::Pod` type, so a struct of your own in one needs
//! bytemuck's `derive` (plain integers and floats need nothing).
//!
//! ```toml
//! [dependencies]
//! shared = { path = "../processos-em-rust/shared" }  # or { git = "…" }
//! serde = { version = "1", features = ["derive"] }
//! bytemuck = { version = "1", features = ["derive"] }  # only for your own Value types
//! ```
//!
//! Call [`init`] first thing in `main`, the counterpart of Python's
//! `if __name__ == '__main__':`: under the spawn and forkserver start methods a child is a new
//! run of your program, and `init` sends it to its target instead of the rest of `main`.
//!
//! A child started by spawn puts what it found on a [`Queue`]; the parent reads it:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use shared::{Process, Queue, StartMethod};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Report {
//!     pid: u32,
//!     words: usize,
//! }
//!
//! fn count(text: String, results: Queue<Report>) -> Result<(), Box<dyn std::error::Error>> {
//!     let words = text.split_whitespace().count();
//!     results.put(Report { pid: std::process::id(), words })?;
//!     Ok(())
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     shared::init()?;
//!     let results = Queue::new()?;
//!     let mut child = Process::new(count, ("um dois três".to_owned(), results.clone()))
//!         .start_method(StartMethod::Spawn);
//!     child.start()?;
//!     let report = results.get()?;
//!     child.join()?;
//!     assert_eq!(report.words, 3);
//!     assert_eq!(Some(report.pid), child.pid());
//!     assert_eq!(child.exitcode(), Some(0));
//!     Ok(())
//! }
//! ```
//!
//! A [`Pool`] of worker processes maps a function (defined with `fn`) over an input, and
//! gives the results in the input's order:
//!
//! ```
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     shared::init()?;
//!     let pool = shared::Pool::new(2)?;
//!     assert_eq!(pool.map(square, 0..10)?, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
//!     pool.close();
//!     pool.join()?;
//!     Ok(())
//! }
//! ```
//!
//! Four processes add to one shared [`Value`] under its lock, and no addition is lost; a
//! [`Lock`] keeps their lines whole:
//!
//! ```
//! use shared::{Lock, Process, Value};
//!
//! fn add(total: Value<u64>, print: Lock) -> Result<(), Box<dyn std::error::Error>> {
//!     for _ in 0..1000 {
//!         *total.get_lock()? += 1; // Python: `with total.get_lock(): total.value += 1`
//!     }
//!     let _line = print.acquire()?; // Python: `with print:`
//!     println!("process {} done", std::process::id());
//!     Ok(())
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     shared::init()?;
//!     let total = Value::new(0_u64)?;
//!     let print = Lock::new()?;
//!     let mut processes: Vec<_> = (0..4)
//!         .map(|_| Process::new(add, (total.clone(), print.clone())))
//!         .collect();
//!     for process in &mut processes {
//!         process.start()?;
//!     }
//!     for process in &mut processes {
//!         process.join()?;
//!     }
//!     assert_eq!(total.value()?, 4000);
//!     Ok(())
//! }
//! ```
//!
//! **Platform**: Linux with glibc, tested on x86-64 (Linux 6.x); on Windows, WSL 2; on macOS,
//! a Linux container (e.g. the official `rust` Docker image). It relies on memfd, futexes,
//! robust process-shared mutexes, file seals and `pidfd_open`, and refuses to build
//! elsewhere rather than pretend. Only Linux x86-64 with glibc is tested.
//!
//! # From Python to Rust
//!
//! | Python | Rust |
//! |---|---|
//! | `if __name__ == '__main__':` | [`shared::init()?`](init) first in `main`, on the main thread ([`InitError::NotMainThread`] elsewhere); it reads nothing from the command line |
//! | a lesson's `--timeline` (no Python counterpart) | [`record_timeline`]`(`[`TimelineOutput`]`)`, drawn in English; a lesson's `--timeline` draws in Portuguese |
//! | `multiprocessing.set_start_method('spawn')` | [`set_start_method`]`(StartMethod::Spawn)`; in a lesson, `--start-method spawn` on the command line ([`lesson::init`]) |
//! | `multiprocessing.set_start_method('forkserver')` (Python 3.14's default on Linux) | [`set_start_method`]`(StartMethod::Forkserver)`, or `--start-method forkserver` in a lesson; the default here stays [`StartMethod::Fork`] |
//! | `multiprocessing.get_start_method()` | [`get_start_method`] |
//! | `multiprocessing.get_context('spawn').Process(...)` | [`Process::new`]`(...).start_method(StartMethod::Spawn)` |
//! | `Process(target=f, args=(a, b))` | [`Process::new`]`(f, (a, b))` |
//! | `Process(..., daemon=True)`, `p.daemon = True` | [`Process::daemon`]`(true)`, [`Process::set_daemon`] |
//! | `p.start()` | [`Process::start`] |
//! | `p.join()`, `p.join(timeout)` | [`Process::join`], [`Process::join_timeout`] |
//! | `p.pid`, `p.exitcode`, `p.name` | [`Process::pid`], [`Process::exitcode`], [`Process::name`] |
//! | `p.is_alive()`, `p.terminate()`, `p.kill()` | [`Process::is_alive`], [`Process::terminate`], [`Process::kill`] |
//! | `multiprocessing.current_process()`: `.name`, `.pid`, `.daemon`, `.ident` | [`current_process`] → [`ProcessInfo::name`], [`ProcessInfo::pid`], [`ProcessInfo::is_daemon`], [`ProcessInfo::ident`] |
//! | `multiprocessing.parent_process()`: `.name`, `.pid`, `.is_alive()` | [`parent_process`] (`None` in the main process) → [`ParentProcess::name`], [`ParentProcess::pid`], [`ParentProcess::is_alive`] |
//! | `multiprocessing.active_children()` | [`active_children`], a `Vec<`[`ProcessInfo`]`>`; reaps the children that ended |
//! | `multiprocessing.cpu_count()`, `os.process_cpu_count()` | [`cpu_count`], [`process_cpu_count`] |
//! | `multiprocessing.Pool(processes)`; leaving `with Pool() as pool:` | [`Pool::new`]; dropping it terminates it |
//! | `Pool(initializer=f, initargs=a, maxtasksperchild=n)`, `get_context(m).Pool()` | [`Pool::builder`]: [`PoolBuilder::initializer`], [`PoolBuilder::maxtasksperchild`], [`PoolBuilder::start_method`] |
//! | `pool.map(f, items)`, `pool.map(f, items, chunksize=n)` | [`Pool::map`], [`Pool::chunked`]`(n).map(f, items)` |
//! | `pool.starmap(f, items)`, `map_async`, `starmap_async` | [`Pool::starmap`], [`Pool::map_async`], [`Pool::starmap_async`] |
//! | `pool.imap(f, items)`, `imap_unordered`, `it.next(timeout)` | [`Pool::imap`], [`Pool::imap_unordered`] (lazy [`IMap`] iterators), [`IMap::next_timeout`] |
//! | `pool.apply(f, args)`, `apply_async(f, args)` | [`Pool::apply`], [`Pool::apply_async`] |
//! | `r.get()`, `r.get(timeout)`, `r.wait()`, `r.ready()`, `r.successful()` | [`AsyncResult::get`], [`AsyncResult::get_timeout`], [`AsyncResult::wait`], [`AsyncResult::ready`], [`AsyncResult::successful`] |
//! | `pool.close()`, `pool.terminate()`, `pool.join()` | [`Pool::close`], [`Pool::terminate`], [`Pool::join`] |
//! | an exception raised by a task, re-raised by `get()` | [`PoolError::Task`] with its message; a panic too |
//! | `multiprocessing.TimeoutError` | [`PoolError::Timeout`] |
//! | `multiprocessing.pool.MaybeEncodingError` (a result that does not pickle) | [`PoolError::Encoding`], with the encoder's [`CodecError`]; that call fails, the pool goes on |
//! | `mpi4py.futures.MPIPoolExecutor` under `mpirun`/`srun` (ranks as workers, beyond one machine) | `MpiPoolExecutor`, with the feature `mpi`: the [`ProcessPoolExecutor`] methods over an MPI job's ranks; `MpiPool`, the `Pool` methods over them (see [Beyond one machine](#beyond-one-machine)) |
//! | `apply_async(f, args, callback=cb, error_callback=ecb)`, the same on `map_async`, `starmap_async` | [`Pool::apply_async_with`]`(f, args, `[`Callbacks`]`::new().callback(cb).error_callback(ecb))`, [`Pool::map_async_with`], [`Pool::starmap_async_with`]; run on the pool's supervisor thread |
//! | a per-task timeout (pebble's `ProcessPool(timeout=…)`; CPython has none) | [`PoolBuilder::task_timeout`], [`Pool::task_timeout`] / [`Chunked::task_timeout`] for one call (`pool.task_timeout(d).apply_async(f, args)`, [`Chunked::apply_async`], or a map); [`PoolError::TaskTimeout`] names the killed worker |
//! | `concurrent.futures.ProcessPoolExecutor(max_workers)` | [`ProcessPoolExecutor::new`]; dropping it is leaving `with ProcessPoolExecutor() as ex:` |
//! | `ProcessPoolExecutor(max_workers, mp_context, initializer, initargs, max_tasks_per_child)` | [`ProcessPoolExecutor::builder`]: [`ExecutorBuilder::max_workers`], [`ExecutorBuilder::mp_context`], [`ExecutorBuilder::initializer`], [`ExecutorBuilder::max_tasks_per_child`], [`ExecutorBuilder::task_timeout`] |
//! | `ex.submit(f, *args)`, `ex.map(f, items, timeout=t, chunksize=n)`, `ex.shutdown(wait, cancel_futures=c)` | [`ProcessPoolExecutor::submit`] (a [`Future`]), [`ProcessPoolExecutor::map`], [`ProcessPoolExecutor::map_with`], [`ProcessPoolExecutor::shutdown`] |
//! | `fut.result()`, `fut.result(timeout)`, `fut.exception()` | [`Future::result`], [`Future::result_timeout`], [`Future::exception`] |
//! | `fut.cancel()`, `fut.cancelled()`, `fut.running()`, `fut.done()`, `fut.add_done_callback(fn)` | [`Future::cancel`], [`Future::cancelled`], [`Future::running`], [`Future::done`], [`Future::add_done_callback`] |
//! | `concurrent.futures.as_completed(fs, timeout)` | [`as_completed`] (also [`futures::as_completed`]) |
//! | `concurrent.futures.wait(fs, timeout, return_when=FIRST_COMPLETED)` | [`futures::wait`]`(&fs, timeout, `[`ReturnWhen::FirstCompleted`]`)`, a [`DoneAndNotDone`] |
//! | `concurrent.futures.CancelledError`, `TimeoutError`, `BrokenProcessPool` | [`PoolError::Cancelled`], [`PoolError::Timeout`]; a dead worker is [`PoolError::WorkerDied`] for its future only |
//! | `multiprocessing.Queue()`, `Queue(maxsize)` | [`Queue::new`], [`Queue::with_maxsize`] |
//! | `q.put(x)`, `q.put(x, timeout=t)`, `q.put_nowait(x)` | [`Queue::put`], [`Queue::put_timeout`], [`Queue::put_nowait`] |
//! | `q.get()`, `q.get(timeout=t)`, `q.get_nowait()` | [`Queue::get`], [`Queue::get_timeout`], [`Queue::get_nowait`] |
//! | `q.qsize()`, `q.empty()`, `q.full()`, `q.close()` | [`Queue::qsize`], [`Queue::empty`], [`Queue::full`], [`Queue::close`] |
//! | `queue.Full`, `queue.Empty` | [`PutError::Full`] (hands the item back), [`GetError::Empty`] |
//! | `ValueError: Queue is closed` | [`PutError::Closed`], [`GetError::Closed`] |
//! | `q.shutdown(immediate=False)`, `q.is_shutdown` (3.13 `queue.Queue`) | [`Queue::shutdown`]`(false)`, [`Queue::is_shutdown`]; on a [`JoinableQueue`] too |
//! | `queue.ShutDown` | [`PutError::ShutDown`] (hands the item back), [`GetError::ShutDown`] |
//! | `multiprocessing.JoinableQueue(maxsize)` | [`JoinableQueue::new`], [`JoinableQueue::with_maxsize`]; every `Queue` method too |
//! | `jq.task_done()`, `jq.join()` | [`JoinableQueue::task_done`], [`JoinableQueue::join`], [`JoinableQueue::join_timeout`] |
//! | `ValueError: task_done() called too many times` | [`TaskDoneError::TooManyCalls`] |
//! | `multiprocessing.Pipe()`, `Pipe(duplex=False)` | [`Pipe::new`], [`Pipe::with_duplex`]`(false)` |
//! | `c.send(x)`, `c.recv()` | [`Connection::send`], [`Connection::recv`] |
//! | `c.send_bytes(b)`, `c.recv_bytes()` | [`Connection::send_bytes`], [`Connection::recv_bytes`] |
//! | `c.poll(timeout)`, `c.close()` | [`Connection::poll`], [`Connection::close`] |
//! | `EOFError` from `recv` | [`RecvError::Closed`] |
//! | `BrokenPipeError` from `send` | [`SendError::Closed`] |
//! | `OSError` on the wrong end of a one-way pipe | [`SendError::WrongDirection`], [`RecvError::WrongDirection`] |
//! | `multiprocessing.connection.Listener(address, backlog=n, authkey=k)` | [`Listener::bind`]`(address, n, Some(k))`; an [`Address`] is a path or `@nome` (abstract) |
//! | `listener.accept()`, `listener.address`, `listener.close()` | [`Listener::accept`] (a [`Connection`]), [`Listener::address`], [`Listener::close`] |
//! | `multiprocessing.connection.Client(address, authkey=k)` | [`Client::connect`]`(address, Some(k))` |
//! | `multiprocessing.AuthenticationError` | [`ConnectError::Authentication`] with an [`AuthenticationError`] |
//! | `multiprocessing.connection.wait(objects, timeout)` | [`wait`]`(objects, timeout)` over [`Waitable`]s: [`Connection`], [`Listener`], [`Sentinel`] |
//! | `p.sentinel` | [`Process::sentinel`] (the process's pidfd) |
//! | `multiprocessing.Manager()`; leaving `with Manager() as m:` | [`Manager::new`]; [`Manager::shutdown`] (dropping it does the same) |
//! | `SyncManager(address, authkey).start()`, `get_context(m).Manager()` | [`Manager::builder`]: [`ManagerBuilder::address`], [`ManagerBuilder::authkey`], [`ManagerBuilder::start_method`], [`ManagerBuilder::start`] |
//! | `BaseManager(address, authkey).connect()` | [`Manager::connect`] |
//! | `BaseManager.register('get_queue', callable=lambda: q)` | [`Manager::named`]: the object the server holds under a name, made if new |
//! | `BaseManager.register('Contador', Contador)`; `m.Contador()`, `proxy.somar(2)` | a [`Shared`] type (its calls an enum) in [`ManagerBuilder::register`]`::<(Contador,)>()`; [`Manager::shared`], [`SharedProxy::call`] |
//! | `m.dict()`; `d[k]`, `d[k] = v`, `d.get(k)`, `del d[k]`, `k in d`, `len(d)` | [`Manager::dict`] → [`DictProxy::get_item`], [`DictProxy::set`], [`DictProxy::get`], [`DictProxy::del_item`], [`DictProxy::contains_key`], [`DictProxy::len`] |
//! | `d.update(pairs)`; `d.get(k)` for many keys | [`DictProxy::update`]; [`DictProxy::get_many`] (one round trip for all) |
//! | `m.list()`, `m.Namespace()`, `m.Value(t, v)`, `m.Array(t, items)` | [`Manager::list`], [`Manager::namespace`], [`Manager::value`], [`Manager::array`] ([`ListProxy`], [`NamespaceProxy`], [`ValueProxy`], [`ArrayProxy`]) |
//! | `m.Lock()`, `m.RLock()`, `m.Semaphore(n)`, `m.BoundedSemaphore(n)`; `with lock:` | [`Manager::lock`], [`Manager::rlock`], [`Manager::semaphore`], [`Manager::bounded_semaphore`]; `acquire` returns a [`ProxyGuard`] |
//! | `m.Event()`, `m.Condition()`, `m.Barrier(n)` | [`Manager::event`], [`Manager::condition`], [`Manager::barrier`] |
//! | `m.Queue(maxsize)`, `m.JoinableQueue(maxsize)` | [`Manager::queue`], [`Manager::joinable_queue`] ([`QueueProxy`], [`JoinableQueueProxy`]) |
//! | `KeyError`, `IndexError`, `queue.Empty` from a proxy; `EOFError` when its server died | [`ManagerError::KeyError`], [`ManagerError::IndexError`], [`ManagerError::Empty`]; [`ManagerError::ServerGone`] |
//! | `multiprocessing.Semaphore(n)`, `BoundedSemaphore(n)` | [`Semaphore::new`], [`BoundedSemaphore::new`] (`n` ≤ [`MAX_SLOTS`]) |
//! | `with sem:`, `sem.acquire()` … `sem.release()` | [`Semaphore::acquire`] returns a [`SemaphoreGuard`] that releases on drop |
//! | `sem.acquire(timeout=t)`, `sem.acquire(False)` | [`Semaphore::acquire_timeout`], [`Semaphore::try_acquire`] (`Ok(None)` for `False`) |
//! | `sem.acquire()` never released; `sem.release()` by another process | [`SemaphoreGuard::forget`]; [`Semaphore::release`], [`BoundedSemaphore::release`] |
//! | `sem.get_value()` | [`Semaphore::get_value`] |
//! | `ValueError: Semaphore released too many times` | [`ReleaseError::TooManyReleases`] |
//! | a semaphore unit lost for ever when its holder is killed | [`AcquireError::OwnerDied`], which carries the guard |
//! | `multiprocessing.Event()` | [`Event::new`] |
//! | `e.set()`, `e.clear()`, `e.is_set()` | [`Event::set`], [`Event::clear`], [`Event::is_set`] |
//! | `e.wait()`, `e.wait(timeout)` | [`Event::wait`], [`Event::wait_timeout`] |
//! | `multiprocessing.Barrier(parties)` | [`Barrier::new`] (`parties` ≤ [`MAX_PARTIES`]) |
//! | `b.wait()`, `b.wait(timeout)` | [`Barrier::wait`], [`Barrier::wait_timeout`] (both return the arrival index) |
//! | `b.abort()`, `b.reset()` | [`Barrier::abort`], [`Barrier::reset`] |
//! | `b.parties`, `b.n_waiting`, `b.broken` | [`Barrier::parties`], [`Barrier::n_waiting`], [`Barrier::broken`] |
//! | `threading.BrokenBarrierError` | [`BrokenBarrierError::Broken`]; [`BrokenBarrierError::PartyDied`] when a waiting party died |
//! | pickle | MessagePack through serde; a type mismatch is [`GetError::Decode`] / [`RecvError::Decode`] |
//! | `RecursionError` while unpickling a deeply nested value | a decode error past [`MAX_DEPTH`] levels |
//! | `multiprocessing.Lock()`, `RLock()` | [`Lock::new`], [`RLock::new`] |
//! | `with lock:`, `lock.acquire()` | [`Lock::acquire`] (a [`LockGuard`] releases on drop), [`RLock::acquire`] |
//! | `lock.acquire(timeout=t)`, `lock.acquire(False)` | [`Lock::acquire_timeout`], [`Lock::try_acquire`] (`None`: not acquired) |
//! | `lock.release()` | [`LockGuard::forget`] then [`Lock::release`], [`RLock::release`] |
//! | `RuntimeError: cannot release un-acquired lock` | [`ReleaseError::NotHeld`] |
//! | `multiprocessing.Condition()`, `Condition(lock)` | [`Condition::new`] (over an `RLock`), [`Condition::with_lock`] |
//! | `cond.wait()`, `cond.wait(timeout)` | [`Condition::wait`], [`Condition::wait_timeout`] (take and return the guard) |
//! | `cond.wait_for(pred)`, `cond.wait_for(pred, timeout)` | [`Condition::wait_for`], [`Condition::wait_for_timeout`] |
//! | `cond.notify(n)`, `cond.notify_all()` | [`Condition::notify`], [`Condition::notify_all`] |
//! | `multiprocessing.Value('i', 0)` | [`Value::new`]`(0_i32)`, any `T: bytemuck::Pod` |
//! | `with v.get_lock(): v.value += 1` | `*v.`[`get_lock`](Value::get_lock)`()? += 1` (a [`ValueGuard`] derefs to the value) |
//! | `v.value`, `v.value = x` | [`Value::value`], [`Value::set_value`] (each takes the lock on its own) |
//! | `multiprocessing.Array('i', n)`, `Array('i', items)` | [`Array::new`], [`Array::from_slice`] |
//! | `arr[i]`, `arr[i] = x`, `arr[:]`, `len(arr)` | [`Array::get`], [`Array::set`], [`Array::to_vec`], [`Array::len`]; slices through [`Array::get_lock`] |
//! | `RawValue`, `RawArray`, `Value(..., lock=False)` | [`RawValue`], [`RawArray`] |
//! | a holder that died: the lock stays held for ever | [`AcquireError::OwnerDied`], carrying the guard |
//! | `shared_memory.SharedMemory(create=True, size=n)`, `SharedMemory(name, create=True, size=n)` | [`SharedMemory::create`], [`SharedMemory::create_named`]: a file under `/dev/shm`, as CPython's |
//! | `SharedMemory(name=name)` | [`SharedMemory::attach`], from any process; Python's `SharedMemory(name=...)` attaches to ours |
//! | `shm.buf[i]`, `shm.buf[i] = b` | [`SharedMemory::buf`]`()[i]` with `load`/`store` (a `&[AtomicU8]`: other processes write it) |
//! | `bytes(shm.buf[a:b])`, `shm.buf[a:a + len(x)] = x` | [`SharedMemory::read`], [`SharedMemory::read_at`], [`SharedMemory::write_at`] |
//! | `shm.name`, `shm.size`, `shm.close()`, `shm.unlink()` | [`SharedMemory::name`], [`SharedMemory::size`], [`SharedMemory::close`], [`SharedMemory::unlink`] |
//! | `FileExistsError`, `FileNotFoundError`, `ValueError` from `SharedMemory` | [`SharedMemoryError::Exists`], [`SharedMemoryError::NotFound`], [`SharedMemoryError::InvalidName`] / [`SharedMemoryError::InvalidSize`] |
//! | `shared_memory.ShareableList(seq)`, `ShareableList(seq, name=n)`, `ShareableList(name=n)` | [`ShareableList::new`], [`ShareableList::create_named`], [`ShareableList::attach`]; items are [`Item`]s, in CPython's layout |
//! | `sl[i]`, `sl[i] = x`, `len(sl)`, `sl.shm`, `sl.count(x)`, `sl.index(x)` | [`ShareableList::get`], [`ShareableList::set`], [`ShareableList::len`], [`ShareableList::shm`], [`ShareableList::count`], [`ShareableList::index`] |
//! | `ValueError: bytes/str item exceeds available storage` | [`ShareableListError::DoesNotFit`] |
//! | `managers.SharedMemoryManager()`; `smm.SharedMemory(size)`, `smm.ShareableList(seq)`, `smm.shutdown()` | [`SharedMemoryManager::new`]; [`SharedMemoryManager::shared_memory`], [`SharedMemoryManager::shareable_list`], [`SharedMemoryManager::shutdown`] (dropping it does the same): every segment made through it is unlinked |
//! | `threading.Thread(target=f, args=(a, b), daemon=True)` | [`Thread::new`]`(f, (a, b)).daemon(true)`; any `Send` closure, nothing serialized |
//! | `t.start()`, `t.join()`, `t.join(timeout)`, `t.is_alive()` | [`Thread::start`], [`Thread::join`], [`Thread::join_timeout`], [`Thread::is_alive`] |
//! | `t.name`, `t.daemon`, `t.native_id` | [`Thread::name`], [`Thread::is_daemon`] / [`Thread::set_daemon`], [`Thread::native_id`] |
//! | `threading.get_native_id()` | [`get_native_id`] |
//! | `RuntimeError` from `Thread.start()` / `join()` | [`ThreadError::AlreadyStarted`], [`ThreadError::NotStarted`], [`ThreadError::JoinCurrent`] |
//! | `queue.Queue(maxsize)` and its methods, between threads | [`ThreadQueue::with_maxsize`]; the methods and errors of [`JoinableQueue`] |
//! | `argparse` beside the `__main__` guard, in a lesson with options of its own | [`lesson::init_with`]`(&[`[`lesson::ProgramOption`]`])`, returning [`lesson::ProgramArgs`] |
//! | `--multiprocessing-fork` on a child's command line | `--shared-spawned-child`, obeyed only with the token in [`TOKEN_VARIABLE`] |
//! | `multiprocessing.forkserver`'s server (`-c 'from multiprocessing.forkserver import main; ...'`) | `--shared-forkserver`, obeyed only with a token and a socket from its parent |
//!
//! # Differences from Python
//!
//! Each of these is covered by the crate's tests.
//!
//! - **The queue state is exact.** `put` returns after the item is in shared memory, so
//!   `empty()`, `qsize()`, `full()` and `get_nowait()` see it at once in every process. CPython
//!   hands the item to a feeder thread: right after `put`, `empty()` is usually still `True`.
//! - **Joining a producer before reading never deadlocks.** An unbounded queue's memory grows;
//!   `put` never waits for a reader. In CPython a child that put more than a pipe buffer
//!   (64 KiB) cannot exit until someone reads, so `join()` before `get()` hangs.
//! - **A killed process does not break a queue.** A process killed in the middle of `put` or
//!   `get` loses at most that one item; the others never see a torn, duplicated or stuck queue.
//!   In CPython it can leave the queue's lock held forever or half a message in the pipe.
//! - **A semaphore unit survives its holder's death.** A [`Semaphore`] or
//!   [`BoundedSemaphore`] starts as slots, one robust mutex each: when a process is killed
//!   holding one, the next acquirer gets it with [`AcquireError::OwnerDied`]. CPython's
//!   semaphore loses that unit for ever (a `Semaphore(1)` used as a lock stays taken). Units
//!   added by a [`Semaphore::release`] beyond the start are plain counts, lost with their
//!   holder as in CPython. A semaphore starts with at most [`MAX_SLOTS`] units.
//! - **A semaphore unit is released by its guard.** `acquire` returns a guard that gives the
//!   unit back on drop; to keep it (Python's `acquire()` with no `release()`, or a `release()`
//!   made elsewhere), call [`SemaphoreGuard::forget`]. `release()` without a guard revives such
//!   a unit, or adds one; a [`BoundedSemaphore`] refuses one beyond its start
//!   ([`ReleaseError::TooManyReleases`]), as Python's does.
//! - **`Event::wait` returns `true` for a set that was cleared at once.** A waiter returns once
//!   the flag was set at any moment during its wait, as `threading.Event` does; CPython's
//!   `multiprocessing.Event.wait` re-reads the flag after waking and returns `False` if another
//!   process cleared it in between.
//! - **A barrier whose party died breaks.** If a process dies while waiting at a [`Barrier`],
//!   the others fail with [`BrokenBarrierError::PartyDied`] within about 100 ms (it is checked
//!   by PID and start time, so a reused PID is not taken for the dead party, and a zombie
//!   counts as dead); CPython's barrier waits for ever. A party that dies *before* arriving
//!   looks like a slow one, as in CPython: use [`Barrier::wait_timeout`]. [`Barrier::new`]
//!   takes no `action` nor default `timeout`, and at most [`MAX_PARTIES`] parties.
//! - **Items are typed.** A `Queue<T>` carries `T`; [`Queue::retyped`] gives a handle of another
//!   type over the same queue, and an item that does not decode is an error, not a crash.
//! - **`init()` is the `__main__` guard.** Under spawn a child is a fresh run of the program;
//!   [`init`] makes it run only its target. Its target must be a function defined with `fn`
//!   (Python: a module-level function), compiled into the executable rather than a shared
//!   library, and its arguments serializable; under fork any closure works.
//! - **A spawned child trusts only its parent.** It runs a target only from a sealed payload
//!   carrying a per-launch token that its parent put in its environment ([`TOKEN_VARIABLE`],
//!   internal); a forged command line or file ends the program with exit code 2. CPython's
//!   `--multiprocessing-fork` entry unpickles whatever its pipe holds.
//! - **Decoding has a depth limit.** Values nested deeper than [`MAX_DEPTH`] levels are a
//!   decode error, not a stack overflow; pickle raises `RecursionError` near 1,000.
//! - **A daemon lives as long as its parent process**, whichever thread started it, and is
//!   killed when its parent dies, even by SIGKILL (CPython leaves it running).
//! - **Only [`Thread`]s are joined at exit.** When `main` or a child's target returns, the
//!   non-daemonic [`Thread`]s that process started are joined, as CPython joins its
//!   `threading.Thread`s; a thread started with `std::thread::spawn` stops with the process,
//!   as when a plain Rust `main` returns. `std::process::exit` waits for them too, except on
//!   the thread that calls it. A forked child starts with no threads to join: the parent's
//!   do not exist in it, and there its handles to them report not alive and join at once.
//! - **A [`Thread`]'s name is `Thread-N`**, without CPython's ` (target)` suffix, and its
//!   target's `Err` or panic is printed as `Error: ...` or by the panic hook, not as a
//!   traceback. `start` returns once the thread runs, so [`Thread::native_id`] is known.
//! - **[`ThreadQueue`] has a per-handle `close()`** like [`Queue`] (CPython's `queue.Queue` has
//!   none; 3.13 adds `shutdown()`), so its `put` and `get` return the same `Result`s as the
//!   process queues and a lesson switches between them by changing the type.
//! - **A duplex [`Pipe`] is two pipes.** CPython's is a Unix socket pair; two pipe(2)s cost
//!   less per message (see the bench's `pipe_raw` row), and end of file and `BrokenPipeError`
//!   behave the same. An end reads ahead: one read takes what the pipe holds, and the bytes
//!   beyond the message stay in the end, count for [`Connection::poll`] and [`wait`], and move
//!   with it into a child.
//! - **[`Listener`] and [`Client`] are for Unix sockets only** (Python's `'AF_UNIX'` family;
//!   no TCP addresses), and talk only to each other: the authentication has the shape of
//!   CPython 3.12's (a challenge each way, `{sha256}` HMAC, `#WELCOME#`/`#FAILURE#`) but the
//!   framing (little-endian lengths, MessagePack) is not CPython's, and only SHA-256 is
//!   offered. Each handshake message is bounded to [`MAX_HANDSHAKE_MESSAGE`] bytes and the
//!   whole handshake to [`HANDSHAKE_TIMEOUT`]; CPython waits for ever on a silent peer.
//!   [`Listener::accept`] runs handshakes side by side, each on a thread of its own, and
//!   returns the first to finish: a silent or trickling client never delays an honest one
//!   (CPython's `accept` runs them in turn, so one stalled peer holds everyone). A path listener removes its
//!   socket file when closed, and the next bind replaces a file left by a killed listener once
//!   nobody listens there; CPython's bind then fails with `Address already in use`.
//! - **A [`Manager`]'s server ends with its program.** It is a daemonic child, so it ends
//!   when the program that started it ends, even by SIGKILL; CPython's server outlives an
//!   owner killed that way. A proxy whose server is gone fails at once
//!   ([`ManagerError::ServerGone`], or [`ManagerError::Connect`] before its first call),
//!   a call waiting in the server too; nothing hangs.
//! - **A manager's lock held by a process that died is released.** The server serves each
//!   connection on a thread and notices when one closes: the `Lock`, `RLock` or `Condition`
//!   that client held is released, and a call it left waiting (a queue's `get`) takes
//!   nothing. CPython keeps the lock held for ever.
//! - **Proxies are typed, and batch.** A [`DictProxy<K, V>`](DictProxy) carries serde types;
//!   the server stores their MessagePack bytes and compares keys by them.
//!   [`DictProxy::update`] and [`DictProxy::get_many`] carry many keys in one round trip.
//!   A manager's objects live until it shuts down (CPython frees one when its last proxy
//!   goes); [`Manager::named`] stands for `register`ing a callable that returns a shared
//!   object. A type of the user's own is a [`Shared`] type, registered by type (a spawned
//!   server makes only what its target names), with one `call` taking an enum of its
//!   methods instead of Python's calls by method name.
//! - **A serialized proxy carries the manager's authkey**, so a child can connect under any
//!   start method; CPython's children inherit the key from their process instead. Treat a
//!   proxy's bytes as the key itself.
//! - **[`wait`] returns references** to the ready objects, in the order given; with a mix of
//!   kinds (`&dyn Waitable`) compare addresses to tell them apart. A [`Sentinel`] borrows its
//!   [`Process`]; Python's is a plain descriptor number.
//! - **Arguments move into the child.** `start` closes the parent's copies of what it passed,
//!   so a [`Connection`] end given to a child reaches EOF when that child exits.
//! - **Process queues can be shut down.** CPython's `multiprocessing.Queue` has no
//!   `shutdown()`; [`Queue::shutdown`] gives Python 3.13's `queue.Queue.shutdown` semantics
//!   across processes: the state lives in the shared memory, so a shutdown made in one process
//!   fails every later `put` in all of them, wakes every blocked `put`, `get` and `join`, and
//!   with `immediate` discards the items (each counting as done for `join`). It returns an
//!   `io::Result` (Python's cannot fail), since it takes the queue's locks.
//! - **No feeder thread**, so there is no `join_thread()` or `cancel_join_thread()`; `close()`
//!   only closes the handle it is called on.
//! - **`JoinableQueue::join` re-checks its condition** after every wake-up, and has a
//!   `join_timeout`.
//! - **A target may return `Result`**: an `Err` is printed to stderr and gives exit code 1, as
//!   an uncaught exception does.
//! - **A lock's holder that dies does not hang the others.** When a process holding a
//!   [`Lock`], [`RLock`], a [`Condition`]'s lock or a [`Value`]'s or [`Array`]'s lock is killed,
//!   the next acquirer gets it with [`AcquireError::OwnerDied`], which carries the guard, as
//!   std's `PoisonError` does: repair what it protects and go on (only that acquirer is told).
//!   CPython's lock stays held by the dead process, and every later `acquire()` waits for ever.
//!   A waiter on a `Lock`, a `Value` or an `Array` notices the death within 100 ms (it asks
//!   `/proc` about the holder's thread), and a thread that ends holding one counts as dead
//!   too.
//! - **A lock is released by the thread that acquired it.** Guards are not `Send`, and
//!   [`Lock::release`] from another thread or process is [`ReleaseError::NotHeld`]; CPython's
//!   `Lock` (a semaphore) may be released by anyone. Each lock records its owner's thread id in
//!   order to report its death, and refuses anyone else's release.
//! - **A `Lock` acquired again by its holder is an error** (`EDEADLK`) rather than a wait for
//!   itself for ever; `try_acquire` and `acquire_timeout` answer "held" at once.
//! - **A `Value`'s lock is not re-entrant.** CPython gives a `Value` an `RLock`, so
//!   `v.value` inside `with v.get_lock():` takes it again. Here the guard gives the value
//!   (`*guard`), and [`Value::value`] on the thread that holds the guard is an error (`EDEADLK`)
//!   rather than a wait for itself or a second mutable reference.
//! - **Shared values are typed, and plain.** A `Value<T>` or `Array<T>` holds any
//!   `T: bytemuck::Pod` (integers, floats, `#[repr(C)]` structs of them) instead of a ctypes
//!   type code; a `bool` is a `u8`, as not every byte is a `bool`. [`RawValue`] and [`RawArray`]
//!   copy with atomic loads and stores, so racing accesses are not undefined behaviour: a `T`
//!   of up to 8 bytes is never torn, a larger one may be (CPython's copies may tear too).
//! - **A shared-memory segment outlives nobody, and nobody outlives it.** A [`SharedMemory`]'s
//!   name stays while any process is attached, and once every process that used it has ended,
//!   by any death, SIGKILL included, with none attached, a small watchdog process removes it:
//!   nothing is left under `/dev/shm`. CPython leaks the segment of a killed process, and
//!   before 3.13 its resource tracker unlinks a segment when a process that only attached
//!   exits, under everyone else. A program not using `shared` keeps a segment alive by holding
//!   `flock(fd, LOCK_SH)` on its file.
//! - **A segment's bytes are atomics.** [`SharedMemory::buf`] is a `&[AtomicU8]`, not a
//!   `memoryview`: a `&[u8]` over bytes another process writes would be undefined behaviour in
//!   Rust. [`SharedMemory::read_at`] and [`SharedMemory::write_at`] copy with atomic accesses.
//!   A segment never appears half made (no size 0 between `shm_open` and `ftruncate`), and its
//!   pages are reserved at creation, so a full `/dev/shm` is an error, not a SIGBUS.
//! - **`SharedMemory::close` consumes the handle**, so `unlink` comes before it (CPython allows
//!   `unlink()` after `close()`); [`SharedMemory::unlink`] removes the name only if it still
//!   names this segment.
//! - **A [`ShareableList`] refuses what it cannot give back**: a `str` or `bytes` ending in NUL
//!   (CPython strips them on reading), or one too long for any slot; a string's slot is sized by
//!   its UTF-8 length (CPython 3.11 sizes it by characters, and fails on non-ASCII text).
//!   Its header is checked when attached and each item when read: a corrupted list gives
//!   [`ShareableListError::Corrupt`].
//! - **`Condition` waits take the guard and give it back**, as std's `Condvar` does;
//!   `notify` is not checked to be called with the lock held (Python raises `RuntimeError`).
//!   A notify wakes the oldest waiters that were waiting when it was made, as in Python, and
//!   skips one whose process died (CPython's `notify` then waits forever for it to wake).
//!   Wake-ups may be spurious, as in Python; beyond 64 waiters at once, each wakes every
//!   100 ms to look.
//! - **Introspection returns snapshots, not `Process` objects.** [`current_process`] and
//!   [`active_children`] give [`ProcessInfo`] values (name, PID, daemon flag, identity), and
//!   [`parent_process`] a [`ParentProcess`]: a [`Process`] handle belongs to the process that
//!   created it, the only one that can join it. So `current_process().name = ...` has no
//!   counterpart, a `ParentProcess` has no `join()` or `sentinel`, and its
//!   [`ParentProcess::is_alive`] asks the kernel who this process's parent is (`getppid`)
//!   instead of watching a pipe. A child reaped by `active_children` still reports its exit
//!   code through its handle. [`cpu_count`] returns an error where Python raises
//!   `NotImplementedError`, and neither count obeys Python 3.13's `PYTHON_CPU_COUNT`.
//! - **A pool survives the death of a worker.** When a worker is killed mid-task (SIGKILL, the
//!   OOM killer), the chunk it was running fails with [`PoolError::WorkerDied`], naming its PID
//!   and signal; the chunks queued behind it run on other workers, a new worker replaces it,
//!   and the pool stays usable. It is not retried: a task that killed its worker would likely
//!   kill the next, and a task need not be safe to run twice. CPython's `Pool` waits for ever
//!   for that chunk (its issues gh-66587, gh-96062), and `ProcessPoolExecutor` breaks for good.
//! - **A pool's tasks are typed functions.** A task is a function item under every start
//!   method (a worker finds it from its type; a closure is [`PoolError::NeedsFunction`], as a
//!   lambda does not pickle). It returns a value, or a `Result` whose `Err` reaches the caller
//!   as [`PoolError::Task`] with its message ([`TaskResult`]); a panic is caught in the worker
//!   and reported the same way, with its location, instead of printed there. Handles (a
//!   [`Queue`], a [`Lock`]) reach workers only through the initializer, as in Python.
//! - **`imap` reads its input lazily**, keeping at most 64 chunks per worker in flight, so an
//!   endless iterator works; `map` reads the whole input first, as CPython's does.
//! - **A failing initializer stops the pool**: every call fails with
//!   [`PoolError::Initializer`] and its message. CPython starts new workers for ever.
//! - **`terminate` kills the workers with SIGKILL** (CPython sends SIGTERM). The `_async`
//!   calls take their `callback` and `error_callback` as one [`Callbacks`] value, in
//!   `_with` methods; they run on the pool's supervisor thread, before `get` returns, as in
//!   CPython.
//! - **A task may have a timeout** ([`PoolBuilder::task_timeout`]), which neither CPython's
//!   `Pool` nor its executor has: the worker still running it is killed and replaced, and
//!   that task alone fails with [`PoolError::TaskTimeout`].
//! - **The [`ProcessPoolExecutor`] survives its workers.** A worker's death fails the one
//!   [`Future`] it was running with [`PoolError::WorkerDied`] and the executor goes on, where
//!   CPython's breaks for good (`BrokenProcessPool`). Its workers start with it (CPython's
//!   start as work arrives); its `map` reads the input lazily, like [`Pool::imap`] (CPython's
//!   submits every item at once); a future is `running` once a worker has been given it
//!   (CPython: once it is in the call queue), and only a future no worker was given can be
//!   cancelled. [`Future::exception`] returns `Some(PoolError::Cancelled)` where Python
//!   raises `CancelledError`; [`futures::wait`] returns the futures in the order given, not
//!   as sets. `max_tasks_per_child` works under fork too (CPython refuses it there).
//! - **Errors are values.** Every fallible operation returns a `Result` whose error names the
//!   Python exception it stands for; nothing panics on bad input.
//! - **The forkserver belongs to one process.** The program talks to its server over an
//!   unnamed socket pair the server inherited, so no socket file exists, nothing else can
//!   connect, and no authentication key is needed (CPython's server listens on a named socket
//!   and, since 3.14, checks an HMAC key). A child does not share its parent's server: a
//!   process that uses the forkserver starts its own on first use (CPython's children reuse
//!   their parent's). The server ends when its program ends, even by SIGKILL, and the program
//!   waits for it at exit. There is no `set_forkserver_preload`: the server is the program's
//!   own image, with nothing to import. The default start method stays fork, as the lessons'
//!   listings were written for it.
//! - **A forkserved child's real parent is the server**, as in CPython; [`parent_process`]
//!   names the program, and `join`, `exitcode`, signals, daemons and [`active_children`]
//!   behave as under fork and spawn. The server reaps a child only once the program has
//!   collected its exit code, so the child's PID is never another process's while its
//!   [`Process`] may still signal it (CPython's server reaps at once; its `kill` then relies on
//!   the PID not having been reused).
//!
//! # Start-up and exit, as in CPython
//!
//! Under fork, stdout and stderr are flushed before the fork, so a line is never printed twice
//! when output goes to a pipe. When `main` returns, non-daemonic [`Thread`]s are joined, then
//! daemonic children are terminated and the others joined; a child process does the same for its own children before it exits. A
//! daemonic child is also killed if its parent dies (it watches a pidfd of its parent). Last,
//! a process that started a forkserver stops it and waits for it to exit.
//!
//! # Timeline
//!
//! With `--timeline` on a lesson's command line ([`lesson::init`]), or
//! [`record_timeline`]`(`[`TimelineOutput::Drawing`]`)` in a program of your own, `shared`
//! records what every process of the run does and, when `main` returns, draws it on stderr:
//! one column per thread that did something, one row per event, as wide as `COLUMNS` or the
//! terminal, in Portuguese for a lesson and in English otherwise (`--timeline=FILE.json`, or
//! [`TimelineOutput::Json`], writes Chrome's trace-event format instead, which Perfetto
//! imports without dropping anything: one track per thread, numeric flow ids). The
//! program's stdout stays byte for byte what it is without the flag. How, and the limits:
//!
//! - **One log for the whole run**: a sealed memfd of fixed-size records, appended with an
//!   atomic index, mapped by every process (inherited by fork; its descriptor passed to a
//!   spawned child, or to a forkserver that its children inherit it from, named in an
//!   environment variable that only a checked spawned or forkserved child reads; the server
//!   itself records nothing and is not in the timeline). A record is in shared memory once
//!   written, so a process killed mid-run keeps its events; a parent records the exit of a
//!   child it collects (with the signal, if one killed it; a forkserved child's as its
//!   server reports it). The log is checked when read: a corrupt one is an error message on stderr,
//!   never a crash. Times come from `CLOCK_MONOTONIC`, one clock for the whole machine,
//!   through one shared word so that no two events of a run get the same nanosecond.
//! - **Printed lines are attributed exactly** to their process (not to a thread: a process's
//!   threads share its stdout): each process points its stdout at a pipe of its own and
//!   copies it to the real stdout, recording each line as its own. Every
//!   recorded event first copies the process's pending output, so a line printed before a
//!   `put`, a `send`, a release or an exit reaches stdout before anything that event lets
//!   another process do, as without the flag. A line's time is when it was copied (at the
//!   latest, its process's next event). A process killed by a signal loses the output its
//!   copying thread had not read yet.
//! - **Near-free when off**: each hook is one relaxed atomic load, and builds nothing, when
//!   the flag is absent (the bench README gives the measurement).
//! - **Lock events are sampled**: each process records its first lock acquire and release
//!   and only counts the rest (lesson 05 takes a lock 800,000 times).
//! - The main process's own exit code is not in the timeline: it is written before `main`'s
//!   result becomes the exit status.
//!
//! # Beyond one machine
//!
//! With the cargo feature `mpi` (off by default; it links Open MPI or MPICH through rsmpi and
//! needs libclang to build), `MpiPool` and `MpiPoolExecutor` run the pool's and the
//! executor's calls on the ranks of an MPI job: start
//! the program with `mpirun -n N program` (on several hosts: `mpirun --hostfile hosts -n N
//! program`, the hostfile listing `node1 slots=4` lines; under Slurm: `srun -n N program`),
//! with the same executable at the same path on every host, since a task crosses as its entry
//! point's offset in that executable. [`init`] makes ranks 1 to N−1 workers that never return
//! and runs `main` on rank 0 only. What crosses the network: per chunk, the order (the offset,
//! a 16-byte seal keyed by a token rank 0 sends each rank once, the arguments in MessagePack)
//! and the report (the results or each item's error message); no code, no file, no handle.
//! A task's `Err` or panic fails that call only; a rank's death ends the whole job, with
//! `mpirun` naming the rank and exiting non-zero; rank 0's exit stops every worker rank and
//! finalizes MPI. The module `shared::mpi` (built with the feature) has the details;
//! `shared/examples/mpi_pool.rs` is lesson 06 on MPI.
//!
//! # Trust
//!
//! Everything `shared` reads from outside its process is checked where it arrives: a spawned
//! child's command line and payload (see [`init`]), a forkserver's command line and requests,
//! a forkserved child's payload (checked as a spawned child's), the descriptors a child
//! inherits or receives (each must be of the kind its handle expects), every message and queue item (depth limit, length limits),
//! and a queue's shared header (a corrupted or truncated queue gives an error, never a crash).
//! A process that connects to a [`Listener`] may be anyone who can reach its address (any
//! process in the same network namespace, for an abstract address, which has no file
//! permissions to check): with an
//! `authkey`, it sends nothing but the handshake until it has proved it holds the key, and each
//! handshake message is bounded in size and in time.
//! A [`SharedMemory`] segment's bytes may be written by any process that can open its file;
//! nothing `shared` reads from one is trusted ([`ShareableList`] checks its header once and
//! each item's format on every read). A process outside the protocol that shrinks a segment's
//! file makes a later access past its new end raise SIGBUS, as in CPython: tmpfs files cannot
//! be sealed against it.
//! Processes that share a queue are trusted not to write arbitrary bytes over its two robust
//! mutexes: glibc keeps a list of held robust mutexes through pointers stored in them.
//!
//! # Architecture
//!
//! For contributors: how the crate is put together, and where a new piece goes.
//!
//! ## The layers
//!
//! Each module imports only from the layers below it; no two modules import each other, even
//! through a third (`python3 .ci/import_graph.py shared/src --strict process` builds the
//! graph from the `crate::`, `super::` and `self::` paths and fails on a circle):
//!
//! 1. **Leaves**: `sys` (every system call, with its `SAFETY` argument), `wire` (the
//!    MessagePack limits), `lifecycle` (the hooks below) and `process::start_method` (the
//!    [`StartMethod`] type). They import nothing of the crate but each other (`sys` registers
//!    a fork hook with `lifecycle`).
//! 2. **Shared services**: `handoff` (how a handle's descriptors cross to a child) and
//!    `timeline` (the `--timeline` log, which every layer above records into).
//! 3. **Primitives between processes**: `block` (a sealed memfd of state), `sync` ([`Lock`],
//!    [`Value`], ...), `queue` ([`Queue`]), `connection` ([`Pipe`], [`Listener`]) and
//!    `shared_memory` ([`SharedMemory`], whose watchdog is a bare `fork` of `sys`, not a [`Process`]).
//! 4. **Processes and threads**: `process` ([`Process`] and everything a child's life needs:
//!    one file per start method, `fork`, `spawn` and `forkserver`, behind one `start_child`
//!    shape and one way to poll and wait, the registry's `CollectExit`; the spawn payload, both
//!    halves, in `payload`; the one `exec` of the program in `exec`; the child's entry dispatch
//!    in `entry`; the registry of children in `registry`), `thread` ([`Thread`]) and
//!    `introspection` ([`active_children`], ...).
//! 5. **On top**: `pool` ([`Pool`], whose workers are processes), `lesson` (the lessons'
//!    command line) and `start` ([`init`]).
//!
//! ## The lifecycle hooks
//!
//! A module with process-wide state registers itself with `lifecycle` the first time it is
//! used, and no other module calls it by name (CPython's `util.register_after_fork` and
//! `Finalize`):
//!
//! - `lifecycle::at_fork(rank, prepare)`: before every `fork` of the fork start method,
//!   `prepare` takes the module's lock and returns it held; after the fork, the parent
//!   releases it and the child resets what it must not keep (the children registry starts
//!   empty, the threads to join are none, the parent's forkserver is forgotten).
//! - `lifecycle::at_exit(step, hook)`: when the main process leaves (`main` returns, `exit`)
//!   or a child's target ends, the hooks run in `ExitStep` order: `Record` (a child's exit
//!   in the timeline), `Threads` (join the non-daemonic threads), `Children` (terminate the
//!   daemonic children, join the others), `Forkserver` (stop it, once its children are
//!   collected), `Report` (write the timeline).
//!
//! ## The fork lock order
//!
//! The forking thread takes every registered lock, in `lifecycle::ForkRank` order, so that
//! the child, which has that thread alone, finds each one unlocked: `Streams` (stdout, then
//! stderr, flushed: nothing is printed twice), `Children` (the registry of children),
//! `Identity` (who this process is), `Threads` (the threads to join at exit), `Mappings` (no
//! shared mapping is mid-move) and `Forkserver` (the server's record). One fixed order is what
//! keeps two forking threads, or a forking thread and one that nests two of these locks, from
//! deadlocking; the streams come first because code holding a later lock may still print.
//! The order is written once, in `lifecycle.rs`, with the reason for each rank.
//!
//! ## To add a primitive that owns processes
//!
//! A `Manager` server, say, or anything else that starts processes and must clean up after
//! them. Touch these files, and no others:
//!
//! - **Its own module** (`shared/src/manager/`), in layer 5 if it uses the pool, 4 otherwise.
//!   It starts its processes with [`Process`] (every start method then works, and the child
//!   is joined, polled, signalled and reaped like any other). A server that must be a fresh
//!   image, as the forkserver is, starts with `process::exec::exec_self` and a command-line
//!   marker that `process::entry::run_if_spawned_child` dispatches, and checks what it is sent
//!   with `process::payload`, as `process/forkserver.rs` does.
//! - **`lifecycle.rs`**, only if it keeps process-wide state: a new `ForkRank` for its lock, in
//!   its place in the order and with why, or a new `ExitStep` for its shutdown (before
//!   `Forkserver` if it may still start children). The module registers itself on first use
//!   with `lifecycle::at_fork` and `lifecycle::at_exit`.
//! - **`process/registry.rs`**, only if its children are not this process's own (their real
//!   parent is a server): implement `registry::CollectExit` for how their end is collected,
//!   and record them with `ChildRecord::forkserved`, as the forkserver does.
//! - **`lib.rs`**: `mod manager;`, the public re-exports, and a row in the table above.
//! - **`shared/tests/manager.rs`**: its tests, under `under_every_start_method!`.

/// `Debug` for an error type: its message, then each cause in its chain, once each, joined by
/// `": "`. An error returned from `main` is shown with `Debug`, so a learner reads
/// `Error: cannot send: Broken pipe (os error 32)`, not a struct dump.
///
/// The one error rule of the crate, which this macro relies on: an error's `Display` writes
/// its own message only and never its cause; the cause (a wrapped `io::Error` or another
/// error) is reached only through [`source()`](std::error::Error::source), and every variant
/// that holds one returns it there. Then the chain printed here shows each message once, and
/// so does any reporter that walks `source()` itself (`anyhow`, `eyre`). `tests/errors.rs`
/// checks every public error type against this rule.
///
/// An error from outside the rule (a library's error inside an `io::Error`, or one of ours
/// not yet converted) may end its message with its cause: that cause is not written twice.
macro_rules! debug_as_display {
    ($type:ident $(<$param:ident>)?) => {
        impl$(<$param>)? std::fmt::Debug for $type$(<$param>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut shown = self.to_string();
                let mut cause = std::error::Error::source(self);
                while let Some(error) = cause {
                    let message = error.to_string();
                    if shown != message && !shown.ends_with(&format!(": {message}")) {
                        shown.push_str(": ");
                        shown.push_str(&message);
                    }
                    cause = error.source();
                }
                f.write_str(&shown)
            }
        }
    };
}
pub(crate) use debug_as_display;

/// Calls `$impl!` once per arity a target, a task or a callable takes: none to six
/// arguments, named `A1`..`A6`.
macro_rules! for_each_arity {
    ($impl:ident) => {
        $impl!();
        $impl!(A1);
        $impl!(A1, A2);
        $impl!(A1, A2, A3);
        $impl!(A1, A2, A3, A4);
        $impl!(A1, A2, A3, A4, A5);
        $impl!(A1, A2, A3, A4, A5, A6);
    };
}
pub(crate) use for_each_arity;

mod block;
mod connection;
mod handoff;
mod introspection;
pub mod lesson;
mod lifecycle;
mod manager;
#[cfg(feature = "mpi")]
pub mod mpi;
mod pool;
mod process;
mod queue;
mod shared_memory;
mod start;
mod sync;
mod sys;
mod thread;
mod timeline;
mod wire;

#[cfg(feature = "mpi")]
pub use crate::mpi::{
    MpiAsyncResult, MpiChunked, MpiExecutorMap, MpiExecutorMapOf, MpiFuture, MpiIMap, MpiIMapOf,
    MpiMapResult, MpiPool, MpiPoolExecutor,
};
pub use connection::{
    Address, AuthenticationError, Client, ConnectError, Connection, DEFAULT_MAX_MESSAGE_SIZE,
    HANDSHAKE_TIMEOUT, Listener, MAX_HANDSHAKE_MESSAGE, MAX_HANDSHAKES, Pipe, READ_AHEAD,
    RecvError, SendError, Sentinel, Waitable, wait,
};
pub use introspection::{
    ParentProcess, ProcessInfo, active_children, cpu_count, current_process, parent_process,
    process_cpu_count,
};
pub use manager::{
    ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, JoinableQueueProxy, ListProxy,
    LockProxy, MAX_REQUEST, Manager, ManagerBuilder, ManagerError, NamespaceProxy, Proxied,
    ProxyGuard, QueueProxy, RLockProxy, Registry, SemaphoreProxy, Shared, SharedMemoryManager,
    SharedMemoryManagerError, SharedProxy, ValueProxy,
};
pub use pool::{
    AsCompleted, AsyncResult, Callbacks, Chunked, CodecError, DoneAndNotDone, ExecutorBuilder,
    ExecutorMap, ExecutorMapOf, Future, IMap, IMapOf, MapResult, Pool, PoolBuilder, PoolDispatch,
    PoolError, ProcessPoolExecutor, ReturnWhen, Task, TaskResult, TaskValue, as_completed,
};

/// Python's `concurrent.futures`, for a process pool: the executor, its futures, and the
/// functions over many futures. [`futures::wait`] is Python's `concurrent.futures.wait` (the
/// crate's root [`wait`] is `multiprocessing.connection.wait`).
pub mod futures {
    #[cfg(feature = "mpi")]
    pub use crate::mpi::{MpiExecutorMap, MpiFuture, MpiPoolExecutor};
    pub use crate::pool::{
        AsCompleted, DoneAndNotDone, ExecutorBuilder, ExecutorMap, Future, PoolFuture,
        ProcessPoolExecutor, ReturnWhen, as_completed, wait,
    };
}
/// The pool names the spawn payload's entries and `recreate` by this path.
use process::payload as spawn;
pub use process::{
    ParseStartMethodError, StartMethod, TOKEN_VARIABLE, get_start_method, run_if_spawned_child,
    set_start_method,
};
pub use process::{Process, ProcessError, Target, TargetOutput};
pub use queue::{GetError, JoinableQueue, PutError, Queue, TaskDoneError};
pub use shared_memory::{
    Item, MAX_NAME_LEN, ShareableList, ShareableListError, SharedMemory, SharedMemoryError,
};
pub use start::{InitError, init};
pub use sync::{AcquireError, BrokenBarrierError, ReleaseError};
pub use sync::{Array, ArrayGuard, RawArray, RawValue, Value, ValueGuard};
pub use sync::{
    Barrier, BoundedSemaphore, Event, MAX_PARTIES, MAX_SLOTS, Semaphore, SemaphoreGuard,
};
pub use sync::{Condition, ConditionLock, Lock, LockGuard, RLock, RLockGuard};
pub use thread::{Thread, ThreadError, ThreadQueue, get_native_id};
pub use timeline::{TimelineOutput, record_timeline};
pub use wire::MAX_DEPTH;

#[doc(hidden)]
pub mod __private {
    /// Forged orders to MPI worker ranks: only with the `test-support` and `mpi` features.
    #[cfg(all(feature = "test-support", feature = "mpi"))]
    pub use crate::mpi::{Forgery, send_forged_order};
    /// Fault injection for `shared`'s own tests: only with the `test-support` feature.
    #[cfg(feature = "test-support")]
    pub use crate::process::payload::tamper::{Tamper, tamper_with_next_spawn};
    pub use crate::process::run_if_spawned_child;

    /// The PID of this process's forkserver, if it has started one. Test support only.
    pub fn forkserver_pid() -> Option<u32> {
        crate::process::forkserver::server_pid()
    }

    /// The PID of this process's shared-memory watchdog, if it has started one. Test support
    /// only.
    pub fn shared_memory_watchdog_pid() -> Option<u32> {
        crate::shared_memory::watchdog_pid()
    }
}
