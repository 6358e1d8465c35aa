//! Integrity: [`Vault::verify`] reads and authenticates every entry of every space, and
//! [`salvage`] copies what still authenticates out of a damaged vault into a new one.
//!
//! Together with the commit anchor (a store that lost committed writes is refused on open
//! with [`Error::StoreRolledBack`]) these are phivault's answer to a disk fault: a damaged
//! store is reported with the location of each problem, never read as empty. The runbook
//! (docs/ops-runbook.md, "Disk fault") says what to do with a report.
//!
//! ```
//! use phivault::{Vault, root::KeyFile, Key32};
//! let dir = tempfile::tempdir()?;
//! let vault = Vault::create(dir.path().join("v"), &KeyFile::from_key(Key32::random()?))?;
//! vault.owner().put("notes", "MRN-1", b"note", None)?;
//! let report = vault.verify()?;
//! assert!(report.ok, "{:?}", report.problems);
//! assert_eq!(report.count("record"), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What is authenticated
//! - keyrings, field definitions, the policy, subject keys, the commit anchor: fully (each is
//!   sealed or MACed under a key derived from the vault master key and bound to its name);
//! - the audit log: every entry's MAC, the chain and the head anchor;
//! - records and vaulted tokens: the envelope header, key version, wrapped data key and key
//!   commitment, under the keyring version (or subject key) the envelope names — so a
//!   record's keyring and version must exist. The payload is bound to the record's id (or the
//!   token), which the store holds only as a keyed hash: a damaged payload is found by `get`
//!   ([`Error::AuthenticationFailed`]), not here;
//! - consistent-token index entries: the token entry they name exists, decrypts under its
//!   field and token, and its value hashes to the index key;
//! - erasure records: their structure and that their key names the erased subject.
//!
//! Problems are located by space and the stored key in hex (a keyed hash, a keyring or
//! field name, an audit sequence number): never plaintext.

use crate::envelope::Envelope;
use crate::erasure::ErasureRecord;
use crate::kdf::{self, Mac, label};
use crate::root::RootKeySource;
use crate::store::sled_repair::Repair;
use crate::store::{ScanIter, SledStore, Space, Store, WriteOp};
use crate::tokens::{FieldSpec, TokenKind};
use crate::vault::Vault;
use crate::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Problems listed in a report (all are counted).
pub const MAX_PROBLEMS: usize = 20;
/// Entries per batch written by [`salvage`].
const SALVAGE_BATCH: usize = 4096;

/// A space's name in reports.
pub fn space_name(space: Space) -> &'static str {
    match space {
        Space::Meta => "meta",
        Space::Audit => "audit",
        Space::Erasure => "erasure",
        Space::Keyring => "keyring",
        Space::Record => "record",
        Space::Token => "token",
        Space::TokenIndex => "token-index",
        Space::Field => "field",
        Space::Subject => "subject",
    }
}

/// Counts of one space.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct SpaceCount {
    /// The space ([`space_name`]).
    pub space: &'static str,
    /// Entries read.
    pub entries: u64,
    /// Entries that authenticated.
    pub ok: u64,
    /// Entries that are authentic but unreadable by design: under a destroyed or retired key
    /// version, or of a forgotten subject.
    pub unreadable: u64,
    /// Entries that failed a check.
    pub bad: u64,
}

/// One problem: where, and what failed (never stored data).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// The space ([`space_name`]).
    pub space: &'static str,
    /// The stored key in hex (first 48 bytes).
    pub key: String,
    /// What failed.
    pub what: &'static str,
}

/// What [`Vault::verify`] found.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct VerifyReport {
    /// No problem found.
    pub ok: bool,
    /// Entries read, all spaces.
    pub entries: u64,
    /// Per space, in reading order.
    pub spaces: Vec<SpaceCount>,
    /// All problems found.
    pub problem_count: u64,
    /// The first [`MAX_PROBLEMS`] problems.
    pub problems: Vec<Problem>,
    /// Audit entries whose chain verified.
    pub audit_entries: u64,
    /// The commit the store's anchor entry records (`None`: no anchor entry).
    pub store_commit: Option<u64>,
    /// The commit the anchor file records (`None`: no file, as for a store-held vault).
    pub anchor_commit: Option<u64>,
}

