//! [`Value`], [`Array`], [`RawValue`] and [`RawArray`]: plain data in shared memory, Python's
//! `multiprocessing.Value`, `Array`, `RawValue` and `RawArray`.
//!
//! # The bound: `bytemuck::Pod`
//!
//! The elements live in the trailing bytes of a [`Block`], which every process holding it
//! maps and may write. So a `T` must be valid whatever bytes another process left there, and
//! must be copyable as bytes: that is exactly bytemuck's [`Pod`] (every bit pattern is a
//! value, no padding, no pointers, `Copy`, `'static`). Integers, floats, arrays of them and
//! `#[repr(C)]` structs of them derive it (`#[derive(Clone, Copy, Pod, Zeroable)]`); `bool`
//! and `char` are not `Pod` (not every byte is a `bool`), so a flag is a `u8` (Python's
//! `Value('b')`/`ctypes.c_bool` are a byte too). A pointer, a `String`, a `Vec` would mean
//! nothing in another process, and `Pod` refuses them. A trait of our own would have said the
//! same thing with an `unsafe impl` for every type; bytemuck's derive checks the struct.
//!
//! # Synchronised: `Value`, `Array`
//!
//! A lock word guards the elements: the one under [`Lock`](crate::Lock), a `u32` holding
//! its owner's thread id, taken and released with one compare-and-swap each, that tells the
//! next acquirer when its holder died (see `lock_word`). It is not re-entrant: the thread
//! that holds it gets an error, not a wait for itself, if it takes it again.
//! [`Value::get_lock`] returns a guard that derefs to the `T`; `value()` and `set_value()`
//! each take the lock on their own, as Python's property does, so `set_value(value()? + 1)`
//! from several processes loses updates exactly as `contador.value += 1` does. A holder killed
//! halfway through a write leaves the bytes it had written: the next acquirer is told
//! ([`AcquireError::OwnerDied`]), within 100 ms if it was already waiting, and whatever the
//! bytes are, they are a `T`.
//!
//! # Unsynchronised: `RawValue`, `RawArray`
//!
//! No lock. Reads and writes from several threads or processes at once race, and Rust calls a
//! race of plain reads and writes undefined behaviour, whatever the hardware does. So every
//! access copies the element with atomic loads and stores, in the widest of 8, 4, 2 or 1 bytes
//! that divides its size (the storage is 64-byte aligned, so those are aligned too). Atomic
//! accesses never race: a `RawValue<u64>` or `<f64>` is read or written whole, and a larger `T`
//! may be read half old and half new (torn), which `Pod` makes a valid value still. That is
//! what Python's `RawValue` gives too (a C struct copied without a lock), minus the undefined
//! behaviour.

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::AcquireError;
use super::guard::{Acquired, Guard, MappedGuard, Site, deadline_after, held, wrap};
use super::lock_word::LockWord;
use crate::block::{Block, BlockState};

/// The state of a [`Value`]'s or an [`Array`]'s block: the lock word.
#[repr(C)]
pub(crate) struct Locked<const ARRAY: bool> {
    word: LockWord,
}

// SAFETY: one `u32` atomic: every bit pattern is a state (`lock_word` handles any), zero is
// a free lock, its alignment is 4.
unsafe impl<const ARRAY: bool> BlockState for Locked<ARRAY> {
    // Not "…--1", glibc's robust mutex: a block of the old layout is refused.
    const KIND: [u8; 8] = if ARRAY { *b"array--2" } else { *b"value--2" };

    unsafe fn init(&self) -> io::Result<()> {
        Ok(())
    }
}

/// The site of the lock word of a [`Value`]'s or an [`Array`]'s block: its releases are
/// recorded in the timeline, as its acquires are.
struct Word;

impl<const ARRAY: bool> Site<Locked<ARRAY>> for Word {
    type Raw = LockWord;
    const RECORDED: Option<u64> = Some(crate::timeline::primitive::LOCK);

    #[inline]
    fn raw<'s>(&self, state: &'s Locked<ARRAY>) -> &'s LockWord {
        &state.word
    }
}

