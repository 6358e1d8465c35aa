//! The tamper-evident audit log: an append-only chain of entries in the store, each carrying
//! an HMAC-SHA256 over the previous entry's MAC, its sequence number and its contents, plus a
//! head anchor (last sequence number and MAC) written atomically with every entry. Edits,
//! deletions, reordering and truncation of the tail are all detected by [`Vault::audit_verify`](crate::Vault::audit_verify).
//!
//! No PHI ever enters the log: record ids and tokens appear only as keyed hashes, values never;
//! a break-the-glass reason (free text that might name a patient) is stored encrypted and shown
//! only to auditors through [`Vault::audit_entries`](crate::Vault::audit_entries).
//!
//! Fail closed: an operation whose audit entry cannot be written is refused.
//!
//! # Security notes
//! The head anchor lives in the same store: someone who can rewrite the store *and* holds no
//! key cannot forge MACs, but could roll back log and anchor together to an earlier consistent
//! state. Export [`Vault::audit_head`](crate::Vault::audit_head) to a separate system (a SIEM) regularly and compare.

use crate::backend::{AeadKey, Backend};
use crate::envelope::{unwrap_with, wrap_with};
use crate::kdf::Mac;
use crate::kdf::label;
use crate::secret::Key32;
use crate::secret::ct_eq;
use crate::store::{ScanIter, Space, Store, WriteOp};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::Mutex;

pub(crate) const HEAD_KEY: &[u8] = b"audit-head";
const ENTRY_FORMAT: u8 = 1;
const REASON_AAD: &[u8] = b"PVA1 break-glass reason";
/// Appends retried after another process moved the head, before giving up (fail closed).
const MAX_APPEND_ATTEMPTS: usize = 1000;

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Action {
    /// Envelope encryption.
    Encrypt,
    /// Envelope decryption.
    Decrypt,
    /// Record write.
    Put,
    /// Record read.
    Get,
    /// Record deletion.
    Delete,
    /// Tokenization.
    Tokenize,
    /// Detokenization (plaintext view).
    Detokenize,
    /// Detokenization, masked view.
    DetokenizeMasked,
    /// Detokenization, redacted view.
    DetokenizeRedacted,
    /// Key and vault administration (rotate, rewrap, retire, destroy, root rotation, fields,
    /// keyrings).
    Admin,
    /// Policy change.
    PolicySet,
    /// Erasure of a data subject.
    ForgetSubject,
}

impl Action {
    /// The name used in policies and in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Encrypt => "encrypt",
            Action::Decrypt => "decrypt",
            Action::Put => "put",
            Action::Get => "get",
            Action::Delete => "delete",
            Action::Tokenize => "tokenize",
            Action::Detokenize => "detokenize",
            Action::DetokenizeMasked => "detokenize-masked",
            Action::DetokenizeRedacted => "detokenize-redacted",
            Action::Admin => "admin",
            Action::PolicySet => "policy-set",
            Action::ForgetSubject => "forget-subject",
        }
    }
}

/// What an entry is about — names and keyed hashes, never values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Collection, field or keyring name (or the admin operation's subject, e.g. a keyring).
    pub name: String,
    /// Keyed hash (hex) of a record id, token or subject, when the call named one item.
    pub item: Option<String>,
    /// How many items the call covered (batches).
    pub count: u64,
    /// For admin entries: what was done ("rotate", "destroy v1", ...), no PHI.
    pub detail: Option<String>,
}

/// The outcome of the access decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// A rule allowed it.
    Allowed,
    /// Allowed by break-the-glass: flagged for review.
    BreakGlass,
    /// No rule allowed it.
    Denied,
}

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number, from 1, without gaps.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The acting principal.
    pub principal: String,
    /// The stated purpose.
    pub purpose: String,
    /// The action.
    pub action: Action,
    /// The target.
    pub target: Target,
    /// The decision.
    pub outcome: Outcome,
    /// Break-the-glass reason, encrypted (shown decrypted by [`Vault::audit_entries`](crate::Vault::audit_entries)).
    #[serde(with = "opt_bytes")]
    pub reason_sealed: Option<Vec<u8>>,
}

mod opt_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<Vec<u8>>::deserialize(d)
    }
}

