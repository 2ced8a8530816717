//! The forkserver start method, both halves of it: the program's side (start the server on
//! first use, ask it for each child, collect each child's end) and the server itself.
//!
//! # Why a server
//!
//! `fork` in a program that runs threads copies only the calling thread, with every lock the
//! others held at that instant held for ever (see [`StartMethod::Fork`]). Spawn avoids that by
//! starting the program afresh for every child, which costs an `exec` each time. The
//! forkserver pays the `exec` once: on first use the program `exec`s itself as a server, a
//! fresh image with one thread and none of the program's state, and from then on the server
//! `fork`s each child on request. Python 3.14 made it the default on Linux for that reason.
//!
//! # The channels
//!
//! - **Control**: a `SOCK_SEQPACKET` socket pair, one end kept by the program, the other
//!   inherited by the server across its `exec`. It has no name: no file is left behind, and
//!   no other process can connect to it (CPython's server listens on a named socket and checks
//!   an HMAC key instead). When every copy of the program's end is closed, which the kernel
//!   does when the program dies, even by SIGKILL, the server reads the end of the connection
//!   and exits.
//! - **Per child**: another socket pair. The program sends one end with each request; the
//!   server answers on it with the child's PID and a pidfd of it, and, once the child has
//!   ended, with its exit code. The program acknowledges the exit code with one byte, or by
//!   closing its end: only then does the server reap the child. Until that moment the child's
//!   PID cannot be reused, exactly as an unreaped child of our own. The [`Process`] waits on
//!   the pidfd (readable once the child has ended, as for any child), then collects the code;
//!   CPython's waits on the socket itself, and its server reaps at once.
//!
//! # A killed server
//!
//! If the server dies (SIGKILL) while children it forked still run, their reports are lost,
//! but not their ends: the program made itself a *child subreaper* (`PR_SET_CHILD_SUBREAPER`)
//! before it started the server, so the kernel gives the server's orphaned children to the
//! program, not to init. The program still holds a pidfd of each (opened by the server before
//! the child could be reaped), and collects it as its own child with `waitid(P_PIDFD)`: `join`
//! returns and the exit code is reported, as in CPython (`test_forkserver_sigkill`, which
//! accepts 255 there, an exit code it cannot know; here it is the real one). The next start
//! starts a new server.
//!
//! Why a subreaper rather than another channel: only the parent of a process learns how it
//! ended (a signal leaves the child no chance to tell anyone), and once the server is gone the
//! nearest subreaper above it becomes that parent. The price: in a program that has started a
//! forkserver, any descendant orphaned for another reason (a grandchild whose parent died, a
//! daemon that double-forks from a `Command`) is given to the program too, and stays a zombie
//! until the program exits, when init reaps it. A server that ends between reporting a child's
//! end and reaping it leaves that child a zombie of the program, reaped at once if the program
//! notices the server gone when it acknowledges the report.
//!
//! # What a request can make the server do
//!
//! A request carries descriptors only: the per-child socket, the payload, and the handles of
//! the target's arguments. The payload is the spawn start method's, sealed and carrying the
//! server's token (see [`super::payload`]), and the forked child checks it exactly as a spawned
//! child checks its own, plus two things: the number of handles received, and that the
//! payload names as parent the program that started this server. So a forged or corrupted
//! request makes the server fork a child that refuses it (exit code 2, reported like any
//! other), never run code at an address of the sender's choice; and a request without a
//! per-child socket is dropped, which the sender sees as the end of its socket.
//!
//! [`Process`]: crate::Process
//! [`StartMethod::Fork`]: crate::StartMethod::Fork

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::exec::{Exec, exec_self};
use super::payload::{self as spawn, TOKEN_BYTES, TOKEN_VARIABLE};
use super::registry::{self as runtime, ChildIdentity, ChildRecord, CollectExit};
use crate::lifecycle::{self, ExitStep, ForkRank, HeldAcrossFork};
use crate::sys::{self, passing};

