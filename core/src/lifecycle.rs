//! Key lifecycle: rotation on schedule, rewrap without re-encryption, retirement, destruction,
//! re-encryption, and the usage counts operators need to drive them.
//!
//! ```
//! use phivault::{Vault, root::KeyFile, Key32, lifecycle::RewrapOptions};
//! let dir = tempfile::tempdir()?;
//! let vault = Vault::create(dir.path().join("v"), &KeyFile::from_key(Key32::random()?))?;
//! vault.owner().put("notes", "1", b"note", None)?;
//! let v2 = vault.rotate("default")?;                       // O(1): new data uses v2 at once
//! let report = vault.rewrap(&RewrapOptions::default(), &mut |_| {})?;
//! assert_eq!(report.rewrapped, 1);                          // only the wrapped DEK changed
//! vault.set_min_decryption_version("default", v2)?;        // v1 refuses to decrypt (reversible)
//! vault.destroy_key_version("default", 1, false)?;         // nothing depends on v1 any more
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Security notes
//! Destroying a key version removes it from the keyring blob; the store may keep old bytes of
//! the previous blob until it compacts its log (see SECURITY.md). Rewrap checks each data key
//! against its envelope's commitment before wrapping it again, so it never launders a damaged
//! envelope into a valid-looking one.

use crate::codec;
use crate::envelope::{self, Envelope};
use crate::erasure::ErasureRecord;
use crate::keyring::now_unix;
use crate::store::{CasItem, ScanIter, Space, WriteOp};
use crate::vault::Vault;
use crate::{Context, Error, Result, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub(crate) const CHECKPOINT_KEY: &[u8] = b"rewrap-checkpoint";

/// Options for [`Vault::rewrap`].
#[derive(Clone, Debug)]
pub struct RewrapOptions {
    /// Only this keyring (default: all).
    pub keyring: Option<String>,
    /// Records per batch: one durable write and one checkpoint per batch (default 1000).
    pub batch: usize,
}

impl Default for RewrapOptions {
    fn default() -> Self {
        RewrapOptions {
            keyring: None,
            batch: 1000,
        }
    }
}

/// Progress of a running rewrap, reported after every batch.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct RewrapProgress {
    /// Records looked at so far (including those done before a resume).
    pub scanned: u64,
    /// Records rewrapped so far in this run.
    pub rewrapped: u64,
}

/// The outcome of a rewrap.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct RewrapReport {
    /// Records looked at in this run.
    pub scanned: u64,
    /// Records moved to their keyring's active version.
    pub rewrapped: u64,
    /// Records already on the active version.
    pub up_to_date: u64,
    /// Records tied to a subject (they follow their subject key, rewrapped below).
    pub subject_records: u64,
    /// Records changed by a concurrent writer between read and rewrap: left as written (the
    /// writer used the active key).
    pub raced: u64,
    /// Records that could not be rewrapped: their key version is retired or destroyed, or the
    /// record is damaged. They are left untouched.
    pub unreadable: u64,
    /// Subject keys moved to their keyring's active version.
    pub subject_keys_rewrapped: u64,
    /// Whether this run resumed from a checkpoint left by an interrupted run.
    pub resumed: bool,
}

/// Where an interrupted rewrap stopped. It is used only if the keyring filter and every
/// keyring's active version are still what they were, so a rotation in between starts over.
#[derive(Serialize, Deserialize, PartialEq)]
struct Checkpoint {
    keyring: Option<String>,
    actives: Vec<(String, u32)>,
    space: u8,
    last_key: Vec<u8>,
    /// The run passed over rows another worker held before `last_key` (a shared store): a
    /// resumed run ends with the plain pass.
    passed_over: bool,
}

/// The spaces whose values are `[format] || envelope` and follow rotations, in rewrap order
/// (their prefixes ascend, which the checkpoint relies on).
const REWRAP_SPACES: [Space; 2] = [Space::Record, Space::Token];

