//! The event log: one sealed memfd that every process of a run maps, holding fixed-size
//! records appended with an atomic index.
//!
//! # Layout
//!
//! A header page, then [`CAPACITY`] records of [`RECORD_WORDS`] 64-bit words. Every access to
//! the mapping, by every process, is an atomic load or store of one word, so processes that
//! write records at the same time never race in the sense of the memory model.
//!
//! | header word | holds |
//! |---|---|
//! | 0 | [`MAGIC`] |
//! | 1 | [`VERSION`] |
//! | 2 | the capacity in records |
//! | 3 | the origin: `CLOCK_MONOTONIC` ns when the run's main process enabled the timeline |
//! | 4 | the next free record (a writer takes one with `fetch_add`) |
//! | 5 | how many records did not fit |
//! | 6 | the last time handed out by [`Log::now`] (ns on `CLOCK_MONOTONIC`) |
//!
//! | record word | holds |
//! |---|---|
//! | 0 | the commit word: [`COMMIT_TAG`] in the high half, the kind and the text length below; written last, with `Release` |
//! | 1 | the writer's PID in the low half, its thread's TID (`gettid`) in the high half |
//! | 2, 3, 4 | begin, end and mark times (ns) |
//! | 5, 6 | the object and the argument (what they mean depends on the kind) |
//! | 7.. | the text, UTF-8, at most [`TEXT_BYTES`] bytes |
//!
//! # Surviving a kill, and distrust
//!
//! A record is in shared memory as soon as its commit word is stored, so a process killed
//! mid-run leaves every record it committed; one killed while writing leaves a record
//! without its commit word, which the reader skips and counts. The memfd is sealed against
//! shrinking, so no process can make a mapping of it fault (SIGBUS). Everything read back is
//! checked ([`Log::read`]): a header or record that no writer of this module produces is an
//! error, never a panic.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sys;
use crate::sys::shm::{Mapping, Seal};

/// The first header word: `shtimel\0`, little-endian.
const MAGIC: u64 = u64::from_le_bytes(*b"shtimel\0");
/// The layout's version (2: a record's word 1 holds the TID too; header word 6).
const VERSION: u64 = 2;
/// Words in one record.
pub(super) const RECORD_WORDS: usize = 32;
/// Words before the text in a record.
const FIXED_WORDS: usize = 7;
/// The longest text a record holds; longer texts are cut at a character boundary.
pub(super) const TEXT_BYTES: usize = (RECORD_WORDS - FIXED_WORDS) * 8;
/// Records in a log: 16,384 × 256 bytes = 4 MiB of address space, whose pages cost memory
/// only once written.
pub(super) const CAPACITY: u64 = 1 << 14;
/// The header's size in bytes: one page, so records start page-aligned.
const HEADER_BYTES: usize = 4096;
/// The whole file's size.
const FILE_BYTES: usize = HEADER_BYTES + CAPACITY as usize * RECORD_WORDS * 8;
/// The high half of a committed record's first word.
const COMMIT_TAG: u64 = 0x7e1e_11e5;
/// The bit of the commit word that says the text was cut.
const CUT_BIT: u64 = 1 << 15;

const HEADER_MAGIC: usize = 0;
const HEADER_VERSION: usize = 1;
const HEADER_CAPACITY: usize = 2;
const HEADER_ORIGIN: usize = 3;
const HEADER_NEXT: usize = 4;
const HEADER_LOST: usize = 5;
const HEADER_LAST: usize = 6;

/// One event as stored: what [`Log::append`] writes and [`Log::read`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Record {
    /// The event's kind, checked to be one this build knows (see `Kind::from_code`).
    pub(super) kind: u16,
    pub(super) pid: u32,
    /// The writer's thread (`gettid`); the PID for the main thread.
    pub(super) tid: u32,
    pub(super) begin: u64,
    pub(super) end: u64,
    pub(super) mark: u64,
    pub(super) object: u64,
    pub(super) arg: u64,
    pub(super) text: String,
    /// Whether `text` was cut to fit.
    pub(super) cut: bool,
}