/// The argument that marks a forkserver's command line: `PROGRAM MARKER CONTROL_FD PROGRAM_PID`.
pub(crate) const MARKER: &str = "--shared-forkserver";

/// The server's first message on the control socket: it is ready to serve.
const READY: &[u8] = b"shared-forkserver-ready-1";
/// A request: these bytes, then one byte that says whether the child's stderr is silenced.
const REQUEST: &[u8] = b"shared-forkserver-request-1";
/// Per-child messages, each a tag and a 32-bit little-endian number.
const PID_TAG: u8 = b'P';
const EXIT_TAG: u8 = b'X';
const FORK_FAILED_TAG: u8 = b'E';
/// The program's acknowledgement of an exit code: the server may reap the child now.
const COLLECTED: &[u8] = b"C";
/// Longer than any message either side sends, so that a longer one shows as truncated.
const MAX_MESSAGE: usize = 64;

// ---------------------------------------------------------------------------------------------
// The program's side.

/// This process's server, once started.
pub(crate) struct Server {
    process: std::process::Child,
    /// A pidfd of the server, readable once it has ended: its children are ours from then on.
    exited: Arc<OwnedFd>,
    control: OwnedFd,
    token: [u8; TOKEN_BYTES],
}

static SERVER: Mutex<Option<Server>> = Mutex::new(None);

fn server() -> MutexGuard<'static, Option<Server>> {
    // Registered before the lock is first taken (see `lifecycle::at_fork`).
    static HELD_ACROSS_FORK: lifecycle::ForkRegistration = lifecycle::ForkRegistration::new();
    HELD_ACROSS_FORK.ensure(ForkRank::Forkserver, || Box::new(HeldServer(server())));
    SERVER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long a child that has ended may wait for its server's report before it counts as
/// not yet collectable. The server reports as soon as the child's pidfd wakes it, so only a
/// stopped or starved server comes near this.
const REPORT_GRACE: Duration = Duration::from_secs(5);

/// Where a forkserved child's end is reported: the program's end of its per-child socket,
/// kept in the children registry.
pub(crate) struct Reporter {
    socket: OwnedFd,
    /// A pidfd of the child, to tell "not ended" from "ended, report on its way", and to wait
    /// for it ourselves if its server is killed.
    pidfd: OwnedFd,
    /// A pidfd of the server that started the child.
    server_exited: Arc<OwnedFd>,
}

impl CollectExit for Reporter {
    /// The exit code, if the child has ended (waiting the moment it takes its server to
    /// report it); then tells the server that it may reap the child. Like `waitpid` on a
    /// child of our own, this succeeds once the child has ended.
    ///
    /// # Errors
    /// The server ended before it reported (the code is lost), or sent something else.
    fn try_collect(&self) -> io::Result<Option<i32>> {
        let ended = |timeout| sys::fd::wait_readable(self.pidfd.as_fd(), Some(timeout));
        let reported = |timeout| sys::fd::wait_readable(self.socket.as_fd(), Some(timeout));
        // Reported already, or ended and about to be: the server reports at once.
        let ready =
            reported(Duration::ZERO)? || (ended(Duration::ZERO)? && reported(REPORT_GRACE)?);
        if !ready {
            return Ok(None);
        }
        let message = match passing::receive(self.socket.as_fd(), MAX_MESSAGE, false) {
            Ok(Some(message)) => message,
            Ok(None) => return self.try_collect_orphan(),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(error) => return Err(error),
        };
        let code = match parse_report(&message) {
            Some((EXIT_TAG, code)) => code,
            _ => return Err(unexpected(&message.bytes)),
        };
        if passing::send(self.socket.as_fd(), COLLECTED, &[]).is_err() {
            // The server ended after it reported, before it could reap the child: the child
            // is ours now, a zombie, and ours to reap.
            let _ = self.try_collect_orphan();
        }
        Ok(Some(code))
    }