/// What depends on one key version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VersionUsage {
    /// Records whose envelope (or whose subject key) needs this version.
    pub records: u64,
    /// Subject keys wrapped by this version.
    pub subject_keys: u64,
    /// Vaulted token values whose envelope (or subject key) needs this version.
    pub tokens: u64,
}

/// Usage per (keyring, version), plus records whose subject was forgotten.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    /// By keyring and version.
    pub by_version: BTreeMap<(String, u32), VersionUsage>,
    /// All records.
    pub records: u64,
    /// Records tied to subjects.
    pub subject_records: u64,
    /// Records of forgotten subjects (unrecoverable; kept until deleted).
    pub forgotten_records: u64,
}

impl Vault {
    /// Rotates `keyring` only if its active version is older than `max_age` (for a daily cron
    /// job). Returns the new version, or `None` when the active one is young enough.
    pub fn rotate_if_older_than(&self, keyring: &str, max_age: Duration) -> Result<Option<u32>> {
        let kr = self.keys.keyring(keyring)?;
        let created = kr.versions.get(&kr.active).map_or(0, |v| v.created_unix);
        if now_unix().saturating_sub(created) < max_age.as_secs() {
            return Ok(None);
        }
        self.rotate(keyring).map(Some)
    }

    /// Versions below `min` refuse to decrypt, with an error naming keyring and version.
    /// Reversible: lower it again to re-enable them (unless they were destroyed).
    pub fn set_min_decryption_version(&self, keyring: &str, min: u32) -> Result<()> {
        // Job snapshots carry the keyring as it was: a retired version must not live on there.
        let _jobs = self.revoke_jobs()?;
        // Retiring the version an FF1, pseudonym or date-shift field derives its key from would
        // make every such token irreversible: refuse, naming the field.
        let below = self.field_pinning(keyring, |v| v < min)?;
        if let Some(field) = below {
            let version = self
                .fields()?
                .into_iter()
                .find(|f| f.name == field)
                .map_or(0, |f| f.key_version);
            return Err(Error::KeyPinnedByField {
                keyring: keyring.to_owned(),
                version,
                field,
            });
        }
        self.audit.admin(
            crate::audit::Action::Admin,
            keyring,
            None,
            format!("minimum decryption version {min}"),
        )?;
        self.keys.update_keyring(keyring, |rec| {
            if min == 0 || min > rec.active {
                return Err(Error::invalid(
                    "minimum decryption version",
                    "must be between 1 and the active version",
                ));
            }
            rec.min_decrypt = min;
            Ok(())
        })
    }

    /// A field (FF1, pseudonym; not vaulted, not subject-bound) whose key derives from a
    /// version of `keyring` that matches `which`.
    fn field_pinning(&self, keyring: &str, which: impl Fn(u32) -> bool) -> Result<Option<String>> {
        Ok(self
            .fields()?
            .into_iter()
            .find(|f| {
                f.kind != crate::tokens::TokenKind::Vaulted
                    && !f.subject
                    && f.keyring == keyring
                    && which(f.key_version)
            })
            .map(|f| f.name))
    }

    /// Counts what depends on each key version (scans records and subject keys; no
    /// decryption).
    pub fn usage(&self) -> Result<Usage> {
        let mut usage = Usage::default();
        let mut subjects: HashMap<Vec<u8>, (String, u32)> = HashMap::new();
        for entry in ScanIter::new(self.store.as_ref(), Space::Subject, Vec::new()) {
            let (id, value) = entry?;
            let (keyring, version) = self.keys.subject_key_location(&value)?;
            usage
                .by_version
                .entry((keyring.clone(), version))
                .or_default()
                .subject_keys += 1;
            subjects.insert(id, (keyring, version));
        }
        for space in REWRAP_SPACES {
            for info in self.records.envelopes(space) {
                let (keyring, version, subject) = info?;
                let is_record = space == Space::Record;
                if is_record {
                    usage.records += 1;
                }
                let slot = match subject {
                    None => Some((keyring, version)),
                    Some(id) => {
                        let found = subjects.get(&id).cloned();
                        if is_record {
                            usage.subject_records += 1;
                            if found.is_none() {
                                usage.forgotten_records += 1;
                            }
                        }
                        found
                    }
                };
                if let Some(slot) = slot {
                    let u = usage.by_version.entry(slot).or_default();
                    if is_record {
                        u.records += 1;
                    } else {
                        u.tokens += 1;
                    }
                }
            }
        }
        Ok(usage)
    }

