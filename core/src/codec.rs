//! Decoding of the postcard-encoded metadata records (vault header, keyrings, subject keys):
//! the format number is read first, so a record from a newer version is reported as such
//! rather than as damage, and nothing may follow the record.

use crate::{Error, Result};
use serde::de::DeserializeOwned;

/// Checks the leading format number (a postcard varint) against `expected`.
pub(crate) fn check_format(bytes: &[u8], expected: u32, what: &'static str) -> Result<()> {
    let (format, _) =
        postcard::take_from_bytes::<u32>(bytes).map_err(|_| Error::CorruptMetadata { what })?;
    if format != expected {
        return Err(Error::UnsupportedVersion {
            what,
            version: format,
        });
    }
    Ok(())
}

/// Decodes exactly one `T` from `bytes`: trailing bytes are damage.
pub(crate) fn decode_exact<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Ok(value),
        _ => Err(Error::CorruptMetadata { what }),
    }
}