    /// Waits until the child's end is known (reported by the server, or, if the server was
    /// killed, seen by this process), and collects it.
    fn collect(&self) -> io::Result<i32> {
        loop {
            // Readable once the server reports, or once it has ended without reporting.
            sys::fd::wait_readable(self.socket.as_fd(), None)?;
            if let Some(code) = self.try_collect()? {
                return Ok(code);
            }
            // The server is gone and the child runs on: wait for its end.
            sys::fd::wait_readable(self.pidfd.as_fd(), None)?;
        }
    }
}

impl Reporter {
    /// The server ended without reporting (killed, say): the child is now this process's
    /// own, given to it as the subreaper (see [`start_server`]); its exit code, if it has
    /// ended, is collected like any child's.
    fn try_collect_orphan(&self) -> io::Result<Option<i32>> {
        // Its children are given to us only once the server has ended entirely, a moment after
        // its sockets closed.
        if !sys::fd::wait_readable(self.server_exited.as_fd(), Some(REPORT_GRACE))? {
            return Err(server_gone());
        }
        match sys::process::try_reap_pidfd(self.pidfd.as_fd()) {
            Err(error) if error.raw_os_error() == Some(nix::libc::ECHILD) => Err(server_gone()),
            outcome => outcome,
        }
    }
}

fn server_gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the forkserver ended before it reported how the child ended, and the child was not \
         given to this process",
    )
}

fn unexpected(bytes: &[u8]) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the forkserver sent an unexpected message: {bytes:?}"),
    )
}

/// A per-child message: its tag and number, if it has the shape of one and no descriptor
/// beyond what a PID report carries.
fn parse_report(message: &passing::Received) -> Option<(u8, i32)> {
    let [tag, a, b, c, d] = message.bytes[..] else {
        return None;
    };
    let fds_expected = usize::from(tag == PID_TAG);
    (!message.truncated && message.fds.len() == fds_expected)
        .then_some((tag, i32::from_le_bytes([a, b, c, d])))
}

/// Asks this process's forkserver, started first if need be, for a child that runs
/// `outgoing` as `me`; records the child in the registry.
///
/// # Errors
/// The system refused, if the server could not start (the program's
/// `main` lacks [`init`](crate::init), say), or if it refused the request or ended.
/// Returns the child's PID and a pidfd of it, from the server, which opened it before the
/// child could be reaped: it names this child and no later process that reuses its PID.
pub(crate) fn start_child(
    outgoing: spawn::Outgoing,
    me: ChildIdentity,
) -> io::Result<(u32, OwnedFd)> {
    let (ours, theirs) = passing::packet_socket_pair()?;
    let server_exited;
    {
        let mut slot = server();
        let server = ensure_running(&mut slot)?;
        server_exited = Arc::clone(&server.exited);
        let sealed = spawn::seal_payload(outgoing, &me, &server.token)?;
        let mut fds = vec![theirs.as_raw_fd(), sealed.payload.as_raw_fd()];
        fds.extend(sealed.fds);
        let mut request = REQUEST.to_vec();
        request.push(u8::from(sealed.tampered));
        spawn::tamper::forge_request(&mut fds, sealed.payload.as_raw_fd());
        passing::send(server.control.as_fd(), &request, &fds)?;
    }
    // Only the server holds the other end now: if it drops the request, ours reads the end.
    drop(theirs);
    let (pid, pidfd) = read_pid(ours.as_fd())?;
    let reporter = Reporter {
        socket: ours,
        pidfd: sys::fd::duplicate(pidfd.as_fd())?,
        server_exited,
    };
    runtime::children().push(ChildRecord::forkserved(pid, &me, Box::new(reporter)));
    Ok((pid, pidfd))
}

/// Reads the server's answer to a request: the child's PID and a pidfd of it.
fn read_pid(socket: BorrowedFd<'_>) -> io::Result<(u32, OwnedFd)> {
    let Some(mut message) = passing::receive(socket, MAX_MESSAGE, true)? else {
        return Err(io::Error::other("the forkserver refused the request"));
    };
    match parse_report(&message) {
        Some((PID_TAG, pid)) if pid > 0 => {
            let pidfd = message
                .fds
                .pop()
                .expect("a PID report carries one descriptor");
            Ok((pid.unsigned_abs(), pidfd))
        }
        Some((FORK_FAILED_TAG, errno)) => Err(io::Error::from_raw_os_error(errno)),
        _ => Err(unexpected(&message.bytes)),
    }
}

