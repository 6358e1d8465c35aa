//! Decoding of the postcard-encoded metadata records (vault header, keyrings, subject keys):
//! the format number is read first, so a record from a newer version is reported as such
//! rather than as damage, nothing may follow the record, and the record must be in its one
//! canonical encoding (postcard also reads overlong varints such as `81 00` for 1; those are
//! refused, so every record has exactly one spelling).

use crate::{Error, Result};
use serde::Serialize;
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

/// Decodes exactly one `T` from `bytes`: trailing bytes and non-canonical encodings (an
/// overlong varint) are damage. The re-encoding made for the check is wiped (records such as
/// keyrings hold key bytes).
pub(crate) fn decode_exact<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T> {
    let value = match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => value,
        _ => return Err(Error::CorruptMetadata { what }),
    };
    let again = zeroize::Zeroizing::new(
        postcard::to_allocvec(&value).map_err(|_| Error::CorruptMetadata { what })?,
    );
    if crate::secret::ct_eq(&again, bytes) {
        Ok(value)
    } else {
        Err(Error::CorruptMetadata { what })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Rec {
        format: u32,
        name: String,
        items: Vec<u64>,
    }

    #[test]
    fn only_the_canonical_encoding_decodes() {
        let rec = Rec {
            format: 1,
            name: "k".into(),
            items: vec![300, 2],
        };
        let good = postcard::to_allocvec(&rec).expect("encode");
        assert_eq!(decode_exact::<Rec>(&good, "rec").expect("decode"), rec);
        // The same record with the format as an overlong varint (81 00 instead of 01).
        let mut overlong = vec![0x81, 0x00];
        overlong.extend_from_slice(&good[1..]);
        assert_eq!(
            postcard::from_bytes::<Rec>(&overlong).expect("postcard reads it"),
            rec
        );
        assert!(matches!(
            decode_exact::<Rec>(&overlong, "rec"),
            Err(Error::CorruptMetadata { what: "rec" })
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode_exact::<Rec>(&trailing, "rec").is_err());
        assert!(decode_exact::<Rec>(&good[..good.len() - 1], "rec").is_err());
    }
}
