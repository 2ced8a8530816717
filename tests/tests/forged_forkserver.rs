//! A program that calls `shared::init()` obeys `--shared-forkserver FD PID` only with a token in
//! its environment, a socket at `FD` and its parent's PID; and a server, once serving, runs
//! nothing a request names. The first tests forge the command line; the last one *is* the
//! program, as an attacker holding the control socket would be: it starts a real lesson binary
//! as its server, with a token it knows, and sends it forged requests.

use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use lesson_tests::{Lesson, TIMEOUT};
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};

static LESSON: Lesson = Lesson::new("lesson01-processes", "lesson01-processes");

const MARKER: &str = "--shared-forkserver";
const TOKEN: &str = "00112233445566778899aabbccddeeff";
/// The server's messages and the request's prefix, as `shared/src/forkserver.rs` writes them.
const READY: &[u8] = b"shared-forkserver-ready-1";
const REQUEST: &[u8] = b"shared-forkserver-request-1";

/// Runs the lesson with `args` and the token variable if given, keeping `inherit` open in it.
fn run(args: &[&str], token: Option<&str>, inherit: Option<RawFd>) -> Output {
    let mut command = lesson_command(args, token, inherit);
    command.stdin(Stdio::null());
    assert_cmd::Command::from_std(command)
        .timeout(TIMEOUT)
        .output()
        .expect("run the lesson")
}

