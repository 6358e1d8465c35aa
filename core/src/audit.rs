//! The tamper-evident audit log: an append-only chain of entries in the store, each carrying
//! an HMAC-SHA256 over the previous entry's MAC, its sequence number and its contents, plus a
//! head anchor (last sequence number and MAC) written atomically with every entry. Edits,
//! deletions, reordering and truncation of the tail are all detected by [`Vault::audit_verify`].
//!
//! No PHI ever enters the log: record ids and tokens appear only as keyed hashes, values never;
//! a break-the-glass reason (free text that might name a patient) is stored encrypted and shown
//! only to auditors through [`Vault::audit_entries`].
//!
//! Fail closed: an operation whose audit entry cannot be written is refused.
//!
//! # Security notes
//! The head anchor lives in the same store: someone who can rewrite the store *and* holds no
//! key cannot forge MACs, but could roll back log and anchor together to an earlier consistent
//! state. Export [`Vault::audit_head`] to a separate system (a SIEM) regularly and compare.

use crate::envelope::{unwrap_with, wrap_with};
use crate::kdf::{Mac, ct_eq};
use crate::store::{ScanIter, Space, WriteOp};
use crate::vault::Vault;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

const HEAD_KEY: &[u8] = b"audit-head";
const ENTRY_FORMAT: u8 = 1;
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
    /// Break-the-glass reason, encrypted (shown decrypted by [`Vault::audit_entries`]).
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

/// The result of [`Vault::audit_verify`].
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

/// In-memory state of the log: the head, guarded so appends form one chain.
pub(crate) struct AuditState {
    head: Mutex<Option<Head>>,
}

impl Default for AuditState {
    fn default() -> Self {
        AuditState {
            head: Mutex::new(None),
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
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

/// The details of an entry to append.
pub(crate) struct Record<'a> {
    pub principal: &'a str,
    pub purpose: &'a str,
    pub action: Action,
    pub target: Target,
    pub outcome: Outcome,
    pub reason: Option<&'a str>,
}

impl Vault {
    fn load_head(&self) -> Result<Head> {
        match self.store.get(Space::Meta, HEAD_KEY)? {
            None => Ok(Head {
                seq: 0,
                mac: [0u8; 32],
            }),
            Some(b) => crate::codec::decode_exact(&b, "audit head"),
        }
    }

    /// Appends one entry (and the new head, atomically). Fails closed: an error here must make
    /// the caller refuse the operation. `extra` writes go into the same atomic batch.
    pub(crate) fn audit_append(&self, rec: Record<'_>, extra: Vec<WriteOp>) -> Result<u64> {
        let mut guard = self
            .audit
            .head
            .lock()
            .map_err(|_| Error::AuditUnavailable)?;
        let head = match *guard {
            Some(h) => h,
            None => self.load_head()?,
        };
        let seq = head.seq + 1;
        let reason_sealed = match rec.reason {
            Some(r) => Some(wrap_with(
                self.keys.audit_seal.as_ref(),
                REASON_AAD,
                r.as_bytes(),
            )?),
            None => None,
        };
        let entry = AuditEntry {
            seq,
            time_ms: now_ms(),
            principal: rec.principal.to_owned(),
            purpose: rec.purpose.to_owned(),
            action: rec.action,
            target: rec.target,
            outcome: rec.outcome,
            reason_sealed,
        };
        let body = postcard::to_allocvec(&entry).map_err(|_| Error::Crypto("audit encoding"))?;
        let mac = entry_mac(&self.keys.audit_mac, &head.mac, seq, &body);
        let mut value = Vec::with_capacity(1 + body.len() + 32);
        value.push(ENTRY_FORMAT);
        value.extend_from_slice(&body);
        value.extend_from_slice(&mac);
        let new_head = Head { seq, mac };
        let mut ops = extra;
        ops.push(WriteOp::Put {
            space: Space::Audit,
            key: seq.to_be_bytes().to_vec(),
            value,
        });
        ops.push(WriteOp::Put {
            space: Space::Meta,
            key: HEAD_KEY.to_vec(),
            value: postcard::to_allocvec(&new_head).map_err(|_| Error::Crypto("audit encoding"))?,
        });
        self.store
            .write_unsynced(ops)
            .map_err(|_| Error::AuditUnavailable)?;
        *guard = Some(new_head);
        Ok(seq)
    }

    /// Checks the whole chain: sequence numbers from 1 without gaps, every MAC, and the head
    /// anchor. Reports the first bad entry.
    pub fn audit_verify(&self) -> Result<AuditReport> {
        let head = self.load_head()?;
        let mut prev = [0u8; 32];
        let mut report = AuditReport {
            entries: 0,
            ok: true,
            first_bad: None,
            problem: None,
            head_seq: head.seq,
            head_mac: hex(&head.mac),
        };
        let fail = |r: &mut AuditReport, at: u64, why: &str| {
            r.ok = false;
            r.first_bad = Some(at);
            r.problem = Some(why.to_owned());
        };
        let entries = ScanIter::new(self.store.as_ref(), Space::Audit, Vec::new());
        for (expected, item) in (1u64..).zip(entries) {
            let (key, value) = item?;
            let seq = <[u8; 8]>::try_from(key.as_slice())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if seq != expected {
                fail(
                    &mut report,
                    expected,
                    if seq > expected {
                        "entry missing (deleted)"
                    } else {
                        "entry out of order"
                    },
                );
                return Ok(report);
            }
            let Ok((entry, mac, body)) = decode_entry(&value) else {
                fail(&mut report, seq, "entry cannot be decoded (edited)");
                return Ok(report);
            };
            if entry.seq != seq || !ct_eq(&entry_mac(&self.keys.audit_mac, &prev, seq, body), &mac)
            {
                fail(
                    &mut report,
                    seq,
                    "MAC does not match (edited, reordered or replaced)",
                );
                return Ok(report);
            }
            prev = mac;
            report.entries += 1;
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

    /// The head anchor (sequence number, MAC hex) to record outside the vault.
    pub fn audit_head(&self) -> Result<(u64, String)> {
        let h = self.load_head()?;
        Ok((h.seq, hex(&h.mac)))
    }

    /// Entries with `time_ms >= since_ms`, optionally of one principal, oldest first. Reasons
    /// of break-the-glass entries are decrypted only when `include_reasons` is set.
    pub fn audit_entries(
        &self,
        since_ms: u64,
        principal: Option<&str>,
        include_reasons: bool,
    ) -> Result<Vec<AuditView>> {
        let mut out = Vec::new();
        for item in ScanIter::new(self.store.as_ref(), Space::Audit, Vec::new()) {
            let (_, value) = item?;
            let (e, _, _) = decode_entry(&value)?;
            if e.time_ms < since_ms || principal.is_some_and(|p| p != e.principal) {
                continue;
            }
            let reason = match (&e.reason_sealed, include_reasons) {
                (Some(sealed), true) => Some(
                    String::from_utf8(
                        unwrap_with(self.keys.audit_seal.as_ref(), REASON_AAD, sealed)?
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
