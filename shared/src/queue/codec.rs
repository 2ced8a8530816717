//! Items as MessagePack (rmp-serde), encoded straight into the ring and decoded straight out
//! of it: the only copies an item makes are the encode and the decode themselves.

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The number of bytes `item` encodes to (a first pass that copies nothing).
pub(crate) fn encoded_len<T: Serialize>(item: &T) -> Result<u64, String> {
    let mut counter = Counter(0);
    rmp_serde::encode::write(&mut counter, item).map_err(|e| e.to_string())?;
    Ok(counter.0)
}

/// Encodes `item` into exactly `out`.
pub(crate) fn encode_into<T: Serialize>(item: &T, out: &mut [u8]) -> Result<(), String> {
    let expected = out.len();
    let mut writer = &mut *out;
    rmp_serde::encode::write(&mut writer, item).map_err(|error| {
        format!("{error} (it encoded to more than the {expected} bytes it measured)")
    })?;
    if writer.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "it encoded to fewer than the {expected} bytes it measured"
        ))
    }
}

/// Decodes a `T` from `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    crate::wire::decode(bytes)
}

struct Counter(u64);

impl io::Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