    /// Destroys key version `version` of `keyring`: its key is wiped from the store and from
    /// memory, and nothing under it can be decrypted again. Refuses the active version, and
    /// refuses while records or subject keys still depend on it unless `force` is set.
    /// Returns what depended on it.
    pub fn destroy_key_version(
        &self,
        keyring: &str,
        version: u32,
        force: bool,
    ) -> Result<VersionUsage> {
        self.audit.admin(
            crate::audit::Action::Admin,
            keyring,
            None,
            format!(
                "destroy version {version}{}",
                if force { " (forced)" } else { "" }
            ),
        )?;
        let kr = self.keys.keyring(keyring)?;
        if !kr.versions.contains_key(&version) {
            return Err(Error::UnknownKeyVersion {
                keyring: keyring.to_owned(),
                version,
            });
        }
        if version == kr.active {
            return Err(Error::invalid(
                "key version",
                "the active version cannot be destroyed; rotate first",
            ));
        }
        // A job snapshot holds the version's wrapped key: gone first (and none taken meanwhile).
        let _jobs = self.revoke_jobs()?;
        if !force && let Some(field) = self.field_pinning(keyring, |v| v == version)? {
            return Err(Error::KeyPinnedByField {
                keyring: keyring.to_owned(),
                version,
                field,
            });
        }
        let deps = self
            .usage()?
            .by_version
            .get(&(keyring.to_owned(), version))
            .copied()
            .unwrap_or_default();
        if !force && (deps.records > 0 || deps.subject_keys > 0 || deps.tokens > 0) {
            return Err(Error::KeyInUse {
                keyring: keyring.to_owned(),
                version,
                records: deps.records + deps.tokens,
                subject_keys: deps.subject_keys,
            });
        }
        self.keys.update_keyring(keyring, |rec| {
            for v in rec.versions.iter_mut().filter(|v| v.version == version) {
                if let Some(k) = v.key.as_mut() {
                    zeroize::Zeroize::zeroize(k);
                }
                v.key = None;
            }
            Ok(())
        })?;
        Ok(deps)
    }