impl<T: Pod, const ARRAY: bool> Cells<T, Locked<ARRAY>> {
    /// Takes the lock word, waiting at most until `deadline` (`None`: no limit); `Ok(None)`
    /// at the deadline.
    #[inline]
    fn lock(&self, deadline: Option<Instant>) -> Acquired<'_, Locked<ARRAY>, Word> {
        // The word would give its owner `Ok(None)` at once when there is a deadline; a
        // value's lock promises its owner an error either way. Race-free: only this thread
        // can make the word its own, or release it.
        if deadline.is_some() && self.block.state().word.held_by_me() {
            return Err(io::Error::from_raw_os_error(nix::libc::EDEADLK).into());
        }
        Guard::lock(&self.block, Word, deadline)
    }
}

/// The state of a [`RawValue`]'s or a [`RawArray`]'s block: nothing but its kind.
#[repr(C)]
pub(crate) struct Unlocked<const ARRAY: bool>;

// SAFETY: no bytes at all.
unsafe impl<const ARRAY: bool> BlockState for Unlocked<ARRAY> {
    const KIND: [u8; 8] = if ARRAY { *b"rawarr-1" } else { *b"rawval-1" };

    unsafe fn init(&self) -> io::Result<()> {
        Ok(())
    }
}

/// `len` elements of `T` in the trailing bytes of a block whose state is `S`.
struct Cells<T, S> {
    block: Arc<Block<S>>,
    len: usize,
    items: PhantomData<T>,
}

impl<T: Pod, S: BlockState> Cells<T, S> {
    /// Compile-time checks of `T`: it has bytes, and the block's 64-byte alignment suits it.
    const FITS: () = assert!(size_of::<T>() > 0 && align_of::<T>() <= 64);

    /// A new block holding `items`.
    fn create(name: &CStr, items: &[T]) -> io::Result<Self> {
        let () = Self::FITS;
        let bytes = size_of_val(items);
        let block = Block::create(name, bytes)?;
        let cells = Cells {
            block: Arc::new(block),
            len: items.len(),
            items: PhantomData,
        };
        // SAFETY: the block is fresh, so no other thread or process can reach its bytes yet;
        // they are `len` aligned `T`s (checked by `as_ptr`), and `items` does not overlap them.
        unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), cells.as_ptr(), items.len()) };
        Ok(cells)
    }

    /// A block another process made: its trailing bytes must be whole `T`s, exactly `one`
    /// if given.
    fn open(block: Block<S>, one: bool) -> io::Result<Self> {
        let () = Self::FITS;
        let bytes = block.trailing().1;
        let len = bytes / size_of::<T>();
        if bytes % size_of::<T>() != 0 || (one && len != 1) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a shared value of {bytes} bytes is not {} {}",
                    if one { "one" } else { "whole" },
                    std::any::type_name::<T>()
                ),
            ));
        }
        Ok(Cells {
            block: Arc::new(block),
            len,
            items: PhantomData,
        })
    }

    /// The first element; `len` of them follow. Access them only as the type's docs say.
    fn as_ptr(&self) -> *mut T {
        let (start, bytes) = self.block.trailing();
        debug_assert!(bytes == self.len * size_of::<T>());
        // The trailing bytes are 64-aligned and `T`'s alignment is at most 64 (`FITS`).
        start.cast::<T>()
    }

    /// Copies element `index` out with atomic loads (see the module's docs).
    fn load(&self, index: usize) -> Option<T> {
        if index >= self.len {
            return None;
        }
        let mut item = T::zeroed();
        // SAFETY: element `index` is in the block (checked above), which lives as long as
        // `self`; `atomic_copy` reads it only with atomic loads.
        unsafe {
            atomic_copy(
                self.as_ptr().add(index).cast::<u8>(),
                bytemuck::bytes_of_mut(&mut item).as_mut_ptr(),
                size_of::<T>(),
                Direction::Load,
            );
        }
        Some(item)
    }

    /// Copies `item` into element `index` with atomic stores; panics when out of range.
    fn store(&self, index: usize, item: T) {
        assert!(
            index < self.len,
            "index {index} out of range for a shared array of {}",
            self.len
        );
        // SAFETY: as in `load`, writing only with atomic stores.
        unsafe {
            atomic_copy(
                self.as_ptr().add(index).cast::<u8>(),
                bytemuck::bytes_of(&item).as_ptr().cast_mut(),
                size_of::<T>(),
                Direction::Store,
            );
        }
    }
}

