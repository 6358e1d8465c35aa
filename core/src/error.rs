//! The one error type of the `phivault` crate.
//!
//! Messages never contain secret or PHI input: they name the operation, the keyring or the
//! field, never a value. Every authentication failure — a bad tag, a wrong context, a damaged
//! header, a swapped wrapped key — is the single opaque [`Error::AuthenticationFailed`], so an
//! attacker cannot learn which check failed.

use std::path::PathBuf;

/// Everything that can go wrong in `phivault`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A ciphertext, envelope or token failed authentication: it was damaged, tampered with,
    /// truncated, or does not belong to this context or key.
    #[error("authentication failed")]
    AuthenticationFailed,

    /// The root key (passphrase or key file) does not unlock this vault, or the vault header
    /// was damaged.
    #[error("wrong root key: the passphrase or key file does not unlock this vault")]
    WrongRootKey,

    /// The vault was created with another kind of root key than the one given.
    #[error("this vault's root key is a {expected}, but a {given} was given")]
    RootKindMismatch {
        /// The kind the vault was created with.
        expected: &'static str,
        /// The kind that was offered.
        given: &'static str,
    },

    /// Another process (or another handle in this process) holds the vault open.
    #[error("vault is locked by another process: {path}")]
    VaultLocked {
        /// The vault directory.
        path: PathBuf,
    },

    /// No vault exists at the path.
    #[error("no vault at {path}")]
    VaultNotFound {
        /// The path that was opened.
        path: PathBuf,
    },

    /// A vault already exists at the path.
    #[error("a vault already exists at {path}")]
    VaultExists {
        /// The path that was given to `create`.
        path: PathBuf,
    },

    /// The data was written by a newer (or unknown) format version.
    #[error("unsupported {what} format version {version}")]
    UnsupportedVersion {
        /// What carried the version (envelope, vault header, record, ...).
        what: &'static str,
        /// The version found.
        version: u32,
    },

    /// The named keyring does not exist in this vault.
    #[error("unknown keyring '{keyring}'")]
    UnknownKeyring {
        /// The keyring name.
        keyring: String,
    },

    /// The keyring exists, but not with that key version.
    #[error("keyring '{keyring}' has no key version {version}")]
    UnknownKeyVersion {
        /// The keyring name.
        keyring: String,
        /// The version asked for.
        version: u32,
    },

    /// The key version was destroyed: data under it can never be decrypted again.
    #[error("keyring '{keyring}' key version {version} was destroyed")]
    KeyDestroyed {
        /// The keyring name.
        keyring: String,
        /// The destroyed version.
        version: u32,
    },

    /// The key version is retired (below the keyring's minimum decryption version).
    #[error(
        "keyring '{keyring}' key version {version} is retired (minimum decryption version is {min})"
    )]
    KeyRetired {
        /// The keyring name.
        keyring: String,
        /// The retired version.
        version: u32,
        /// The keyring's minimum decryption version.
        min: u32,
    },

    /// The data belongs to a subject whose key was destroyed (`forget_subject`).
    #[error("the data subject was forgotten: its key is destroyed and its data is unrecoverable")]
    SubjectForgotten,

    /// A key version still protects data and was not destroyed (pass `force` to destroy it
    /// anyway, making that data unrecoverable).
    #[error(
        "keyring '{keyring}' key version {version} still protects {records} records or tokens and {subject_keys} subject keys; rewrap first, or force"
    )]
    KeyInUse {
        /// The keyring name.
        keyring: String,
        /// The version.
        version: u32,
        /// Records and vaulted tokens that depend on it.
        records: u64,
        /// Subject keys wrapped by it.
        subject_keys: u64,
    },

    /// A field derives its FF1, pseudonym or date-shift key from this key version: destroying
    /// it would make every such token irreversible (pass `force` to do it anyway).
    #[error(
        "keyring '{keyring}' key version {version} is the key of field '{field}'; migrate the field first, or force"
    )]
    KeyPinnedByField {
        /// The keyring name.
        keyring: String,
        /// The version.
        version: u32,
        /// A field that uses it.
        field: String,
    },

    /// A concurrent change got in the way; the operation changed nothing and can be retried.
    #[error("conflict: {what}")]
    Conflict {
        /// What conflicted.
        what: &'static str,
    },

    /// The token is not a token of this field: unknown, malformed or forged.
    #[error("invalid token for field '{field}'")]
    InvalidToken {
        /// The field.
        field: String,
    },

    /// No field of that name is defined (and no preset has it).
    #[error("unknown field '{field}'")]
    UnknownField {
        /// The field name.
        field: String,
    },

    /// The field is tied to data subjects: the call must name the subject.
    #[error("field '{field}' is tied to data subjects: give the subject")]
    SubjectRequired {
        /// The field name.
        field: String,
    },

    /// The policy does not allow this principal this action (default deny).
    #[error("access denied: principal '{principal}' may not {action} here")]
    AccessDenied {
        /// The principal.
        principal: String,
        /// The action.
        action: &'static str,
    },

    /// The audit entry could not be written, so the operation was refused (fail closed).
    #[error("audit log unavailable: operation refused")]
    AuditUnavailable,

    /// A keyring with that name exists already.
    #[error("keyring '{keyring}' exists already")]
    KeyringExists {
        /// The keyring name.
        keyring: String,
    },

    /// An argument was not acceptable; the message says which and why (never its value).
    #[error("invalid {what}: {why}")]
    InvalidInput {
        /// What was invalid (a parameter name).
        what: &'static str,
        /// Why, without echoing the value.
        why: &'static str,
    },

    /// A CSV input could not be read: the row (the header is row 1) and what is wrong with it,
    /// never its contents (`csv_tokenize`).
    #[error("CSV row {row}: {kind}")]
    Csv {
        /// The row, counting the header as row 1 (a record, which quoted line breaks may spread
        /// over several lines).
        row: u64,
        /// What is wrong.
        kind: CsvErrorKind,
    },

    /// No de-identification schema has this name (neither a preset nor a stored one).
    #[error("unknown de-identification schema '{name}'")]
    UnknownSchema {
        /// The name asked for.
        name: String,
    },

    /// A de-identification schema could not be read: the rule (counted from 1; 0 for the
    /// schema as a whole), the position (in the rule's path, or in the text for rule 0; 0
    /// when none applies) and what is wrong (`deid`).
    #[error("de-identification schema{}: {why}", schema_where(*.rule, *.position))]
    DeidSchema {
        /// The rule, from 1; 0 for the schema as a whole.
        rule: usize,
        /// The character of the rule's path (or the byte of the text, for rule 0), from 1;
        /// 0 when none applies.
        position: usize,
        /// What is wrong.
        why: &'static str,
    },

    /// A line of an NDJSON input could not be read as a JSON resource: the line (from 1) and
    /// why, never its contents (`deid`).
    #[error("NDJSON line {line}: {why}")]
    Ndjson {
        /// The line, from 1.
        line: u64,
        /// What is wrong.
        why: &'static str,
    },

    /// A column to tokenize, or the subject column, is not in the CSV header (`csv_tokenize`).
    #[error("{}column '{column}' is not in the CSV header", if *.subject { "subject " } else { "" })]
    CsvColumnMissing {
        /// The column name, as the caller gave it.
        column: String,
        /// Whether it is the subject column.
        subject: bool,
    },

    /// Vault metadata (header, keyring) read from the store failed authentication or could not
    /// be decoded: the store was damaged or edited outside phivault.
    #[error("vault metadata is damaged or was tampered with: {what}")]
    CorruptMetadata {
        /// Which piece of metadata.
        what: &'static str,
    },

    /// A backup file is damaged, truncated, reordered or was tampered with (or is not a
    /// phivault backup). Nothing was restored.
    #[error("backup is damaged or was tampered with: {what}")]
    BackupDamaged {
        /// What check failed (never file contents).
        what: &'static str,
    },

    /// A recovery share is malformed or fails its checksum (mistyped or damaged).
    #[error("invalid recovery share: {why}")]
    InvalidShare {
        /// Why.
        why: &'static str,
    },

    /// A recovery share belongs to another vault.
    #[error("recovery share {index} belongs to vault {share_vault}, not to vault {vault}")]
    ShareFromAnotherVault {
        /// The share's index.
        index: u8,
        /// The vault id the share names.
        share_vault: String,
        /// The vault being unlocked.
        vault: String,
    },

    /// Fewer distinct recovery shares than the threshold: nothing was unlocked.
    #[error("not enough recovery shares: {given} given, {threshold} needed")]
    NotEnoughShares {
        /// Distinct shares given.
        given: usize,
        /// Shares needed.
        threshold: usize,
    },

    /// The recovery shares do not belong together or do not reconstruct this vault's key.
    #[error("recovery shares do not fit together: {why}")]
    SharesMismatch {
        /// Why.
        why: &'static str,
    },

    /// The store holds fewer commits than its commit anchor (`store.anchor`) records: committed
    /// writes are missing, because an older copy of the store was put back (a rollback) or
    /// because damage made the store's recovery drop its tail. Nothing was read from it.
    #[error(
        "the store is missing committed writes (it holds commit {store}, its anchor records commit {anchor}): an older copy was restored or the store was damaged; restore the latest backup, or run `phivault salvage` to copy out what remains"
    )]
    StoreRolledBack {
        /// The last commit the store holds.
        store: u64,
        /// The last commit the anchor file records.
        anchor: u64,
    },

    /// The store's integrity cannot be established: its commit anchor entry or the anchor file
    /// is missing or fails authentication, or damage was found. Nothing was read from it.
    #[error(
        "the store is damaged: {what}; run `phivault verify` to see what is affected, then restore the latest backup or run `phivault salvage`"
    )]
    StoreCorrupted {
        /// What was found (never stored data).
        what: &'static str,
    },

    /// The underlying store failed.
    #[error("store error: {0}")]
    Store(#[from] StoreError),

    /// A file-system operation outside the store failed (key files, vault directory).
    #[error("{action}: {source}")]
    Io {
        /// What was being done (never contains secrets).
        action: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The operating system's random number generator or a primitive failed unexpectedly.
    #[error("cryptographic primitive failed: {0}")]
    Crypto(&'static str),
}

/// What is wrong with a row of CSV input ([`Error::Csv`]). Never carries the row's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsvErrorKind {
    /// The row has another number of fields than the header.
    #[error("row has {found} fields, header has {expected}")]
    UnequalLengths {
        /// Fields in the header.
        expected: u64,
        /// Fields in the row.
        found: u64,
    },
    /// The row is not UTF-8 text.
    #[error("not UTF-8")]
    NotUtf8,
    /// The reader could not parse the row.
    #[error("malformed CSV")]
    Malformed,
}

/// Errors of a [`Store`](crate::store::Store) implementation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backing database reported an error.
    #[error("{0}")]
    Backend(String),
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Data in the store is not what phivault wrote.
    #[error("store data is corrupt: {0}")]
    Corrupt(&'static str),
    /// The store is read-only here (a job snapshot in a worker process); the message says
    /// what needs a writable store.
    #[error("{0}")]
    ReadOnly(&'static str),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error of a lock poisoned by a panic elsewhere.
    pub(crate) fn poisoned() -> Self {
        Error::Crypto("a lock was poisoned by a panic in another thread")
    }

    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            action: action.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: &'static str, why: &'static str) -> Self {
        Error::InvalidInput { what, why }
    }
}

fn schema_where(rule: usize, position: usize) -> String {
    match (rule, position) {
        (0, 0) => String::new(),
        (0, p) => format!(" at byte {p}"),
        (r, 0) => format!(" rule {r}"),
        (r, p) => format!(" rule {r}, path position {p}"),
    }
}
