//! A program that calls `shared::init()` obeys `--shared-spawned-child FD` only when it comes
//! from its parent. Each test runs a real lesson binary with a forged command line (and, where
//! it matters, a forged environment token or payload descriptor) and checks that it refuses:
//! exit code 2, a message on stderr, and nothing of the lesson on stdout, never a signal.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};

use lesson_tests::{Lesson, TIMEOUT};
use nix::fcntl::{FcntlArg, OFlag, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

static LESSON: Lesson = Lesson::new("lesson01-processes", "lesson01-processes");

const MARKER: &str = "--shared-spawned-child";
const TOKEN: &str = "00112233445566778899aabbccddeeff";

/// Runs the lesson with `args`, the token variable if given, and `stdin`.
fn run(args: &[&str], token: Option<&str>, stdin: Stdio) -> Output {
    let mut command = Command::new(LESSON.path());
    command
        .args(args)
        .stdin(stdin)
        .env_remove(shared::TOKEN_VARIABLE);
    if let Some(token) = token {
        command.env(shared::TOKEN_VARIABLE, token);
    }
    assert_cmd::Command::from_std(command)
        .timeout(TIMEOUT)
        .output()
        .expect("run the lesson")
}

/// Checks that the run was refused the way every forgery must be, mentioning `reason`.
fn assert_refused(output: &Output, reason: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "status {:?}; stderr:\n{stderr}",
        output.status
    );
    assert!(
        output.stdout.is_empty(),
        "the lesson ran: {:?}",
        output.stdout
    );
    assert!(
        stderr.contains("refusing to run as a spawned child") && stderr.contains(reason),
        "stderr should say why ({reason}):\n{stderr}"
    );
}

/// A descriptor the lesson inherits (not close-on-exec), holding `bytes`; sealed if asked.
fn inheritable_memfd(bytes: &[u8], sealed: bool) -> OwnedFd {
    let fd = memfd_create(c"forged-payload", MFdFlags::MFD_ALLOW_SEALING).expect("memfd");
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes).expect("write");
    let fd = OwnedFd::from(file);
    if sealed {
        let seals = SealFlag::F_SEAL_WRITE
            | SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_SEAL;
        fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).expect("seal");
    }
    fd
}

/// What an old payload looked like: MessagePack with an entry offset. Any bytes would do.
fn crafted_file() -> std::fs::File {
    let path = std::env::temp_dir().join(format!("forged-{}", std::process::id()));
    std::fs::write(
        &path,
        [0x86, 0xa5, b'e', b'n', b't', b'r', b'y', 0xcd, 0x12, 0x34],
    )
    .unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    file
}

#[test]
fn a_crafted_file_on_standard_input_without_a_token_is_refused() {
    let output = run(&[MARKER, "0"], None, Stdio::from(crafted_file()));
    assert_refused(&output, shared::TOKEN_VARIABLE);
}

#[test]
fn a_standard_stream_as_the_payload_is_refused() {
    for fd in ["0", "1", "2", "-1", "x", ""] {
        let output = run(&[MARKER, fd], Some(TOKEN), Stdio::from(crafted_file()));
        assert_refused(&output, "not a number above 2");
    }
}

#[test]
fn a_wrong_command_line_shape_is_refused() {
    assert_refused(
        &run(&[MARKER], Some(TOKEN), Stdio::null()),
        "got 1 arguments",
    );
    assert_refused(
        &run(&[MARKER, "3", "extra"], Some(TOKEN), Stdio::null()),
        "got 3 arguments",
    );
}

#[test]
fn a_token_that_is_not_hex_is_refused() {
    assert_refused(&run(&[MARKER, "3"], Some("short"), Stdio::null()), "hex");
}

#[test]
fn a_regular_file_or_an_unsealed_memfd_as_the_payload_is_refused() {
    let path = std::env::temp_dir().join(format!("forged-regular-{}", std::process::id()));
    std::fs::write(&path, b"shspawn\0").unwrap();
    let file = nix::fcntl::open(&path, OFlag::O_RDONLY, nix::sys::stat::Mode::empty()).unwrap();
    let _ = std::fs::remove_file(&path);
    let fd = file.as_raw_fd().to_string();
    assert_refused(
        &run(&[MARKER, &fd], Some(TOKEN), Stdio::null()),
        "not a sealed payload",
    );

    let unsealed = inheritable_memfd(b"shspawn\0\x01\0\0\0", false);
    let fd = unsealed.as_raw_fd().to_string();
    assert_refused(
        &run(&[MARKER, &fd], Some(TOKEN), Stdio::null()),
        "not a sealed payload",
    );
}

#[test]
fn a_sealed_payload_with_the_wrong_magic_version_or_token_is_refused() {
    let mut token = [0_u8; 16];
    for (byte, pair) in token.iter_mut().zip(TOKEN.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap();
    }
    let payload = |magic: &[u8], version: u32, token: &[u8]| {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(token);
        bytes.push(0xc0); // a body: nil
        inheritable_memfd(&bytes, true)
    };
    // The payload format `shared` reads now (`VERSION` in shared/src/spawn.rs); 1 was the
    // format before the parent's name was sent.
    let current = 2;
    let cases = [
        (payload(b"garbage!", current, &token), "magic"),
        (payload(b"shspawn\0", 99, &token), "version 99"),
        (payload(b"shspawn\0", 1, &token), "version 1"),
        (payload(b"shspawn\0", current, &[7; 16]), "token other than"),
        (payload(b"shspawn\0", current, &token), "unreadable body"),
    ];
    for (fd, reason) in cases {
        let number = fd.as_raw_fd().to_string();
        assert_refused(&run(&[MARKER, &number], Some(TOKEN), Stdio::null()), reason);
    }
}

#[test]
fn without_the_marker_the_lesson_runs_as_usual() {
    let output = run(&[], Some(TOKEN), Stdio::null());
    assert!(output.status.success(), "{output:?}");
    assert!(!output.stdout.is_empty());
}

/// A setuid program's environment is chosen by a user with fewer privileges than the program:
/// the token variable is then no proof. Needs root, to make a setuid-root copy of the lesson
/// and run it as `nobody`; CI runs as root. Elsewhere it says so and checks nothing.
#[test]
fn a_setuid_program_refuses_to_be_a_spawned_child_whatever_its_environment() {
    if !nix::unistd::geteuid().is_root() || !std::path::Path::new("/usr/bin/setpriv").exists() {
        eprintln!("skipped: needs root and setpriv to make and run a setuid copy of the lesson");
        return;
    }
    let dir = std::env::temp_dir().join(format!("setuid-lesson-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("lesson01-processes");
    // Copied by `cp`, not by this process: a process forked meanwhile by another test thread
    // would inherit our descriptor of the copy open for writing, and exec would then fail
    // with "text file busy".
    let copied = Command::new("cp").arg(LESSON.path()).arg(&copy).status();
    assert!(copied.is_ok_and(|status| status.success()), "cp the lesson");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let mut command = Command::new("/usr/bin/setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&copy)
        .args([MARKER, "3"])
        .env(shared::TOKEN_VARIABLE, TOKEN);
    let output = assert_cmd::Command::from_std(command)
        .timeout(TIMEOUT)
        .output()
        .expect("run the setuid copy");
    let _ = std::fs::remove_dir_all(&dir);
    assert_refused(&output, "privileges");
}
