//! The key hierarchy of an open vault, in one component: the vault header and master key
//! (`header`), the keys derived from the master key, the keyrings and their cache, and the
//! subject keys (`subjects`). Root key sources are in [`crate::root`].
//!
//! [`Keys`] works on the store it is given and on nothing above it: it writes no audit entry
//! and makes no policy decision. The operations that change keys on a caller's behalf (create
//! or rotate a keyring, rotate the root, forget a subject) are admin operations of the vault,
//! which decide and log, then call in here.

mod caller;
pub(crate) mod header;
mod subjects;

pub(crate) use caller::check_caller_context;
pub use caller::{EncryptOptions, RESERVED_CONTEXT_PREFIX};
pub use header::HEADER_FORMAT;

use crate::backend::{AeadKey, Backend};
use crate::cache::SharedCache;
use crate::context::Context;
use crate::envelope::{self, Domain, Envelope, Kek};
use crate::kdf::{self, Mac, label};
use crate::keyring::{
    DEFAULT_KEYRING, Keyring, KeyringRecord, TOKENS_KEYRING, VersionRecord, now_unix,
};
use crate::root::RootKeySource;
use crate::secret::Key32;
use crate::store::{Space, Store, WriteOp};
use crate::{Error, Result};
use header::{HEADER_KEY, HeaderSlot, VaultHeader};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Shortest time between two re-reads of one keyring for unknown key versions (seconds): an
/// envelope with a forged version costs one store read per keyring per second at most.
pub const UNKNOWN_VERSION_RELOAD_SECS: u64 = 1;
/// Keyrings whose last re-read time is remembered at once (bounds that memory).
const MAX_RELOAD_ENTRIES: usize = 4096;
const KEYRING_AAD_LABEL: &[u8] = b"PVK1";
const META_AAD_LABEL: &[u8] = b"PVX1";

/// The MAC key of the commit anchor (anchor.rs).
pub(crate) fn anchor_mac(vmk: &Key32) -> Result<Mac> {
    Ok(Mac::new(&kdf::expand_key(vmk, &[label::STORE_ANCHOR])?))
}

/// The key hierarchy of one open vault (see the module documentation).
pub(crate) struct Keys {
    store: Arc<dyn Store>,
    vault_id: [u8; 16],
    /// The AES-GCM implementation of every KEK and DEK.
    pub(crate) backend: Backend,
    header_slot: HeaderSlot,
    header: Mutex<VaultHeader>,
    vmk: Key32,
    keyring_wrap: Box<dyn AeadKey>,
    meta_seal: Box<dyn AeadKey>,
    /// Keyed hash of record ids.
    pub(crate) record_id: Mac,
    /// Keyed hash of subject ids.
    pub(crate) subject_id: Mac,
    /// Keyed hash of tokens as the audit log shows them.
    pub(crate) token_id: Mac,
    /// Keyed hash of values in the consistent-token index.
    pub(crate) token_index: Mac,
    /// MAC of the commit anchor (anchor.rs).
    pub(crate) anchor: Mac,
    /// Loaded keyrings, re-read after [`crate::cache::CACHE_TTL_SECS`] (another process may
    /// rotate).
    keyrings: SharedCache<Arc<Keyring>>,
    keyring_writes: Mutex<()>,
    /// When each keyring was last re-read for an unknown key version (rate limit).
    keyring_reloads: Mutex<HashMap<String, Instant>>,
}