    /// Moves every stored record (and subject key) whose data key is wrapped by an older key
    /// version to its keyring's active version, without re-encrypting payloads. Streams in
    /// batches with constant memory, runs beside readers and writers (each record is swapped
    /// only if unchanged since it was read), is idempotent, and resumes from a durable
    /// checkpoint after a crash. `progress` is called after every batch.
    pub fn rewrap(
        &self,
        opts: &RewrapOptions,
        progress: &mut dyn FnMut(&RewrapProgress),
    ) -> Result<RewrapReport> {
        self.audit.admin(
            crate::audit::Action::Admin,
            opts.keyring.as_deref().unwrap_or("*"),
            None,
            "rewrap".into(),
        )?;
        if let Some(k) = &opts.keyring {
            self.keys.keyring(k)?;
        }
        let batch = opts.batch.clamp(1, 100_000);
        let mut report = RewrapReport::default();
        let actives: Vec<(String, u32)> = self
            .keyrings()?
            .into_iter()
            .map(|k| (k.name, k.active))
            .collect();
        let mut after: Option<Vec<u8>> = None;
        let mut checkpoint_space = 0u8;
        let mut resumed_passed_over = false;
        let checkpoint = self
            .store
            .get(Space::Meta, CHECKPOINT_KEY)?
            // A damaged checkpoint only costs a restart from the beginning (rewrapping is
            // idempotent), so it is ignored rather than reported.
            .and_then(|bytes| codec::decode_exact::<Checkpoint>(&bytes, "rewrap checkpoint").ok());
        if let Some(cp) = checkpoint
            && cp.keyring == opts.keyring
            && cp.actives == actives
        {
            after = Some(cp.last_key);
            checkpoint_space = cp.space;
            resumed_passed_over = cp.passed_over;
            report.resumed = true;
        }
        let mut prog = RewrapProgress::default();
        for space in REWRAP_SPACES {
            if report.resumed && checkpoint_space > space.prefix() {
                continue; // finished before the interruption
            }
            let mut after = if checkpoint_space == space.prefix() {
                after.take()
            } else {
                None
            };
            // First pass: pages no other worker holds (a shared store's SKIP LOCKED); then,
            // if rows were passed over, a pass that waits for them, so that nothing is left
            // behind by a worker that stopped mid-page.
            let mut skip_locked = true;
            // A resumed run ends with the plain pass if the run that wrote the checkpoint had
            // passed over rows before it (concurrent workers share the checkpoint: each
            // writes its own flag, and rows before a worker's checkpoint that it did not pass
            // over it rewrapped itself).
            let mut passed_over = resumed_passed_over && checkpoint_space == space.prefix();
            loop {
                let mut tally = PageTally::default();
                let only = opts.keyring.as_deref();
                let mut pool_error = None;
                let outcome = self.store.rewrite_page(
                    space,
                    after.as_deref(),
                    batch,
                    skip_locked,
                    &mut |page| {
                        // Unwrap and wrap on the vault's pool (if any). A retried page counts
                        // afresh.
                        tally = PageTally::default();
                        let steps = match self
                            .parallel
                            .map(page, |(_, value)| Ok(self.rewrap_record_value(value, only)))
                        {
                            Ok(steps) => steps,
                            Err(e) => {
                                pool_error = Some(e);
                                return Err(StoreError::Backend("rewrap: worker pool".into()));
                            }
                        };
                        let mut items = Vec::new();
                        for ((key, value), step) in page.iter().zip(steps) {
                            tally.scanned += 1;
                            match step {
                                Ok(Step::Rewrapped(new)) => items.push(CasItem {
                                    key: key.clone(),
                                    expected: value.clone(),
                                    new,
                                }),
                                Ok(Step::UpToDate) => tally.up_to_date += 1,
                                Ok(Step::Subject) => tally.subject_records += 1,
                                Ok(Step::Filtered) => {}
                                Err(_) => tally.unreadable += 1,
                            }
                        }
                        tally.tried = items.len() as u64;
                        Ok(items)
                    },
                );
                if let Some(e) = pool_error {
                    return Err(e);
                }
                let outcome = outcome?;
                report.scanned += tally.scanned;
                report.up_to_date += tally.up_to_date;
                report.subject_records += tally.subject_records;
                report.unreadable += tally.unreadable;
                report.rewrapped += outcome.swapped as u64;
                report.raced += tally.tried.saturating_sub(outcome.swapped as u64);
                passed_over |= outcome.skipped;
                let Some(last) = outcome.last else {
                    if skip_locked && passed_over {
                        skip_locked = false;
                        after = None;
                        continue;
                    }
                    break;
                };
                let cp = Checkpoint {
                    keyring: opts.keyring.clone(),
                    actives: actives.clone(),
                    space: space.prefix(),
                    last_key: last.clone(),
                    passed_over,
                };
                self.store.write(vec![WriteOp::Put {
                    space: Space::Meta,
                    key: CHECKPOINT_KEY.to_vec(),
                    value: postcard::to_allocvec(&cp)
                        .map_err(|_| Error::Crypto("checkpoint encoding"))?,
                }])?;
                prog.scanned = report.scanned;
                prog.rewrapped = report.rewrapped;
                progress(&prog);
                after = Some(last);
                if !outcome.full {
                    if skip_locked && passed_over {
                        skip_locked = false;
                        after = None;
                        continue;
                    }
                    break;
                }
            }
        }
        report.subject_keys_rewrapped = self.keys.rewrap_subject_keys(opts.keyring.as_deref())?;
        self.store.write(vec![WriteOp::Delete {
            space: Space::Meta,
            key: CHECKPOINT_KEY.to_vec(),
        }])?;
        Ok(report)
    }