fn lesson_command(args: &[&str], token: Option<&str>, inherit: Option<RawFd>) -> Command {
    let mut command = Command::new(LESSON.path());
    command.args(args).env_remove(shared::TOKEN_VARIABLE);
    if let Some(token) = token {
        command.env(shared::TOKEN_VARIABLE, token);
    }
    if let Some(fd) = inherit {
        // SAFETY: the hook runs between `fork` and `exec` and only calls `fcntl` (which is
        // async-signal-safe) on a descriptor the test keeps open until the command has run.
        unsafe {
            command.pre_exec(move || {
                if nix::libc::fcntl(fd, nix::libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    command
}

/// Checks that the run was refused: exit code 2, nothing of the lesson, and why on stderr.
fn assert_refused(output: &Output, reason: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{:?}: {stderr}",
        output.status
    );
    assert!(output.stdout.is_empty(), "the lesson ran: {output:?}");
    assert!(
        stderr.contains("refusing to run as a forkserver") && stderr.contains(reason),
        "stderr should say why ({reason}):\n{stderr}"
    );
}

fn packet_pair() -> (OwnedFd, OwnedFd) {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .expect("socketpair")
}

fn me() -> String {
    std::process::id().to_string()
}

#[test]
fn a_command_line_without_the_token_is_refused() {
    let (_ours, theirs) = packet_pair();
    let fd = theirs.as_raw_fd().to_string();
    let output = run(&[MARKER, &fd, &me()], None, Some(theirs.as_raw_fd()));
    assert_refused(&output, shared::TOKEN_VARIABLE);
}

#[test]
fn a_wrong_shape_or_number_is_refused() {
    assert_refused(&run(&[MARKER, "3"], Some(TOKEN), None), "got 2 arguments");
    for fd in ["0", "2", "-1", "x", ""] {
        let output = run(&[MARKER, fd, &me()], Some(TOKEN), None);
        assert_refused(&output, "not a number above 2");
    }
    assert_refused(
        &run(&[MARKER, "3", "1"], Some(TOKEN), None),
        "not a number above 2",
    );
}

#[test]
fn a_descriptor_that_is_not_a_socket_is_refused() {
    let memfd = memfd_create(c"not-a-socket", MFdFlags::empty()).expect("memfd");
    let fd = memfd.as_raw_fd().to_string();
    let output = run(&[MARKER, &fd, &me()], Some(TOKEN), Some(memfd.as_raw_fd()));
    assert_refused(&output, "is not a socket");
    let output = run(&[MARKER, "200", &me()], Some(TOKEN), None);
    assert_refused(&output, "unusable");
}

#[test]
fn a_program_that_is_not_the_parent_is_refused() {
    let (_ours, theirs) = packet_pair();
    let fd = theirs.as_raw_fd().to_string();
    // A process that exists, and is not the lesson's parent: this process is.
    let mut other = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("start sleep");
    let pid = other.id().to_string();
    let output = run(&[MARKER, &fd, &pid], Some(TOKEN), Some(theirs.as_raw_fd()));
    let _ = other.kill();
    let _ = other.wait();
    assert_refused(&output, "is not its parent");
}

// ---------------------------------------------------------------------------------------------
// Forged requests to a real server.

fn send(socket: BorrowedFd<'_>, bytes: &[u8], fds: &[RawFd]) {
    let rights = [ControlMessage::ScmRights(fds)];
    let control: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(bytes)],
        control,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .expect("sendmsg");
}

/// One message, waiting at most `limit`; `None` on the end of the connection.
fn receive(socket: BorrowedFd<'_>, limit: Duration) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut poll_fds = [PollFd::new(socket, PollFlags::POLLIN)];
    let millis = u16::try_from(limit.as_millis()).unwrap_or(u16::MAX);
    let ready = poll(&mut poll_fds, PollTimeout::from(millis)).expect("poll");
    assert!(ready > 0, "no message within {limit:?}");
    let mut bytes = [0; 64];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [IoSliceMut::new(&mut bytes)];
    let message = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .expect("recvmsg");
    let mut fds = Vec::new();
    for cmsg in message.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: the kernel has just installed these descriptors for this message.
            fds.extend(
                received
                    .into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let len = message.bytes;
    (len > 0).then(|| (bytes[..len].to_vec(), fds))
}

/// A sealed payload with the spawn format's preamble and a body that is not one.
fn payload(token: &[u8]) -> OwnedFd {
    let mut bytes = b"shspawn\0".to_vec();
    bytes.extend_from_slice(&2_u32.to_le_bytes());
    bytes.extend_from_slice(token);
    bytes.push(0xc0); // a body: nil
    let fd = memfd_create(c"forged-payload", MFdFlags::MFD_ALLOW_SEALING).expect("memfd");
    let mut file = std::fs::File::from(fd);
    file.write_all(&bytes).expect("write");
    let fd = OwnedFd::from(file);
    let seals = SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_SEAL;
    fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).expect("seal");
    fd
}

fn token_bytes() -> Vec<u8> {
    TOKEN
        .as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// Sends a request for a child that checks `payload`; returns the exit code the server reports.
fn request_child(control: BorrowedFd<'_>, payload: &OwnedFd) -> i32 {
    let (ours, theirs) = packet_pair();
    let mut request = REQUEST.to_vec();
    request.push(1); // silence the child's stderr: its refusal is expected
    send(
        control,
        &request,
        &[theirs.as_raw_fd(), payload.as_raw_fd()],
    );
    drop(theirs);
    let (pid, fds) = receive(ours.as_fd(), TIMEOUT).expect("the server answers with a PID");
    assert_eq!((pid.len(), pid[0], fds.len()), (5, b'P', 1), "{pid:?}");
    let (exit, fds) = receive(ours.as_fd(), TIMEOUT).expect("and then with an exit code");
    assert_eq!((exit.len(), exit[0], fds.len()), (5, b'X', 0), "{exit:?}");
    send(ours.as_fd(), b"C", &[]);
    i32::from_le_bytes(exit[1..5].try_into().unwrap())
}

/// A request whose per-child socket is not one, or missing, is dropped: the sender's end reads
/// the end of the connection, and nothing is forked.
fn assert_dropped(control: BorrowedFd<'_>, bytes: &[u8], fds: &[RawFd], pair: (OwnedFd, OwnedFd)) {
    let (ours, theirs) = pair;
    send(control, bytes, fds);
    drop(theirs);
    assert!(
        receive(ours.as_fd(), TIMEOUT).is_none(),
        "a dropped request gets no answer"
    );
}

#[test]
fn a_serving_server_runs_nothing_a_forged_request_names_and_ends_with_its_program() {
    let (control_socket, theirs) = packet_pair();
    let fd = theirs.as_raw_fd().to_string();
    let server = lesson_command(&[MARKER, &fd, &me()], Some(TOKEN), Some(theirs.as_raw_fd()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the lesson as a forkserver");
    drop(theirs);
    let control = control_socket.as_fd();
    let (ready, _) = receive(control, TIMEOUT).expect("the server says it is ready");
    assert_eq!(ready, READY);

    // Not requests at all: dropped, with what they carry.
    let pair = packet_pair();
    let theirs = pair.1.as_raw_fd();
    assert_dropped(control, b"hello", &[theirs], pair);
    let pair = packet_pair();
    let theirs = pair.1.as_raw_fd();
    let mut request = REQUEST.to_vec();
    request.push(7);
    assert_dropped(control, &request, &[theirs], pair);
    // A request whose first descriptor is not a socket, and one with a socket but no payload.
    let pair = packet_pair();
    let theirs = pair.1.as_raw_fd();
    let forged = payload(&token_bytes());
    request.pop();
    request.push(1);
    assert_dropped(control, &request, &[forged.as_raw_fd(), theirs], pair);
    let pair = packet_pair();
    let theirs = pair.1.as_raw_fd();
    assert_dropped(control, &request, &[theirs], pair);

    // Well-formed requests whose payload is forged: the child refuses it, exit code 2.
    assert_eq!(
        request_child(control, &payload(&[7; 16])),
        2,
        "another token"
    );
    assert_eq!(
        request_child(control, &payload(&token_bytes())),
        2,
        "the server's token, with a body that is not a payload's"
    );
    let unsealed = memfd_create(c"unsealed", MFdFlags::empty()).expect("memfd");
    assert_eq!(request_child(control, &unsealed), 2, "an unsealed payload");

    // The lesson never ran, in the server or in a child; closing the socket ends the server.
    drop(control_socket);
    let output = server.wait_with_output().expect("the server ends");
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
}