/// The running server in `slot`, started if there is none or the one there has ended.
fn ensure_running(slot: &mut Option<Server>) -> io::Result<&Server> {
    if let Some(server) = slot
        && matches!(server.process.try_wait(), Ok(Some(_)))
    {
        // Someone killed it: its children carry on, ours now (see `Reporter`); start another.
        *slot = None;
    }
    if slot.is_none() {
        register_lifecycle();
        *slot = Some(start_server()?);
    }
    Ok(slot.as_ref().expect("just started"))
}

/// Starts a server: an `exec` of this program's own image, told by its command line to serve
/// on an inherited socket, with a fresh token in its environment. Waits until it is ready.
fn start_server() -> io::Result<Server> {
    let token = sys::random_bytes::<TOKEN_BYTES>()?;
    let (control, theirs) = passing::packet_socket_pair()?;
    // The server refuses a control descriptor among the standard streams.
    let theirs = sys::fd::above_standard_streams(theirs)?;
    let inherited = theirs.as_raw_fd();
    let exec = Exec {
        fallback_name: "forkserver",
        args: vec![
            MARKER.to_owned(),
            inherited.to_string(),
            std::process::id().to_string(),
        ],
        token: (TOKEN_VARIABLE, spawn::hex(&token)),
        // Under `--timeline`, the server also holds the log for the children it forks.
        keep: vec![inherited],
        quiet: false,
    };
    // A child of the server whose server is killed is given to this process, which can then
    // still wait for it and report its exit code (CPython's `test_forkserver_sigkill`).
    sys::process::become_subreaper()?;
    let mut process = exec_self(exec)?;
    drop(theirs);
    // Our own child, not yet reaped: the pidfd names it.
    let exited = match sys::process::exit_notifier(process.id()) {
        Ok(exited) => Arc::new(exited),
        Err(error) => {
            let _ = process.kill();
            let _ = process.wait();
            return Err(error);
        }
    };
    match passing::receive(control.as_fd(), MAX_MESSAGE, true) {
        Ok(Some(message)) if message.bytes == READY && message.fds.is_empty() => Ok(Server {
            process,
            exited,
            control,
            token,
        }),
        outcome => {
            // It will never serve. The end of the socket means it has exited (or is exiting);
            // anything else, make sure it goes.
            if !matches!(outcome, Ok(None)) {
                let _ = process.kill();
            }
            let status = process.wait()?;
            let why = match outcome {
                Err(error) => return Err(error),
                Ok(_) if status.code() == Some(spawn::REFUSED) => {
                    format!("the forkserver refused to start ({status}; its reason is on stderr)")
                }
                // It ran `main` instead of serving: the entry call is missing.
                Ok(_) => format!(
                    "the forkserver ran main instead of serving ({status}): call \
                     shared::init()? first thing in main, the counterpart of Python's \
                     `if __name__ == '__main__':`"
                ),
            };
            Err(io::Error::other(why))
        }
    }
}

/// Stops this process's server, if it has one, and waits for it to exit: called at exit,
/// once every child has been waited for.
fn shut_down() {
    let server = server().take();
    if let Some(Server {
        mut process,
        control,
        ..
    }) = server
    {
        // The end of the connection is what tells the server to go.
        drop(control);
        let _ = process.wait();
    }
}

/// The server's PID, if this process has started one that still runs. Test support only.
pub(crate) fn server_pid() -> Option<u32> {
    server().as_ref().map(|server| server.process.id())
}

/// Registers the server's exit step: it is stopped once every child has been collected. (Its
/// record registers itself in `server`, to be held across a fork: a forked child forgets it.)
fn register_lifecycle() {
    lifecycle::at_exit(ExitStep::Forkserver, |_| shut_down());
}

