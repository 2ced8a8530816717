//! [`ShareableList`]: a fixed-length list of integers, floats, booleans, `None`, short strings
//! and bytes in one [`SharedMemory`] segment, in CPython's own layout, so that Python's
//! `ShareableList(name=...)` reads a list made here and the other way round.
//!
//! # Layout (CPython's `multiprocessing.shared_memory`, little-endian)
//!
//! ```text
//! 0                   n, the number of items (i64)
//! 8                   n + 1 offsets (i64): where each item's slot starts in the data, and the end
//! (n + 2) * 8         the data: one slot per item, 8 bytes, or 8 * (len / 8 + 1) for str/bytes
//! then                n formats of 8 bytes, NUL-padded: "q", "d", "xxxxxxx?" (bool),
//!                     "xxxxxx?x" (None), "<N>s" (str or bytes of at most N bytes)
//! then                n codes (i8): 0 as stored, 1 str, 2 bytes, 3 None
//! ```
//!
//! # Trust
//!
//! Every process attached may write any bytes there. [`ShareableList::attach`] checks the
//! count and the offsets once (each slot inside the segment, in order) and keeps its own
//! copy, as CPython does; each read checks the item's format and code against its slot, so a
//! corrupted list gives [`ShareableListError::Corrupt`], never a panic or an access outside
//! the segment.

use std::fmt;

use super::{SharedMemory, SharedMemoryError};

/// One item of a [`ShareableList`]: what a Python `ShareableList` holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// Python `int`, within 64 bits.
    Int(i64),
    /// Python `float`.
    Float(f64),
    /// Python `bool`.
    Bool(bool),
    /// Python `None`.
    None,
    /// Python `str`, stored as UTF-8.
    Str(String),
    /// Python `bytes`.
    Bytes(Vec<u8>),
}

macro_rules! item_from {
    ($($type:ty => $variant:ident($convert:expr)),* $(,)?) => {
        $(impl From<$type> for Item {
            fn from(value: $type) -> Item {
                Item::$variant($convert(value))
            }
        })*
    };
}

item_from!(
    i64 => Int(|v| v), i32 => Int(i64::from), u32 => Int(i64::from), i16 => Int(i64::from),
    u16 => Int(i64::from), i8 => Int(i64::from), u8 => Int(i64::from),
    f64 => Float(|v| v), f32 => Float(f64::from), bool => Bool(|v| v),
    String => Str(|v| v), &str => Str(str::to_owned),
    Vec<u8> => Bytes(|v| v), &[u8] => Bytes(<[u8]>::to_vec),
);

impl From<()> for Item {
    fn from((): ()) -> Item {
        Item::None
    }
}

impl<T: Into<Item>> From<Option<T>> for Item {
    fn from(value: Option<T>) -> Item {
        value.map_or(Item::None, Into::into)
    }
}

impl TryFrom<u64> for Item {
    type Error = ShareableListError;

    /// An unsigned integer, if it fits in the 64-bit signed slot Python uses ("q").
    fn try_from(value: u64) -> Result<Item, ShareableListError> {
        i64::try_from(value)
            .map(Item::Int)
            .map_err(|_| ShareableListError::Unsupported {
                what: "an integer above i64::MAX (Python's ShareableList stores 'q')",
            })
    }
}

/// What went wrong with a [`ShareableList`].
pub enum ShareableListError {
    /// Creating or attaching its segment failed; the [`SharedMemoryError`] is the
    /// [`source`](std::error::Error::source).
    Memory(SharedMemoryError),
    /// No item at this index. Python: `IndexError`.
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The list's length.
        len: usize,
    },
    /// A string or bytes longer than the slot it would go in. Python: `ValueError:
    /// bytes/str item exceeds available storage`.
    DoesNotFit {
        /// The index.
        index: usize,
        /// The item's length in bytes.
        len: usize,
        /// The slot's length in bytes.
        available: usize,
    },
    /// An item the list cannot store faithfully: a string or bytes ending in a NUL byte
    /// (Python's list strips them on reading), one too long for any slot, or an integer
    /// beyond 64 bits.
    Unsupported {
        /// What, and why.
        what: &'static str,
    },
    /// The segment's bytes are not a list, or not a valid item at this place: another
    /// process wrote them.
    Corrupt {
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for ShareableListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShareableListError::Memory(_) => f.write_str("cannot set up the list's shared memory"),
            ShareableListError::IndexOutOfRange { index, len } => {
                write!(
                    f,
                    "index {index} out of range for a shareable list of {len} items"
                )
            }
            ShareableListError::DoesNotFit {
                index,
                len,
                available,
            } => write!(
                f,
                "an item of {len} bytes does not fit in slot {index}, of {available} bytes"
            ),
            ShareableListError::Unsupported { what } => {
                write!(f, "a shareable list cannot store {what}")
            }
            ShareableListError::Corrupt { reason } => {
                write!(f, "corrupted shareable list: {reason}")
            }
        }
    }
}