impl VerifyReport {
    /// Entries read in the space named `space` ([`space_name`]).
    pub fn count(&self, space: &str) -> u64 {
        self.spaces
            .iter()
            .find(|s| s.space == space)
            .map_or(0, |s| s.entries)
    }

    fn problem(&mut self, space: Space, key: &[u8], what: &'static str) {
        self.ok = false;
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                space: space_name(space),
                key: hex::encode(&key[..key.len().min(48)]),
                what,
            });
        }
    }
}

/// The outcome of checking one entry.
enum Check {
    Ok,
    /// Authentic, but unreadable by design (destroyed/retired key, forgotten subject).
    Unreadable,
    Bad(&'static str),
}

/// What a check needs besides the vault: the consistent vaulted fields (for index entries)
/// and the audit chain so far.
struct Checker {
    fields: Vec<FieldSpec>,
    /// No vaulted field is inconsistent: every token entry must then have its index entry.
    all_vaulted_consistent: bool,
    /// Every token entry, and every token entry an index entry names: equal when each token
    /// has exactly one index entry (checked in constant memory, located only when not).
    tokens: SetSum,
    index_refs: SetSum,
    audit_prev: [u8; 32],
    audit_next: u64,
    /// The chain broke: later audit entries cannot be checked.
    audit_broken: bool,
}

/// An order-free summary of a multiset of 32-byte keyed hashes (count, sum and xor of their
/// halves): two multisets of store keys that differ summarise differently unless someone who
/// can compute the vault's keyed hashes chose them to collide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SetSum {
    n: u64,
    sum: u128,
    xor: u128,
}

impl SetSum {
    fn add(&mut self, key: &[u8]) {
        let mut k = [0u8; 32];
        let n = key.len().min(32);
        k[..n].copy_from_slice(&key[..n]);
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        a.copy_from_slice(&k[..16]);
        b.copy_from_slice(&k[16..]);
        self.n += 1;
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(a));
        self.xor ^= u128::from_le_bytes(b);
    }
}

impl Checker {
    fn new(vault: &Vault) -> Self {
        // A damaged field definition must not stop the check: it is reported where it lies.
        let all: Vec<FieldSpec> = vault
            .fields()
            .or_else(|_| Ok::<_, Error>(crate::tokens::presets()))
            .unwrap_or_default();
        let all_vaulted_consistent = all
            .iter()
            .all(|f| f.kind != TokenKind::Vaulted || f.consistent);
        let fields = all
            .into_iter()
            .filter(|f| f.kind == TokenKind::Vaulted && f.consistent)
            .collect();
        Checker {
            fields,
            all_vaulted_consistent,
            tokens: SetSum::default(),
            index_refs: SetSum::default(),
            audit_prev: [0u8; 32],
            audit_next: 1,
            audit_broken: false,
        }
    }
}

fn by_design(e: &Error) -> bool {
    matches!(
        e,
        Error::KeyDestroyed { .. } | Error::KeyRetired { .. } | Error::SubjectForgotten
    )
}