impl<T, S> Clone for Cells<T, S> {
    fn clone(&self) -> Self {
        Cells {
            block: Arc::clone(&self.block),
            len: self.len,
            items: PhantomData,
        }
    }
}

#[derive(Clone, Copy)]
enum Direction {
    /// From `shared` to `local`.
    Load,
    /// From `local` to `shared`.
    Store,
}

/// Copies `len` bytes between `shared` memory, which other threads and processes access at
/// the same time, and `local` memory, with atomic accesses of the widest of 8, 4, 2 and 1
/// bytes that divides `len`.
///
/// # Safety
/// `shared` is valid for `len` bytes, aligned to that width, and accessed by others only
/// atomically; `local` is valid for `len` bytes (written on a load), and touched by nobody
/// else.
unsafe fn atomic_copy(shared: *mut u8, local: *mut u8, len: usize, direction: Direction) {
    macro_rules! copy {
        ($atomic:ty, $int:ty) => {{
            const WIDTH: usize = size_of::<$int>();
            for offset in (0..len).step_by(WIDTH) {
                // SAFETY: `shared + offset` is in bounds and aligned to WIDTH (the caller's
                // promise, and `offset` is a multiple of WIDTH); others access it atomically.
                let cell = unsafe { <$atomic>::from_ptr(shared.add(offset).cast::<$int>()) };
                // SAFETY: `local + offset` has WIDTH bytes in bounds; unaligned access.
                let word = unsafe { local.add(offset).cast::<$int>() };
                match direction {
                    // SAFETY: as above.
                    Direction::Load => unsafe {
                        word.write_unaligned(cell.load(Ordering::Acquire))
                    },
                    Direction::Store => {
                        // SAFETY: as above.
                        let bits = unsafe { word.read_unaligned() };
                        cell.store(bits, Ordering::Release);
                    }
                }
            }
        }};
    }
    match len {
        _ if len % 8 == 0 => copy!(AtomicU64, u64),
        _ if len % 4 == 0 => copy!(AtomicU32, u32),
        _ if len % 2 == 0 => copy!(AtomicU16, u16),
        _ => copy!(AtomicU8, u8),
    }
}

/// A `T` in shared memory with a lock. Python: `multiprocessing.Value(typecode, x)` (with its
/// default `lock=True`).
///
/// Clone it, or pass it in a [`Process`](crate::Process)'s arguments, to share it with another
/// thread or process (fork or spawn).
///
/// ```
/// use shared::{Process, Value};
///
/// fn somar(contador: Value<i32>) -> Result<(), Box<dyn std::error::Error>> {
///     for _ in 0..1000 {
///         *contador.get_lock()? += 1; // `with contador.get_lock(): contador.value += 1`
///     }
///     Ok(())
/// }
///
/// let contador = Value::new(0_i32)?;
/// let mut processos: Vec<_> = (0..2).map(|_| Process::new(somar, (contador.clone(),))).collect();
/// for processo in &mut processos {
///     processo.start()?;
/// }
/// for processo in &mut processos {
///     processo.join()?;
/// }
/// assert_eq!(contador.value()?, 2000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Value<T> {
    cells: Cells<T, Locked<false>>,
}