/// What [`Log::read`] found.
#[derive(Debug)]
pub(super) struct Contents {
    pub(super) origin: u64,
    pub(super) records: Vec<Record>,
    /// Records that did not fit in the log.
    pub(super) lost: u64,
    /// Records whose writer did not finish them (killed while writing).
    pub(super) unfinished: u64,
}

/// Why a log cannot be read: it was not made by this module, or another process wrote over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Corrupt(pub(super) String);

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the timeline's shared memory is corrupt: {}", self.0)
    }
}

fn corrupt(what: impl Into<String>) -> Corrupt {
    Corrupt(what.into())
}

/// Where [`Log::append`] put a record: only the process that appended it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slot(usize);

/// A mapped event log.
pub(super) struct Log {
    file: OwnedFd,
    map: Mapping,
}

impl Log {
    /// A new, empty log whose times count from `origin` (ns on `CLOCK_MONOTONIC`).
    ///
    /// # Errors
    /// The system refused the memory or the seals.
    pub(super) fn create(origin: u64) -> io::Result<Log> {
        let file = sys::shm::create(c"shared-timeline", FILE_BYTES as u64)?;
        sys::shm::seal(&file, &[Seal::Shrink, Seal::Grow, Seal::Sealing])?;
        let log = Log::map(file)?;
        let header = log.words();
        header[HEADER_VERSION].store(VERSION, Ordering::Relaxed);
        header[HEADER_CAPACITY].store(CAPACITY, Ordering::Relaxed);
        header[HEADER_ORIGIN].store(origin, Ordering::Relaxed);
        header[HEADER_MAGIC].store(MAGIC, Ordering::Release);
        Ok(log)
    }

