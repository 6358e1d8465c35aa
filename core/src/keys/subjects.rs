//! Subject keys: one random key per data subject (a patient), for crypto-shredding.
//!
//! Records and envelopes tied to a subject have their DEK wrapped by the subject's key instead
//! of a KEK; the subject key itself is stored wrapped by a keyring KEK. Destroying the subject
//! key (`forget_subject`) makes every envelope of that subject undecryptable at once, wherever
//! copies of the envelopes live. Subject ids are never stored: only a keyed hash (16 bytes).
//!
//! A subject key belongs to one (subject, keyring) pair (subject key format 2): its id is a
//! keyed hash of both, it is wrapped by that keyring's KEK, and only envelopes of that keyring
//! open with it. Destroying a keyring's key version therefore shreds that keyring's subject
//! data (and is refused while such keys depend on it), whatever other keyrings hold for the
//! same subject. Format 1 keys (one per subject, wrapped by the keyring of the subject's first
//! write) are still read; `forget_subject` destroys keys of both formats.

use super::Keys;
use crate::envelope::{Kek, SUBJECT_ID_LEN};
use crate::secret::Key32;
use crate::store::{Space, WriteOp};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The version number subject keys carry in envelope headers.
pub(crate) const SUBJECT_KEY_VERSION: u32 = 1;
const SUBJECT_AAD_LABEL: &[u8] = b"PVS1";
/// Format 1: one key per subject (legacy). Format 2: one key per (subject, keyring).
const FORMAT_LEGACY: u8 = 1;
const FORMAT_PER_KEYRING: u8 = 2;

#[derive(Serialize, Deserialize)]
struct SubjectRecord {
    format: u8,
    keyring: String,
    kek_version: u32,
    wrapped: Vec<u8>,
}

impl SubjectRecord {
    /// Decodes a stored subject key record strictly (codec.rs): the format first, and nothing
    /// may follow the record.
    fn decode(bytes: &[u8]) -> Result<Self> {
        if crate::codec::check_format(bytes, u32::from(FORMAT_LEGACY), "subject key").is_err() {
            crate::codec::check_format(bytes, u32::from(FORMAT_PER_KEYRING), "subject key")?;
        }
        crate::codec::decode_exact(bytes, "subject key")
    }
}

/// Which subject key a write or read of derived tokens uses.
enum Lookup {
    /// Envelopes, records, streams: the (subject, keyring) key, created when missing.
    Envelope,
    /// Derived and vaulted tokens of subject fields: the (subject, keyring) key if there is
    /// one, else a format 1 key (so tokens made before format 2 stay consistent), else a new
    /// (subject, keyring) key.
    Field,
}

impl Keys {
    /// The subject's format 1 key id (also the subject's id in erasure records and the log).
    pub(crate) fn subject_key_id(&self, subject: &str) -> Result<[u8; SUBJECT_ID_LEN]> {
        check_subject(subject)?;
        let tag = self.subject_id.tag(&[b"subject", subject.as_bytes()]);
        let mut id = [0u8; SUBJECT_ID_LEN];
        id.copy_from_slice(&tag[..SUBJECT_ID_LEN]);
        Ok(id)
    }

    /// The id of the subject's key for `keyring` (format 2).
    fn subject_keyring_id(&self, subject: &str, keyring: &str) -> Result<[u8; SUBJECT_ID_LEN]> {
        check_subject(subject)?;
        let tag =
            self.subject_id
                .tag(&[b"subject+keyring", subject.as_bytes(), keyring.as_bytes()]);
        let mut id = [0u8; SUBJECT_ID_LEN];
        id.copy_from_slice(&tag[..SUBJECT_ID_LEN]);
        Ok(id)
    }

    fn subject_aad(&self, id: &[u8], keyring: &str, version: u32) -> Vec<u8> {
        let mut aad = SUBJECT_AAD_LABEL.to_vec();
        aad.extend_from_slice(&self.vault_id);
        aad.extend_from_slice(id);
        aad.extend_from_slice(keyring.as_bytes());
        aad.extend_from_slice(&version.to_be_bytes());
        aad
    }

    fn decode_subject(&self, id: &[u8], bytes: &[u8]) -> Result<Arc<Kek>> {
        self.decode_subject_for(id, bytes, None)
    }