/// Proof that this thread holds a [`Value`]'s lock; derefs to the value and releases the lock
/// when dropped. Not `Send`.
///
/// # Panics
/// Dereferencing it panics on a thread that does not hold the lock: a guard that a forked
/// child inherited through a thread-local, which must not reach the value that its parent may
/// be writing. (The same holds for [`ArrayGuard`].)
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let contador = shared::Value::new(0_u8).unwrap();
/// send(contador.get_lock().unwrap()); // not `Send`: the thread that acquired it releases it
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ValueGuard<T>(MappedGuard<'static, Locked<false>, Word, T>);

impl<T: Pod> Value<T> {
    /// A new value `x` in shared memory, with its lock. Python:
    /// `multiprocessing.Value(typecode, x)`.
    ///
    /// # Errors
    /// The system refused the shared memory (`memfd_create`, `mmap`).
    pub fn new(x: T) -> io::Result<Value<T>> {
        Ok(Value {
            cells: Cells::create(c"shared-value", &[x])?,
        })
    }

    /// Acquires the value's lock; the guard derefs to the value. Python:
    /// `with contador.get_lock():`.
    ///
    /// ```
    /// let contador = shared::Value::new(41_u64)?;
    /// {
    ///     let mut valor = contador.get_lock()?;
    ///     *valor += 1;
    ///     assert!(contador.value().is_err(), "the holder cannot take it again");
    /// }
    /// assert_eq!(contador.value()?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`AcquireError::OwnerDied`] when the previous holder died holding it: the guard inside
    /// holds it now, and the value is whatever bytes that holder had written. [`AcquireError::Os`]
    /// if the system refused, or (`EDEADLK`) when this thread already holds it: the lock is
    /// not re-entrant (Python's is an `RLock`).
    // Always inlined, as `Lock::acquire` is: returned through memory, the guard was copied
    // with a load that straddles two stores (`bench`'s `value_2procs`).
    #[inline(always)]
    pub fn get_lock(&self) -> Result<ValueGuard<T>, AcquireError<ValueGuard<T>>> {
        let _acquire = crate::timeline::span(crate::timeline::Kind::Acquire, || (0, 0));
        held(self.lock_until(None))
    }

    /// As [`get_lock`](Self::get_lock), giving up after `timeout` with `Ok(None)`. Python:
    /// `contador.get_lock().acquire(timeout=t)`.
    ///
    /// # Errors
    /// As [`get_lock`](Self::get_lock).
    pub fn get_lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<ValueGuard<T>>, AcquireError<ValueGuard<T>>> {
        self.lock_until(deadline_after(timeout))
    }

    /// Reads the value, taking the lock for the read alone. Python: `contador.value`.
    ///
    /// # Errors
    /// As [`get_lock`](Self::get_lock); [`AcquireError::OwnerDied`] carries the value read.
    pub fn value(&self) -> Result<T, AcquireError<T>> {
        match self.get_lock() {
            Ok(guard) => Ok(*guard),
            Err(AcquireError::OwnerDied(guard)) => Err(AcquireError::OwnerDied(*guard)),
            Err(AcquireError::Os(error)) => Err(AcquireError::Os(error)),
        }
    }

    /// Writes the value, taking the lock for the write alone. Python: `contador.value = x`.
    ///
    /// ```
    /// let contador = shared::Value::new(1.5_f64)?;
    /// contador.set_value(contador.value()? * 2.0)?; // two steps: another process may come between
    /// assert_eq!(contador.value()?, 3.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`get_lock`](Self::get_lock); the value is written also when the previous holder
    /// died ([`AcquireError::OwnerDied`]).
    pub fn set_value(&self, x: T) -> Result<(), AcquireError<()>> {
        match self.get_lock() {
            Ok(mut guard) => {
                *guard = x;
                Ok(())
            }
            Err(AcquireError::OwnerDied(mut guard)) => {
                *guard = x;
                Err(AcquireError::OwnerDied(()))
            }
            Err(AcquireError::Os(error)) => Err(AcquireError::Os(error)),
        }
    }

    #[inline(always)]
    fn lock_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<ValueGuard<T>>, AcquireError<ValueGuard<T>>> {
        let view = |guard: Guard<'static, _, _>| {
            // SAFETY: the one element of the block this guard keeps mapped (`Cells::open`
            // checked there is exactly one), aligned (`Cells::FITS`), and any bytes are a `T`
            // (`Pod`); every access to it, in every process, goes through this lock word.
            ValueGuard(unsafe { guard.map(self.cells.as_ptr()) })
        };
        // Owned: the guard borrows nothing, so that an acquire's error, which carries it, can
        // leave a function with `?` into a `Box<dyn Error>`, which needs `'static`.
        wrap(
            self.cells.lock(deadline),
            |guard| view(guard.into_owned()),
            view,
        )
    }
}