impl std::error::Error for ShareableListError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShareableListError::Memory(source) => Some(source),
            _ => None,
        }
    }
}

crate::debug_as_display!(ShareableListError);

impl From<SharedMemoryError> for ShareableListError {
    fn from(error: SharedMemoryError) -> ShareableListError {
        ShareableListError::Memory(error)
    }
}

fn corrupt(reason: impl Into<String>) -> ShareableListError {
    ShareableListError::Corrupt {
        reason: reason.into(),
    }
}

const WORD: usize = 8;
const CODE_AS_STORED: i8 = 0;
const CODE_STR: i8 = 1;
const CODE_BYTES: i8 = 2;
const CODE_NONE: i8 = 3;
const FORMAT_BOOL: &[u8] = b"xxxxxxx?";
const FORMAT_NONE: &[u8] = b"xxxxxx?x";
/// The longest slot whose format, `"<N>s"`, fits in the format's 8 bytes.
const MAX_SLOT: usize = 9_999_999;

/// How an item is stored: its format string and its code.
#[derive(Debug, PartialEq)]
enum Stored {
    Int,
    Float,
    Bool,
    None,
    Str(usize),
    Bytes(usize),
}

impl Stored {
    /// Parses a format and a code as Python writes them; `slot` bounds a string's length.
    fn parse(format: &[u8; WORD], code: i8, slot: usize) -> Result<Stored, String> {
        let end = format
            .iter()
            .rposition(|&byte| byte != 0)
            .map_or(0, |at| at + 1);
        let format = &format[..end];
        let stored = match (format, code) {
            (b"q", CODE_AS_STORED) => Stored::Int,
            (b"d", CODE_AS_STORED) => Stored::Float,
            (FORMAT_BOOL, CODE_AS_STORED) => Stored::Bool,
            (FORMAT_NONE, CODE_NONE) => Stored::None,
            ([digits @ .., b's'], CODE_STR | CODE_BYTES) => {
                let len = std::str::from_utf8(digits)
                    .ok()
                    .filter(|text| !text.starts_with('0') && !text.starts_with('+'))
                    .and_then(|text| text.parse::<usize>().ok())
                    .filter(|&len| len <= slot)
                    .ok_or_else(|| {
                        format!(
                            "string format {:?} for a slot of {slot} bytes",
                            escape(format)
                        )
                    })?;
                if code == CODE_STR {
                    Stored::Str(len)
                } else {
                    Stored::Bytes(len)
                }
            }
            _ => {
                return Err(format!(
                    "unknown format {:?} with code {code}",
                    escape(format)
                ));
            }
        };
        Ok(stored)
    }

    fn format(&self) -> Vec<u8> {
        match self {
            Stored::Int => b"q".to_vec(),
            Stored::Float => b"d".to_vec(),
            Stored::Bool => FORMAT_BOOL.to_vec(),
            Stored::None => FORMAT_NONE.to_vec(),
            Stored::Str(len) | Stored::Bytes(len) => format!("{len}s").into_bytes(),
        }
    }

    fn code(&self) -> i8 {
        match self {
            Stored::Int | Stored::Float | Stored::Bool => CODE_AS_STORED,
            Stored::None => CODE_NONE,
            Stored::Str(_) => CODE_STR,
            Stored::Bytes(_) => CODE_BYTES,
        }
    }
}