    fn rewrap_record_value(&self, value: &[u8], only: Option<&str>) -> Result<Step> {
        let env = Envelope::parse(crate::stored::envelope_of(value, "record")?)?;
        if env.subject_key_id().is_some() {
            return Ok(Step::Subject);
        }
        if only.is_some_and(|k| k != env.keyring()) {
            return Ok(Step::Filtered);
        }
        let kr = self.keys.keyring(env.keyring())?;
        if env.key_version() == kr.active {
            return Ok(Step::UpToDate);
        }
        let old = kr.decrypting_kek(env.key_version())?;
        let new = kr.active_kek()?;
        let rewrapped = envelope::rewrap(&env, &old, &new)?;
        Ok(Step::Rewrapped(crate::stored::frame(&rewrapped)))
    }

    /// Rewraps an envelope kept outside the vault (binary or text form; the result has the
    /// same form) to its keyring's active version. The payload and its context binding are
    /// unchanged. Envelopes already current, and subject envelopes (their subject key is
    /// rewrapped inside the vault), come back as they are. Deterministic envelopes need their
    /// context: use [`Vault::reencrypt`].
    pub fn rewrap_envelope(&self, data: &[u8]) -> Result<Vec<u8>> {
        self.audit.admin(
            crate::audit::Action::Admin,
            "*",
            None,
            "rewrap envelope".into(),
        )?;
        self.rewrap_one_envelope(data)
    }

    fn rewrap_one_envelope(&self, data: &[u8]) -> Result<Vec<u8>> {
        if envelope::is_text(data) {
            let text = std::str::from_utf8(data).map_err(|_| Error::AuthenticationFailed)?;
            let bin = self.rewrap_one_envelope(&envelope::from_text(text)?)?;
            return Ok(envelope::to_text(&bin)?.into_bytes());
        }
        let env = Envelope::parse(data)?;
        if env.subject_key_id().is_some() {
            return Ok(data.to_vec());
        }
        let kr = self.keys.keyring(env.keyring())?;
        if env.key_version() == kr.active {
            return Ok(data.to_vec());
        }
        if env.is_deterministic() {
            return Err(Error::invalid(
                "envelope",
                "deterministic envelopes are re-encrypted with their context, not rewrapped",
            ));
        }
        envelope::rewrap(
            &env,
            &*kr.decrypting_kek(env.key_version())?,
            &*kr.active_kek()?,
        )
    }

    /// [`Vault::rewrap_envelope`] over many envelopes; one result per input, in order.
    /// The batch is audited once; if that audit entry cannot be written, every item fails.
    pub fn rewrap_envelopes<T: AsRef<[u8]> + Sync>(&self, envelopes: &[T]) -> Vec<Result<Vec<u8>>> {
        let detail = format!("rewrap {} envelopes", envelopes.len());
        if self
            .audit
            .admin(crate::audit::Action::Admin, "*", None, detail)
            .is_err()
        {
            return envelopes
                .iter()
                .map(|_| Err(Error::AuditUnavailable))
                .collect();
        }
        let results = self
            .parallel
            .map(envelopes, |e| Ok(self.rewrap_one_envelope(e.as_ref())));
        // The closure never fails, so neither does the map; kept total all the same.
        results.unwrap_or_else(|_| {
            envelopes
                .iter()
                .map(|_| Err(Error::Crypto("batch rewrap")))
                .collect()
        })
    }