/// An entry as shown to auditors (reason decrypted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditView {
    /// Sequence number.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The acting principal.
    pub principal: String,
    /// The stated purpose.
    pub purpose: String,
    /// The action.
    pub action: Action,
    /// The target.
    pub target: Target,
    /// The decision.
    pub outcome: Outcome,
    /// Whether break-the-glass was used (review these).
    pub break_glass: bool,
    /// The break-the-glass reason, when `include_reasons` was asked for.
    pub reason: Option<String>,
}

/// The result of [`Vault::audit_verify`](crate::Vault::audit_verify).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Entries checked.
    pub entries: u64,
    /// Whether the whole chain and the head anchor check out.
    pub ok: bool,
    /// The first bad sequence number (or the position where one is missing).
    pub first_bad: Option<u64>,
    /// What is wrong there.
    pub problem: Option<String>,
    /// The head anchor: last sequence number and its MAC (hex), for external anchoring.
    pub head_seq: u64,
    /// The head MAC, hex.
    pub head_mac: String,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
struct Head {
    seq: u64,
    mac: [u8; 32],
}

/// Largest number of read entries kept in memory before they are written (group commit).
pub const MAX_PENDING: usize = 64;
/// Longest a read entry waits in memory while the vault is in use (checked on every append).
pub const MAX_PENDING_AGE: std::time::Duration = std::time::Duration::from_millis(50);
const BLOCK_FORMAT: u8 = 2;

/// One chained, not yet written entry.
struct Pending {
    entry: AuditEntry,
    record: Vec<u8>,
}

struct Inner {
    /// The head including pending entries (what the next entry chains to).
    chain: Option<Head>,
    /// The head as stored.
    stored: Option<Head>,
    pending: Vec<Pending>,
    oldest: Option<std::time::Instant>,
    /// The last write of the log failed: every operation is refused until one succeeds.
    failing: bool,
}

/// In-memory state of the log: the chain head and entries awaiting group commit, guarded so
/// appends form one chain.
struct AuditState {
    inner: Mutex<Inner>,
    /// Whether allowed reads (encrypt, decrypt, get, tokenize, detokenize) are logged.
    reads: std::sync::atomic::AtomicBool,
}

impl Default for AuditState {
    fn default() -> Self {
        AuditState {
            inner: Mutex::new(Inner {
                chain: None,
                stored: None,
                pending: Vec::new(),
                oldest: None,
                failing: false,
            }),
            reads: std::sync::atomic::AtomicBool::new(true),
        }
    }
}