fn escape(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What an item needs: its bytes (a string's NUL-padded to `slot`) and how it is stored.
fn encode(item: &Item, slot: usize) -> Result<(Vec<u8>, Stored), ShareableListError> {
    let text = |bytes: &[u8]| {
        if bytes.last() == Some(&0) {
            return Err(ShareableListError::Unsupported {
                what: "a str or bytes ending in a NUL byte (Python strips them when reading)",
            });
        }
        let mut padded = bytes.to_vec();
        padded.resize(slot.max(bytes.len()), 0);
        Ok(padded)
    };
    Ok(match item {
        Item::Int(value) => (value.to_le_bytes().to_vec(), Stored::Int),
        Item::Float(value) => (value.to_le_bytes().to_vec(), Stored::Float),
        Item::Bool(value) => (vec![0, 0, 0, 0, 0, 0, 0, u8::from(*value)], Stored::Bool),
        Item::None => (vec![0; WORD], Stored::None),
        Item::Str(value) => (text(value.as_bytes())?, Stored::Str(slot)),
        Item::Bytes(value) => (text(value)?, Stored::Bytes(slot)),
    })
}

/// The slot an item is given at creation: 8 bytes, or a multiple of 8 with room for a NUL.
fn slot_for(item: &Item) -> usize {
    match item {
        Item::Str(value) => WORD * (value.len() / WORD + 1),
        Item::Bytes(value) => WORD * (value.len() / WORD + 1),
        _ => WORD,
    }
}

fn payload_len(item: &Item) -> usize {
    match item {
        Item::Str(value) => value.len(),
        Item::Bytes(value) => value.len(),
        _ => WORD,
    }
}

/// A fixed-length list of [`Item`]s in shared memory, in CPython's layout. Python:
/// `multiprocessing.shared_memory.ShareableList`.
///
/// Each item keeps the slot it was given at creation: 8 bytes for a number, a bool or
/// `None`; for a string or bytes, its length rounded up to the next multiple of 8 beyond it.
/// A later item must fit in that slot.
///
/// ```
/// use shared::{Item, ShareableList};
///
/// let lista = ShareableList::new([Item::from(7), 2.5.into(), true.into(), ().into(), "olá".into()])?;
/// let outra = ShareableList::attach(lista.shm().name())?;
/// outra.set(0, 8)?;
/// assert_eq!(lista.get(0)?, Item::Int(8));
/// assert_eq!(lista.get(4)?, Item::Str("olá".to_owned()));
/// assert_eq!(lista.len(), 5);
/// assert!(lista.set(4, "longo demais para caber").is_err());
/// lista.shm().unlink()?;
/// # Ok::<(), shared::ShareableListError>(())
/// ```
pub struct ShareableList {
    shm: SharedMemory,
    /// Where each item's slot starts in the data, and the end: checked once, kept here.
    offsets: Vec<usize>,
}

impl ShareableList {
    /// Creates a list holding `items`, in a new segment with a random name. Python:
    /// `ShareableList(sequence)`.
    ///
    /// # Errors
    /// [`ShareableListError::Unsupported`] for a string or bytes ending in NUL or longer than
    /// 9,999,991 bytes; [`ShareableListError::Memory`] when the segment cannot be created.
    pub fn new<I>(items: I) -> Result<ShareableList, ShareableListError>
    where
        I: IntoIterator,
        I::Item: Into<Item>,
    {
        Self::create(None, items.into_iter().map(Into::into).collect())
    }

    /// Creates a list holding `items` in a new segment named `name`. Python:
    /// `ShareableList(sequence, name=name)`.
    ///
    /// # Errors
    /// Those of [`new`](Self::new), and of [`SharedMemory::create_named`].
    pub fn create_named<I>(name: &str, items: I) -> Result<ShareableList, ShareableListError>
    where
        I: IntoIterator,
        I::Item: Into<Item>,
    {
        Self::create(Some(name), items.into_iter().map(Into::into).collect())
    }

    fn create(name: Option<&str>, items: Vec<Item>) -> Result<ShareableList, ShareableListError> {
        let mut offsets = vec![0];
        for item in &items {
            let slot = slot_for(item);
            if slot > MAX_SLOT {
                return Err(ShareableListError::Unsupported {
                    what: "a str or bytes of more than 9,999,991 bytes",
                });
            }
            offsets.push(offsets.last().copied().unwrap_or(0) + slot);
        }
        let count = items.len();
        let data_len = offsets.last().copied().unwrap_or(0);
        let size = (count + 2) * WORD + data_len + count * WORD + count;
        let shm = match name {
            Some(name) => SharedMemory::create_named(name, size)?,
            None => SharedMemory::create(size)?,
        };
        let list = ShareableList { shm, offsets };
        list.write_header()?;
        for (index, item) in items.iter().enumerate() {
            list.store(index, item)?;
        }
        Ok(list)
    }

    fn write_header(&self) -> Result<(), ShareableListError> {
        let count = self.len() as i64;
        self.shm.write_at(0, &count.to_le_bytes())?;
        for (index, offset) in self.offsets.iter().enumerate() {
            self.shm
                .write_at(WORD * (index + 1), &(*offset as i64).to_le_bytes())?;
        }
        Ok(())
    }

    /// Attaches to the list in the segment named `name`, made here or by Python. Python:
    /// `ShareableList(name=name)`.
    ///
    /// # Errors
    /// [`ShareableListError::Memory`] when the segment cannot be attached;
    /// [`ShareableListError::Corrupt`] when its header is not a list's that fits in it.
    pub fn attach(name: &str) -> Result<ShareableList, ShareableListError> {
        let shm = SharedMemory::attach(name)?;
        let offsets = read_offsets(&shm)?;
        Ok(ShareableList { shm, offsets })
    }

    /// The segment under the list. Python: `sl.shm`.
    pub fn shm(&self) -> &SharedMemory {
        &self.shm
    }

    /// The number of items, fixed at creation. Python: `len(sl)`.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether the list has no items at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn data_start(&self) -> usize {
        (self.len() + 2) * WORD
    }

    fn formats_start(&self) -> usize {
        self.data_start() + self.offsets[self.len()]
    }

    fn codes_start(&self) -> usize {
        self.formats_start() + self.len() * WORD
    }

    fn slot(&self, index: usize) -> Result<(usize, usize), ShareableListError> {
        if index >= self.len() {
            return Err(ShareableListError::IndexOutOfRange {
                index,
                len: self.len(),
            });
        }
        let start = self.data_start() + self.offsets[index];
        Ok((start, self.offsets[index + 1] - self.offsets[index]))
    }

    /// The item at `index`. Python: `sl[index]`.
    ///
    /// # Errors
    /// [`ShareableListError::IndexOutOfRange`]; [`ShareableListError::Corrupt`] when the
    /// item's format, code or bytes are not a valid item (another process wrote them).
    pub fn get(&self, index: usize) -> Result<Item, ShareableListError> {
        let (start, slot) = self.slot(index)?;
        let mut format = [0; WORD];
        self.shm
            .read_at(self.formats_start() + index * WORD, &mut format)?;
        let mut code = [0];
        self.shm.read_at(self.codes_start() + index, &mut code)?;
        let stored = Stored::parse(&format, code[0] as i8, slot)
            .map_err(|reason| corrupt(format!("item {index}: {reason}")))?;
        let word = || -> Result<[u8; WORD], ShareableListError> {
            let mut bytes = [0; WORD];
            self.shm.read_at(start, &mut bytes)?;
            Ok(bytes)
        };
        let text = |len: usize| -> Result<Vec<u8>, ShareableListError> {
            let mut bytes = self.shm.read(start..start + len)?;
            let end = bytes
                .iter()
                .rposition(|&byte| byte != 0)
                .map_or(0, |at| at + 1);
            bytes.truncate(end);
            Ok(bytes)
        };
        Ok(match stored {
            Stored::Int => Item::Int(i64::from_le_bytes(word()?)),
            Stored::Float => Item::Float(f64::from_le_bytes(word()?)),
            Stored::Bool => Item::Bool(word()?[7] != 0),
            Stored::None => Item::None,
            Stored::Str(len) => Item::Str(
                String::from_utf8(text(len)?)
                    .map_err(|_| corrupt(format!("item {index}: a str that is not UTF-8")))?,
            ),
            Stored::Bytes(len) => Item::Bytes(text(len)?),
        })
    }

    /// Replaces the item at `index` with `item`, of any supported type, if it fits in the
    /// item's slot. Python: `sl[index] = item`.
    ///
    /// # Errors
    /// [`ShareableListError::IndexOutOfRange`]; [`ShareableListError::DoesNotFit`] for a
    /// string or bytes longer than the slot; [`ShareableListError::Unsupported`] for one
    /// ending in NUL. Nothing is written then.
    pub fn set(&self, index: usize, item: impl Into<Item>) -> Result<(), ShareableListError> {
        let item = item.into();
        let (_, slot) = self.slot(index)?;
        if payload_len(&item) > slot {
            return Err(ShareableListError::DoesNotFit {
                index,
                len: payload_len(&item),
                available: slot,
            });
        }
        self.store(index, &item)
    }

    /// Writes `item` in its slot, format and code first (as CPython does).
    fn store(&self, index: usize, item: &Item) -> Result<(), ShareableListError> {
        let (start, slot) = self.slot(index)?;
        let (bytes, stored) = encode(item, slot)?;
        let mut format = stored.format();
        format.resize(WORD, 0);
        self.shm
            .write_at(self.formats_start() + index * WORD, &format)?;
        self.shm
            .write_at(self.codes_start() + index, &[stored.code() as u8])?;
        self.shm.write_at(start, &bytes)?;
        Ok(())
    }

    /// Every item, in order. Python: `list(sl)`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn to_vec(&self) -> Result<Vec<Item>, ShareableListError> {
        (0..self.len()).map(|index| self.get(index)).collect()
    }

    /// How many items equal `item`. Python: `sl.count(item)`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn count(&self, item: impl Into<Item>) -> Result<usize, ShareableListError> {
        let item = item.into();
        Ok(self.to_vec()?.iter().filter(|&each| *each == item).count())
    }

    /// The index of the first item equal to `item`, if any. Python: `sl.index(item)` (which
    /// raises `ValueError` where this gives `None`).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn index(&self, item: impl Into<Item>) -> Result<Option<usize>, ShareableListError> {
        let item = item.into();
        Ok(self.to_vec()?.iter().position(|each| *each == item))
    }
}

