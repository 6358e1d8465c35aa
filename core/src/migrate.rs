//! Copying a vault into another store (a directory vault into PostgreSQL), then verifying the
//! copy entry by entry.
//!
//! Everything is copied as stored — ciphertext, keyed hashes, sealed keyrings, the audit chain
//! — so nothing is decrypted on the way and the copy opens with the same root key. The source
//! stays open (and so locked against other writers) for the whole copy.
//!
//! ```
//! use phivault::{Vault, root::KeyFile, Key32, store::{SledStore, Durability}};
//! let dir = tempfile::tempdir()?;
//! let key = Key32::random()?;
//! let vault = Vault::create(dir.path().join("v"), &KeyFile::from_key(key.clone()))?;
//! vault.owner().put("notes", "1", b"note", None)?;
//! let dest = SledStore::open(&dir.path().join("copy"), Durability::Immediate)?;
//! let (copy, report) = vault.migrate_to(Box::new(dest), &KeyFile::from_key(key))?;
//! assert!(report.audit_ok);
//! assert_eq!(&*copy.owner().get("notes", "1")?.expect("copied"), b"note");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::root::RootKeySource;
use crate::store::{ScanIter, Space, Store, WriteOp};
use crate::vault::Vault;
use crate::{Error, Result};
use serde::Serialize;

/// Entries written per batch (one transaction each).
const BATCH: usize = 1000;
/// The key of the vault header in `Space::Meta` of a store-held vault.
const HEADER_KEY: &[u8] = b"header";
/// The header file of a directory vault.
const HEADER_FILE: &str = "vault.header";

/// What [`Vault::migrate_to`] copied and checked.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct MigrationReport {
    /// Entries copied per space (space prefix as a character, count).
    pub per_space: Vec<(char, u64)>,
    /// All entries copied (the header of a directory vault included).
    pub entries: u64,
    /// Entries read back from the destination and found byte-for-byte equal.
    pub verified: u64,
    /// Whether the copied audit chain verifies in the destination.
    pub audit_ok: bool,
}

impl Vault {
    /// Copies this vault into `dest`, which must be empty, verifies every entry, and opens the
    /// copy with `root` (the root key of this vault). The copy is a vault of its own from then
    /// on; keep using one of the two.
    pub fn migrate_to(
        &self,
        dest: Box<dyn Store>,
        root: &dyn RootKeySource,
    ) -> Result<(Vault, MigrationReport)> {
        for space in Space::ALL {
            if !dest.scan(space, &[], None, 1)?.is_empty() {
                return Err(Error::VaultExists {
                    path: std::path::PathBuf::from("destination store"),
                });
            }
        }
        self.audit.admin(
            crate::audit::Action::Admin,
            "vault",
            None,
            "migrate to another store".into(),
        )?;
        self.store.flush()?;
        // A directory vault keeps its header in a file; a store-held vault keeps it in Meta.
        let header = match self.path() {
            Some(dir) => {
                let p = dir.join(HEADER_FILE);
                Some(
                    std::fs::read(&p)
                        .map_err(|e| Error::io(format!("reading {}", p.display()), e))?,
                )
            }
            None => None,
        };
        let mut report = MigrationReport::default();
        for space in Space::ALL {
            let mut n = 0u64;
            let mut ops = Vec::with_capacity(BATCH);
            for entry in ScanIter::new(self.store.as_ref(), space, Vec::new()) {
                let (key, value) = entry?;
                if space == Space::Meta && key == HEADER_KEY && header.is_some() {
                    continue; // the file's header wins
                }
                ops.push(WriteOp::Put { space, key, value });
                n += 1;
                if ops.len() == BATCH {
                    dest.write(std::mem::take(&mut ops))?;
                }
            }
            if space == Space::Meta
                && let Some(h) = &header
            {
                ops.push(WriteOp::Put {
                    space,
                    key: HEADER_KEY.to_vec(),
                    value: h.clone(),
                });
                n += 1;
            }
            dest.write(ops)?;
            report.per_space.push((char::from(space.prefix()), n));
            report.entries += n;
        }
        dest.flush()?;
        report.verified = self.verify_copy(dest.as_ref(), header.as_deref(), &report)?;
        let copy = Vault::open_in(dest, root, self.backend())?;
        copy.keyrings()?; // every keyring unseals under the copy's master key
        report.audit_ok = copy.audit_verify()?.ok;
        if !report.audit_ok {
            return Err(Error::CorruptMetadata {
                what: "audit chain of the migrated copy",
            });
        }
        Ok((copy, report))
    }

    /// Reads both stores in key order, space by space, and compares every entry.
    fn verify_copy(
        &self,
        dest: &dyn Store,
        header: Option<&[u8]>,
        report: &MigrationReport,
    ) -> Result<u64> {
        let mismatch = || Error::CorruptMetadata {
            what: "migrated copy differs from the source",
        };
        let mut verified = 0u64;
        for (space, &(_, copied)) in Space::ALL.iter().zip(&report.per_space) {
            let mut src = ScanIter::new(self.store.as_ref(), *space, Vec::new()).filter(|e| {
                !(header.is_some()
                    && *space == Space::Meta
                    && e.as_ref().is_ok_and(|(k, _)| k == HEADER_KEY))
            });
            let mut n = 0u64;
            for got in ScanIter::new(dest, *space, Vec::new()) {
                let (key, value) = got?;
                let want = if *space == Space::Meta && key == HEADER_KEY && header.is_some() {
                    header.map(|h| (HEADER_KEY.to_vec(), h.to_vec()))
                } else {
                    src.next().transpose()?
                };
                let Some((wk, wv)) = want else {
                    return Err(mismatch());
                };
                if wk != key || wv != value {
                    return Err(mismatch());
                }
                n += 1;
            }
            if src.next().is_some() || n != copied {
                return Err(mismatch());
            }
            verified += n;
        }
        Ok(verified)
    }
}
