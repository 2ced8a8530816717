//! What `shared::SharedMemory` and `ShareableList` guarantee across real processes: a child
//! attaches by name and what it writes the parent reads; a program not started by `shared`
//! (Python's `multiprocessing.shared_memory`) attaches to ours and we to its; when every
//! process that used a segment is SIGKILLed, nothing is left under `/dev/shm` and nobody maps
//! it; a segment stays while a process is attached; a `ShareableList` round-trips every
//! supported type and refuses the rest; hostile bytes and files give errors, never a panic.
//!
//! Every child is bounded ([`Child`]), and so is every wait for a watchdog ([`LIMIT`]).

use std::path::Path;
use std::process::Command;

use shared::{
    Item, Queue, ShareableList, ShareableListError, SharedMemory, SharedMemoryError,
    SharedMemoryManager, StartMethod,
};

shared::enable_test_support!();

#[macro_use]
mod common;
use common::{Child, LIMIT, exited_within, pidfd_of, within};

under_every_start_method!(
    a_child_attaches_by_name_and_the_parent_reads_what_it_wrote,
    every_user_killed_leaves_nothing_under_dev_shm_and_no_mapping,
    a_segment_stays_while_a_process_is_attached,
    a_list_round_trips_every_type_between_processes,
    a_child_attaches_to_a_segment_python_made,
    the_watchdog_has_left_the_group_when_create_returns,
);

fn unique_name(what: &str, method: StartMethod) -> String {
    format!("shared-test-{what}-{method:?}-{}", std::process::id()).to_lowercase()
}

fn path_of(name: &str) -> String {
    format!("/dev/shm/{name}")
}

/// Whether any process maps `/dev/shm/NAME` (`/proc/*/maps` names the file, `(deleted)` or not).
fn mapped_by_anyone(name: &str) -> bool {
    let needle = path_of(name);
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("maps")).ok())
        .any(|maps| {
            maps.lines()
                .any(|line| line.ends_with(&needle) || line.contains(&format!("{needle} ")))
        })
}

fn write_greeting(name: String) -> Result<(), SharedMemoryError> {
    let memoria = SharedMemory::attach(&name)?;
    let message = format!("hello from {}", std::process::id());
    memoria.write_at(0, &[message.len() as u8])?;
    memoria.write_at(1, message.as_bytes())?;
    memoria.close();
    Ok(())
}

fn a_child_attaches_by_name_and_the_parent_reads_what_it_wrote(method: StartMethod) {
    let memoria = SharedMemory::create(64).unwrap();
    let mut child = Child::start(method, write_greeting, (memoria.name().to_owned(),));
    child.expect_success();
    let len = usize::from(memoria.read(0..1).unwrap()[0]);
    let message = String::from_utf8(memoria.read(1..1 + len).unwrap()).unwrap();
    assert_eq!(message, format!("hello from {}", child.pid().unwrap()));
    memoria.unlink().unwrap();
    assert!(!Path::new(&path_of(memoria.name())).exists());
}

/// Creates (or attaches to) `name`, reports this process's watchdog, then waits to be killed.
fn use_until_killed(
    name: String,
    create: bool,
    reports: Queue<u32>,
    hold: Queue<()>,
) -> Result<(), Box<dyn std::error::Error>> {
    let memoria = if create {
        SharedMemory::create_named(&name, 4096)?
    } else {
        SharedMemory::attach(&name)?
    };
    memoria.write_at(0, b"in use")?;
    let watchdog = shared::__private::shared_memory_watchdog_pid().ok_or("no watchdog")?;
    reports.put(watchdog)?;
    hold.get()?; // nobody puts: the test kills this process
    Ok(())
}

fn every_user_killed_leaves_nothing_under_dev_shm_and_no_mapping(method: StartMethod) {
    let name = unique_name("killed", method);
    let reports = Queue::new().unwrap();
    let hold = Queue::new().unwrap();
    let mut users = Vec::new();
    let mut watchdogs = Vec::new();
    for create in [true, false, false] {
        let args = (name.clone(), create, reports.clone(), hold.clone());
        users.push(Child::start(method, use_until_killed, args));
        let watchdog = within(LIMIT, {
            let reports = reports.clone();
            move || reports.get().unwrap()
        });
        // Alive until its user ends, so the PID is still the watchdog's.
        watchdogs.push(pidfd_of(watchdog));
    }
    assert!(Path::new(&path_of(&name)).exists());
    assert!(mapped_by_anyone(&name));

    for user in &mut users {
        assert_eq!(user.kill_and_reap(), -9);
    }
    for watchdog in &watchdogs {
        assert!(
            exited_within(watchdog, LIMIT),
            "a watchdog is still running"
        );
    }
    assert!(
        !Path::new(&path_of(&name)).exists(),
        "{name} was left under /dev/shm"
    );
    assert!(!mapped_by_anyone(&name), "a process still maps {name}");
}

