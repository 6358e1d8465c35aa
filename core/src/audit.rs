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
/// A record of format 1: `postcard(EntryV1)`, MAC label `audit` (earlier releases).
const ENTRY_FORMAT_V1: u8 = 1;
/// A record of format 3: `postcard(AuditEntry)` with `calls` and `last_ms`, MAC label
/// `audit v3` (the record format is authenticated: a v1 body read as v3, or the reverse,
/// fails its MAC).
const ENTRY_FORMAT: u8 = 3;
const REASON_AAD: &[u8] = b"PVA1 break-glass reason";

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

/// A [`Target`] as a call describes it: the name borrowed, so a read that joins the waiting
/// entry before it (group commit) allocates nothing for it.
pub(crate) struct TargetRef<'a> {
    pub name: &'a str,
    pub item: Option<String>,
    pub count: u64,
    pub detail: Option<String>,
}

impl TargetRef<'_> {
    /// Whether `t` names the same target.
    fn is(&self, t: &Target) -> bool {
        t.name == self.name
            && t.count == self.count
            && t.item == self.item
            && t.detail == self.detail
    }

    fn into_owned(self) -> Target {
        Target {
            name: self.name.to_owned(),
            item: self.item,
            count: self.count,
            detail: self.detail,
        }
    }
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
    /// How many calls this entry stands for: identical reads and denials made one after the
    /// other within one group commit are logged as one entry (see [`MAX_PENDING_CALLS`]).
    /// At least 1.
    pub calls: u64,
    /// Milliseconds since the Unix epoch of the last of those calls (`time_ms` is the first).
    pub last_ms: u64,
}

/// An entry of record format 1 (no `calls`, `last_ms`): read as one call.
#[derive(Serialize, Deserialize)]
struct EntryV1 {
    seq: u64,
    time_ms: u64,
    principal: String,
    purpose: String,
    action: Action,
    target: Target,
    outcome: Outcome,
    #[serde(with = "opt_bytes")]
    reason_sealed: Option<Vec<u8>>,
}