    /// The log behind an inherited descriptor, checked: a memfd sealed against shrinking and
    /// growing, of this module's size, with this module's header.
    ///
    /// # Errors
    /// `InvalidData` for anything else; what the system refused.
    pub(super) fn attach(file: OwnedFd) -> io::Result<Log> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        if !sys::shm::is_sealed(&file, &[Seal::Shrink, Seal::Grow, Seal::Sealing]) {
            return Err(invalid("the timeline descriptor is not a sealed memfd"));
        }
        if sys::shm::file_len(&file)? != FILE_BYTES as u64 {
            return Err(invalid("the timeline memfd has the wrong size"));
        }
        let log = Log::map(file)?;
        let header = log.words();
        let fields = [
            header[HEADER_MAGIC].load(Ordering::Acquire),
            header[HEADER_VERSION].load(Ordering::Relaxed),
            header[HEADER_CAPACITY].load(Ordering::Relaxed),
        ];
        if fields != [MAGIC, VERSION, CAPACITY] {
            return Err(invalid("the timeline memfd has another header"));
        }
        Ok(log)
    }

    fn map(file: OwnedFd) -> io::Result<Log> {
        let map = Mapping::new(&file, 0, FILE_BYTES)?;
        Ok(Log { file, map })
    }

    /// The descriptor, to pass to a spawned child or a forkserver.
    pub(super) fn file(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// The whole mapping as words.
    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is `FILE_BYTES` long (a multiple of 8), page-aligned, readable
        // and writable, and lives as long as `self`; the file cannot shrink under it (sealed,
        // checked in `attach`). `AtomicU64` has the size and alignment of `u64` and no
        // invalid bit patterns, so any bytes another process wrote are a valid value. Every
        // access by any process goes through these atomics, so concurrent writers are not a
        // data race.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast::<AtomicU64>(), FILE_BYTES / 8) }
    }

    /// The time now, in ns on `CLOCK_MONOTONIC`, and later than every time this log handed
    /// out before, to any process of the run: the clock alone may give two events the same
    /// nanosecond, and a trace viewer can only nest or order slices whose times differ
    /// (see `chrome.rs`). One compare-and-swap on a shared word, paid only when recording.
    pub(super) fn now(&self) -> u64 {
        let last = &self.words()[HEADER_LAST];
        let clock = sys::monotonic_ns();
        let mut seen = last.load(Ordering::Relaxed);
        loop {
            let time = clock.max(seen.saturating_add(1));
            match last.compare_exchange_weak(seen, time, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return time,
                Err(newer) => seen = newer,
            }
        }
    }

    /// The origin of the run's times.
    pub(super) fn origin(&self) -> u64 {
        self.words()[HEADER_ORIGIN].load(Ordering::Relaxed)
    }

    /// The words of record `index` (below [`CAPACITY`]).
    fn record(&self, index: usize) -> &[AtomicU64] {
        let start = HEADER_BYTES / 8 + index * RECORD_WORDS;
        &self.words()[start..start + RECORD_WORDS]
    }

    /// Appends `record` and returns its slot, for [`amend`](Self::amend); counts it as lost
    /// (`None`) if the log is full. Never blocks: a writer takes its slot with one
    /// `fetch_add`.
    pub(super) fn append(&self, record: &Record) -> Option<Slot> {
        let header = self.words();
        let index = header[HEADER_NEXT].fetch_add(1, Ordering::Relaxed);
        if index >= CAPACITY {
            header[HEADER_LOST].fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let words = self.record(index as usize);
        let (text, cut) = cut_to_fit(&record.text);
        let fixed = [
            u64::from(record.tid) << 32 | u64::from(record.pid),
            record.begin,
            record.end,
            record.mark,
            record.object,
            record.arg,
        ];
        for (word, value) in words[1..FIXED_WORDS].iter().zip(fixed) {
            word.store(value, Ordering::Relaxed);
        }
        for (word, chunk) in words[FIXED_WORDS..].iter().zip(text.as_bytes().chunks(8)) {
            let mut bytes = [0; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        let cut = if cut || record.cut { CUT_BIT } else { 0 };
        let commit = COMMIT_TAG << 32 | u64::from(record.kind) << 16 | cut | text.len() as u64;
        words[0].store(commit, Ordering::Release);
        Some(Slot(index as usize))
    }

    /// Changes the end time, the object and the argument of the record this process
    /// appended in `slot`: for a call recorded before it ended (see `Span::item_recorded`).
    /// Each word is stored whole, so a reader sees the first version of a field or the
    /// amended one, both valid; a writer killed in between leaves the first.
    pub(super) fn amend(&self, slot: Slot, end: u64, object: u64, arg: u64) {
        let words = self.record(slot.0);
        words[3].store(end, Ordering::Release);
        words[5].store(object, Ordering::Release);
        words[6].store(arg, Ordering::Release);
    }

    /// Every committed record, in the order their slots were taken, checked. A record
    /// whose writer did not finish it is skipped and counted.
    ///
    /// # Errors
    /// [`Corrupt`] when the header or a committed record holds what no writer writes: a
    /// changed magic, version, capacity or origin, a text longer than a record holds, or a
    /// kind that `known_kind` refuses.
    pub(super) fn read(&self, known_kind: impl Fn(u16) -> bool) -> Result<Contents, Corrupt> {
        let header = self.words();
        let fields = [
            header[HEADER_MAGIC].load(Ordering::Acquire),
            header[HEADER_VERSION].load(Ordering::Relaxed),
            header[HEADER_CAPACITY].load(Ordering::Relaxed),
        ];
        if fields != [MAGIC, VERSION, CAPACITY] {
            return Err(corrupt("its header was overwritten"));
        }
        let next = header[HEADER_NEXT].load(Ordering::Relaxed);
        let taken = next.min(CAPACITY) as usize;
        let lost = header[HEADER_LOST].load(Ordering::Relaxed);
        let mut contents = Contents {
            origin: self.origin(),
            records: Vec::with_capacity(taken),
            lost,
            unfinished: 0,
        };
        for index in 0..taken {
            match read_record(self.record(index), &known_kind)? {
                Some(record) => contents.records.push(record),
                None => contents.unfinished += 1,
            }
        }
        Ok(contents)
    }
}

/// Record `words`, checked; `None` if its commit word was never stored.
fn read_record(
    words: &[AtomicU64],
    known_kind: &impl Fn(u16) -> bool,
) -> Result<Option<Record>, Corrupt> {
    let commit = words[0].load(Ordering::Acquire);
    if commit == 0 {
        return Ok(None);
    }
    if commit >> 32 != COMMIT_TAG {
        return Err(corrupt(format!("a record starts with {commit:#x}")));
    }
    let kind = (commit >> 16) as u16;
    if !known_kind(kind) {
        return Err(corrupt(format!("a record has the unknown kind {kind}")));
    }
    let len = (commit & (CUT_BIT - 1)) as usize;
    if len > TEXT_BYTES {
        return Err(corrupt(format!("a record's text is {len} bytes long")));
    }
    let fixed: Vec<u64> = words[1..FIXED_WORDS]
        .iter()
        .map(|word| word.load(Ordering::Relaxed))
        .collect();
    // Two halves of one word: any value is a PID and a TID, checked by the model.
    let (pid, tid) = (fixed[0] as u32, (fixed[0] >> 32) as u32);
    let mut text = Vec::with_capacity(len);
    for word in &words[FIXED_WORDS..] {
        text.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
    }
    text.truncate(len);
    Ok(Some(Record {
        kind,
        pid,
        tid,
        begin: fixed[1],
        end: fixed[2],
        mark: fixed[3],
        object: fixed[4],
        arg: fixed[5],
        // A writer stores whole characters; anything else came from outside, and is shown
        // with replacement characters rather than refused.
        text: String::from_utf8_lossy(&text).into_owned(),
        cut: commit & CUT_BIT != 0,
    }))
}

/// `text`, cut at a character boundary to at most [`TEXT_BYTES`] bytes, and whether it was.
fn cut_to_fit(text: &str) -> (&str, bool) {
    if text.len() <= TEXT_BYTES {
        return (text, false);
    }
    let mut end = TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u16, text: &str) -> Record {
        Record {
            kind,
            pid: 42,
            tid: 43,
            begin: 10,
            end: 20,
            mark: 15,
            object: 7,
            arg: u64::MAX,
            text: text.to_owned(),
            cut: false,
        }
    }

    #[test]
    fn records_round_trip_in_order() {
        let log = Log::create(5).unwrap();
        log.append(&record(1, "Processo 1 iniciado"));
        log.append(&record(2, ""));
        let contents = log.read(|_| true).unwrap();
        assert_eq!(contents.origin, 5);
        assert_eq!(
            contents.records,
            [record(1, "Processo 1 iniciado"), record(2, "")]
        );
        assert_eq!((contents.lost, contents.unfinished), (0, 0));
    }

    #[test]
    fn an_amended_record_keeps_its_place_and_changes_its_end() {
        let log = Log::create(0).unwrap();
        let slot = log.append(&record(1, "put")).unwrap();
        log.append(&record(2, "later"));
        log.amend(slot, 99, 8, 0);
        let contents = log.read(|_| true).unwrap();
        let amended = Record {
            end: 99,
            object: 8,
            arg: 0,
            ..record(1, "put")
        };
        assert_eq!(contents.records, [amended, record(2, "later")]);
    }

    #[test]
    fn the_pid_and_the_tid_share_a_word_and_round_trip() {
        let log = Log::create(0).unwrap();
        let far = Record {
            pid: u32::MAX,
            tid: u32::MAX - 1,
            ..record(1, "")
        };
        log.append(&far);
        assert_eq!(log.read(|_| true).unwrap().records, [far]);
    }

    #[test]
    fn times_handed_out_always_increase() {
        let log = Log::create(0).unwrap();
        let mut last = 0;
        for _ in 0..1000 {
            let now = log.now();
            assert!(now > last, "{now} after {last}");
            last = now;
        }
        // A clock behind the last time handed out (another process read it later) still
        // gives a later time.
        log.words()[HEADER_LAST].store(u64::MAX - 5, Ordering::Relaxed);
        assert_eq!(log.now(), u64::MAX - 4);
    }

    #[test]
    fn a_long_text_is_cut_at_a_character_boundary() {
        let log = Log::create(0).unwrap();
        let long = "ç".repeat(TEXT_BYTES); // two bytes each
        log.append(&record(1, &long));
        let read = &log.read(|_| true).unwrap().records[0];
        assert!(read.cut);
        assert_eq!(read.text, "ç".repeat(TEXT_BYTES / 2));
    }

    #[test]
    fn a_full_log_counts_what_it_loses() {
        let log = Log::create(0).unwrap();
        log.words()[HEADER_NEXT].store(CAPACITY, Ordering::Relaxed);
        log.append(&record(1, "x"));
        assert_eq!(log.read(|_| true).unwrap().lost, 1);
    }

    #[test]
    fn an_unfinished_record_is_skipped_and_counted() {
        let log = Log::create(0).unwrap();
        log.append(&record(1, "a"));
        // A writer killed after taking its slot: the commit word was never stored.
        log.words()[HEADER_NEXT].fetch_add(1, Ordering::Relaxed);
        log.append(&record(1, "b"));
        let contents = log.read(|_| true).unwrap();
        assert_eq!(contents.unfinished, 1);
        assert_eq!(contents.records.len(), 2);
    }

    #[test]
    fn corruption_is_an_error_not_a_panic() {
        let log = Log::create(0).unwrap();
        log.append(&record(1, "a"));
        assert!(log.read(|kind| kind != 1).is_err(), "an unknown kind");
        let first = log.record(0);
        let commit = first[0].load(Ordering::Relaxed);
        first[0].store(commit | 0xfff, Ordering::Relaxed);
        assert!(log.read(|_| true).is_err(), "a text longer than a record");
        first[0].store(1, Ordering::Relaxed);
        assert!(log.read(|_| true).is_err(), "a commit word without the tag");
        first[0].store(commit, Ordering::Relaxed);
        log.words()[HEADER_NEXT].store(u64::MAX, Ordering::Relaxed);
        assert_eq!(
            log.read(|_| true).unwrap().records.len(),
            1,
            "next is clamped"
        );
        log.words()[HEADER_MAGIC].store(0, Ordering::Relaxed);
        assert!(log.read(|_| true).is_err(), "a header overwritten");
    }

    #[test]
    fn attach_checks_the_file() {
        let log = Log::create(3).unwrap();
        let again = Log::attach(sys::fd::duplicate(log.file()).unwrap()).unwrap();
        again.append(&record(1, "x"));
        assert_eq!(log.read(|_| true).unwrap().records.len(), 1);
        let other = sys::shm::create(c"not-a-timeline", FILE_BYTES as u64).unwrap();
        assert!(Log::attach(other).is_err(), "unsealed");
        let wrong = sys::shm::create(c"not-a-timeline", 4096).unwrap();
        sys::shm::seal(&wrong, &[Seal::Shrink, Seal::Grow, Seal::Sealing]).unwrap();
        assert!(Log::attach(wrong).is_err(), "wrong size");
        let blank = sys::shm::create(c"not-a-timeline", FILE_BYTES as u64).unwrap();
        sys::shm::seal(&blank, &[Seal::Shrink, Seal::Grow, Seal::Sealing]).unwrap();
        assert!(Log::attach(blank).is_err(), "no header");
    }
}