/// This process's server record, held across a `fork` so that the child finds it unlocked.
struct HeldServer(MutexGuard<'static, Option<Server>>);

impl HeldAcrossFork for HeldServer {
    /// In a child forked by the fork start method: forgets the parent's server. The child
    /// closes its copy of the control socket, so that the server still sees the end of the
    /// connection when the parent ends, and would start a server of its own.
    fn in_child(mut self: Box<Self>) {
        if let Some(server) = self.0.take() {
            // Not ours to wait for or kill: it is the parent's child. Dropping a `Child` does
            // neither; it only closes what it holds.
            drop(server);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server's side.

/// What the server knows of a child it forked.
struct Served {
    pid: u32,
    /// A pidfd of the child (its own child, so it names it until reaped).
    pidfd: OwnedFd,
    /// The server's end of the per-child socket, until the program is done with the child.
    socket: Option<OwnedFd>,
    /// The exit code, once the child has ended (it stays a zombie until reaped).
    exitcode: Option<i32>,
}

/// A server after its start-up checks.
struct Serving {
    control: OwnedFd,
    token: [u8; TOKEN_BYTES],
    program: u32,
    /// A pidfd of the program: each child gets a copy, to watch its parent.
    program_exited: OwnedFd,
    interrupts: sys::process::InterruptDisposition,
    children: Vec<Served>,
}

/// The forkserver's whole life, from the entry call: checks its command line and
/// environment, serves until the program ends, and exits. A forked child never returns from
/// here either: it runs its target and ends.
pub(crate) fn serve(args: &[&[u8]]) -> ! {
    let code = match Serving::start(args) {
        Ok(serving) => serving.run(),
        Err(refusal) => {
            let _ = writeln!(
                io::stderr(),
                "shared: refusing to run as a forkserver: {}. `{MARKER}` is only for the server \
                 that shared's forkserver start method starts",
                refusal.reason()
            );
            spawn::REFUSED
        }
    };
    sys::process::exit_immediately(code)
}

/// A request as the server takes it: the child's socket, the payload and the handles.
struct Request {
    socket: OwnedFd,
    payload: OwnedFd,
    handles: Vec<OwnedFd>,
    /// Silence the child's stderr: a test's deliberate forgery, whose refusal is expected.
    quiet: bool,
}

/// What one message on the control socket turned out to be.
enum Taken {
    Request(Request),
    /// Nothing to serve: no message yet, or one that is not a request (dropped, which closes
    /// what it carried).
    Nothing,
    /// The program closed the socket: it has ended.
    End,
}

impl Serving {
    /// Checks the command line `MARKER CONTROL_FD PROGRAM_PID`, the token and the program,
    /// and tells the program the server is ready.
    fn start(args: &[&[u8]]) -> Result<Serving, spawn::Refusal> {
        use spawn::refuse;
        if sys::process::is_secure_execution() {
            return Err(refuse(
                "this program runs with privileges its user does not have (setuid, setgid or \
                 file capabilities), so its environment, and the token in it, is the user's choice",
            ));
        }
        let token = std::env::var_os(TOKEN_VARIABLE)
            .ok_or_else(|| refuse(format!("no {TOKEN_VARIABLE} in the environment")))?;
        let token = spawn::unhex(&token).ok_or_else(|| {
            refuse(format!(
                "{TOKEN_VARIABLE} is not {TOKEN_BYTES} bytes of hex"
            ))
        })?;
        let &[_, fd, program] = args else {
            return Err(refuse(format!(
                "expected `{MARKER} DESCRIPTOR PID`, got {} arguments",
                args.len()
            )));
        };
        let fd = number_above_2(fd, "control descriptor")? as RawFd;
        let program = number_above_2(program, "program's PID")?;
        let control = sys::fd::adopt_inherited(fd)
            .map_err(|e| refuse(format!("descriptor {fd} is unusable: {e}")))?;
        if sys::fd::kind(control.as_fd()).ok() != Some(sys::fd::Kind::Socket) {
            return Err(refuse(format!("descriptor {fd} is not a socket")));
        }
        // Opened before anything is served, and checked to be the parent after the open: the
        // pidfd names the program, never a later process that reused its PID.
        let program_exited = match sys::process::watch_parent(program) {
            Ok(Some(exited)) => exited,
            Ok(None) => return Err(refuse(format!("process {program} is not its parent"))),
            Err(error) => return Err(refuse(format!("cannot watch process {program}: {error}"))),
        };
        // A Ctrl-C reaches the whole foreground group; the server ends with its program, not
        // before it (CPython's ignores SIGINT too). Each child gets the disposition back.
        let interrupts = sys::process::ignore_interrupts();
        passing::send(control.as_fd(), READY, &[])
            .map_err(|e| refuse(format!("cannot answer its program: {e}")))?;
        Ok(Serving {
            control,
            token,
            program,
            program_exited,
            interrupts,
            children: Vec::new(),
        })
    }

    /// Serves until the program closes the control socket; returns the server's exit code.
    fn run(mut self) -> i32 {
        loop {
            let Ok(ready) = self.wait() else {
                return 1;
            };
            for &(index, event) in &ready.children {
                match event {
                    Event::Ended => self.report_end(index),
                    Event::Released => self.children[index].socket = None,
                }
            }
            self.reap_the_released();
            if !ready.control {
                continue;
            }
            let request = match self.take_request() {
                Taken::Request(request) => request,
                Taken::Nothing => continue,
                Taken::End => return 0,
            };
            // SAFETY: the server has a single thread: it is a fresh `exec` of the program that
            // entered `serve` from the entry call, before the program's own code ran, and it
            // starts no thread. So nothing can be held by another thread in the child, which
            // runs the checks of a spawned child and then the target, as a spawned child does.
            match unsafe { sys::process::fork() } {
                Ok(sys::process::Forked::Child) => self.become_child(request),
                Ok(sys::process::Forked::Parent(pid)) => self.record_child(pid, request.socket),
                Err(error) => report_failure(&request.socket, &error),
            }
            // The request's payload and handles are the child's now; the server's copies close.
        }
    }

    /// Waits until something happens: a request or the end of the control socket, a child's
    /// end, or the program letting go of a child.
    fn wait(&self) -> io::Result<Ready> {
        let mut fds = vec![self.control.as_fd()];
        let mut meaning = Vec::new();
        for (index, child) in self.children.iter().enumerate() {
            if child.exitcode.is_none() {
                fds.push(child.pidfd.as_fd());
                meaning.push((index, Event::Ended));
            }
            if let Some(socket) = &child.socket {
                fds.push(socket.as_fd());
                meaning.push((index, Event::Released));
            }
        }
        let fired = passing::wait_for_any(&fds)?;
        Ok(Ready {
            control: fired[0],
            children: meaning
                .into_iter()
                .zip(&fired[1..])
                .filter(|(_, fired)| **fired)
                .map(|(meaning, _)| meaning)
                .collect(),
        })
    }

    /// Child `index` has ended: reports its exit code, once, and shuts the server's side of
    /// its socket, so that the program's end stays readable from then on.
    fn report_end(&mut self, index: usize) {
        let child = &mut self.children[index];
        let Ok(Some(code)) = sys::process::peek_exit(child.pidfd.as_fd()) else {
            return;
        };
        child.exitcode = Some(code);
        if let Some(socket) = &child.socket {
            // A program that let go of the socket meanwhile has no use for the report.
            let _ = passing::send_now(socket.as_fd(), &report(EXIT_TAG, code), &[]);
            let _ = passing::shut_down_sending(socket.as_fd());
        }
    }

    /// Reaps the children that have ended and that the program is done with: their PIDs may
    /// be given to other processes from now on.
    fn reap_the_released(&mut self) {
        self.children.retain(|child| {
            let done = child.socket.is_none() && child.exitcode.is_some();
            if done {
                let _ = sys::process::reap(child.pid);
            }
            !done
        });
    }

    /// Takes one message from the control socket.
    fn take_request(&mut self) -> Taken {
        let message = match passing::receive(self.control.as_fd(), MAX_MESSAGE, false) {
            Ok(Some(message)) => message,
            Ok(None) => return Taken::End,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Taken::Nothing,
            Err(_) => return Taken::End,
        };
        let quiet = match message.bytes.strip_prefix(REQUEST) {
            Some(&[flag]) if !message.truncated && flag <= 1 => flag == 1,
            _ => return Taken::Nothing,
        };
        let mut fds = message.fds.into_iter();
        let (Some(socket), Some(payload)) = (fds.next(), fds.next()) else {
            return Taken::Nothing;
        };
        if sys::fd::kind(socket.as_fd()).ok() != Some(sys::fd::Kind::Socket) {
            return Taken::Nothing;
        }
        Taken::Request(Request {
            socket,
            payload,
            handles: fds.collect(),
            quiet,
        })
    }

    /// In the server: opens a pidfd of the new child (it cannot have been reaped yet: only
    /// the server reaps it), sends it with the PID, and starts watching the child.
    fn record_child(&mut self, pid: u32, socket: OwnedFd) {
        let pidfd = match sys::process::exit_notifier(pid) {
            Ok(pidfd) => pidfd,
            Err(error) => {
                // Without a pidfd nobody could signal it safely: stop it now.
                let _ = sys::process::send(pid, sys::process::Stop::Kill);
                let _ = sys::process::reap(pid);
                return report_failure(&socket, &error);
            }
        };
        // If the program is gone already, the child runs on and is reaped when it ends.
        let sent = passing::send_now(
            socket.as_fd(),
            &report(PID_TAG, pid as i32),
            &[pidfd.as_raw_fd()],
        );
        self.children.push(Served {
            pid,
            pidfd,
            socket: sent.is_ok().then_some(socket),
            exitcode: None,
        });
    }

    /// In the forked child: lets go of everything of the server's, checks the payload as a
    /// spawned child does, and runs the target. Never returns.
    fn become_child(self, request: Request) -> ! {
        let Serving {
            control,
            token,
            program,
            program_exited,
            interrupts,
            children,
        } = self;
        // The program's requests and the other children are no business of this child.
        drop(control);
        drop(children);
        let Request {
            socket,
            payload,
            handles,
            quiet,
        } = request;
        drop(socket);
        sys::process::restore_interrupts(&interrupts);
        if quiet {
            sys::process::silence_stderr();
        }
        let code = match spawn::accept_forkserved(payload, handles, &token, program, program_exited)
        {
            Ok(child) => child.run(),
            Err(refusal) => {
                let _ = writeln!(
                    io::stderr(),
                    "shared: refusing to run as a forkserved child: {}",
                    refusal.reason()
                );
                spawn::REFUSED
            }
        };
        runtime::finish_child(code)
    }
}

/// A per-child message: `tag` and `number`.
fn report(tag: u8, number: i32) -> Vec<u8> {
    let mut message = vec![tag];
    message.extend_from_slice(&number.to_le_bytes());
    message
}

/// Tells the program that its child could not be made, and why.
fn report_failure(socket: &OwnedFd, error: &io::Error) {
    let errno = passing::errno_of(error);
    let _ = passing::send_now(socket.as_fd(), &report(FORK_FAILED_TAG, errno), &[]);
}

/// Parses a command-line number above 2 that fits a PID or a descriptor.
fn number_above_2(text: &[u8], what: &str) -> Result<u32, spawn::Refusal> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse::<u32>().ok())
        .filter(|&n| n > 2 && n <= i32::MAX as u32)
        .ok_or_else(|| {
            spawn::refuse(format!(
                "the {what} {:?} is not a number above 2",
                OsStr::from_bytes(text)
            ))
        })
}

/// What woke the server up.
struct Ready {
    control: bool,
    children: Vec<(usize, Event)>,
}

#[derive(Clone, Copy)]
enum Event {
    /// The child's pidfd is readable: it has ended.
    Ended,
    /// The program acknowledged the child's exit code, or closed its end of the socket.
    Released,
}