impl From<EntryV1> for AuditEntry {
    fn from(e: EntryV1) -> Self {
        AuditEntry {
            seq: e.seq,
            time_ms: e.time_ms,
            principal: e.principal,
            purpose: e.purpose,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            reason_sealed: e.reason_sealed,
            calls: 1,
            last_ms: e.time_ms,
        }
    }
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
    /// How many identical calls, one after the other, this entry stands for (at least 1).
    pub calls: u64,
    /// Milliseconds since the Unix epoch of the last of those calls.
    pub last_ms: u64,
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
/// Largest number of calls the waiting entries may stand for before they are written: a read
/// identical to the last waiting entry (same principal, purpose, action, target and outcome)
/// adds one to its `calls` instead of a new entry.
pub const MAX_PENDING_CALLS: u64 = 4096;
/// Longest a read entry waits in memory while the vault is in use (checked on every append).
pub const MAX_PENDING_AGE: std::time::Duration = std::time::Duration::from_millis(50);
const BLOCK_FORMAT: u8 = 2;

struct Inner {
    /// The head as stored (`None`: to be read from the store).
    stored: Option<Head>,
    /// Entries waiting for group commit, not yet chained (`seq` is set when they are).
    pending: Vec<AuditEntry>,
    /// The calls the waiting entries stand for.
    pending_calls: u64,
    /// `time_ms` of the oldest waiting entry.
    oldest: Option<u64>,
    /// The last write of the log failed: every operation is refused until one succeeds.
    failing: bool,
}

/// In-memory state of the log: the chain head and entries awaiting group commit, guarded so
/// appends form one chain.
struct AuditState {
    inner: Mutex<Inner>,
    /// Whether allowed reads (encrypt, decrypt, get, tokenize, detokenize) are logged.
    reads: std::sync::atomic::AtomicBool,
    /// Every entry written at once, none left for group commit (a job's worker: its entries
    /// are on disk before its call returns, whatever ends the process afterwards).
    every: std::sync::atomic::AtomicBool,
}

impl Default for AuditState {
    fn default() -> Self {
        AuditState {
            inner: Mutex::new(Inner {
                stored: None,
                pending: Vec::new(),
                pending_calls: 0,
                oldest: None,
                failing: false,
            }),
            reads: std::sync::atomic::AtomicBool::new(true),
            every: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// The chain MAC of the record of format `format` with `body` at `seq` after `prev`.
fn entry_mac(mac: &Mac, format: u8, prev: &[u8; 32], seq: u64, body: &[u8]) -> [u8; 32] {
    let label: &[u8] = if format == ENTRY_FORMAT_V1 {
        b"audit"
    } else {
        b"audit v3"
    };
    mac.tag(&[label, prev, &seq.to_be_bytes(), body])
}

/// Milliseconds since the Unix epoch (0 for a clock before it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A stored entry record, decoded.
pub(crate) struct Decoded<'a> {
    pub entry: AuditEntry,
    pub mac: [u8; 32],
    format: u8,
    body: &'a [u8],
}

impl Decoded<'_> {
    /// Whether the record's MAC is the chain MAC after `prev` at its own `seq`.
    pub(crate) fn chains_after(&self, mac_key: &Mac, prev: &[u8; 32]) -> bool {
        ct_eq(
            &entry_mac(mac_key, self.format, prev, self.entry.seq, self.body),
            &self.mac,
        )
    }
}

/// Decodes a stored entry record: `format ‖ postcard(entry) ‖ mac(32)`, format 3 (current)
/// or 1 (read as one call).
pub(crate) fn decode_entry(value: &[u8]) -> Result<Decoded<'_>> {
    let bad = || Error::CorruptMetadata {
        what: "audit entry",
    };
    if value.len() < 1 + 32 {
        return Err(bad());
    }
    let format = value[0];
    let body = &value[1..value.len() - 32];
    let mut mac = [0u8; 32];
    mac.copy_from_slice(&value[value.len() - 32..]);
    let entry: AuditEntry = match format {
        ENTRY_FORMAT => crate::codec::decode_exact(body, "audit entry")?,
        ENTRY_FORMAT_V1 => crate::codec::decode_exact::<EntryV1>(body, "audit entry")?.into(),
        _ => return Err(bad()),
    };
    if entry.calls == 0 || entry.last_ms < entry.time_ms {
        return Err(bad());
    }
    Ok(Decoded {
        entry,
        mac,
        format,
        body,
    })
}

/// Splits a stored value into entry records: a block (`0x02`, then `len u32 BE ‖ record`
/// repeated) or a single record (`0x01 ‖ body ‖ mac`).
pub(crate) fn split_value(value: &[u8]) -> Result<Vec<&[u8]>> {
    let bad = || Error::CorruptMetadata {
        what: "audit block",
    };
    match value.first() {
        Some(&ENTRY_FORMAT | &ENTRY_FORMAT_V1) => Ok(vec![value]),
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
        let Ok(d) = decode_entry(raw) else {
            return false;
        };
        if d.entry.seq != n || !d.chains_after(mac_key, &p) {
            return false;
        }
        p = d.mac;
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

/// Chains `entry` (its `seq` set here) to `prev` and appends it to `block` as a
/// `u32be(len) ‖ record`; returns the new head.
fn chain_into(
    mac_key: &Mac,
    prev: &Head,
    entry: &mut AuditEntry,
    block: &mut Vec<u8>,
) -> Result<Head> {
    entry.seq = prev.seq + 1;
    let body = postcard::to_allocvec(&*entry).map_err(|_| Error::Crypto("audit encoding"))?;
    let mac = entry_mac(mac_key, ENTRY_FORMAT, &prev.mac, entry.seq, &body);
    let len = u32::try_from(1 + body.len() + 32).map_err(|_| Error::Crypto("audit encoding"))?;
    block.extend_from_slice(&len.to_be_bytes());
    block.push(ENTRY_FORMAT);
    block.extend_from_slice(&body);
    block.extend_from_slice(&mac);
    Ok(Head {
        seq: entry.seq,
        mac,
    })
}

/// The details of an entry to append.
pub(crate) struct Record<'a> {
    pub principal: &'a str,
    pub purpose: &'a str,
    pub action: Action,
    pub target: TargetRef<'a>,
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
                target: TargetRef {
                    name,
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
    /// denials wait in memory for a group commit (at most [`MAX_PENDING`] entries standing for
    /// at most [`MAX_PENDING_CALLS`] calls, or [`MAX_PENDING_AGE`] of activity, and always
    /// before any later write, verification or close). A waiting read or denial identical to
    /// the one before it (same principal, purpose, action, target and outcome) is counted in
    /// that entry's `calls` instead of a new entry. Fails closed: on any error the call is
    /// withdrawn from the log and the caller must refuse.
    pub(crate) fn append(&self, rec: Record<'_>, extra: Vec<WriteOp>) -> Result<()> {
        self.append_at(rec, extra, now_ms())
    }

    /// [`AuditLog::append`] of a call made at `now` ([`now_ms`], read once by the caller).
    pub(crate) fn append_at(&self, rec: Record<'_>, extra: Vec<WriteOp>, now: u64) -> Result<()> {
        let reason_sealed = match rec.reason {
            Some(r) => Some(wrap_with(self.seal.as_ref(), REASON_AAD, r.as_bytes())?),
            None => None,
        };
        // Break-the-glass accesses are written and synced before any data is returned,
        // whether read auditing is on or not.
        let break_glass = rec.outcome == Outcome::BreakGlass;
        let urgent = !extra.is_empty()
            || break_glass
            || self.state.every.load(std::sync::atomic::Ordering::Relaxed)
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
        let mut inner = self
            .state
            .inner
            .lock()
            .map_err(|_| Error::AuditUnavailable)?;
        // A read or denial like the last waiting one: one more call of that entry.
        let joined = match inner.pending.last_mut() {
            Some(last)
                if !urgent
                    && reason_sealed.is_none()
                    && last.reason_sealed.is_none()
                    && last.action == rec.action
                    && last.outcome == rec.outcome
                    && rec.target.is(&last.target)
                    && last.principal == rec.principal
                    && last.purpose == rec.purpose =>
            {
                let before = last.last_ms;
                last.calls += 1;
                last.last_ms = last.last_ms.max(now);
                Some(before)
            }
            _ => None,
        };
        if joined.is_none() {
            inner.pending.push(AuditEntry {
                seq: 0,
                time_ms: now,
                principal: rec.principal.to_owned(),
                purpose: rec.purpose.to_owned(),
                action: rec.action,
                target: rec.target.into_owned(),
                outcome: rec.outcome,
                reason_sealed,
                calls: 1,
                last_ms: now,
            });
        }
        inner.pending_calls += 1;
        let oldest = *inner.oldest.get_or_insert(now);
        let due = urgent
            || inner.failing
            || inner.pending.len() >= MAX_PENDING
            || inner.pending_calls >= MAX_PENDING_CALLS
            || u128::from(now.saturating_sub(oldest)) >= MAX_PENDING_AGE.as_millis();
        if due && let Err(e) = self.flush_locked(&mut inner, extra) {
            inner.failing = true;
            // Withdraw this call (the operation is refused); earlier ones stay for a retry.
            inner.pending_calls -= 1;
            match joined {
                Some(before) => {
                    if let Some(last) = inner.pending.last_mut() {
                        last.calls -= 1;
                        last.last_ms = before;
                    }
                }
                None => {
                    inner.pending.pop();
                }
            }
            if inner.pending.is_empty() {
                inner.oldest = None;
            }
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

    /// Writes every pending entry (and `extra`) in one block, chained after the stored head
    /// and guarded by it, so appends from several processes sharing a store form one chain:
    /// if another process moved the head, the entries are chained again after the new one.
    fn flush_locked(&self, inner: &mut Inner, extra: Vec<WriteOp>) -> Result<()> {
        if inner.pending.is_empty() && extra.is_empty() {
            return Ok(());
        }
        // Chained after the stored head under the store's lock on it: appends from several
        // processes queue (a shared store's row lock) instead of failing and retrying.
        let mac = &self.mac;
        let pending = &mut inner.pending;
        let mut written = None;
        let result = self
            .store
            .update_unsynced(Space::Meta, HEAD_KEY, &mut |current| {
                let stored = match current {
                    None => Head {
                        seq: 0,
                        mac: [0u8; 32],
                    },
                    Some(b) => crate::codec::decode_exact::<Head>(b, "audit head")
                        .map_err(|_| crate::error::StoreError::Corrupt("audit head"))?,
                };
                let mut head = stored;
                let mut ops = extra.clone();
                if !pending.is_empty() {
                    let first_seq = stored.seq + 1;
                    let mut block = Vec::with_capacity(1 + pending.len() * 96);
                    block.push(BLOCK_FORMAT);
                    for entry in pending.iter_mut() {
                        head = chain_into(mac, &head, entry, &mut block)
                            .map_err(|_| crate::error::StoreError::Corrupt("audit entry"))?;
                    }
                    ops.push(WriteOp::Put {
                        space: Space::Audit,
                        key: first_seq.to_be_bytes().to_vec(),
                        value: block,
                    });
                    ops.push(WriteOp::Put {
                        space: Space::Meta,
                        key: HEAD_KEY.to_vec(),
                        value: encode_head(&head)
                            .map_err(|_| crate::error::StoreError::Corrupt("audit head"))?,
                    });
                }
                written = Some(head);
                Ok(ops)
            });
        match (result, written) {
            (Ok(()), Some(head)) => {
                inner.stored = Some(head);
                inner.pending.clear();
                inner.pending_calls = 0;
                inner.oldest = None;
                inner.failing = false;
                Ok(())
            }
            _ => {
                inner.stored = None;
                Err(Error::AuditUnavailable)
            }
        }
    }

    /// Appends entries recorded elsewhere (a job's workers, verified by the caller) after
    /// the entries waiting here, written at once; their sequence numbers are this log's.
    pub(crate) fn append_entries(&self, entries: Vec<AuditEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut inner = self
            .state
            .inner
            .lock()
            .map_err(|_| Error::AuditUnavailable)?;
        self.flush_locked(&mut inner, Vec::new())?;
        inner.pending = entries;
        inner.pending_calls = inner.pending.iter().map(|e| e.calls).sum();
        let result = self.flush_locked(&mut inner, Vec::new());
        if result.is_err() {
            inner.pending.clear();
            inner.pending_calls = 0;
        }
        result
    }

    /// Makes every later entry be written at once (see `AuditState::every`).
    pub(crate) fn write_every_entry(&self) {
        self.state
            .every
            .store(true, std::sync::atomic::Ordering::Relaxed);
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
                let Ok(d) = decode_entry(raw) else {
                    fail(&mut report, expected, "entry cannot be decoded (edited)");
                    return Ok(report);
                };
                if d.entry.seq != expected || !d.chains_after(&self.mac, &prev) {
                    fail(
                        &mut report,
                        expected,
                        "MAC does not match (edited, reordered or replaced)",
                    );
                    return Ok(report);
                }
                prev = d.mac;
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
                let d = decode_entry(raw)?;
                if d.entry.seq == seq {
                    return Ok(Some(hex::encode(d.mac)));
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

    /// Entries with a call at or after `since_ms` (`last_ms >= since_ms`), optionally of one principal, oldest first. Reasons
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
                all.push(decode_entry(raw)?.entry);
            }
        }
        for e in all {
            // An entry standing for several calls is shown if its last call is in the window.
            if e.last_ms < since_ms || principal.is_some_and(|p| p != e.principal) {
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
                calls: e.calls,
                last_ms: e.last_ms,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1_record(mac_key: &Mac, prev: &[u8; 32], seq: u64) -> (Vec<u8>, [u8; 32]) {
        let old = EntryV1 {
            seq,
            time_ms: 1_700_000_000_000,
            principal: "dr-house".into(),
            purpose: "treatment".into(),
            action: Action::Get,
            target: Target {
                name: "notes".into(),
                item: Some("00112233445566778899aabbccddeeff".into()),
                count: 1,
                detail: None,
            },
            outcome: Outcome::Allowed,
            reason_sealed: None,
        };
        let body = postcard::to_allocvec(&old).expect("encode");
        let mac = mac_key.tag(&[b"audit", prev, &seq.to_be_bytes(), &body]);
        let mut rec = vec![ENTRY_FORMAT_V1];
        rec.extend_from_slice(&body);
        rec.extend_from_slice(&mac);
        (rec, mac)
    }

    /// Logs written before record format 3 still decode (one call each) and verify, and a
    /// chain may continue from them in the new format; relabelling a record's format breaks
    /// its MAC.
    #[test]
    fn format_1_records_still_verify_and_the_format_is_authenticated() {
        let mac_key = Mac::new(&Key32::from_slice(&[7u8; 32]).expect("32"));
        let (r1, m1) = v1_record(&mac_key, &[0u8; 32], 1);
        let d = decode_entry(&r1).expect("decode v1");
        assert_eq!((d.entry.calls, d.entry.last_ms), (1, d.entry.time_ms));
        assert!(d.chains_after(&mac_key, &[0u8; 32]));

        let mut block = vec![BLOCK_FORMAT];
        block.extend_from_slice(&(r1.len() as u32).to_be_bytes());
        block.extend_from_slice(&r1);
        let mut next = d.entry.clone();
        next.calls = 5;
        next.last_ms += 40;
        let head =
            chain_into(&mac_key, &Head { seq: 1, mac: m1 }, &mut next, &mut block).expect("chain");
        assert_eq!(head.seq, 2);
        let (mut prev, mut seq) = ([0u8; 32], 1u64);
        assert!(check_value(&mac_key, &mut prev, &mut seq, &block));
        assert_eq!((seq, prev), (3, head.mac));

        let mut relabelled = r1.clone();
        relabelled[0] = ENTRY_FORMAT;
        assert!(
            decode_entry(&relabelled)
                .map(|d| !d.chains_after(&mac_key, &[0u8; 32]))
                .unwrap_or(true)
        );
        let mut bad_calls = block.clone();
        // The new record's body ends `calls` (5: one varint byte) ‖ `last_ms` (six varint
        // bytes): claiming 4 calls instead breaks its MAC.
        let at = bad_calls.len() - 32 - 7;
        assert_eq!(bad_calls[at], 5);
        bad_calls[at] ^= 1;
        let (mut prev, mut seq) = ([0u8; 32], 1u64);
        assert!(!check_value(&mac_key, &mut prev, &mut seq, &bad_calls));
    }

    /// A record claiming zero calls, or a last call before its first, is refused.
    #[test]
    fn impossible_call_counts_do_not_decode() {
        let mac_key = Mac::new(&Key32::from_slice(&[7u8; 32]).expect("32"));
        for (calls, last_ms) in [(0u64, 10u64), (1, 9)] {
            let mut e = AuditEntry {
                seq: 0,
                time_ms: 10,
                principal: "p".into(),
                purpose: "q".into(),
                action: Action::Decrypt,
                target: Target::default(),
                outcome: Outcome::Allowed,
                reason_sealed: None,
                calls,
                last_ms,
            };
            let mut block = Vec::new();
            chain_into(
                &mac_key,
                &Head {
                    seq: 0,
                    mac: [0u8; 32],
                },
                &mut e,
                &mut block,
            )
            .expect("chain");
            assert!(decode_entry(&block[4..]).is_err());
        }
    }
}