impl fmt::Debug for ShareableList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareableList")
            .field("name", &self.shm.name())
            .field("len", &self.len())
            .finish()
    }
}

/// Reads and checks the count and the offsets of the list in `shm`.
fn read_offsets(shm: &SharedMemory) -> Result<Vec<usize>, ShareableListError> {
    let size = shm.size();
    let read_word = |offset: usize| -> Result<i64, ShareableListError> {
        let mut bytes = [0; WORD];
        shm.read_at(offset, &mut bytes)
            .map_err(|_| corrupt(format!("a segment of {size} bytes ends inside the header")))?;
        Ok(i64::from_le_bytes(bytes))
    };
    let count = read_word(0)?;
    // The header alone takes (count + 2) words, each item at least 8 + 8 + 1 more bytes.
    let count = usize::try_from(count)
        .ok()
        .filter(|&count| count <= size / (3 * WORD + 1))
        .ok_or_else(|| corrupt(format!("{count} items cannot fit in {size} bytes")))?;
    let mut offsets = Vec::with_capacity(count + 1);
    for index in 0..=count {
        let offset = read_word(WORD * (index + 1))?;
        let offset = usize::try_from(offset).map_err(|_| corrupt(format!("offset {offset}")))?;
        let previous = offsets.last().copied();
        let in_order = match previous {
            None => offset == 0,
            Some(previous) => offset >= previous + WORD && (offset - previous) % WORD == 0,
        };
        if !in_order {
            return Err(corrupt(format!(
                "offset {index} is {offset}, after {previous:?}: expected 0 first, then a slot of a multiple of 8 bytes"
            )));
        }
        offsets.push(offset);
    }
    let data_end = offsets[count];
    let needed = ((count + 2) * WORD)
        .checked_add(data_end)
        .and_then(|len| len.checked_add(count * (WORD + 1)));
    if needed.is_none_or(|needed| needed > size) {
        return Err(corrupt(format!(
            "{count} items with {data_end} bytes of data do not fit in {size} bytes"
        )));
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_python_writes_parses_and_nothing_else() {
        let format = |text: &[u8]| {
            let mut bytes = [0; WORD];
            bytes[..text.len()].copy_from_slice(text);
            bytes
        };
        assert_eq!(Stored::parse(&format(b"q"), 0, 8), Ok(Stored::Int));
        assert_eq!(Stored::parse(&format(b"16s"), 1, 16), Ok(Stored::Str(16)));
        assert_eq!(Stored::parse(&format(b"8s"), 2, 16), Ok(Stored::Bytes(8)));
        for (bad, code, slot) in [
            (&b"17s"[..], 1, 16),
            (b"08s", 1, 16),
            (b"s", 1, 16),
            (b"q", 3, 8),
            (b"x", 0, 8),
            (b"-1s", 2, 8),
            (b"\xff\xffs", 1, 8),
        ] {
            assert!(Stored::parse(&format(bad), code, slot).is_err(), "{bad:?}");
        }
    }
}