impl Keys {
    /// The keys of the vault with `header`, whose master key is `vmk`, over `store`.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        backend: Backend,
        header: &VaultHeader,
        vmk: &Key32,
        header_slot: HeaderSlot,
    ) -> Result<Self> {
        let key = |l: &[u8]| kdf::expand_key(vmk, &[l]);
        Ok(Keys {
            store,
            vault_id: header.vault_id,
            backend,
            header_slot,
            header: Mutex::new(header.clone()),
            vmk: vmk.clone(),
            keyring_wrap: Backend::Ring.aes256gcm(&key(label::KEYRING_WRAP)?)?,
            meta_seal: Backend::Ring.aes256gcm(&key(label::META_SEAL)?)?,
            record_id: Mac::new(&key(label::RECORD_ID)?),
            subject_id: Mac::new(&key(label::SUBJECT_ID)?),
            token_id: Mac::new(&key(label::TOKEN_ID)?),
            token_index: Mac::new(&key(label::TOKEN_INDEX)?),
            anchor: anchor_mac(vmk)?,
            keyrings: SharedCache::new(),
            keyring_writes: Mutex::new(()),
            keyring_reloads: Mutex::new(HashMap::new()),
        })
    }

    /// The vault's random id.
    pub(crate) fn vault_id(&self) -> &[u8; 16] {
        &self.vault_id
    }

    /// Runs `f` with the vault master key (backup keys, recovery shares, the audit keys); the
    /// VMK never leaves the crate.
    pub(crate) fn with_vmk<T>(&self, f: impl FnOnce(&Key32) -> Result<T>) -> Result<T> {
        f(&self.vmk)
    }

    /// The current vault header, encoded as in `vault.header`.
    pub(crate) fn header_bytes(&self) -> Result<Vec<u8>> {
        self.header.lock().map_err(|_| Error::poisoned())?.encode()
    }

    /// Wraps the vault master key under `new_root` and replaces the header atomically, in its
    /// file or in the store. O(1): no keyring or record is touched.
    pub(crate) fn rotate_root(&self, new_root: &dyn RootKeySource) -> Result<()> {
        let mut header = self.header.lock().map_err(|_| Error::poisoned())?;
        let new_header = header.rewrapped(&self.vmk, new_root)?;
        let bytes = new_header.encode()?;
        match &self.header_slot {
            HeaderSlot::File(path) => crate::outfile::write_file_atomic(path, &bytes)?,
            HeaderSlot::Store => self.store.write(vec![WriteOp::Put {
                space: Space::Meta,
                key: HEADER_KEY.to_vec(),
                value: bytes,
            }])?,
        }
        *header = new_header;
        Ok(())
    }

    // ---- sealed metadata ------------------------------------------------------------------

    fn meta_aad(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut aad = META_AAD_LABEL.to_vec();
        aad.extend_from_slice(&self.vault_id);
        for p in parts {
            aad.extend_from_slice(&(p.len() as u64).to_be_bytes());
            aad.extend_from_slice(p);
        }
        aad
    }

    /// Seals vault metadata (field definitions, policy) under a key derived from the vault
    /// master key, bound to `parts` (what it is and its name).
    pub(crate) fn seal_meta(&self, parts: &[&[u8]], plain: &[u8]) -> Result<Vec<u8>> {
        envelope::wrap_with(self.meta_seal.as_ref(), &self.meta_aad(parts), plain)
    }

    /// Opens what [`Keys::seal_meta`] sealed.
    pub(crate) fn unseal_meta(&self, parts: &[&[u8]], sealed: &[u8]) -> Result<crate::SecretBytes> {
        envelope::unwrap_with(self.meta_seal.as_ref(), &self.meta_aad(parts), sealed)
    }

    // ---- keyrings -------------------------------------------------------------------------

    fn keyring_aad(&self, name: &str) -> Vec<u8> {
        let mut aad = KEYRING_AAD_LABEL.to_vec();
        aad.extend_from_slice(&self.vault_id);
        aad.extend_from_slice(name.as_bytes());
        aad
    }

    fn seal_keyring(&self, rec: &KeyringRecord) -> Result<Vec<u8>> {
        envelope::wrap_with(
            self.keyring_wrap.as_ref(),
            &self.keyring_aad(&rec.name),
            &rec.encode()?,
        )
    }

    /// Opens a stored keyring; it must be the keyring `name`.
    pub(crate) fn unseal_keyring(&self, name: &str, sealed: &[u8]) -> Result<KeyringRecord> {
        let plain =
            envelope::unwrap_with(self.keyring_wrap.as_ref(), &self.keyring_aad(name), sealed)
                .map_err(|_| Error::CorruptMetadata { what: "keyring" })?;
        let rec = KeyringRecord::decode(plain.expose())?;
        if rec.name != name {
            return Err(Error::CorruptMetadata { what: "keyring" });
        }
        Ok(rec)
    }

    fn read_keyring_record(&self, name: &str) -> Result<(KeyringRecord, Vec<u8>)> {
        let sealed = self
            .store
            .get(Space::Keyring, name.as_bytes())?
            .ok_or_else(|| Error::UnknownKeyring {
                keyring: name.to_owned(),
            })?;
        Ok((self.unseal_keyring(name, &sealed)?, sealed))
    }

    /// The writes that create a new vault's keyrings, `default` and `tokens` (version 1 each):
    /// the one place that says which keyrings a vault starts with.
    pub(crate) fn default_keyrings(&self) -> Result<Vec<WriteOp>> {
        [DEFAULT_KEYRING, TOKENS_KEYRING]
            .into_iter()
            .map(|name| {
                Ok(WriteOp::Put {
                    space: Space::Keyring,
                    key: name.as_bytes().to_vec(),
                    value: self.seal_keyring(&KeyringRecord::new(name)?)?,
                })
            })
            .collect()
    }

    /// The loaded keyring `name` (cached).
    pub(crate) fn keyring(&self, name: &str) -> Result<Arc<Keyring>> {
        // Bounded staleness when processes share a store (PostgreSQL): see `cache`.
        // Decryption re-reads a keyring at once when it meets an unknown version.
        if let Some(k) = self.keyrings.get(name)? {
            return Ok(k);
        }
        envelope::check_keyring_name(name)?;
        let (rec, _) = self.read_keyring_record(name)?;
        let loaded = Arc::new(rec.load(self.backend)?);
        self.keyrings.insert(name, loaded.clone())?;
        Ok(loaded)
    }

    /// Applies `change` to keyring `name` and stores it (serialised with other keyring writes).
    pub(crate) fn update_keyring<T>(
        &self,
        name: &str,
        change: impl FnOnce(&mut KeyringRecord) -> Result<T>,
    ) -> Result<T> {
        let _guard = self.keyring_writes.lock().map_err(|_| Error::poisoned())?;
        let (mut rec, old) = self.read_keyring_record(name)?;
        let out = change(&mut rec)?;
        let sealed = self.seal_keyring(&rec)?;
        if !self.store.compare_and_swap(
            Space::Keyring,
            name.as_bytes(),
            Some(&old),
            Some(sealed),
        )? {
            return Err(Error::CorruptMetadata {
                what: "keyring changed underneath",
            });
        }
        self.keyrings
            .insert(name, Arc::new(rec.load(self.backend)?))?;
        Ok(out)
    }

    /// Stores a new keyring `name` with one active key version, or [`Error::KeyringExists`].
    pub(crate) fn create_keyring(&self, name: &str) -> Result<Arc<Keyring>> {
        envelope::check_keyring_name(name)?;
        let _guard = self.keyring_writes.lock().map_err(|_| Error::poisoned())?;
        let rec = KeyringRecord::new(name)?;
        let sealed = self.seal_keyring(&rec)?;
        if !self
            .store
            .compare_and_swap(Space::Keyring, name.as_bytes(), None, Some(sealed))?
        {
            return Err(Error::KeyringExists {
                keyring: name.to_owned(),
            });
        }
        let loaded = Arc::new(rec.load(self.backend)?);
        self.keyrings.insert(name, loaded.clone())?;
        Ok(loaded)
    }

    /// [`Keys::create_keyring`] as the owner's administration: its audit entry is written
    /// first (fail closed: no entry, no keyring). Name checks come before the entry.
    pub(crate) fn create_keyring_logged(
        &self,
        audit: &crate::audit::AuditLog,
        name: &str,
    ) -> Result<Arc<Keyring>> {
        envelope::check_keyring_name(name)?;
        audit.admin(
            crate::audit::Action::Admin,
            name,
            None,
            "create keyring".into(),
        )?;
        self.create_keyring(name)
    }

    /// Makes a new key version of `keyring` active; returns it.
    pub(crate) fn rotate(&self, keyring: &str) -> Result<u32> {
        self.update_keyring(keyring, |rec| {
            let next = rec
                .versions
                .last()
                .map_or(Some(1), |v| v.version.checked_add(1))
                .ok_or(Error::invalid("keyring", "has run out of version numbers"))?;
            let key = Key32::random()?;
            rec.versions.push(VersionRecord {
                version: next,
                created_unix: now_unix(),
                key: Some(*key.expose()),
            });
            rec.active = next;
            Ok(next)
        })
    }

    /// The KEK of `keyring` version `version` for decryption. A version this process has not
    /// seen may have been made by another process sharing the store: the keyring is re-read
    /// then, at most once per [`UNKNOWN_VERSION_RELOAD_SECS`] per keyring, so forged version
    /// numbers cannot make every call reload it.
    pub(crate) fn decrypting_kek(&self, keyring: &str, version: u32) -> Result<Arc<Kek>> {
        match self.keyring(keyring)?.decrypting_kek(version) {
            Err(Error::UnknownKeyVersion { .. }) if self.may_reload_keyring(keyring)? => {
                self.keyrings.remove(keyring)?;
                self.keyring(keyring)?.decrypting_kek(version)
            }
            other => other,
        }
    }

    /// Whether a keyring may be re-read now for an unknown key version (rate limit).
    fn may_reload_keyring(&self, keyring: &str) -> Result<bool> {
        let mut last = self.keyring_reloads.lock().map_err(|_| Error::poisoned())?;
        let now = Instant::now();
        let window = Duration::from_secs(UNKNOWN_VERSION_RELOAD_SECS);
        if last
            .get(keyring)
            .is_some_and(|t| now.duration_since(*t) < window)
        {
            return Ok(false);
        }
        if last.len() >= MAX_RELOAD_ENTRIES {
            last.retain(|_, t| now.duration_since(*t) < window);
        }
        if last.len() < MAX_RELOAD_ENTRIES {
            last.insert(keyring.to_owned(), now);
        }
        Ok(true)
    }

    // ---- envelopes under the vault's keys -------------------------------------------------

    /// Seals `plaintext` under the active KEK of `keyring` (randomized, or deterministic).
    pub(crate) fn seal(
        &self,
        keyring: &str,
        deterministic: bool,
        plaintext: &[u8],
        ctx: &Context,
    ) -> Result<Vec<u8>> {
        let kek = self.keyring(keyring)?.active_kek()?;
        if deterministic {
            envelope::seal_deterministic(keyring, &kek, plaintext, ctx)
        } else {
            envelope::seal(self.backend, keyring, &kek, plaintext, ctx)
        }
    }

    /// Seals `plaintext` in `domain` under the key of `subject` for `keyring`.
    pub(crate) fn seal_for_subject(
        &self,
        domain: Domain,
        keyring: &str,
        subject: &str,
        plaintext: &[u8],
        ctx: &Context,
    ) -> Result<Vec<u8>> {
        let (id, key) = self.subject_key_for_write(subject, keyring)?;
        envelope::seal_for_subject(self.backend, keyring, &id, domain, &key, plaintext, ctx)
    }

    /// Opens an envelope of any domain under the key it names (a keyring version or a
    /// subject key). Which envelopes a caller may open is decided above this.
    pub(crate) fn open(&self, env: &Envelope<'_>, ctx: &Context) -> Result<Zeroizing<Vec<u8>>> {
        let kek = match env.subject_key_id() {
            Some(id) => self.subject_key_for_envelope(id, env.keyring())?,
            None => self.decrypting_kek(env.keyring(), env.key_version())?,
        };
        Ok(envelope::open(self.backend, env, &kek, ctx)?.into_zeroizing())
    }
}
