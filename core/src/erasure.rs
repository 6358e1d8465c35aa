//! Erasure records: the ledger `forget_subject` writes, one entry per destroyed subject key.
//!
//! The one home of their format (docs/FORMAT.md §6): key `time_unix u64 BE ‖ subject key id
//! (32 bytes)`, value `postcard(ErasureRecord)`. Written by `forget_subject`, read back by
//! `Vault::erasures`, re-applied by a restore, checked by `verify`.

use crate::envelope::SUBJECT_ID_LEN;
use crate::store::{Space, WriteOp};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Length of an erasure record's key: the time, then the subject key id.
pub(crate) const KEY_LEN: usize = 8 + SUBJECT_ID_LEN;

/// A record of one erasure (`forget_subject`): when, and the keyed hash of the subject id —
/// never the id itself.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErasureRecord {
    /// Seconds since the Unix epoch.
    pub time_unix: u64,
    /// Keyed hash (hex) of the subject id; the vault owner can recompute it to prove an
    /// erasure, nobody else can link it to a person.
    pub subject_key_id: String,
}

impl ErasureRecord {
    /// The record of destroying subject key `id` at `time_unix`.
    pub(crate) fn new(time_unix: u64, id: &[u8; SUBJECT_ID_LEN]) -> Self {
        ErasureRecord {
            time_unix,
            subject_key_id: hex::encode(id),
        }
    }

    /// The subject key id this record names, checked to be 32 bytes of hex.
    pub fn subject_id(&self) -> Result<[u8; SUBJECT_ID_LEN]> {
        let mut id = [0u8; SUBJECT_ID_LEN];
        hex::decode_to_slice(&self.subject_key_id, &mut id).map_err(|_| {
            Error::invalid(
                "erasure record",
                "subject key id is not 64 hexadecimal digits",
            )
        })?;
        Ok(id)
    }

    /// The write that stores this record.
    pub(crate) fn write_op(&self) -> Result<WriteOp> {
        let mut key = self.time_unix.to_be_bytes().to_vec();
        key.extend_from_slice(&self.subject_id()?);
        Ok(WriteOp::Put {
            space: Space::Erasure,
            key,
            value: postcard::to_allocvec(self).map_err(|_| Error::Crypto("erasure encoding"))?,
        })
    }

    /// Decodes a stored record and checks it against its key.
    pub(crate) fn decode(key: &[u8], value: &[u8]) -> Result<Self> {
        let rec: ErasureRecord = crate::codec::decode_exact(value, "erasure record")?;
        if key.len() != KEY_LEN
            || key[..8] != rec.time_unix.to_be_bytes()
            || rec.subject_id()?[..] != key[8..]
        {
            return Err(Error::CorruptMetadata {
                what: "erasure record does not match its key",
            });
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_its_write_and_refuses_a_foreign_key() {
        let rec = ErasureRecord::new(1_700_000_000, &[7u8; SUBJECT_ID_LEN]);
        let WriteOp::Put { space, key, value } = rec.write_op().expect("encodes") else {
            panic!("an erasure record is a put");
        };
        assert_eq!(space, Space::Erasure);
        assert_eq!(ErasureRecord::decode(&key, &value).expect("decodes"), rec);
        let mut other = key.clone();
        other[9] ^= 1;
        assert!(ErasureRecord::decode(&other, &value).is_err());
        assert!(ErasureRecord::decode(&key[..KEY_LEN - 1], &value).is_err());
        let bad = ErasureRecord {
            time_unix: 1,
            subject_key_id: "zz".into(),
        };
        assert!(bad.subject_id().is_err());
        assert!(bad.write_op().is_err());
    }
}
