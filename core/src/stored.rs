//! The framing of envelopes the vault stores for itself — records and vaulted token values:
//! `format (1 byte, 1) ‖ envelope` (docs/FORMAT.md §6). The one place that writes and reads it.

use crate::{Error, Result};

/// The format byte of a stored record or vaulted token value.
pub const STORED_FORMAT: u8 = 1;

/// Frames an envelope for storage.
pub(crate) fn frame(envelope: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + envelope.len());
    out.push(STORED_FORMAT);
    out.extend_from_slice(envelope);
    out
}

/// The envelope inside a stored value. A value of another format is
/// [`Error::UnsupportedVersion`] naming `what`; an empty one fails authentication.
pub(crate) fn envelope_of<'a>(value: &'a [u8], what: &'static str) -> Result<&'a [u8]> {
    match value.split_first() {
        Some((&STORED_FORMAT, env)) => Ok(env),
        Some((&v, _)) => Err(Error::UnsupportedVersion {
            what,
            version: u32::from(v),
        }),
        None => Err(Error::AuthenticationFailed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trips_and_names_an_unknown_format() {
        let framed = frame(b"env");
        assert_eq!(framed, b"\x01env");
        assert_eq!(envelope_of(&framed, "record").expect("framed"), b"env");
        assert!(matches!(
            envelope_of(b"\x02env", "record"),
            Err(Error::UnsupportedVersion {
                what: "record",
                version: 2
            })
        ));
        assert!(matches!(
            envelope_of(b"", "record"),
            Err(Error::AuthenticationFailed)
        ));
    }
}