fn entry_mac(mac: &Mac, prev: &[u8; 32], seq: u64, body: &[u8]) -> [u8; 32] {
    mac.tag(&[b"audit", prev, &seq.to_be_bytes(), body])
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Decodes a stored entry: `format(1) || postcard(entry) || mac(32)`.
pub(crate) fn decode_entry(value: &[u8]) -> Result<(AuditEntry, [u8; 32], &[u8])> {
    if value.len() < 1 + 32 || value[0] != ENTRY_FORMAT {
        return Err(Error::CorruptMetadata {
            what: "audit entry",
        });
    }
    let body = &value[1..value.len() - 32];
    let mut mac = [0u8; 32];
    mac.copy_from_slice(&value[value.len() - 32..]);
    let entry: AuditEntry = crate::codec::decode_exact(body, "audit entry")?;
    Ok((entry, mac, body))
}

/// Splits a stored value into entry records: a block (`0x02`, then `len u32 BE ‖ record`
/// repeated) or a single record (`0x01 ‖ body ‖ mac`).
pub(crate) fn split_value(value: &[u8]) -> Result<Vec<&[u8]>> {
    let bad = || Error::CorruptMetadata {
        what: "audit block",
    };
    match value.first() {
        Some(&ENTRY_FORMAT) => Ok(vec![value]),
        Some(&BLOCK_FORMAT) => {
            let mut out = Vec::new();
            let mut rest = &value[1..];
            while !rest.is_empty() {
                let len_bytes: [u8; 4] = rest
                    .get(..4)
                    .ok_or_else(bad)?
                    .try_into()
                    .map_err(|_| bad())?;
                let len = u32::from_be_bytes(len_bytes) as usize;
                let rec = rest.get(4..4 + len).ok_or_else(bad)?;
                out.push(rec);
                rest = &rest[4 + len..];
            }
            if out.is_empty() {
                return Err(bad());
            }
            Ok(out)
        }
        _ => Err(bad()),
    }
}

/// Checks one stored audit value against the chain: every record's sequence number and MAC
/// after `prev`/`next_seq`, which advance. For `integrity::verify` and `salvage`.
pub(crate) fn check_value(
    mac_key: &Mac,
    prev: &mut [u8; 32],
    next_seq: &mut u64,
    value: &[u8],
) -> bool {
    let Ok(records) = split_value(value) else {
        return false;
    };
    let (mut p, mut n) = (*prev, *next_seq);
    for raw in records {
        let Ok((entry, mac, body)) = decode_entry(raw) else {
            return false;
        };
        if entry.seq != n || !ct_eq(&entry_mac(mac_key, &p, n, body), &mac) {
            return false;
        }
        p = mac;
        n += 1;
    }
    *prev = p;
    *next_seq = n;
    true
}

/// The stored head anchor for the entry `seq` whose MAC is `mac` (`seq` 0: an empty log).
pub(crate) fn head_value(seq: u64, mac: [u8; 32]) -> Result<Vec<u8>> {
    encode_head(&Head { seq, mac })
}

/// The (sequence number, MAC) of a stored head anchor.
pub(crate) fn decode_head(value: &[u8]) -> Result<(u64, [u8; 32])> {
    let h: Head = crate::codec::decode_exact(value, "audit head")?;
    Ok((h.seq, h.mac))
}

fn encode_head(h: &Head) -> Result<Vec<u8>> {
    postcard::to_allocvec(h).map_err(|_| Error::Crypto("audit encoding"))
}

/// Chains `entry` (its `seq` set here) to `prev` and encodes it as a record.
fn chain(mac_key: &Mac, prev: &Head, mut entry: AuditEntry) -> Result<(Pending, Head)> {
    entry.seq = prev.seq + 1;
    let body = postcard::to_allocvec(&entry).map_err(|_| Error::Crypto("audit encoding"))?;
    let mac = entry_mac(mac_key, &prev.mac, entry.seq, &body);
    let mut record = Vec::with_capacity(1 + body.len() + 32);
    record.push(ENTRY_FORMAT);
    record.extend_from_slice(&body);
    record.extend_from_slice(&mac);
    let head = Head {
        seq: entry.seq,
        mac,
    };
    Ok((Pending { entry, record }, head))
}

/// The details of an entry to append.
pub(crate) struct Record<'a> {
    pub principal: &'a str,
    pub purpose: &'a str,
    pub action: Action,
    pub target: Target,
    pub outcome: Outcome,
    pub reason: Option<&'a str>,
}

/// The principal of the owner's entries (administration, and data calls without a session).
pub const OWNER: &str = "owner";

/// The audit log of one open vault: its keys (derived from the vault master key), its state,
/// and the store it writes to. Below policy and sessions: it records what they decided.
pub(crate) struct AuditLog {
    store: Arc<dyn Store>,
    state: AuditState,
    mac: Mac,
    seal: Box<dyn AeadKey>,
}

impl AuditLog {
    /// The log of the vault whose master key is `vmk`, in `store`.
    pub(crate) fn new(store: Arc<dyn Store>, vmk: &Key32) -> Result<Self> {
        Ok(AuditLog {
            store,
            state: AuditState::default(),
            mac: Mac::new(&crate::kdf::expand_key(vmk, &[label::AUDIT_MAC])?),
            seal: Backend::Ring.aes256gcm(&crate::kdf::expand_key(vmk, &[label::AUDIT_SEAL])?)?,
        })
    }

    /// The MAC key of the chain (verify checks entries with it).
    pub(crate) fn mac(&self) -> &Mac {
        &self.mac
    }

    /// Appends an owner's administration entry, written at once (see [`AuditLog::append`]).
    pub(crate) fn admin(
        &self,
        action: Action,
        name: &str,
        item: Option<String>,
        detail: String,
    ) -> Result<()> {
        self.append(
            Record {
                principal: OWNER,
                purpose: "administration",
                action,
                target: Target {
                    name: name.to_owned(),
                    item,
                    count: 1,
                    detail: Some(detail),
                },
                outcome: Outcome::Allowed,
                reason: None,
            },
            Vec::new(),
        )
    }