fn a_segment_stays_while_a_process_is_attached(method: StartMethod) {
    let name = unique_name("stays", method);
    let reports = Queue::new().unwrap();
    let hold = Queue::new().unwrap();
    let mut creator = Child::start(
        method,
        use_until_killed,
        (name.clone(), true, reports.clone(), hold.clone()),
    );
    let watchdog = pidfd_of(within(LIMIT, move || reports.get().unwrap()));
    let ours = SharedMemory::attach(&name).unwrap();

    assert_eq!(creator.kill_and_reap(), -9);
    // The creator's watchdog now sees us attached: the segment keeps its name and bytes.
    assert_eq!(ours.read(0..6).unwrap(), b"in use");
    let again = SharedMemory::attach(&name).expect("the name must stay while we are attached");
    again.close();

    // Once we close, the watchdog (waiting for us) removes it and ends.
    ours.close();
    assert!(exited_within(&watchdog, LIMIT), "the watchdog did not end");
    assert!(!Path::new(&path_of(&name)).exists());
}

fn every_item() -> Vec<Item> {
    vec![
        Item::Int(-7),
        Item::Int(i64::MAX),
        Item::Float(2.5),
        Item::Bool(true),
        Item::Bool(false),
        Item::None,
        Item::Str("olá, mundo".into()),
        Item::Str(String::new()),
        Item::Bytes(b"\x00\xffab".to_vec()),
        Item::Bytes(Vec::new()),
    ]
}

