//! The read-ahead buffer of a [`Connection`](super::Connection): one `read` takes whatever
//! the pipe or socket holds, up to [`READ_AHEAD`] bytes, and messages are cut from it.

use std::cell::RefMut;
use std::fs::File;
use std::io::{self, Read};

use super::{READ_AHEAD, RecvError};

/// Bytes read but not yet handed out: `buffer[start..end]`.
#[derive(Default)]
pub(super) struct Incoming {
    /// Empty until the first read, then [`READ_AHEAD`] bytes long.
    buffer: Vec<u8>,
    start: usize,
    end: usize,
}

impl Incoming {
    /// The bytes waiting, oldest first.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.buffer[self.start..self.end]
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Hands out the first `n` waiting bytes.
    pub(super) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
        if self.start == self.end {
            // Nothing waits: the next read can use the whole buffer.
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads from `reader` until at least `wanted` bytes (at most [`READ_AHEAD`]) wait, or
    /// end of file; each read takes as much as there is room for. Returns how many wait.
    pub(super) fn fill(&mut self, reader: &File, wanted: usize) -> Result<usize, RecvError> {
        debug_assert!(wanted <= READ_AHEAD);
        if self.buffer.is_empty() {
            self.buffer = vec![0; READ_AHEAD];
        }
        if self.start + wanted > self.buffer.len() {
            // Move what waits to the front, to make room for the rest of the message.
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < wanted {
            match read(reader, &mut self.buffer[self.end..])? {
                0 => break,
                n => self.end += n,
            }
        }
        Ok(self.end - self.start)
    }

    /// Puts back bytes an end had read ahead before it crossed to this process (at most
    /// [`READ_AHEAD`], checked by the caller).
    pub(super) fn restore(&mut self, bytes: &[u8]) {
        debug_assert!(self.is_empty() && bytes.len() <= READ_AHEAD);
        if bytes.is_empty() {
            return;
        }
        self.buffer = vec![0; READ_AHEAD];
        self.buffer[..bytes.len()].copy_from_slice(bytes);
        self.start = 0;
        self.end = bytes.len();
    }

    /// Moves waiting bytes into the start of `message`, as many as fit; returns how many.
    pub(super) fn take_into(&mut self, message: &mut [u8]) -> usize {
        let n = message.len().min(self.end - self.start);
        message[..n].copy_from_slice(&self.bytes()[..n]);
        self.consume(n);
        n
    }
}

/// A message cut from the read-ahead buffer, or read into its own allocation when it is
/// larger than the buffer.
pub(super) enum Frame<'a> {
    Buffered(Message<'a>),
    Owned(Vec<u8>),
}

/// A message at the front of the read-ahead buffer; consumed when dropped, whether or not it
/// decoded.
pub(super) struct Message<'a> {
    pub(super) incoming: RefMut<'a, Incoming>,
    pub(super) len: usize,
}

impl Message<'_> {
    pub(super) fn bytes(&self) -> &[u8] {
        &self.incoming.bytes()[..self.len]
    }
}

impl Drop for Message<'_> {
    fn drop(&mut self) {
        self.incoming.consume(self.len);
    }
}

/// Reads until `buf` is full or end of file; returns the bytes read.
pub(super) fn read_full(reader: &File, buf: &mut [u8]) -> Result<usize, RecvError> {
    let mut filled = 0;
    while filled < buf.len() {
        match read(reader, &mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// One `read`, retried when a signal interrupts it. 0 is end of file; so is a reset
/// connection (a socket closed with data unread by its owner), whose data up to that point
/// has been read.
fn read(mut reader: &File, buf: &mut [u8]) -> Result<usize, RecvError> {
    loop {
        match reader.read(buf) {
            Ok(n) => return Ok(n),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset => return Ok(0),
            Err(error) => return Err(RecvError::Os(error)),
        }
    }
}