    fn load_head(&self) -> Result<Head> {
        match self.store.get(Space::Meta, HEAD_KEY)? {
            None => Ok(Head {
                seq: 0,
                mac: [0u8; 32],
            }),
            Some(b) => crate::codec::decode_exact(&b, "audit head"),
        }
    }

    /// Appends one entry. Entries of writes and administration (and any with `extra` writes)
    /// are written at once, atomically with `extra` and the new head; entries of reads and
    /// denials wait in memory for a group commit (at most [`MAX_PENDING`] entries or
    /// [`MAX_PENDING_AGE`] of activity, and always before any later write, verification or
    /// close). Fails closed: on any error the entry is withdrawn and the caller must refuse.
    pub(crate) fn append(&self, rec: Record<'_>, extra: Vec<WriteOp>) -> Result<()> {
        let reason_sealed = match rec.reason {
            Some(r) => Some(wrap_with(self.seal.as_ref(), REASON_AAD, r.as_bytes())?),
            None => None,
        };
        // Break-the-glass accesses are written and synced before any data is returned,
        // whether read auditing is on or not.
        let break_glass = rec.outcome == Outcome::BreakGlass;
        let urgent = !extra.is_empty()
            || break_glass
            || !matches!(
                (rec.action, rec.outcome),
                (
                    Action::Get | Action::Decrypt | Action::Encrypt | Action::Tokenize,
                    _
                ) | (
                    Action::Detokenize | Action::DetokenizeMasked | Action::DetokenizeRedacted,
                    _
                ) | (_, Outcome::Denied)
            );
        if !urgent
            && rec.outcome != Outcome::Denied
            && !self.state.reads.load(std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(());
        }
        let entry = AuditEntry {
            seq: 0,
            time_ms: now_ms(),
            principal: rec.principal.to_owned(),
            purpose: rec.purpose.to_owned(),
            action: rec.action,
            target: rec.target,
            outcome: rec.outcome,
            reason_sealed,
        };
        let mut inner = self
            .state
            .inner
            .lock()
            .map_err(|_| Error::AuditUnavailable)?;
        let prev = match inner.chain {
            Some(h) => h,
            None => {
                let h = self.load_head().map_err(|_| Error::AuditUnavailable)?;
                inner.stored = Some(h);
                h
            }
        };
        let (pending, head) = chain(&self.mac, &prev, entry)?;
        inner.pending.push(pending);
        inner.chain = Some(head);
        if inner.oldest.is_none() {
            inner.oldest = Some(std::time::Instant::now());
        }
        let due = urgent
            || inner.failing
            || inner.pending.len() >= MAX_PENDING
            || inner.oldest.is_some_and(|t| t.elapsed() >= MAX_PENDING_AGE);
        if due && let Err(e) = self.flush_locked(&mut inner, extra) {
            inner.failing = true;
            // Withdraw this entry (the operation is refused); earlier ones stay for a retry,
            // still chained after the stored head.
            inner.pending.pop();
            inner.chain = match inner.pending.last() {
                Some(p) => {
                    let mut mac = [0u8; 32];
                    mac.copy_from_slice(&p.record[p.record.len() - 32..]);
                    Some(Head {
                        seq: p.entry.seq,
                        mac,
                    })
                }
                None => inner.stored,
            };
            return Err(e);
        }
        if break_glass {
            self.store.sync().map_err(|_| {
                inner.failing = true;
                Error::AuditUnavailable
            })?;
        }
        Ok(())
    }