impl<T> Deref for ValueGuard<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for ValueGuard<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// `len` elements of `T` in shared memory with one lock. Python:
/// `multiprocessing.Array(typecode, size_or_initializer)`.
///
/// Indexing and slicing happen through [`get_lock`](Self::get_lock)'s guard, which derefs to
/// `[T]`; [`get`](Self::get), [`set`](Self::set) and [`to_vec`](Self::to_vec) take the lock
/// each, as Python's `arr[i]`, `arr[i] = x` and `arr[:]` do.
///
/// ```
/// let numeros = shared::Array::from_slice(&[1_i32, 2, 3])?;
/// assert_eq!(numeros.len(), 3);
/// {
///     let mut elementos = numeros.get_lock()?;
///     elementos[0] = 10;
///     assert_eq!(&elementos[1..], &[2, 3]);
/// }
/// numeros.set(2, 30)?;
/// assert_eq!(numeros.get(0)?, Some(10));
/// assert_eq!(numeros.get(3)?, None);
/// assert_eq!(numeros.to_vec()?, [10, 2, 30]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Array<T> {
    cells: Cells<T, Locked<true>>,
}

/// Proof that this thread holds an [`Array`]'s lock; derefs to the elements and releases the
/// lock when dropped. Not `Send`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ArrayGuard<T>(MappedGuard<'static, Locked<true>, Word, [T]>);

impl<T: Pod> Array<T> {
    /// `len` zeroed elements. Python: `multiprocessing.Array(typecode, len)`.
    ///
    /// # Errors
    /// The system refused the shared memory, or `len` elements do not fit in memory.
    pub fn new(len: usize) -> io::Result<Array<T>> {
        Array::from_slice(&vec![T::zeroed(); len])
    }

    /// A copy of `items`. Python: `multiprocessing.Array(typecode, items)`.
    ///
    /// # Errors
    /// The system refused the shared memory.
    pub fn from_slice(items: &[T]) -> io::Result<Array<T>> {
        Ok(Array {
            cells: Cells::create(c"shared-array", items)?,
        })
    }

    /// How many elements. Python: `len(arr)`.
    pub fn len(&self) -> usize {
        self.cells.len
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.cells.len == 0
    }

    /// Acquires the array's lock; the guard derefs to the elements. Python:
    /// `with arr.get_lock():`.
    ///
    /// # Errors
    /// As [`Value::get_lock`].
    // Always inlined: see `Value::get_lock`.
    #[inline(always)]
    pub fn get_lock(&self) -> Result<ArrayGuard<T>, AcquireError<ArrayGuard<T>>> {
        let _acquire = crate::timeline::span(crate::timeline::Kind::Acquire, || (0, 0));
        held(self.lock_until(None))
    }

    /// As [`get_lock`](Self::get_lock), giving up after `timeout` with `Ok(None)`.
    ///
    /// # Errors
    /// As [`Value::get_lock`].
    pub fn get_lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<ArrayGuard<T>>, AcquireError<ArrayGuard<T>>> {
        self.lock_until(deadline_after(timeout))
    }

    /// Element `index`, `None` past the end, read under the lock. Python: `arr[index]`
    /// (`IndexError` past the end).
    ///
    /// # Errors
    /// As [`Value::value`].
    pub fn get(&self, index: usize) -> Result<Option<T>, AcquireError<Option<T>>> {
        self.with_lock(|items| items.get(index).copied())
    }

    /// Writes element `index` under the lock. Python: `arr[index] = x`.
    ///
    /// # Panics
    /// When `index` is out of range, as `slice[index] = x` does (Python: `IndexError`).
    ///
    /// # Errors
    /// As [`Value::set_value`].
    pub fn set(&self, index: usize, x: T) -> Result<(), AcquireError<()>> {
        self.with_lock(|items| items[index] = x)
    }

    /// A copy of every element, read under the lock. Python: `arr[:]`.
    ///
    /// # Errors
    /// As [`Value::value`].
    pub fn to_vec(&self) -> Result<Vec<T>, AcquireError<Vec<T>>> {
        self.with_lock(|items| items.to_vec())
    }

    fn with_lock<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> Result<R, AcquireError<R>> {
        match self.get_lock() {
            Ok(mut guard) => Ok(f(&mut guard)),
            Err(AcquireError::OwnerDied(mut guard)) => Err(AcquireError::OwnerDied(f(&mut guard))),
            Err(AcquireError::Os(error)) => Err(AcquireError::Os(error)),
        }
    }