impl Vault {
    /// Reads every entry of every space and authenticates it, checks cross-references, and
    /// reports counts and the first problems with their location (module documentation).
    /// Constant memory. Recorded in the audit log.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_with_progress(&mut |_| {})
    }

    /// [`Vault::verify`], calling `progress` with the number of entries read so far (every
    /// 4096 entries and at the end).
    pub fn verify_with_progress(&self, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport> {
        self.audit.admin(
            crate::audit::Action::Admin,
            "vault",
            None,
            "verify store integrity".into(),
        )?;
        self.audit_flush()?;
        let mut report = VerifyReport {
            ok: true,
            ..VerifyReport::default()
        };
        let mut checker = Checker::new(self);
        for space in Space::ALL {
            let mut count = SpaceCount {
                space: space_name(space),
                ..SpaceCount::default()
            };
            for item in ScanIter::new(self.store.as_ref(), space, Vec::new()) {
                let (key, value) = match item {
                    Ok(kv) => kv,
                    Err(_) => {
                        report.problem(space, &[], "the store could not read the entries here");
                        break;
                    }
                };
                count.entries += 1;
                report.entries += 1;
                match self.check_entry(&mut checker, space, &key, &value) {
                    Check::Ok => count.ok += 1,
                    Check::Unreadable => count.unreadable += 1,
                    Check::Bad(what) => {
                        count.bad += 1;
                        report.problem(space, &key, what);
                    }
                }
                if report.entries.is_multiple_of(4096) {
                    progress(report.entries);
                }
            }
            report.spaces.push(count);
        }
        progress(report.entries);
        if checker.all_vaulted_consistent && checker.tokens != checker.index_refs {
            self.locate_unindexed_tokens(&checker, &mut report)?;
        }
        report.audit_entries = checker.audit_next - 1;
        // The head anchor names the last entry.
        let head = self
            .store
            .get(Space::Meta, crate::audit::HEAD_KEY)?
            .map(|v| crate::audit::decode_head(&v));
        match head {
            Some(Ok((seq, mac)))
                if checker.audit_broken
                    || seq != checker.audit_next - 1
                    || (seq > 0 && !crate::secret::ct_eq(&mac, &checker.audit_prev)) =>
            {
                report.problem(
                    Space::Audit,
                    &seq.to_be_bytes(),
                    "the audit log does not end at its head anchor (entries lost or added)",
                );
            }
            Some(Ok(_)) => {}
            Some(Err(_)) => report.problem(
                Space::Meta,
                crate::audit::HEAD_KEY,
                "audit head anchor cannot be decoded",
            ),
            None if checker.audit_next > 1 => report.problem(
                Space::Meta,
                crate::audit::HEAD_KEY,
                "audit head anchor missing",
            ),
            None => {}
        }
        let mac = &self.keys.anchor;
        report.store_commit =
            crate::anchor::store_counter(self.store.as_ref(), mac, self.keys.vault_id())
                .ok()
                .flatten();
        if let Some(dir) = self.path() {
            report.anchor_commit =
                crate::anchor::file_counter(dir, mac, self.keys.vault_id()).unwrap_or(None);
        }
        Ok(report)
    }

    /// Checks one entry of `space` (see the module documentation for what is checked).
    fn check_entry(&self, c: &mut Checker, space: Space, key: &[u8], value: &[u8]) -> Check {
        match space {
            Space::Meta => self.check_meta(key, value),
            Space::Keyring => match std::str::from_utf8(key) {
                Ok(name) if self.keys.unseal_keyring(name, value).is_ok() => Check::Ok,
                _ => Check::Bad("keyring does not authenticate"),
            },
            Space::Field => match std::str::from_utf8(key) {
                Ok(name) if self.tokens.unseal_field(name, value).is_ok() => Check::Ok,
                _ => Check::Bad("field definition does not authenticate"),
            },
            Space::Subject => match self.keys.subject_key_by_id(key) {
                Ok(_) => Check::Ok,
                Err(e) if by_design(&e) => Check::Unreadable,
                Err(Error::UnknownKeyring { .. } | Error::UnknownKeyVersion { .. }) => {
                    Check::Bad("subject key names a keyring or key version that does not exist")
                }
                Err(_) => Check::Bad("subject key does not authenticate"),
            },
            Space::Erasure => check_erasure(key, value),
            Space::Record => self.check_envelope_value(value, "record"),
            Space::Token => {
                c.tokens.add(key);
                self.check_envelope_value(value, "vaulted token")
            }
            Space::TokenIndex => self.check_index(c, key, value),
            Space::Audit => {
                let first = <[u8; 8]>::try_from(key).map(u64::from_be_bytes).ok();
                if c.audit_broken {
                    return Check::Bad("audit entry after a break in the chain");
                }
                if first != Some(c.audit_next) {
                    c.audit_broken = true;
                    return Check::Bad("audit entries missing or out of order before this one");
                }
                if crate::audit::check_value(
                    self.audit.mac(),
                    &mut c.audit_prev,
                    &mut c.audit_next,
                    value,
                ) {
                    Check::Ok
                } else {
                    c.audit_broken = true;
                    Check::Bad("audit entry does not authenticate in the chain")
                }
            }
        }
    }

    fn check_meta(&self, key: &[u8], value: &[u8]) -> Check {
        if key == crate::anchor::ANCHOR_KEY {
            return match crate::anchor::parse(&self.keys.anchor, self.keys.vault_id(), value) {
                Some(_) => Check::Ok,
                None => Check::Bad("commit anchor entry does not authenticate"),
            };
        }
        if key == crate::audit::HEAD_KEY {
            return match crate::audit::decode_head(value) {
                Ok(_) => Check::Ok, // checked against the chain at the end
                Err(_) => Check::Bad("audit head anchor cannot be decoded"),
            };
        }
        if key == crate::policy::POLICY_KEY {
            return match self.keys.unseal_meta(&[b"policy"], value) {
                Ok(_) => Check::Ok,
                Err(_) => Check::Bad("policy does not authenticate"),
            };
        }
        if key == b"header" {
            // The header of a store-held vault: it unlocked this vault, so it must name it.
            return match Vault::header_vault_id(value) {
                Ok(id) if &id == self.keys.vault_id() => Check::Ok,
                _ => Check::Bad("vault header does not decode or names another vault"),
            };
        }
        if let Some(name) = key.strip_prefix(crate::deid::STORED_SCHEMA_PREFIX) {
            return match self
                .keys
                .unseal_meta(&[crate::deid::STORED_SCHEMA_LABEL, name], value)
            {
                Ok(_) => Check::Ok,
                Err(_) => Check::Bad("de-identification schema does not authenticate"),
            };
        }
        if key == crate::lifecycle::CHECKPOINT_KEY {
            // Not authenticated by design: a damaged checkpoint only restarts a rewrap.
            return Check::Ok;
        }
        Check::Bad("unknown metadata entry")
    }

    /// A record or vaulted token: `RECORD_FORMAT ‖ envelope`, whose key part authenticates
    /// under the keyring version (or subject key) it names.
    fn check_envelope_value(&self, value: &[u8], _what: &'static str) -> Check {
        let Ok(env) = crate::stored::envelope_of(value, "stored value") else {
            return Check::Bad("unknown value format");
        };
        let Ok(env) = Envelope::parse(env) else {
            return Check::Bad("envelope does not parse");
        };
        let kek = match env.subject_key_id() {
            Some(id) => self.keys.subject_key_for_envelope(id, env.keyring()),
            None => self
                .keys
                .keyring(env.keyring())
                .and_then(|k| k.decrypting_kek(env.key_version())),
        };
        match kek {
            Ok(kek) => match crate::envelope::check_key_part(&env, &kek) {
                Ok(()) => Check::Ok,
                Err(_) => Check::Bad("envelope key part does not authenticate"),
            },
            Err(e) if by_design(&e) => Check::Unreadable,
            Err(Error::UnknownKeyring { .. }) => Check::Bad("envelope names an unknown keyring"),
            Err(Error::UnknownKeyVersion { .. }) => {
                Check::Bad("envelope names a key version its keyring does not have")
            }
            Err(_) => Check::Bad("the key of this envelope cannot be loaded"),
        }
    }

    /// A consistent-token index entry: `index MAC → token`. The token entry must exist under
    /// some consistent vaulted field, decrypt, and its value must hash to this key.
    fn check_index(&self, c: &mut Checker, key: &[u8], value: &[u8]) -> Check {
        let Ok(token) = std::str::from_utf8(value) else {
            return Check::Bad("token index entry is not a token");
        };
        for f in &c.fields {
            let tkey = self.tokens.token_key(&f.name, token);
            let Ok(Some(stored)) = self.store.get(Space::Token, &tkey) else {
                continue;
            };
            c.index_refs.add(&tkey);
            let Ok(env) = crate::stored::envelope_of(&stored, "vaulted token") else {
                return Check::Bad("the token entry of this index entry is damaged");
            };
            let ctx = crate::tokens::vaulted::token_context(&f.name, token);
            let plain = match Envelope::parse(env).and_then(|env| self.keys.open(&env, &ctx)) {
                Ok(p) => p,
                Err(e) if by_design(&e) => return Check::Unreadable,
                Err(_) => {
                    return Check::Bad("the token entry of this index entry does not authenticate");
                }
            };
            let index = match Envelope::parse(&stored[1..])
                .map(|e| e.subject_key_id().map(<[u8]>::to_vec))
            {
                Ok(Some(id)) => match self.keys.subject_key_by_id(&id) {
                    Ok(sk) => kdf::expand_key(sk.key(), &[label::SUBJECT_TOKEN_INDEX])
                        .map(|k| Mac::new(&k)),
                    Err(e) if by_design(&e) => return Check::Unreadable,
                    Err(_) => return Check::Bad("the subject key of this token is missing"),
                },
                Ok(None) => Ok(self.keys.token_index.clone()),
                Err(_) => return Check::Bad("the token entry of this index entry is damaged"),
            };
            let Ok(index) = index else {
                return Check::Bad("index key derivation failed");
            };
            let want = index.tag(&[f.name.as_bytes(), &plain]);
            return if crate::secret::ct_eq(&want, key) {
                Check::Ok
            } else {
                Check::Bad("token index entry and token entry disagree")
            };
        }
        Check::Bad("token index entry names a token that is not stored")
    }
}

