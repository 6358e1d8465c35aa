//! Encrypted records: `put`, `get`, `delete`, `scan` by collection and id.
//!
//! A record's value is encrypted into an envelope bound to its collection and id (so a value
//! moved to another record fails to decrypt). The store key is a keyed hash — 16 bytes of
//! HMAC over the collection, then 32 bytes of HMAC over collection and id — so ids that are
//! PHI (an MRN used as id) never reach the disk, and a collection can be scanned by prefix.
//!
//! ```
//! use phivault::{Vault, root::KeyFile, Key32};
//! let dir = tempfile::tempdir()?;
//! let vault = Vault::create(dir.path().join("v"), &KeyFile::from_key(Key32::random()?))?;
//! vault.owner().put("notes", "MRN-1", b"note one", Some("patient-1"))?;
//! let listed: Vec<_> = vault.scan("notes").collect::<Result<_, _>>()?;
//! assert_eq!(listed.len(), 1);
//! assert!(listed[0].subject);
//! assert!(vault.owner().delete("notes", "MRN-1")?);
//! assert!(vault.owner().get("notes", "MRN-1")?.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::context::Context;
use crate::envelope::{self, Domain, Envelope};
use crate::keyring::DEFAULT_KEYRING;
use crate::keys::Keys;
use crate::parallel::Parallel;
use crate::store::Store;
use crate::store::{ScanIter, Space, WriteOp};
use crate::{Error, Result};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Context keys that bind a record's value to its place. Reserved: not for callers.
pub const CONTEXT_COLLECTION: &str = "phivault.collection";
/// See [`CONTEXT_COLLECTION`].
pub const CONTEXT_ID: &str = "phivault.id";
/// Longest record id, in bytes.
pub const MAX_ID_LEN: usize = 1024;
const COLLECTION_TAG_LEN: usize = 16;

/// The keyed hash under which a record is stored (hex when printed). The raw id is never
/// stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(pub [u8; 32]);

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({self})")
    }
}

impl Serialize for RecordId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What `scan` tells about a record, without decrypting it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordInfo {
    /// The keyed-hash id.
    pub id: RecordId,
    /// Keyring of its envelope.
    pub keyring: String,
    /// Key version of its envelope (for subject records: of the subject key).
    pub key_version: u32,
    /// Whether the record is tied to a data subject.
    pub subject: bool,
    /// Size of the stored value in bytes.
    pub stored_bytes: usize,
}

/// Options for [`Session::put_with`](crate::Session::put_with).
#[derive(Clone, Debug, Default)]
pub struct PutOptions<'a> {
    /// Ties the record to a data subject (crypto-shredding by `forget_subject`).
    pub subject: Option<&'a str>,
    /// The keyring (default: `default`).
    pub keyring: Option<&'a str>,
}

fn check_collection(c: &str) -> Result<()> {
    envelope::check_keyring_name(c).map_err(|_| {
        Error::invalid(
            "collection",
            "must be 1 to 64 characters from A-Z a-z 0-9 _ - .",
        )
    })
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(Error::invalid("record id", "must be 1 to 1024 bytes"));
    }
    Ok(())
}

pub(crate) fn record_context(collection: &str, id: &str) -> Context {
    Context::new()
        .with(CONTEXT_COLLECTION, collection)
        .with(CONTEXT_ID, id)
}

/// The records of an open vault: sealing, storing and reading them by hashed id, over the
/// vault's keys. Who may is decided above this, in the session.
pub(crate) struct Records {
    store: Arc<dyn Store>,
    keys: Arc<Keys>,
}

impl Records {
    /// The records of the vault with these keys, in `store`.
    pub(crate) fn new(store: Arc<dyn Store>, keys: Arc<Keys>) -> Self {
        Records { store, keys }
    }

    fn collection_prefix(&self, collection: &str) -> [u8; COLLECTION_TAG_LEN] {
        let tag = self
            .keys
            .record_id
            .tag(&[b"collection", collection.as_bytes()]);
        let mut p = [0u8; COLLECTION_TAG_LEN];
        p.copy_from_slice(&tag[..COLLECTION_TAG_LEN]);
        p
    }

    pub(crate) fn key(&self, collection: &str, id: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(COLLECTION_TAG_LEN + 32);
        k.extend_from_slice(&self.collection_prefix(collection));
        k.extend_from_slice(&self.keys.record_id.tag(&[
            b"record",
            collection.as_bytes(),
            id.as_bytes(),
        ]));
        k
    }

    fn seal_record(
        &self,
        collection: &str,
        id: &str,
        plaintext: &[u8],
        opts: &PutOptions<'_>,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        check_collection(collection)?;
        check_id(id)?;
        let ctx = record_context(collection, id);
        let keyring = opts.keyring.unwrap_or(DEFAULT_KEYRING);
        let env = match opts.subject {
            Some(s) => self
                .keys
                .seal_for_subject(Domain::Internal, keyring, s, plaintext, &ctx)?,
            None => {
                let kek = self.keys.keyring(keyring)?.active_kek()?;
                envelope::seal_internal(self.keys.backend, keyring, &kek, plaintext, &ctx)?
            }
        };
        Ok((self.key(collection, id), crate::stored::frame(&env)))
    }

    /// Writes a record.
    pub(crate) fn put(
        &self,
        collection: &str,
        id: &str,
        plaintext: &[u8],
        opts: &PutOptions<'_>,
    ) -> Result<()> {
        let (key, value) = self.seal_record(collection, id, plaintext, opts)?;
        self.store.write(vec![WriteOp::Put {
            space: Space::Record,
            key,
            value,
        }])?;
        Ok(())
    }

