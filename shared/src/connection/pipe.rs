//! [`Pipe`]: a pair of connected ends over pipe(2)s.

use std::io;

use super::Connection;
use crate::sys;

/// Creates a pair of connected [`Connection`]s. Python: `multiprocessing.Pipe`.
#[derive(Debug)]
pub enum Pipe {}

impl Pipe {
    /// A duplex pipe: both ends send and receive. Python: `Pipe()`.
    ///
    /// It is two pipe(2)s, one per direction (CPython's is a Unix socket pair): each end
    /// reads from one and writes to the other, and sees end of file once every copy of the
    /// other end is closed, as with a socket pair.
    ///
    /// ```
    /// let (ponta_principal, ponta_filho) = shared::Pipe::new()?;
    /// ponta_principal.send(&"olá")?;
    /// assert_eq!(ponta_filho.recv::<String>()?, "olá");
    /// ponta_filho.send(&42)?;
    /// assert_eq!(ponta_principal.recv::<i32>()?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The system refused to create the pipes (too many open files).
    #[allow(
        clippy::new_ret_no_self,
        reason = "Python's Pipe() returns the two ends"
    )]
    pub fn new() -> io::Result<(Connection, Connection)> {
        Pipe::with_duplex(true)
    }

    /// With `duplex = false`, a one-way pipe: the first end only receives, the second only
    /// sends. Python: `Pipe(duplex=False)`.
    ///
    /// ```
    /// let (leitura, escrita) = shared::Pipe::with_duplex(false)?;
    /// escrita.send(&[1, 2, 3])?;
    /// assert_eq!(leitura.recv::<Vec<u8>>()?, [1, 2, 3]);
    /// assert!(leitura.send(&0).is_err()); // wrong direction
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The system refused to create the pipe.
    pub fn with_duplex(duplex: bool) -> io::Result<(Connection, Connection)> {
        let (read, write) = sys::fd::pipe()?;
        if !duplex {
            return Ok((
                Connection::from_pipes(Some(read), None),
                Connection::from_pipes(None, Some(write)),
            ));
        }
        let (back_read, back_write) = sys::fd::pipe()?;
        Ok((
            Connection::from_pipes(Some(read), Some(back_write)),
            Connection::from_pipes(Some(back_read), Some(write)),
        ))
    }
}