impl Vault {
    /// The token entries that no index entry names (the summaries of the first pass differ):
    /// a second pass that holds the named token keys in memory, run only when something is
    /// wrong. Each such entry is reported; so is a mismatch it cannot place (an index entry
    /// naming a token entry that another one names too is reported by `check_index`).
    fn locate_unindexed_tokens(&self, c: &Checker, report: &mut VerifyReport) -> Result<()> {
        let mut named = std::collections::HashSet::new();
        for item in ScanIter::new(self.store.as_ref(), Space::TokenIndex, Vec::new()) {
            let (_, value) = item?;
            let Ok(token) = std::str::from_utf8(&value) else {
                continue;
            };
            for f in &c.fields {
                let tkey = self.tokens.token_key(&f.name, token);
                if self.store.get(Space::Token, &tkey)?.is_some() {
                    named.insert(tkey.to_vec());
                    break;
                }
            }
        }
        let mut found = 0;
        for item in ScanIter::new(self.store.as_ref(), Space::Token, Vec::new()) {
            let (key, _) = item?;
            if !named.contains(&key) {
                found += 1;
                report.problem(
                    Space::Token,
                    &key,
                    "token entry has no index entry (its value would be given a second token)",
                );
            }
        }
        if let Some(count) = report.spaces.iter_mut().find(|s| s.space == "token") {
            count.bad += found;
        }
        if found == 0 {
            report.problem(
                Space::TokenIndex,
                &[],
                "token entries and index entries do not pair up one to one",
            );
        }
        Ok(())
    }
}