    /// Unwraps a stored subject key; with `keyring`, a format 2 key must belong to it.
    fn decode_subject_for(
        &self,
        id: &[u8],
        bytes: &[u8],
        keyring: Option<&str>,
    ) -> Result<Arc<Kek>> {
        let rec = SubjectRecord::decode(bytes)?;
        if rec.format == FORMAT_PER_KEYRING && keyring.is_some_and(|k| k != rec.keyring) {
            return Err(Error::AuthenticationFailed);
        }
        let kek = self
            .keyring(&rec.keyring)?
            .decrypting_kek(rec.kek_version)?;
        let sk = kek
            .unwrap(
                &self.subject_aad(id, &rec.keyring, rec.kek_version),
                &rec.wrapped,
            )
            .map_err(|_| Error::CorruptMetadata {
                what: "subject key",
            })?;
        Ok(Arc::new(Kek::new(
            SUBJECT_KEY_VERSION,
            Key32::from_slice(sk.expose())?,
            self.backend,
        )?))
    }

    /// The stored subject key `id` (either format), or [`Error::SubjectForgotten`].
    pub(crate) fn subject_key_by_id(&self, id: &[u8]) -> Result<Arc<Kek>> {
        match self.store.get(Space::Subject, id)? {
            Some(bytes) => self.decode_subject(id, &bytes),
            None => Err(Error::SubjectForgotten),
        }
    }

    /// The key of subject key `id` named by an envelope of `keyring`, or
    /// [`Error::SubjectForgotten`] when it is gone. A format 2 key opens only envelopes of its
    /// own keyring.
    pub(crate) fn subject_key_for_envelope(&self, id: &[u8], keyring: &str) -> Result<Arc<Kek>> {
        match self.store.get(Space::Subject, id)? {
            Some(bytes) => self.decode_subject_for(id, &bytes, Some(keyring)),
            None => Err(Error::SubjectForgotten),
        }
    }

    /// The subject's key for data of `keyring` (envelopes, records, streams), created (wrapped
    /// by `keyring`'s active KEK) if there is none yet.
    pub(crate) fn subject_key_for_write(
        &self,
        subject: &str,
        keyring: &str,
    ) -> Result<([u8; SUBJECT_ID_LEN], Arc<Kek>)> {
        self.subject_key_lookup(subject, keyring, Lookup::Envelope)
    }

    /// The subject's key for tokens of a field of `keyring` (see [`Lookup::Field`]), created
    /// if the subject has none.
    pub(crate) fn subject_key_for_field(
        &self,
        subject: &str,
        keyring: &str,
    ) -> Result<([u8; SUBJECT_ID_LEN], Arc<Kek>)> {
        self.subject_key_lookup(subject, keyring, Lookup::Field)
    }

    /// The subject's key for reading tokens of a field of `keyring`, or
    /// [`Error::SubjectForgotten`].
    pub(crate) fn subject_key_for_field_read(
        &self,
        subject: &str,
        keyring: &str,
    ) -> Result<Arc<Kek>> {
        let id = self.subject_keyring_id(subject, keyring)?;
        if let Some(bytes) = self.store.get(Space::Subject, &id)? {
            return self.decode_subject_for(&id, &bytes, Some(keyring));
        }
        let legacy = self.subject_key_id(subject)?;
        match self.store.get(Space::Subject, &legacy)? {
            Some(bytes) => self.decode_subject(&legacy, &bytes),
            None => Err(Error::SubjectForgotten),
        }
    }

    fn subject_key_lookup(
        &self,
        subject: &str,
        keyring: &str,
        lookup: Lookup,
    ) -> Result<([u8; SUBJECT_ID_LEN], Arc<Kek>)> {
        let id = self.subject_keyring_id(subject, keyring)?;
        loop {
            if let Some(bytes) = self.store.get(Space::Subject, &id)? {
                return Ok((id, self.decode_subject_for(&id, &bytes, Some(keyring))?));
            }
            if let Lookup::Field = lookup {
                let legacy = self.subject_key_id(subject)?;
                if let Some(bytes) = self.store.get(Space::Subject, &legacy)? {
                    return Ok((legacy, self.decode_subject(&legacy, &bytes)?));
                }
            }
            let kek = self.keyring(keyring)?.active_kek()?;
            let sk = Key32::random()?;
            let rec = SubjectRecord {
                format: FORMAT_PER_KEYRING,
                keyring: keyring.to_owned(),
                kek_version: kek.version(),
                wrapped: kek.wrap(&self.subject_aad(&id, keyring, kek.version()), sk.expose())?,
            };
            let bytes =
                postcard::to_allocvec(&rec).map_err(|_| Error::Crypto("subject encoding"))?;
            if self
                .store
                .compare_and_swap(Space::Subject, &id, None, Some(bytes))?
            {
                return Ok((
                    id,
                    Arc::new(Kek::new(SUBJECT_KEY_VERSION, sk, self.backend)?),
                ));
            }
            // Another thread created it first: use theirs.
        }
    }