    #[inline(always)]
    fn lock_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<ArrayGuard<T>>, AcquireError<ArrayGuard<T>>> {
        let view = |guard: Guard<'static, _, _>| {
            let items = std::ptr::slice_from_raw_parts_mut(self.cells.as_ptr(), self.cells.len);
            // SAFETY: as for `Value`, over the `len` elements (`Cells::open` checked that the
            // block holds exactly that many).
            ArrayGuard(unsafe { guard.map(items) })
        };
        wrap(
            self.cells.lock(deadline),
            |guard| view(guard.into_owned()),
            view,
        )
    }
}

impl<T> Deref for ArrayGuard<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T> DerefMut for ArrayGuard<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

/// A `T` in shared memory without a lock. Python: `multiprocessing.RawValue(typecode, x)`, or
/// `Value(typecode, x, lock=False)`.
///
/// Each read and write copies the whole `T` with atomic accesses (see the module's docs): a
/// `T` of up to 8 bytes is never torn, a larger one may be read half written. A
/// read-modify-write such as `set_value(value() + 1)` is two steps, and loses updates when
/// another process writes between them.
///
/// ```
/// let bandeira = shared::RawValue::new(0_u8)?;
/// bandeira.set_value(1);
/// assert_eq!(bandeira.value(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RawValue<T> {
    cells: Cells<T, Unlocked<false>>,
}

impl<T: Pod> RawValue<T> {
    /// A new value `x` in shared memory. Python: `multiprocessing.RawValue(typecode, x)`.
    ///
    /// # Errors
    /// The system refused the shared memory (`memfd_create`, `mmap`).
    pub fn new(x: T) -> io::Result<RawValue<T>> {
        Ok(RawValue {
            cells: Cells::create(c"shared-rawvalue", &[x])?,
        })
    }

    /// Reads the value. Python: `raw.value`.
    pub fn value(&self) -> T {
        self.cells.load(0).unwrap_or_else(T::zeroed)
    }

    /// Writes the value. Python: `raw.value = x`.
    pub fn set_value(&self, x: T) {
        self.cells.store(0, x);
    }
}

/// `len` elements of `T` in shared memory without a lock. Python:
/// `multiprocessing.RawArray(typecode, size_or_initializer)`.
///
/// Each element is copied with atomic accesses, as a [`RawValue`] is.
///
/// ```
/// let numeros = shared::RawArray::from_slice(&[1.0_f32, 2.0])?;
/// numeros.set(1, 4.0);
/// assert_eq!(numeros.get(1), Some(4.0));
/// assert_eq!(numeros.to_vec(), [1.0, 4.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RawArray<T> {
    cells: Cells<T, Unlocked<true>>,
}

impl<T: Pod> RawArray<T> {
    /// `len` zeroed elements. Python: `multiprocessing.RawArray(typecode, len)`.
    ///
    /// # Errors
    /// The system refused the shared memory, or `len` elements do not fit in memory.
    pub fn new(len: usize) -> io::Result<RawArray<T>> {
        RawArray::from_slice(&vec![T::zeroed(); len])
    }

    /// A copy of `items`. Python: `multiprocessing.RawArray(typecode, items)`.
    ///
    /// # Errors
    /// The system refused the shared memory.
    pub fn from_slice(items: &[T]) -> io::Result<RawArray<T>> {
        Ok(RawArray {
            cells: Cells::create(c"shared-rawarray", items)?,
        })
    }

    /// How many elements. Python: `len(arr)`.
    pub fn len(&self) -> usize {
        self.cells.len
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.cells.len == 0
    }

    /// Element `index`, `None` past the end. Python: `arr[index]`.
    pub fn get(&self, index: usize) -> Option<T> {
        self.cells.load(index)
    }

    /// Writes element `index`. Python: `arr[index] = x`.
    ///
    /// # Panics
    /// When `index` is out of range, as `slice[index] = x` does (Python: `IndexError`).
    pub fn set(&self, index: usize, x: T) {
        self.cells.store(index, x);
    }