fn check_erasure(key: &[u8], value: &[u8]) -> Check {
    if crate::codec::decode_exact::<ErasureRecord>(value, "erasure record").is_err() {
        return Check::Bad("erasure record cannot be decoded");
    }
    match ErasureRecord::decode(key, value) {
        Ok(_) => Check::Ok,
        Err(_) => Check::Bad("erasure record does not match its key"),
    }
}

/// What [`salvage`] copied and lost, per space.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct SalvageReport {
    /// The new vault's directory.
    pub to: PathBuf,
    /// Per space: entries the damaged store still gave (`entries`), copied (`ok` and
    /// `unreadable`, which are authentic) and dropped because they failed a check (`bad`).
    pub spaces: Vec<SpaceCount>,
    /// Entries copied, all spaces.
    pub copied: u64,
    /// Entries dropped because they failed a check.
    pub dropped: u64,
    /// The last commit the damaged store still holds (its anchor entry after recovery).
    pub store_commit: Option<u64>,
    /// The last commit the damaged vault's anchor file records.
    pub anchor_commit: Option<u64>,
    /// Commits the store lost (`anchor_commit - store_commit`): writes whose entries are not
    /// in the store any more, and so not in the new vault — compare with the last backup.
    pub commits_lost: Option<u64>,
    /// Damaged stretches of the store's log that salvage stepped over (their checksums failed)
    /// so that what follows them could be read; what they held is lost.
    pub log_stretches_skipped: u64,
    /// Bytes in those stretches.
    pub log_bytes_skipped: u64,
    /// Entries the damaged store yielded a second time (from a page older than the stretch
    /// stepped over), not copied again. Non-zero means some copied entries may be older
    /// versions: compare with the last backup.
    pub repeated: u64,
    /// The first [`MAX_PROBLEMS`] problems met.
    pub problems: Vec<Problem>,
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let io = |what: &Path, e| Error::io(format!("copying {}", what.display()), e);
    std::fs::create_dir_all(to).map_err(|e| io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let entry = entry.map_err(|e| io(from, e))?;
        let dest = to.join(entry.file_name());
        if entry.file_type().map_err(|e| io(from, e))?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest).map_err(|e| io(&entry.path(), e))?;
        }
    }
    Ok(())
}