    /// Full re-encryption, for when a data key itself is suspect: decrypts and encrypts again
    /// with a fresh data key (and payload nonce) under the active version of the same keyring,
    /// keeping the subject tie and the form (binary or text).
    pub fn reencrypt(&self, data: &[u8], ctx: &Context) -> Result<Vec<u8>> {
        self.audit.admin(
            crate::audit::Action::Admin,
            "*",
            None,
            "re-encrypt envelope".into(),
        )?;
        let text = envelope::is_text(data);
        let bin = envelope::to_binary(data)?;
        let env = Envelope::parse(&bin)?;
        let plaintext = self.keys.decrypt(&env, ctx)?;
        let out = self.reseal(&env, envelope::Domain::Caller, &plaintext, ctx)?;
        if text {
            Ok(envelope::to_text(&out)?.into_bytes())
        } else {
            Ok(out)
        }
    }

    /// Seals `plaintext` (opened from `env`) again with a fresh data key in `domain`, with the
    /// keyring, subject tie and suite of `env`.
    fn reseal(
        &self,
        env: &Envelope<'_>,
        domain: envelope::Domain,
        plaintext: &[u8],
        ctx: &Context,
    ) -> Result<Vec<u8>> {
        if let Some(id) = env.subject_key_id() {
            let key = self.keys.subject_key_for_envelope(id, env.keyring())?;
            let id: [u8; envelope::SUBJECT_ID_LEN] =
                id.try_into().map_err(|_| Error::AuthenticationFailed)?;
            return envelope::seal_for_subject(
                self.keys.backend,
                env.keyring(),
                &id,
                domain,
                &key,
                plaintext,
                ctx,
            );
        }
        match domain {
            envelope::Domain::Internal => {
                let kek = self.keys.keyring(env.keyring())?.active_kek()?;
                envelope::seal_internal(self.keys.backend, env.keyring(), &kek, plaintext, ctx)
            }
            _ => {
                let mut opts = crate::EncryptOptions::new().keyring(env.keyring());
                if env.is_deterministic() {
                    opts = opts.deterministic();
                }
                self.keys.seal_with(plaintext, ctx, &opts)
            }
        }
    }

    /// Re-encrypts one stored record with a fresh data key. Returns whether it existed.
    pub fn reencrypt_record(&self, collection: &str, id: &str) -> Result<bool> {
        self.audit.admin(
            crate::audit::Action::Admin,
            collection,
            Some(self.records.audit_id(collection, id)),
            "re-encrypt record".into(),
        )?;
        let (key, value) = match self.records.entry(collection, id)? {
            Some(kv) => kv,
            None => return Ok(false),
        };
        let ctx = crate::records::record_context(collection, id);
        let old = Envelope::parse(crate::stored::envelope_of(&value, "record")?)?;
        let plaintext = self.keys.open(&old, &ctx)?;
        // A record written before domains existed moves into the vault's own domain.
        let env = self.reseal(&old, envelope::Domain::Internal, &plaintext, &ctx)?;
        let new = crate::stored::frame(&env);
        if !self
            .store
            .compare_and_swap(Space::Record, &key, Some(&value), Some(new))?
        {
            return Err(Error::Conflict {
                what: "record changed during re-encryption; try again",
            });
        }
        Ok(true)
    }

    /// The erasures recorded by `forget_subject`, oldest first.
    pub fn erasures(&self) -> Result<Vec<ErasureRecord>> {
        ScanIter::new(self.store.as_ref(), Space::Erasure, Vec::new())
            .map(|e| {
                let (k, v) = e?;
                ErasureRecord::decode(&k, &v)
            })
            .collect()
    }
}

/// Counts of one page of a rewrap (taken afresh if the page's transaction is retried).
#[derive(Default)]
struct PageTally {
    scanned: u64,
    up_to_date: u64,
    subject_records: u64,
    unreadable: u64,
    tried: u64,
}

enum Step {
    Rewrapped(Vec<u8>),
    UpToDate,
    Subject,
    Filtered,
}