    /// A copy of every element, each read on its own. Python: `arr[:]`.
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.cells.len)
            .filter_map(|i| self.cells.load(i))
            .collect()
    }
}

macro_rules! handle_impls {
    ($type:ident, $state:ty, $one:expr) => {
        impl<T> Clone for $type<T> {
            /// Another handle to the same shared memory.
            fn clone(&self) -> Self {
                $type {
                    cells: self.cells.clone(),
                }
            }
        }

        impl<T> fmt::Debug for $type<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($type))
                    .field("item", &std::any::type_name::<T>())
                    .field("len", &self.cells.len)
                    .finish_non_exhaustive()
            }
        }

        impl<T> Serialize for $type<T> {
            fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
                self.cells.block.serialize(serializer, stringify!($type))
            }
        }

        impl<'de, T: Pod> Deserialize<'de> for $type<T> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let block = Block::<$state>::deserialize(deserializer)?;
                let cells = Cells::open(block, $one).map_err(serde::de::Error::custom)?;
                Ok($type { cells })
            }
        }
    };
}

handle_impls!(Value, Locked<false>, true);
handle_impls!(Array, Locked<true>, false);
handle_impls!(RawValue, Unlocked<false>, true);
handle_impls!(RawArray, Unlocked<true>, false);

impl<T: fmt::Debug> fmt::Debug for ValueGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ValueGuard").field(&**self).finish()
    }
}

impl<T: fmt::Debug> fmt::Debug for ArrayGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArrayGuard").field(&&**self).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopen<T: Pod, const ARRAY: bool>(
        cells: &Cells<T, Unlocked<ARRAY>>,
        one: bool,
    ) -> io::Result<Cells<T, Unlocked<ARRAY>>> {
        let file = cells.block.file().try_clone_to_owned()?;
        Cells::open(Block::open(file)?, one)
    }

    #[test]
    fn open_checks_the_length_in_elements() {
        let three = Cells::<u16, Unlocked<true>>::create(c"test", &[1, 2, 3]).unwrap();
        assert_eq!(reopen(&three, false).unwrap().len, 3);
        let file = three.block.file().try_clone_to_owned().unwrap();
        let as_u32 = Cells::<u32, Unlocked<true>>::open(Block::open(file).unwrap(), false);
        assert!(as_u32.is_err(), "6 bytes are not whole u32s");
        assert!(reopen(&three, true).is_err(), "three are not one");
        let one = Cells::<u16, Unlocked<true>>::create(c"test", &[7]).unwrap();
        assert_eq!(reopen(&one, true).unwrap().load(0), Some(7));
    }

    #[test]
    fn atomic_copies_round_trip_every_width() {
        let values = RawArray::from_slice(&[[1_u8, 2, 3]; 2]).unwrap();
        values.set(1, [4, 5, 6]);
        assert_eq!(values.to_vec(), [[1, 2, 3], [4, 5, 6]]);
        let values = RawArray::from_slice(&[[1_u16, 2, 3]; 2]).unwrap();
        values.set(0, [7, 8, 9]);
        assert_eq!(values.get(0), Some([7, 8, 9]));
        let values = RawArray::from_slice(&[u32::MAX, 5]).unwrap();
        assert_eq!(values.get(0), Some(u32::MAX));
        let values = RawValue::new([u64::MAX, 3, 4]).unwrap();
        values.set_value([1, 2, u64::MAX]);
        assert_eq!(values.value(), [1, 2, u64::MAX]);
    }

    #[test]
    fn a_value_lock_is_not_taken_twice_by_its_holder() {
        let value = Value::new(1_i64).unwrap();
        let guard = value.get_lock().unwrap();
        let again = value.get_lock().expect_err("EDEADLK");
        assert!(
            matches!(&again, AcquireError::Os(error) if error.raw_os_error() == Some(nix::libc::EDEADLK))
        );
        drop(again);
        let again = value
            .get_lock_timeout(Duration::from_secs(60))
            .expect_err("EDEADLK, at once, with a deadline too");
        assert!(
            matches!(&again, AcquireError::Os(error) if error.raw_os_error() == Some(nix::libc::EDEADLK))
        );
        drop(again);
        drop(guard);
        assert_eq!(value.value().unwrap(), 1);
    }
}