/// Copies every entry that still authenticates out of the damaged vault in directory `from`
/// into a new vault at `to` (which must not exist, or be an empty directory), with the same
/// header — the same vault id, master key and root key. Reports what was copied and lost.
///
/// `from` is never written: its store is copied first and the store's recovery runs on the
/// copy. Before it does, each damaged log message recovery can do without is stepped over
/// ([`crate::store::sled_repair`]), so that what follows it is read rather than cut off; where
/// that leaves the store unable to recover, the copy's log is ended at the damage instead.
/// Entries the recovery dropped cannot be copied; the anchor counters in the report say how
/// many commits were lost, and the runbook says how to compare with the last backup. The audit log is copied up to its first break, and the new
/// vault's log records the salvage.
pub fn salvage(
    from: impl AsRef<Path>,
    to: impl AsRef<Path>,
    root: &dyn RootKeySource,
) -> Result<SalvageReport> {
    let (from, to) = (from.as_ref(), to.as_ref());
    let header_path = from.join(crate::keys::header::HEADER_FILE);
    if !header_path.is_file() {
        return Err(Error::VaultNotFound {
            path: from.to_path_buf(),
        });
    }
    if to.exists()
        && std::fs::read_dir(to)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::VaultExists {
            path: to.to_path_buf(),
        });
    }
    let header = std::fs::read(&header_path)
        .map_err(|e| Error::io(format!("reading {}", header_path.display()), e))?;
    // Unlock first: a wrong root key touches nothing.
    let (vault_id, vmk) = Vault::unlock_header(&header, root)?;
    let mut r = [0u8; 8];
    crate::random::fill_random(&mut r)?;
    let parent = to.parent().unwrap_or(Path::new("."));
    let work = parent.join(format!(".phivault-salvage-{}", hex::encode(r)));
    // First with the log's damaged messages stepped over; if the store cannot recover from
    // that (sled asserts on page states it never wrote), again from a plain copy, where its
    // recovery cuts the log at the first damage.
    let attempt = |how| {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            salvage_into(from, &work, to, &header, root, &vault_id, &vmk, how)
        }));
        let _ = std::fs::remove_dir_all(&work);
        r.unwrap_or(Err(Error::Store(crate::error::StoreError::Corrupt(
            "the store's recovery failed on damaged data",
        ))))
    };
    match attempt(Repair::StepOver) {
        Err(Error::StoreCorrupted { .. } | Error::Store(_)) => attempt(Repair::EndAtDamage),
        r => r,
    }
}

