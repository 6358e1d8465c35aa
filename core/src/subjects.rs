//! Subject keys: one random key per data subject (a patient), for crypto-shredding.
//!
//! Records and envelopes tied to a subject have their DEK wrapped by the subject's key instead
//! of a KEK; the subject key itself is stored wrapped by a keyring KEK. Destroying the subject
//! key (`forget_subject`) makes every envelope of that subject undecryptable at once, wherever
//! copies of the envelopes live. Subject ids are never stored: only a keyed hash (16 bytes).

use crate::envelope::{Kek, SUBJECT_ID_LEN};
use crate::secret::Key32;
use crate::store::Space;
use crate::vault::Vault;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The version number subject keys carry in envelope headers.
pub(crate) const SUBJECT_KEY_VERSION: u32 = 1;
const SUBJECT_AAD_LABEL: &[u8] = b"PVS1";

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
        crate::codec::check_format(bytes, 1, "subject key")?;
        crate::codec::decode_exact(bytes, "subject key")
    }
}

impl Vault {
    pub(crate) fn subject_key_id(&self, subject: &str) -> Result<[u8; SUBJECT_ID_LEN]> {
        if subject.is_empty() || subject.len() > 1024 {
            return Err(Error::invalid("subject id", "must be 1 to 1024 bytes"));
        }
        let tag = self.keys.subject_id.tag(&[b"subject", subject.as_bytes()]);
        let mut id = [0u8; SUBJECT_ID_LEN];
        id.copy_from_slice(&tag[..SUBJECT_ID_LEN]);
        Ok(id)
    }

    fn subject_aad(&self, id: &[u8], keyring: &str, version: u32) -> Vec<u8> {
        let mut aad = SUBJECT_AAD_LABEL.to_vec();
        aad.extend_from_slice(self.vault_id());
        aad.extend_from_slice(id);
        aad.extend_from_slice(keyring.as_bytes());
        aad.extend_from_slice(&version.to_be_bytes());
        aad
    }

    fn decode_subject(&self, id: &[u8], bytes: &[u8]) -> Result<Arc<Kek>> {
        let rec = SubjectRecord::decode(bytes)?;
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

    /// The key of subject `id` (keyed hash), or [`Error::SubjectForgotten`] when it is gone.
    pub(crate) fn subject_key_by_id(&self, id: &[u8]) -> Result<Arc<Kek>> {
        match self.store.get(Space::Subject, id)? {
            Some(bytes) => self.decode_subject(id, &bytes),
            None => Err(Error::SubjectForgotten),
        }
    }

    /// The subject's key, created (wrapped by `keyring`'s active KEK) if it has none yet.
    pub(crate) fn subject_key_for_write(
        &self,
        subject: &str,
        keyring: &str,
    ) -> Result<([u8; SUBJECT_ID_LEN], Arc<Kek>)> {
        let id = self.subject_key_id(subject)?;
        loop {
            if let Some(bytes) = self.store.get(Space::Subject, &id)? {
                return Ok((id, self.decode_subject(&id, &bytes)?));
            }
            let kek = self.keyring(keyring)?.active_kek()?;
            let sk = Key32::random()?;
            let rec = SubjectRecord {
                format: 1,
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
                    format: 1,
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

    /// Destroys the subject's key: every record and envelope tied to the subject becomes
    /// undecryptable at once (O(1)), including copies outside the vault. Returns whether the
    /// subject had a key.
    pub fn forget_subject(&self, subject: &str) -> Result<bool> {
        let id = self.subject_key_id(subject)?;
        self.audit_admin(
            crate::audit::Action::ForgetSubject,
            "subject",
            Some(id.iter().map(|b| format!("{b:02x}")).collect()),
            "forget subject".into(),
        )?;
        let existed = self.store.get(Space::Subject, &id)?.is_some();
        let now = crate::keyring::now_unix();
        let erasure = crate::lifecycle::ErasureRecord {
            time_unix: now,
            subject_key_id: id.iter().map(|b| format!("{b:02x}")).collect(),
        };
        let mut ekey = now.to_be_bytes().to_vec();
        ekey.extend_from_slice(&id);
        self.store.write(vec![
            crate::store::WriteOp::Delete {
                space: Space::Subject,
                key: id.to_vec(),
            },
            crate::store::WriteOp::Put {
                space: Space::Erasure,
                key: ekey,
                value: postcard::to_allocvec(&erasure)
                    .map_err(|_| Error::Crypto("erasure encoding"))?,
            },
        ])?;
        Ok(existed)
    }
}