    /// Writes every pending entry (and `extra`) in one block, guarded by the stored head so
    /// appends from several processes sharing a store form one chain: if another process moved
    /// the head, the pending entries are chained again after it.
    fn flush_locked(&self, inner: &mut Inner, extra: Vec<WriteOp>) -> Result<()> {
        if inner.pending.is_empty() && extra.is_empty() {
            return Ok(());
        }
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let stored = match inner.stored {
                Some(h) => h,
                None => self.load_head().map_err(|_| Error::AuditUnavailable)?,
            };
            // Chain (again) after the stored head if it is not where the pending entries start.
            let first = inner.pending.first().map(|p| p.entry.seq);
            if first.is_some_and(|f| f != stored.seq + 1) || inner.stored.is_none() {
                let mut prev = stored;
                let old = std::mem::take(&mut inner.pending);
                for p in old {
                    let (np, h) = chain(&self.mac, &prev, p.entry)?;
                    inner.pending.push(np);
                    prev = h;
                }
                inner.chain = Some(prev);
            }
            let head = inner.chain.unwrap_or(stored);
            let mut ops = extra.clone();
            if let Some(first) = inner.pending.first().map(|p| p.entry.seq) {
                let mut block = vec![BLOCK_FORMAT];
                for p in &inner.pending {
                    block.extend_from_slice(&(p.record.len() as u32).to_be_bytes());
                    block.extend_from_slice(&p.record);
                }
                ops.push(WriteOp::Put {
                    space: Space::Audit,
                    key: first.to_be_bytes().to_vec(),
                    value: block,
                });
                ops.push(WriteOp::Put {
                    space: Space::Meta,
                    key: HEAD_KEY.to_vec(),
                    value: encode_head(&head)?,
                });
            }
            let expected = if stored.seq == 0 {
                None
            } else {
                Some(encode_head(&stored)?)
            };
            if self
                .store
                .write_unsynced_if(Space::Meta, HEAD_KEY, expected.as_deref(), ops)
                .map_err(|_| Error::AuditUnavailable)?
            {
                inner.stored = Some(head);
                inner.chain = Some(head);
                inner.pending.clear();
                inner.oldest = None;
                inner.failing = false;
                return Ok(());
            }
            inner.stored = None;
            std::thread::yield_now();
        }
        Err(Error::AuditUnavailable)
    }

    /// Turns the logging of allowed reads on or off (the vault's `set_read_auditing` logs the
    /// change first).
    pub(crate) fn set_reads(&self, on: bool) {
        self.state
            .reads
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Writes the audit entries waiting for group commit (the vault does this on close, before
    /// every write and verification, and on its own every [`MAX_PENDING`] entries).
    pub(crate) fn flush(&self) -> Result<()> {
        let mut inner = self
            .state
            .inner
            .lock()
            .map_err(|_| Error::AuditUnavailable)?;
        self.flush_locked(&mut inner, Vec::new())
    }

    /// Checks the whole chain: sequence numbers from 1 without gaps, every MAC, and the head
    /// anchor. Reports the first bad entry.
    pub(crate) fn verify(&self) -> Result<AuditReport> {
        self.flush()?;
        let head = self.load_head()?;
        let mut prev = [0u8; 32];
        let mut report = AuditReport {
            entries: 0,
            ok: true,
            first_bad: None,
            problem: None,
            head_seq: head.seq,
            head_mac: hex::encode(head.mac),
        };
        let fail = |r: &mut AuditReport, at: u64, why: &str| {
            r.ok = false;
            r.first_bad = Some(at);
            r.problem = Some(why.to_owned());
        };
        let mut expected = 1u64;
        for item in ScanIter::new(self.store.as_ref(), Space::Audit, Vec::new()) {
            let (key, value) = item?;
            let first = <[u8; 8]>::try_from(key.as_slice())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if first != expected {
                let why = if first > expected {
                    "entry missing (deleted)"
                } else {
                    "entry out of order"
                };
                fail(&mut report, expected, why);
                return Ok(report);
            }
            let Ok(records) = split_value(&value) else {
                fail(&mut report, expected, "entry cannot be decoded (edited)");
                return Ok(report);
            };
            for raw in records {
                let Ok((entry, mac, body)) = decode_entry(raw) else {
                    fail(&mut report, expected, "entry cannot be decoded (edited)");
                    return Ok(report);
                };
                if entry.seq != expected
                    || !ct_eq(&entry_mac(&self.mac, &prev, expected, body), &mac)
                {
                    fail(
                        &mut report,
                        expected,
                        "MAC does not match (edited, reordered or replaced)",
                    );
                    return Ok(report);
                }
                prev = mac;
                report.entries += 1;
                expected += 1;
            }
        }
        if report.entries != head.seq {
            let at = report.entries.min(head.seq) + 1;
            let why = if report.entries < head.seq {
                "log ends before the head anchor (truncated)"
            } else {
                "entries beyond the head anchor"
            };
            fail(&mut report, at, why);
        } else if head.seq > 0 && !ct_eq(&head.mac, &prev) {
            fail(
                &mut report,
                head.seq,
                "head anchor does not match the last entry",
            );
        }
        Ok(report)
    }

    /// The MAC (hex) of entry `seq`, to compare with an anchor recorded outside the vault.
    pub(crate) fn mac_at(&self, seq: u64) -> Result<Option<String>> {
        self.flush()?;
        for item in ScanIter::new(self.store.as_ref(), Space::Audit, Vec::new()) {
            let (_, value) = item?;
            for raw in split_value(&value)? {
                let (e, mac, _) = decode_entry(raw)?;
                if e.seq == seq {
                    return Ok(Some(hex::encode(mac)));
                }
            }
        }
        Ok(None)
    }

    /// [`AuditLog::verify`], and that the log extends `anchor`, a head recorded outside the
    /// vault earlier as `SEQ:MACHEX` (what [`crate::Vault::audit_head`] gave): entry `SEQ`
    /// must exist and carry that MAC. A log rolled back to before the anchor, or rewritten
    /// since, fails with the problem "the log does not extend the recorded head SEQ".
    pub(crate) fn verify_extends(&self, anchor: &str) -> Result<AuditReport> {
        let bad = || Error::invalid("audit anchor", "must be SEQ:MACHEX (64 hex digits)");
        let (seq, mac_hex) = anchor.split_once(':').ok_or_else(bad)?;
        let seq: u64 = seq.parse().map_err(|_| bad())?;
        let mut mac = [0u8; 32];
        hex::decode_to_slice(mac_hex, &mut mac).map_err(|_| bad())?;
        let mut report = self.verify()?;
        let extends = seq <= report.head_seq
            && match self.mac_at(seq)? {
                Some(found) => {
                    let mut got = [0u8; 32];
                    hex::decode_to_slice(&found, &mut got).is_ok() && ct_eq(&got, &mac)
                }
                None => false,
            };
        if !extends && report.ok {
            report.ok = false;
            report.first_bad = Some(seq.min(report.head_seq + 1).max(1));
            report.problem = Some(format!("the log does not extend the recorded head {seq}"));
        }
        Ok(report)
    }

    /// The head anchor (sequence number, MAC hex) to record outside the vault.
    pub(crate) fn head(&self) -> Result<(u64, String)> {
        self.flush()?;
        let h = self.load_head()?;
        Ok((h.seq, hex::encode(h.mac)))
    }

    /// Entries with `time_ms >= since_ms`, optionally of one principal, oldest first. Reasons
    /// of break-the-glass entries are decrypted only when `include_reasons` is set.
    pub(crate) fn entries(
        &self,
        since_ms: u64,
        principal: Option<&str>,
        include_reasons: bool,
    ) -> Result<Vec<AuditView>> {
        self.flush()?;
        let mut out = Vec::new();
        let mut all = Vec::new();
        for item in ScanIter::new(self.store.as_ref(), Space::Audit, Vec::new()) {
            let (_, value) = item?;
            for raw in split_value(&value)? {
                all.push(decode_entry(raw)?.0);
            }
        }
        for e in all {
            if e.time_ms < since_ms || principal.is_some_and(|p| p != e.principal) {
                continue;
            }
            let reason = match (&e.reason_sealed, include_reasons) {
                (Some(sealed), true) => Some(
                    String::from_utf8(
                        unwrap_with(self.seal.as_ref(), REASON_AAD, sealed)?
                            .expose()
                            .to_vec(),
                    )
                    .map_err(|_| Error::CorruptMetadata {
                        what: "audit entry",
                    })?,
                ),
                _ => None,
            };
            out.push(AuditView {
                seq: e.seq,
                time_ms: e.time_ms,
                principal: e.principal,
                purpose: e.purpose,
                action: e.action,
                target: e.target,
                outcome: e.outcome,
                break_glass: e.reason_sealed.is_some(),
                reason,
            });
        }
        Ok(out)
    }
}