#[allow(clippy::too_many_arguments)] // one private step of `salvage`, called from one place
fn salvage_into(
    from: &Path,
    work: &Path,
    to: &Path,
    header: &[u8],
    root: &dyn RootKeySource,
    vault_id: &[u8; 16],
    vmk: &crate::Key32,
    how: Repair,
) -> Result<SalvageReport> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(work)
        .map_err(|e| Error::io(format!("creating {}", work.display()), e))?;
    let src_copy = work.join("damaged-store");
    copy_tree(&from.join(crate::vault::STORE_DIR), &src_copy)?;
    // Step over damaged log messages so that the recovery below reads what follows them.
    let log = crate::store::sled_repair::repair_log(&src_copy, how)
        .map_err(|e| Error::io(format!("reading the copy of {}", from.display()), e))?;
    let mac = crate::keys::anchor_mac(vmk)?;
    let anchor_commit = crate::anchor::file_counter(from, &mac, vault_id).unwrap_or(None);
    let src = Vault::over_store(
        Box::new(SledStore::open(
            &src_copy,
            crate::store::Durability::Deferred,
        )?),
        header,
        root,
    )?;
    let store_commit =
        crate::anchor::store_counter(src.store.as_ref(), &mac, vault_id).unwrap_or(None);
    let new_dir = work.join("new");
    builder
        .create(&new_dir)
        .map_err(|e| Error::io(format!("creating {}", new_dir.display()), e))?;
    let dest = SledStore::open(
        &new_dir.join(crate::vault::STORE_DIR),
        crate::store::Durability::Deferred,
    )?;
    let mut report = SalvageReport {
        to: to.to_path_buf(),
        store_commit,
        anchor_commit,
        commits_lost: match (anchor_commit, store_commit) {
            (Some(a), Some(s)) => Some(a.saturating_sub(s)),
            (Some(a), None) => Some(a),
            _ => None,
        },
        log_stretches_skipped: log.stretches,
        log_bytes_skipped: log.bytes,
        ..SalvageReport::default()
    };
    let mut vr = VerifyReport::default();
    let mut checker = Checker::new(&src);
    let mut batch = Vec::with_capacity(SALVAGE_BATCH);
    for space in Space::ALL {
        let mut count = SpaceCount {
            space: space_name(space),
            ..SpaceCount::default()
        };
        let mut last: Option<Vec<u8>> = None;
        for item in ScanIter::new(src.store.as_ref(), space, Vec::new()) {
            let Ok((key, value)) = item else {
                vr.problem(space, &[], "the store could not read the entries here");
                break;
            };
            // A page rebuilt from an older state (after its newer state was stepped over)
            // can yield a key range again: the first occurrence is kept.
            if last.as_ref().is_some_and(|l| key <= *l) {
                report.repeated += 1;
                continue;
            }
            last = Some(key.clone());
            count.entries += 1;
            // The new vault gets its own anchor and audit head (below).
            if space == Space::Meta
                && (key == crate::anchor::ANCHOR_KEY
                    || key == crate::audit::HEAD_KEY
                    || key == crate::lifecycle::CHECKPOINT_KEY)
            {
                count.ok += 1;
                continue;
            }
            match src.check_entry(&mut checker, space, &key, &value) {
                Check::Ok => count.ok += 1,
                Check::Unreadable => count.unreadable += 1,
                Check::Bad(what) => {
                    count.bad += 1;
                    vr.problem(space, &key, what);
                    continue;
                }
            }
            batch.push(WriteOp::Put { space, key, value });
            if batch.len() >= SALVAGE_BATCH {
                dest.write_unsynced(std::mem::take(&mut batch))?;
            }
        }
        report.copied += count.ok + count.unreadable;
        report.dropped += count.bad;
        report.spaces.push(count);
    }
    // The audit head names the last entry copied (no head: no entry survived, a new chain).
    if checker.audit_next > 1 {
        batch.push(WriteOp::Put {
            space: Space::Meta,
            key: crate::audit::HEAD_KEY.to_vec(),
            value: crate::audit::head_value(checker.audit_next - 1, checker.audit_prev)?,
        });
    }
    dest.write_unsynced(batch)?;
    dest.flush()?;
    drop(dest);
    drop(src);
    report.problems = vr.problems;
    crate::outfile::write_file_atomic(&new_dir.join(crate::keys::header::HEADER_FILE), header)?;
    let vault = Vault::open(&new_dir, root)?;
    vault.audit.admin(
        crate::audit::Action::Admin,
        "vault",
        None,
        format!(
            "salvaged from a damaged vault: {} entries copied, {} dropped, {} commits lost",
            report.copied,
            report.dropped,
            report
                .commits_lost
                .map_or_else(|| "unknown".into(), |n| n.to_string())
        ),
    )?;
    vault.store.flush()?;
    drop(vault);
    if to.exists() {
        std::fs::remove_dir(to).map_err(|e| Error::io(format!("replacing {}", to.display()), e))?;
    }
    std::fs::rename(&new_dir, to)
        .map_err(|e| Error::io(format!("renaming to {}", to.display()), e))?;
    let parent = to.parent().unwrap_or(Path::new("."));
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing {}", parent.display()), e))?;
    Ok(report)
}