    /// Keyring and KEK version that wrap a stored subject key.
    pub(crate) fn subject_key_location(&self, value: &[u8]) -> Result<(String, u32)> {
        let rec = SubjectRecord::decode(value)?;
        Ok((rec.keyring.clone(), rec.kek_version))
    }

    /// Rewraps every subject key not under its keyring's active version; returns how many.
    pub(crate) fn rewrap_subject_keys(&self, only: Option<&str>) -> Result<u64> {
        let mut done = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .store
                .scan(Space::Subject, &[], after.as_deref(), 1000)?;
            let Some(last) = page.last().map(|(k, _)| k.clone()) else {
                break;
            };
            let full = page.len() == 1000;
            let mut items = Vec::new();
            for (id, value) in page {
                let Ok(rec) = SubjectRecord::decode(&value) else {
                    continue;
                };
                if only.is_some_and(|k| k != rec.keyring) {
                    continue;
                }
                let kr = self.keyring(&rec.keyring)?;
                if rec.kek_version == kr.active {
                    continue;
                }
                let Ok(old) = kr.decrypting_kek(rec.kek_version) else {
                    continue;
                };
                let Ok(sk) = old.unwrap(
                    &self.subject_aad(&id, &rec.keyring, rec.kek_version),
                    &rec.wrapped,
                ) else {
                    continue;
                };
                let new = kr.active_kek()?;
                let out = SubjectRecord {
                    format: rec.format,
                    keyring: rec.keyring.clone(),
                    kek_version: new.version(),
                    wrapped: new.wrap(
                        &self.subject_aad(&id, &rec.keyring, new.version()),
                        sk.expose(),
                    )?,
                };
                let bytes =
                    postcard::to_allocvec(&out).map_err(|_| Error::Crypto("subject encoding"))?;
                items.push(crate::store::CasItem {
                    key: id,
                    expected: value,
                    new: bytes,
                });
            }
            if !items.is_empty() {
                done += self.store.compare_and_swap_many(Space::Subject, items)? as u64;
            }
            after = Some(last);
            if !full {
                break;
            }
        }
        Ok(done)
    }

    /// The writes that destroy every key of `subject` (format 1, and one per keyring) with an
    /// erasure record for each key that exists (the format 1 id always gets one: it names the
    /// subject in the ledger), and whether the subject had a key. The vault's admin operation
    /// `forget_subject` decides, logs and applies them.
    pub(crate) fn forget_subject_writes(&self, subject: &str) -> Result<(Vec<WriteOp>, bool)> {
        let id = self.subject_key_id(subject)?;
        // Every key of the subject: format 1, and one per keyring (format 2). Each key that
        // exists gets an erasure record of its own (the format 1 id always does: it names the
        // subject in the ledger), so a restore of an older backup drops every one of them.
        let mut keys = vec![id];
        for entry in crate::store::ScanIter::new(self.store.as_ref(), Space::Keyring, Vec::new()) {
            let (name, _) = entry?;
            let name = String::from_utf8(name).map_err(|_| Error::CorruptMetadata {
                what: "keyring name",
            })?;
            keys.push(self.subject_keyring_id(subject, &name)?);
        }
        let now = crate::keyring::now_unix();
        let mut existed = false;
        let mut ops = Vec::with_capacity(2 * keys.len());
        for (n, key) in keys.into_iter().enumerate() {
            let exists = self.store.get(Space::Subject, &key)?.is_some();
            existed |= exists;
            if n == 0 || exists {
                ops.push(crate::erasure::ErasureRecord::new(now, &key).write_op()?);
            }
            ops.push(WriteOp::Delete {
                space: Space::Subject,
                key: key.to_vec(),
            });
        }
        Ok((ops, existed))
    }
}

fn check_subject(subject: &str) -> Result<()> {
    if subject.is_empty() || subject.len() > 1024 {
        return Err(Error::invalid("subject id", "must be 1 to 1024 bytes"));
    }
    Ok(())
}