/// Checks the list the parent made, then writes every type into other slots.
fn check_and_rewrite(name: String) -> Result<(), String> {
    let list = ShareableList::attach(&name).map_err(|e| e.to_string())?;
    if list.to_vec().map_err(|e| e.to_string())? != every_item() {
        return Err("the child read another list".into());
    }
    let rewrite: [(usize, Item); 6] = [
        (0, Item::Float(-0.5)),
        (1, Item::None),
        (2, Item::Str("abcdefgh".into())), // 8 bytes fit the 8-byte slot of a number
        (3, Item::Int(42)),
        (6, Item::Bytes(b"bytes".to_vec())),
        (8, Item::Bool(true)),
    ];
    for (index, item) in rewrite {
        list.set(index, item).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn a_list_round_trips_every_type_between_processes(method: StartMethod) {
    let list = ShareableList::new(every_item()).unwrap();
    assert_eq!(list.to_vec().unwrap(), every_item());
    let mut child = Child::start(method, check_and_rewrite, (list.shm().name().to_owned(),));
    child.expect_success();
    let mut expected = every_item();
    expected[0] = Item::Float(-0.5);
    expected[1] = Item::None;
    expected[2] = Item::Str("abcdefgh".into());
    expected[3] = Item::Int(42);
    expected[6] = Item::Bytes(b"bytes".to_vec());
    expected[8] = Item::Bool(true);
    assert_eq!(list.to_vec().unwrap(), expected);
    list.shm().unlink().unwrap();
}

#[test]
fn a_list_refuses_what_it_cannot_store() {
    let list = ShareableList::new([Item::Int(1), Item::Str("abc".into())]).unwrap();
    assert!(matches!(
        list.set(0, "nine byte"),
        Err(ShareableListError::DoesNotFit {
            index: 0,
            len: 9,
            available: 8
        })
    ));
    assert!(matches!(
        list.set(1, "a\0"),
        Err(ShareableListError::Unsupported { .. })
    ));
    assert!(matches!(
        list.set(2, 1),
        Err(ShareableListError::IndexOutOfRange { index: 2, len: 2 })
    ));
    assert!(matches!(
        Item::try_from(u64::MAX),
        Err(ShareableListError::Unsupported { .. })
    ));
    assert!(matches!(
        ShareableList::new([Item::Bytes(b"x\0".to_vec())]),
        Err(ShareableListError::Unsupported { .. })
    ));
    // Nothing was written by the refused calls.
    assert_eq!(
        list.to_vec().unwrap(),
        [Item::Int(1), Item::Str("abc".into())]
    );
    list.shm().unlink().unwrap();
}

/// A deterministic sequence of pseudo-random numbers (xorshift64).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn hostile_list_bytes_give_errors_never_a_panic() {
    let list = ShareableList::new(every_item()).unwrap();
    let shm = list.shm();
    let size = shm.size();
    let original = shm.read(0..size).unwrap();
    let corrupt_header = |bytes: &[u8], at: usize| {
        shm.write_at(0, &original).unwrap();
        shm.write_at(at, bytes).unwrap();
        ShareableList::attach(shm.name())
    };
    for (bytes, at) in [
        ((-1_i64).to_le_bytes(), 0),
        (i64::MAX.to_le_bytes(), 0),
        (1000_i64.to_le_bytes(), 0),
        (5_i64.to_le_bytes(), 8),         // the first offset is not 0
        (3_i64.to_le_bytes(), 16),        // a slot of 3 bytes
        (i64::MAX.to_le_bytes(), 8 * 11), // the end of the data far past the segment
    ] {
        assert!(
            matches!(
                corrupt_header(&bytes, at),
                Err(ShareableListError::Corrupt { .. })
            ),
            "{bytes:?} at {at} accepted"
        );
    }

    // An item's format, code or bytes changed under an attached list.
    shm.write_at(0, &original).unwrap();
    let formats = size - every_item().len() * 9;
    for (bytes, at) in [
        (&b"99s\0\0\0\0\0"[..], formats + 6 * 8), // longer than its slot
        (b"z\0\0\0\0\0\0\0", formats),            // no such format
        (&[9][..], formats + 80),                 // no such code
    ] {
        shm.write_at(0, &original).unwrap();
        shm.write_at(at, bytes).unwrap();
        assert!(list.to_vec().is_err(), "{bytes:?} at {at} read as a list");
    }
    // A str that is not UTF-8.
    shm.write_at(0, &original).unwrap();
    let data_start = (every_item().len() + 2) * 8;
    shm.write_at(data_start + 6 * 8, &[0xff, 0xfe]).unwrap();
    assert!(matches!(
        list.get(6),
        Err(ShareableListError::Corrupt { .. })
    ));

    // Noise anywhere: every answer is a value or an error.
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        shm.write_at(0, &original).unwrap();
        for _ in 0..1 + noise.next() % 4 {
            let at = (noise.next() % size as u64) as usize;
            let byte = noise.next() as u8;
            shm.write_at(at, &[byte]).unwrap();
        }
        if let Ok(reattached) = ShareableList::attach(shm.name()) {
            let _ = reattached.to_vec();
        }
        let _ = list.to_vec();
    }
    list.shm().unlink().unwrap();
}

