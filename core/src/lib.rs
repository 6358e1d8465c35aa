//! # phivault
//!
//! An embeddable, encrypted vault for protected health information (PHI): envelope encryption
//! bound to context, versioned keys with rotation, and encrypted records in an embedded store.
//!
//! ```
//! use phivault::{Context, Vault, root::KeyFile, Key32};
//! let dir = tempfile::tempdir()?;
//! let vault = Vault::create(dir.path().join("vault"), &KeyFile::from_key(Key32::random()?))?;
//! vault.owner().put("notes", "MRN-4711", b"Patient reports chest pain", None)?;
//! assert_eq!(&*vault.owner().get("notes", "MRN-4711")?.expect("stored"), b"Patient reports chest pain");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Map of the crate
//! - [`vault`]: the [`Vault`] — create, open, encrypt, decrypt, keyrings.
//! - [`records`]: encrypted records (`put`, `get`, `delete`, `scan`) with hashed ids.
//! - [`envelope`]: the envelope wire format (binary and text), seal, open, rewrap.
//! - [`tokens`]: tokenization — vaulted, FF1, pseudonyms, date shift — and masking.
//! - [`csv_tokenize`]: columns of a CSV stream tokenized in batches (`phivault tokenize-csv`).
//! - [`policy`], [`session`], [`audit`]: who may do what (default deny, break-the-glass),
//!   one decision point for every call, and the tamper-evident audit log.
//! - [`stream`]: segmented streaming encryption of large files, with random access.
//! - [`context`]: the [`Context`] bound to every ciphertext.
//! - [`keyring`]: versioned key-encryption keys and their states.
//! - `keys`: the key hierarchy of an open vault — header and master key, derived keys,
//!   keyrings and their cache, subject keys (crypto-shredding).
//! - [`lifecycle`]: rotation policy, rewrap, retirement, destruction, re-encryption.
//! - [`erasure`]: the erasure records `forget_subject` leaves (the ledger a restore re-applies).
//! - [`integrity`]: `verify` (every entry authenticated, cross-references checked) and
//!   `salvage` of a damaged vault; the commit anchor that refuses a rolled-back store.
//! - [`backup`], [`recovery`]: online backups, verify, restore; M-of-N recovery shares.
//! - [`outfile`]: output files written privately (0600, exclusive, no-follow) and atomically.
//! - [`migrate`]: copying a vault into another store (e.g. PostgreSQL) and verifying it.
//! - [`root`]: root key sources (Argon2id passphrase, key file; HSM/KMS can plug in).
//! - [`backend`]: AES-256-GCM by AWS-LC, `ring` or RustCrypto behind one trait.
//! - [`store`]: the [`Store`](store::Store) trait; the embedded `sled` store, PostgreSQL
//!   (feature `postgres`) and an in-memory store; reading sled's log for damage; the
//!   copy-on-write snapshots of online backups.
//! - `stored`: the framing of the envelopes the vault stores (records, vaulted tokens).
//! - [`anchor`]: the commit anchors that refuse a store which lost committed writes.
//! - [`status`]: what a vault holds, for `phivault status`.
//! - `root_pkcs11`: a PKCS#11 (HSM) root key source (feature `pkcs11`).
//! - [`parallel`]: the thread pool of the batch calls.
//! - [`secret`]: zeroizing key and plaintext containers; constant-time comparison.
//! - [`error`]: the one [`Error`] enum.
//!
//! ## Security notes
//! See SECURITY.md for the threat model and docs/FORMAT.md for every byte on disk.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod anchor;
pub mod audit;
pub mod backend;
pub mod backup;
mod cache;
mod codec;
pub mod context;
pub mod csv_tokenize;
pub mod deid;
pub mod envelope;
pub mod erasure;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod integrity;
pub mod jobs;
mod kdf;
pub mod keyring;
mod keys;
pub mod lifecycle;
pub mod migrate;
pub mod outfile;
pub mod parallel;
pub mod policy;
mod random;
pub mod records;
pub mod recovery;
pub mod root;
#[cfg(feature = "pkcs11")]
pub mod root_pkcs11;
pub mod secret;
pub mod session;
pub mod status;
pub mod store;
mod stored;
pub mod stream;
pub mod tokens;
pub mod vault;

#[cfg(test)]
mod testkit;

pub use backend::Backend;
pub use context::Context;
pub use error::{Error, Result, StoreError};
pub use keyring::{KeyState, KeyringInfo};
pub use policy::Caller;
pub use secret::ct_eq;
pub use secret::{Key32, SecretBytes};
pub use session::Session;
pub use vault::{EncryptOptions, Vault, VaultOptions};