    /// Stores many records in one atomic, durable batch (one flush); sealing spreads over
    /// `par`.
    pub(crate) fn put_many(
        &self,
        par: &Parallel,
        collection: &str,
        items: &[(&str, &[u8])],
        opts: &PutOptions<'_>,
    ) -> Result<()> {
        let ops = par.map(items, |(id, pt)| {
            let (key, value) = self.seal_record(collection, id, pt, opts)?;
            Ok(WriteOp::Put {
                space: Space::Record,
                key,
                value,
            })
        })?;
        self.store.write(ops)?;
        Ok(())
    }

    /// Reads and decrypts record `id` of `collection`; `None` when there is none.
    pub(crate) fn get(&self, collection: &str, id: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        check_collection(collection)?;
        check_id(id)?;
        let Some(value) = self.store.get(Space::Record, &self.key(collection, id))? else {
            return Ok(None);
        };
        let env = Envelope::parse(crate::stored::envelope_of(&value, "record")?)?;
        self.keys
            .open(&env, &record_context(collection, id))
            .map(Some)
    }

    /// Deletes record `id` of `collection`; returns whether it existed.
    pub(crate) fn delete(&self, collection: &str, id: &str) -> Result<bool> {
        check_collection(collection)?;
        check_id(id)?;
        let key = self.key(collection, id);
        let existed = self.store.get(Space::Record, &key)?.is_some();
        if existed {
            self.store.write(vec![WriteOp::Delete {
                space: Space::Record,
                key,
            }])?;
        }
        Ok(existed)
    }

    /// Lists the records of `collection` (keyed-hash ids, keyring, key version) without
    /// decrypting anything, one page at a time in constant memory.
    pub(crate) fn scan(&self, collection: &str) -> impl Iterator<Item = Result<RecordInfo>> + '_ {
        let prefix =
            check_collection(collection).map(|()| self.collection_prefix(collection).to_vec());
        let (iter, err) = match prefix {
            Ok(p) => (
                Some(ScanIter::new(self.store.as_ref(), Space::Record, p)),
                None,
            ),
            Err(e) => (None, Some(e)),
        };
        err.into_iter()
            .map(Err)
            .chain(iter.into_iter().flatten().map(|e| record_info(e?)))
    }

    /// Keyring, key version and subject key id of every record (for usage counts).
    pub(crate) fn envelopes(
        &self,
        space: Space,
    ) -> impl Iterator<Item = Result<(String, u32, Option<Vec<u8>>)>> + '_ {
        ScanIter::new(self.store.as_ref(), space, Vec::new()).map(|e| {
            let (_, value) = e?;
            let env = Envelope::parse(crate::stored::envelope_of(&value, "record")?)?;
            Ok((
                env.keyring().to_owned(),
                env.key_version(),
                env.subject_key_id().map(<[u8]>::to_vec),
            ))
        })
    }

    /// The keyed hash of a record id as the audit log shows it (hex, 128 bits).
    pub(crate) fn audit_id(&self, collection: &str, id: &str) -> String {
        hex::encode(
            &self
                .keys
                .record_id
                .tag(&[b"record", collection.as_bytes(), id.as_bytes()])[..16],
        )
    }

    /// The stored key and value of a record.
    pub(crate) fn entry(&self, collection: &str, id: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        check_collection(collection)?;
        check_id(id)?;
        let key = self.key(collection, id);
        Ok(self.store.get(Space::Record, &key)?.map(|v| (key, v)))
    }
}

fn record_info((key, value): (Vec<u8>, Vec<u8>)) -> Result<RecordInfo> {
    let env = Envelope::parse(crate::stored::envelope_of(&value, "record")?)?;
    let mut id = [0u8; 32];
    if key.len() != COLLECTION_TAG_LEN + 32 {
        return Err(Error::CorruptMetadata { what: "record key" });
    }
    id.copy_from_slice(&key[COLLECTION_TAG_LEN..]);
    Ok(RecordInfo {
        id: RecordId(id),
        keyring: env.keyring().to_owned(),
        key_version: env.key_version(),
        subject: env.subject_key_id().is_some(),
        stored_bytes: value.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key32;
    use crate::root::KeyFile;
    use crate::{EncryptOptions, Vault};

    /// Records written before envelopes had domains (caller-domain envelopes bound to the
    /// reserved record context) stay readable by `get`, stay closed to the envelope API, and
    /// move into the vault's own domain when re-encrypted.
    #[test]
    fn records_written_before_domains_stay_readable_and_closed_to_the_envelope_api() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = KeyFile::from_key(Key32::random().expect("key"));
        let v = Vault::create(dir.path().join("v"), &root).expect("create");
        let ctx = record_context("notes", "r1");
        let env = v
            .keys
            .seal_with(b"legacy record", &ctx, &EncryptOptions::new())
            .expect("seal as before");
        assert_eq!(
            Envelope::parse(&env).expect("parse").domain(),
            Domain::Caller
        );
        let value = crate::stored::frame(&env);
        v.store
            .write(vec![WriteOp::Put {
                space: Space::Record,
                key: v.records.key("notes", "r1"),
                value,
            }])
            .expect("write");
        assert_eq!(
            &*v.owner().get("notes", "r1").expect("get").expect("some"),
            b"legacy record"
        );
        assert!(v.owner().decrypt(&env, &ctx).is_err());
        assert!(v.reencrypt_record("notes", "r1").expect("reencrypt"));
        let (_, stored) = v.records.entry("notes", "r1").expect("e").expect("some");
        assert_eq!(
            Envelope::parse(&stored[1..]).expect("parse").domain(),
            Domain::Internal
        );
        assert_eq!(
            &*v.owner().get("notes", "r1").expect("get").expect("some"),
            b"legacy record"
        );
    }
}