#[test]
fn files_that_are_not_segments_are_refused() {
    let base = format!("shared-test-hostile-{}", std::process::id());
    let empty = format!("{base}-empty");
    std::fs::File::create(path_of(&empty)).unwrap();
    assert!(matches!(
        SharedMemory::attach(&empty),
        Err(SharedMemoryError::NotASegment {
            reason: "empty",
            ..
        })
    ));
    std::fs::remove_file(path_of(&empty)).unwrap();

    let fifo = format!("{base}-fifo");
    nix::unistd::mkfifo(path_of(&fifo).as_str(), nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert!(matches!(
        SharedMemory::attach(&fifo),
        Err(SharedMemoryError::NotASegment { .. })
    ));
    std::fs::remove_file(path_of(&fifo)).unwrap();

    let link = format!("{base}-link");
    std::os::unix::fs::symlink("/etc/passwd", path_of(&link)).unwrap();
    assert!(matches!(
        SharedMemory::attach(&link),
        Err(SharedMemoryError::NotASegment { .. })
    ));
    std::fs::remove_file(path_of(&link)).unwrap();

    let directory = format!("{base}-dir");
    std::fs::create_dir(path_of(&directory)).unwrap();
    assert!(SharedMemory::attach(&directory).is_err());
    std::fs::remove_dir(path_of(&directory)).unwrap();

    assert!(matches!(
        SharedMemory::create(0),
        Err(SharedMemoryError::InvalidSize { size: 0 })
    ));
    assert!(matches!(
        SharedMemory::create(usize::MAX),
        Err(SharedMemoryError::InvalidSize { .. })
    ));
    for name in ["", "/", "a/b", &"x".repeat(256), "..", "a\0b"] {
        assert!(
            matches!(
                SharedMemory::attach(name),
                Err(SharedMemoryError::InvalidName { .. })
            ),
            "{name:?}"
        );
    }
}

/// Runs `python3 -c script args...` (bounded), and returns its stdout; fails the test on
/// any error. Python is the "program not started by `shared`" of these tests.
fn python(script: &str, args: &[&str]) -> String {
    let mut command = Command::new("python3");
    command.arg("-c").arg(script).args(args);
    let output = within(LIMIT, move || command.output()).expect("python3 must be installed");
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Python before 3.13 registers a segment it attaches to with its resource tracker, which
/// unlinks it when Python exits (under everyone else): the known workaround is to unregister.
const PYTHON_ATTACH: &str = "
import sys
from multiprocessing import resource_tracker, shared_memory
def attach(name):
    shm = shared_memory.SharedMemory(name=name)
    resource_tracker.unregister(shm._name, 'shared_memory')
    return shm
";

#[test]
fn python_attaches_to_our_segment_and_list() {
    let memoria = SharedMemory::create(32).unwrap();
    memoria.write_at(0, b"from rust").unwrap();
    let script = format!(
        "{PYTHON_ATTACH}
shm = attach(sys.argv[1])
print(shm.size, bytes(shm.buf[:9]).decode())
shm.buf[16:27] = b'from python'
shm.close()"
    );
    let printed = python(&script, &[memoria.name()]);
    assert_eq!(printed, "32 from rust\n");
    assert_eq!(memoria.read(16..27).unwrap(), b"from python");
    memoria.unlink().unwrap();

    let list = ShareableList::new(every_item()).unwrap();
    let script = format!(
        "{PYTHON_ATTACH}
from multiprocessing.shared_memory import ShareableList
sl = ShareableList(name=sys.argv[1])
resource_tracker.unregister(sl.shm._name, 'shared_memory')
print(list(sl))
sl[0] = -123
sl[6] = 'oi'
sl[5] = 1.25
sl.shm.close()"
    );
    let printed = python(&script, &[list.shm().name()]);
    assert_eq!(
        printed,
        "[-7, 9223372036854775807, 2.5, True, False, None, 'olá, mundo', '', b'\\x00\\xffab', b'']\n"
    );
    assert_eq!(list.get(0).unwrap(), Item::Int(-123));
    assert_eq!(list.get(6).unwrap(), Item::Str("oi".into()));
    assert_eq!(list.get(5).unwrap(), Item::Float(1.25));
    list.shm().unlink().unwrap();
}

#[test]
fn we_attach_to_a_list_python_made() {
    let name = format!("shared-test-python-list-{}", std::process::id());
    let script = format!(
        "{PYTHON_ATTACH}
from multiprocessing.shared_memory import ShareableList
sl = ShareableList([7, 1.5, False, None, 'abc', b'xyz'], name=sys.argv[1])
resource_tracker.unregister(sl.shm._name, 'shared_memory')
sl.shm.close()"
    );
    python(&script, &[&name]);
    let list = ShareableList::attach(&name).unwrap();
    assert_eq!(
        list.to_vec().unwrap(),
        [
            Item::Int(7),
            Item::Float(1.5),
            Item::Bool(false),
            Item::None,
            Item::Str("abc".into()),
            Item::Bytes(b"xyz".to_vec()),
        ]
    );
    list.shm().unlink().unwrap();
}

fn add_one_to_each_byte(name: String) -> Result<(), SharedMemoryError> {
    let memoria = SharedMemory::attach(&name)?;
    let mut bytes = vec![0; memoria.size()];
    memoria.read_at(0, &mut bytes)?;
    let added: Vec<u8> = bytes.iter().map(|byte| byte.wrapping_add(1)).collect();
    memoria.write_at(0, &added)
}

fn a_child_attaches_to_a_segment_python_made(method: StartMethod) {
    let name = unique_name("python-made", method);
    let script = format!(
        "{PYTHON_ATTACH}
shm = shared_memory.SharedMemory(name=sys.argv[1], create=True, size=5)
resource_tracker.unregister(shm._name, 'shared_memory')
shm.buf[:5] = b'abcde'
shm.close()"
    );
    python(&script, &[&name]);
    // Attached while the child uses it: a segment nobody is attached to is removed when a
    // process that used it (the child) ends.
    let ours = SharedMemory::attach(&name).unwrap();
    let mut child = Child::start(method, add_one_to_each_byte, (name.clone(),));
    child.expect_success();
    let printed = python(
        &format!(
            "{PYTHON_ATTACH}\nshm = attach(sys.argv[1])\nprint(bytes(shm.buf[:5]).decode())\nshm.unlink()"
        ),
        &[&name],
    );
    assert_eq!(printed, "bcdef\n");
    assert!(!Path::new(&path_of(&name)).exists());
    ours.close();
}

/// The child's half of [`a_shared_memory_manager_unlinks_its_segments_at_shutdown`]: writes
/// into a segment the parent made through the manager.
fn write_into(name: String) -> Result<(), SharedMemoryError> {
    SharedMemory::attach(&name)?.write_at(0, b"filho")
}

#[test]
fn a_shared_memory_manager_unlinks_its_segments_at_shutdown() {
    let smm = SharedMemoryManager::new().expect("start");
    let segment = smm.shared_memory(64).expect("a segment");
    let list = smm
        .shareable_list([Item::Int(1), Item::from("dois")])
        .expect("a list");
    let unlinked_first = smm.shared_memory(8).expect("another segment");
    unlinked_first.unlink().expect("unlink");
    // The segments are ordinary ones: a child attaches to them by name.
    let mut child = Child::start(StartMethod::Spawn, write_into, (segment.name().to_owned(),));
    assert_eq!(child.exit_code_within(LIMIT), 0);
    assert_eq!(segment.read(0..5).unwrap(), b"filho");
    let names = [segment.name().to_owned(), list.shm().name().to_owned()];
    for name in &names {
        assert!(
            Path::new(&path_of(name)).exists(),
            "{name} is there before the shutdown"
        );
    }
    // A segment the program unlinked itself is passed over.
    smm.shutdown().expect("shutdown");
    for name in &names {
        assert!(
            matches!(
                SharedMemory::attach(name),
                Err(SharedMemoryError::NotFound { .. })
            ),
            "{name} was unlinked"
        );
    }
    // The handles still map the memory, as after any unlink.
    assert_eq!(segment.read(0..5).unwrap(), b"filho");
    assert_eq!(list.get(1).unwrap(), Item::from("dois"));

    // Dropping the manager is shutting it down.
    let smm = SharedMemoryManager::new().expect("start");
    let name = smm.shared_memory(16).expect("a segment").name().to_owned();
    drop(smm);
    assert!(
        !Path::new(&path_of(&name)).exists(),
        "{name} was unlinked by the drop"
    );
}

/// Pinned to one CPU, a forked watchdog usually has not run yet when `fork` returns in its
/// parent; it used to leave the program's process group only once it ran, so a lesson that
/// ended just after its first segment could leave a "survivor" in its group (seen by the
/// lessons' test harness under load). Creating a segment now returns only once the new
/// watchdog is in a session and group of its own.
fn watchdog_outside_my_group(reports: Queue<String>) -> Result<(), Box<dyn std::error::Error>> {
    use nix::libc;
    use nix::unistd::{Pid, getpgid, getsid};

    // SAFETY: `cpu_set_t` is plain bits, for which zero is valid; `sched_getaffinity` and
    // `sched_setaffinity` read or write exactly `size_of::<cpu_set_t>()` bytes of `set`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if libc::sched_getaffinity(0, size, &mut set) != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let cpu = (0..libc::CPU_SETSIZE as usize)
            .find(|&cpu| libc::CPU_ISSET(cpu, &set))
            .ok_or("no CPU in this process's affinity")?;
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size, &set) != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
    }
    let memoria = SharedMemory::create(4096)?;
    let watchdog = shared::__private::shared_memory_watchdog_pid().ok_or("no watchdog")?;
    let watchdog = Pid::from_raw(watchdog as i32);
    let verdict = if getsid(Some(watchdog))? == getsid(None)? {
        format!("watchdog {watchdog} still in this process's session")
    } else if getpgid(Some(watchdog))? == getpgid(None)? {
        format!("watchdog {watchdog} still in this process's group")
    } else {
        "outside".to_string()
    };
    memoria.unlink()?;
    reports.put(verdict)?;
    Ok(())
}

fn the_watchdog_has_left_the_group_when_create_returns(method: StartMethod) {
    let reports = Queue::new().unwrap();
    let _child = Child::start(method, watchdog_outside_my_group, (reports.clone(),));
    let verdict = within(LIMIT, move || reports.get().unwrap());
    assert_eq!(verdict, "outside");
}
