//! Access policy and audit log: default deny, views, purposes, break-the-glass, policy
//! tampering, audit tampering (edit, delete, reorder, truncate), fail-closed, no PHI.

use phivault::audit::{Action, Outcome};
use phivault::policy::{Caller, Policy};
use phivault::root::KeyFile;
use phivault::store::{CasItem, Durability, Entry, SledStore, Space, Store, WriteOp};
use phivault::tokens::View;
use phivault::{Backend, Context, Error, Key32, StoreError, Vault};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const POLICY: &str = r#"
[[principal]]
name = "dr-house"
roles = ["clinician"]

[[principal]]
name = "analyst"
roles = ["research"]

[[principal]]
name = "billing-bot"
roles = ["billing"]

[[rule]]
roles = ["clinician"]
purposes = ["treatment"]
actions = ["get", "put", "decrypt", "encrypt", "detokenize", "tokenize"]
collections = ["notes"]
fields = ["ssn", "mrn"]
keyrings = ["default"]

[[rule]]
roles = ["research"]
purposes = ["research"]
actions = ["tokenize", "detokenize"]
fields = ["ssn"]
view = "masked"

[[break_glass]]
roles = ["clinician"]
"#;

fn root() -> KeyFile {
    KeyFile::from_key(Key32::from_slice(&[8u8; 32]).expect("32"))
}

fn setup(dir: &Path) -> Vault {
    let v = Vault::create(dir.join("v"), &root()).expect("create");
    v.set_policy(&Policy::from_toml(POLICY).expect("policy"))
        .expect("set");
    v
}

#[test]
fn default_deny_purposes_and_views() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    v.owner()
        .put("notes", "MRN-1", b"note", None)
        .expect("owner put");
    v.owner()
        .put("labs", "MRN-1", b"lab", None)
        .expect("owner put");
    let ssn = v.owner().tokenize("ssn", "900-12-3456").expect("tok");

    let house = v.session(Caller::new("dr-house", "treatment"));
    assert_eq!(
        &*house.get("notes", "MRN-1").expect("allowed").expect("some"),
        b"note"
    );
    assert!(
        matches!(house.get("labs", "MRN-1"), Err(Error::AccessDenied { .. })),
        "collection not granted"
    );
    assert!(
        matches!(
            v.session(Caller::new("dr-house", "billing"))
                .get("notes", "MRN-1"),
            Err(Error::AccessDenied { .. })
        ),
        "wrong purpose"
    );
    assert!(
        matches!(
            v.session(Caller::new("stranger", "treatment"))
                .get("notes", "MRN-1"),
            Err(Error::AccessDenied { .. })
        ),
        "unknown principal"
    );
    assert!(
        matches!(
            v.session(Caller::new("billing-bot", "billing")).detokenize(
                "ssn",
                &ssn,
                View::Redacted
            ),
            Err(Error::AccessDenied { .. })
        ),
        "no rule"
    );
    assert!(
        matches!(
            house.delete("notes", "MRN-1"),
            Err(Error::AccessDenied { .. })
        ),
        "action not granted"
    );

    let analyst = v.session(Caller::new("analyst", "research"));
    assert_eq!(
        &*analyst
            .detokenize("ssn", &ssn, View::Masked)
            .expect("masked"),
        "***-**-3456"
    );
    assert_eq!(
        &*analyst
            .detokenize("ssn", &ssn, View::Redacted)
            .expect("redacted"),
        "[REDACTED]"
    );
    assert!(
        matches!(
            analyst.detokenize("ssn", &ssn, View::Plaintext),
            Err(Error::AccessDenied { .. })
        ),
        "view above grant"
    );
    assert_eq!(
        &*house
            .detokenize("ssn", &ssn, View::Plaintext)
            .expect("plain"),
        "900-12-3456"
    );
    assert!(matches!(
        analyst.tokenize("mrn", "MRN-1"),
        Err(Error::AccessDenied { .. })
    ));

    // envelope operations: keyring-scoped
    let ctx = Context::new().with("record", "1");
    let ct = house.encrypt(b"x", &ctx).expect("encrypt");
    assert_eq!(&*house.decrypt(&ct, &ctx).expect("decrypt"), b"x");
    assert!(matches!(
        analyst.decrypt(&ct, &ctx),
        Err(Error::AccessDenied { .. })
    ));

    // every decision is in the log, denials included
    let log = v.audit_entries(0, None, false).expect("entries");
    assert!(
        log.iter()
            .any(|e| e.principal == "stranger" && e.outcome == Outcome::Denied)
    );
    assert!(log.iter().any(|e| e.principal == "analyst"
        && e.action == Action::DetokenizeMasked
        && e.outcome == Outcome::Allowed));
    assert!(v.audit_verify().expect("verify").ok);
}

#[test]
fn break_the_glass_succeeds_for_permitted_roles_and_is_flagged() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    v.owner()
        .put("labs", "MRN-9", b"potassium 6.9", None)
        .expect("put");
    let bg = v.session(Caller::new("dr-house", "emergency").break_glass("code blue, bed 4"));
    assert_eq!(
        &*bg.get("labs", "MRN-9").expect("override").expect("some"),
        b"potassium 6.9"
    );
    let empty = v.session(Caller::new("dr-house", "emergency").break_glass("  "));
    assert!(
        matches!(empty.get("labs", "MRN-9"), Err(Error::AccessDenied { .. })),
        "a reason is required"
    );
    let not_permitted = v.session(Caller::new("analyst", "research").break_glass("curious"));
    assert!(matches!(
        not_permitted.get("labs", "MRN-9"),
        Err(Error::AccessDenied { .. })
    ));
    let log = v.audit_entries(0, Some("dr-house"), true).expect("entries");
    let flagged: Vec<_> = log.iter().filter(|e| e.break_glass).collect();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].outcome, Outcome::BreakGlass);
    assert_eq!(flagged[0].reason.as_deref(), Some("code blue, bed 4"));
    let hidden = v
        .audit_entries(0, Some("dr-house"), false)
        .expect("entries");
    assert!(
        hidden.iter().all(|e| e.reason.is_none()),
        "reasons only on request"
    );
}

#[test]
fn policy_tampering_is_detected() {
    let dir = tempfile::tempdir().expect("tmp");
    drop(setup(dir.path()));
    let db = open_sled(dir.path().join("v/store"));
    let key = b"mpolicy".to_vec();
    let mut sealed = db.get(&key).expect("get").expect("policy").to_vec();
    let n = sealed.len();
    sealed[n / 2] ^= 1;
    db.insert(&key, sealed).expect("insert");
    db.flush().expect("flush");
    drop(db);
    let v = Vault::open(dir.path().join("v"), &root()).expect("open");
    let house = v.session(Caller::new("dr-house", "treatment"));
    assert!(
        matches!(house.get("notes", "x"), Err(Error::CorruptMetadata { .. })),
        "fails closed on a forged policy"
    );
    assert!(matches!(v.policy(), Err(Error::CorruptMetadata { .. })));
    // policy changes are audited
    let log = v.audit_entries(0, None, false).expect("entries");
    assert!(log.iter().any(|e| e.action == Action::PolicySet));
}

fn tamper(dir: &Path, f: impl FnOnce(&sled::Db)) -> phivault::audit::AuditReport {
    let db = open_sled(dir.join("v/store"));
    f(&db);
    db.flush().expect("flush");
    drop(db);
    Vault::open(dir.join("v"), &root())
        .expect("open")
        .audit_verify()
        .expect("verify")
}

/// The audit log's stored blocks (key, value), in order. A block holds one or more entries
/// (group commit): `0x02`, then `len u32 BE ‖ record` repeated.
fn blocks(db: &sled::Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.scan_prefix(b"a")
        .map(|kv| kv.expect("kv"))
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

/// The records of one block.
fn records(block: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(block[0], 2, "a block");
    let mut out = Vec::new();
    let mut rest = &block[1..];
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().expect("len")) as usize;
        out.push(rest[4..4 + len].to_vec());
        rest = &rest[4 + len..];
    }
    out
}

fn fresh_log(dir: &Path) -> u64 {
    let v = setup(dir);
    for i in 0..10 {
        v.owner()
            .put("notes", &format!("r{i}"), b"x", None)
            .expect("put");
        let _ = v.owner().get("notes", &format!("r{i}")).expect("get");
    }
    let r = v.audit_verify().expect("verify");
    assert!(r.ok, "{r:?}");
    r.entries
}

#[test]
fn audit_edit_delete_reorder_truncate_are_detected() {
    // edit one byte inside a block
    let dir = tempfile::tempdir().expect("tmp");
    let n = fresh_log(dir.path());
    let r = tamper(dir.path(), |db| {
        let (k, mut v) = blocks(db)[4].clone();
        let i = v.len() / 2;
        v[i] ^= 0x20;
        db.insert(k, v).expect("insert");
    });
    assert!(!r.ok && r.first_bad.is_some(), "{r:?}");
    // delete a block from the middle
    let dir = tempfile::tempdir().expect("tmp");
    fresh_log(dir.path());
    let r = tamper(dir.path(), |db| {
        let (k, _) = blocks(db)[5].clone();
        db.remove(k).expect("remove");
    });
    assert!(
        !r.ok && r.problem.as_deref().unwrap_or("").contains("missing"),
        "{r:?}"
    );
    // reorder: swap two blocks' contents
    let dir = tempfile::tempdir().expect("tmp");
    fresh_log(dir.path());
    let r = tamper(dir.path(), |db| {
        let b = blocks(db);
        db.insert(b[3].0.clone(), b[4].1.clone()).expect("insert");
        db.insert(b[4].0.clone(), b[3].1.clone()).expect("insert");
    });
    assert!(!r.ok && r.first_bad.is_some(), "{r:?}");
    // drop one entry from inside a block (rewrite the block without it)
    let dir = tempfile::tempdir().expect("tmp");
    fresh_log(dir.path());
    let r = tamper(dir.path(), |db| {
        let b = blocks(db);
        let (k, v) = b
            .iter()
            .find(|(_, v)| records(v).len() > 1)
            .expect("a block with 2 entries")
            .clone();
        let recs = records(&v);
        let mut nb = vec![2u8];
        for rec in &recs[1..] {
            nb.extend_from_slice(&(rec.len() as u32).to_be_bytes());
            nb.extend_from_slice(rec);
        }
        db.insert(k, nb).expect("insert");
    });
    assert!(!r.ok, "{r:?}");
    // truncate the tail
    let dir = tempfile::tempdir().expect("tmp");
    let n2 = fresh_log(dir.path());
    assert_eq!(n, n2);
    let r = tamper(dir.path(), |db| {
        let (k, _) = blocks(db).last().expect("last").clone();
        db.remove(k).expect("remove");
    });
    assert!(
        !r.ok && r.problem.as_deref().unwrap_or("").contains("truncated"),
        "{r:?}"
    );
}

#[test]
fn audit_head_anchor_catches_rollback_of_log_and_head_together() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    v.owner().put("notes", "a", b"x", None).expect("put");
    let (seq, mac) = v.audit_head().expect("head");
    drop(v);
    // an attacker deletes the last block AND rewinds the head to the entry before it: the
    // store alone looks consistent, the externally recorded anchor does not
    let db = open_sled(dir.path().join("v/store"));
    let b = blocks(&db);
    let (last_key, _) = b.last().expect("last").clone();
    let (prev_key, prev_val) = b[b.len() - 2].clone();
    let recs = records(&prev_val);
    let prev_seq =
        u64::from_be_bytes(prev_key[1..9].try_into().expect("seq")) + recs.len() as u64 - 1;
    let last_rec = recs.last().expect("rec");
    let prev_mac = last_rec[last_rec.len() - 32..].to_vec();
    db.remove(last_key).expect("remove");
    // a head for prev_seq (postcard: varint seq, then 32 bytes)
    let mut head = Vec::new();
    let mut s = prev_seq;
    loop {
        let byte = (s & 0x7f) as u8;
        s >>= 7;
        if s == 0 {
            head.push(byte);
            break;
        }
        head.push(byte | 0x80);
    }
    head.extend_from_slice(&prev_mac);
    db.insert(b"maudit-head", head).expect("insert");
    db.flush().expect("flush");
    drop(db);
    let v = Vault::open(dir.path().join("v"), &root()).expect("open");
    let r = v.audit_verify().expect("verify");
    assert!(
        r.ok,
        "a consistent rollback passes the in-store check: {r:?}"
    );
    assert!(r.head_seq < seq);
    assert_ne!(
        v.audit_mac_at(seq).expect("mac"),
        Some(mac.clone()),
        "the external anchor shows it"
    );
    // The check itself lives in core: every front asks `audit_verify_extends`.
    let r = v
        .audit_verify_extends(&format!("{seq}:{mac}"))
        .expect("verify extends");
    assert!(!r.ok, "{r:?}");
    assert_eq!(
        r.problem.as_deref(),
        Some(format!("the log does not extend the recorded head {seq}").as_str())
    );
    // An anchor the log does extend passes; a malformed one is refused as input.
    let (now_seq, now_mac) = v.audit_head().expect("head");
    let r = v
        .audit_verify_extends(&format!("{now_seq}:{now_mac}"))
        .expect("verify extends");
    assert!(r.ok, "{r:?}");
    for bad in [
        "",
        "12",
        "x:00",
        "1:zz",
        &format!("{now_seq}:{}", &now_mac[2..]),
    ] {
        assert!(
            matches!(
                v.audit_verify_extends(bad),
                Err(phivault::Error::InvalidInput { .. })
            ),
            "{bad:?}"
        );
    }
}

/// A store that fails every write touching the audit log while `fail` is set.
struct FlakyAuditStore {
    inner: SledStore,
    fail: Arc<AtomicBool>,
}

impl FlakyAuditStore {
    fn check(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
        let hits = ops.iter().any(|op| {
            matches!(
                op,
                WriteOp::Put {
                    space: Space::Audit,
                    ..
                } | WriteOp::Delete {
                    space: Space::Audit,
                    ..
                }
            )
        });
        if hits && self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("injected audit failure".into()));
        }
        Ok(())
    }
}

impl Store for FlakyAuditStore {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(space, key)
    }
    fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.check(&ops)?;
        self.inner.write(ops)
    }
    fn write_unsynced(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.check(&ops)?;
        self.inner.write_unsynced(ops)
    }
    fn compare_and_swap(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        self.inner.compare_and_swap(space, key, expected, new)
    }
    fn compare_and_swap_unsynced(
        &self,
        space: Space,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        self.inner
            .compare_and_swap_unsynced(space, key, expected, new)
    }
    fn sync(&self) -> Result<(), StoreError> {
        self.inner.sync()
    }
    fn compare_and_swap_many(
        &self,
        space: Space,
        items: Vec<CasItem>,
    ) -> Result<usize, StoreError> {
        self.inner.compare_and_swap_many(space, items)
    }
    fn scan(
        &self,
        space: Space,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.inner.scan(space, prefix, after, limit)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }
}

#[test]
fn operations_fail_closed_when_the_audit_write_fails() {
    let dir = tempfile::tempdir().expect("tmp");
    let fail = Arc::new(AtomicBool::new(false));
    let store = FlakyAuditStore {
        inner: SledStore::open(&dir.path().join("store"), Durability::Immediate).expect("sled"),
        fail: fail.clone(),
    };
    let v = Vault::create_in(Box::new(store), &root(), Backend::Ring).expect("create");
    v.owner()
        .put("notes", "1", b"secret note", None)
        .expect("put");
    let t = v.owner().tokenize("ssn", "900-12-3456").expect("tok");
    let ctx = Context::new().with("k", "v");
    let ct = v.owner().encrypt(b"x", &ctx).expect("enc");
    fail.store(true, Ordering::SeqCst);
    // A write's entry is written at once: the write is refused and changes nothing.
    assert!(matches!(
        v.owner().put("notes", "2", b"y", None),
        Err(Error::AuditUnavailable)
    ));
    // From then on every operation is refused until the log can be written again — reads too,
    // although their entries normally wait for a group commit.
    assert!(matches!(
        v.owner().get("notes", "1"),
        Err(Error::AuditUnavailable)
    ));
    assert!(matches!(
        v.owner().detokenize("ssn", &t, View::Plaintext),
        Err(Error::AuditUnavailable)
    ));
    assert!(matches!(
        v.owner().decrypt(&ct, &ctx),
        Err(Error::AuditUnavailable)
    ));
    assert!(matches!(v.rotate("default"), Err(Error::AuditUnavailable)));
    fail.store(false, Ordering::SeqCst);
    assert!(
        v.owner().get("notes", "2").expect("get").is_none(),
        "the refused put wrote nothing"
    );
    assert_eq!(
        v.keyrings().expect("k")[0].active,
        1,
        "the refused rotate changed nothing"
    );
    assert!(v.audit_verify().expect("verify").ok);
}

#[test]
fn canaries_never_reach_the_log_or_the_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    let canaries = [
        "CANARY-7c1e-SSN-900-11-2222",
        "CANARY-7c1e-Zebulon-Quartermaine",
        "CANARY-7c1e-MRN-00042",
    ];
    for c in canaries {
        v.owner()
            .put("notes", c, c.as_bytes(), Some(c))
            .expect("put");
        let _ = v.owner().get("notes", c).expect("get");
        let t = v.owner().tokenize("name", c).expect("tok");
        let _ = v
            .owner()
            .detokenize("name", &t, View::Plaintext)
            .expect("detok");
        let ctx = Context::new().with("record", c);
        let ct = v.owner().encrypt(c.as_bytes(), &ctx).expect("enc");
        let _ = v.owner().decrypt(&ct, &ctx).expect("dec");
        let _ = v
            .session(Caller::new("dr-house", "emergency").break_glass(c))
            .get("notes", c);
    }
    v.forget_subject(canaries[0]).expect("forget");
    let exported =
        serde_json::to_string(&v.audit_entries(0, None, false).expect("entries")).expect("json");
    drop(v);
    let mut blobs = vec![exported.into_bytes()];
    let mut stack = vec![dir.path().join("v")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_dir() {
                stack.push(e.path());
            } else {
                blobs.push(std::fs::read(e.path()).expect("read"));
            }
        }
    }
    for b in &blobs {
        assert!(
            !b.windows(11).any(|w| w == b"CANARY-7c1e"),
            "a canary leaked"
        );
    }
}

#[test]
fn read_auditing_can_be_turned_off_but_never_for_writes_or_denials() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    v.owner().put("notes", "1", b"x", None).expect("put");
    let count = |v: &Vault| v.audit_entries(0, None, false).expect("entries").len();
    let before = count(&v);
    v.set_read_auditing(false).expect("off");
    let _ = v.owner().get("notes", "1").expect("get");
    let _ = v.owner().tokenize("ssn", "900-12-3456").expect("tok");
    assert_eq!(count(&v), before + 1, "only the switch itself is logged");
    v.owner().put("notes", "2", b"y", None).expect("put");
    let _ = v.session(Caller::new("stranger", "x")).get("notes", "1");
    let log = v.audit_entries(0, None, false).expect("entries");
    assert_eq!(
        log.len(),
        before + 3,
        "writes and denials are always logged"
    );
    assert!(log.iter().any(|e| e.outcome == Outcome::Denied));
    v.set_read_auditing(true).expect("on");
    let _ = v.owner().get("notes", "1").expect("get");
    assert_eq!(count(&v), before + 5);
    assert!(v.audit_verify().expect("verify").ok);
}

/// Opens the vault's sled database directly (to tamper with it). sled may release the previous
/// handle's file lock a moment after the vault is dropped (its background I/O), so retry briefly.
fn open_sled(path: impl AsRef<std::path::Path>) -> sled::Db {
    let path = path.as_ref();
    let mut last = None;
    for _ in 0..100 {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("sled did not open: {last:?}");
}

/// Reads and denials identical to the one before them (same principal, purpose, action,
/// target, outcome) are counted in that entry's `calls` (group commit): every call is counted,
/// nothing else is merged, order is kept, no entry stands for more than `MAX_PENDING_CALLS`
/// calls, and the log verifies.
#[test]
fn identical_reads_share_one_entry_and_every_call_is_counted() {
    use phivault::audit::{AuditView, MAX_PENDING_CALLS};
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    let ctx = Context::new().with("k", "v");
    let ct = v.owner().encrypt(b"x", &ctx).expect("enc");
    v.owner().put("notes", "1", b"note", None).expect("put");
    let start = v.audit_entries(0, None, false).expect("entries").len();
    let dr = v.session(Caller::new("dr-house", "treatment"));
    let stranger = v.session(Caller::new("stranger", "curiosity"));
    for _ in 0..300 {
        dr.decrypt(&ct, &ctx).expect("dec");
    }
    v.owner().put("notes", "2", b"note", None).expect("put");
    for _ in 0..5 {
        dr.decrypt(&ct, &ctx).expect("dec");
        dr.get("notes", "1").expect("get");
    }
    for _ in 0..7 {
        assert!(matches!(
            stranger.decrypt(&ct, &ctx),
            Err(Error::AccessDenied { .. })
        ));
    }
    v.owner().put("notes", "3", b"note", None).expect("put");
    for _ in 0..2500 {
        dr.decrypt(&ct, &ctx).expect("dec");
    }
    let log = v.audit_entries(0, None, false).expect("entries");
    let new: &[AuditView] = &log[start..];
    // Split at the owner's puts (written at once, never merged).
    let runs: Vec<&[AuditView]> = new.split(|e| e.action == Action::Put).collect();
    assert_eq!(runs.len(), 3, "two puts split the log into three runs");
    let calls = |run: &[AuditView]| run.iter().map(|e| e.calls).sum::<u64>();

    assert_eq!(calls(runs[0]), 300, "every call is counted");
    assert!(runs[0].len() < 300, "identical calls share entries");
    assert!(runs[0].iter().all(|e| e.action == Action::Decrypt
        && e.principal == "dr-house"
        && e.outcome == Outcome::Allowed));

    // Alternating calls are never merged and keep their order; the denials come after them.
    let got: Vec<(Action, Outcome, u64)> = runs[1]
        .iter()
        .map(|e| (e.action, e.outcome, e.calls))
        .collect();
    let mut want = Vec::new();
    for _ in 0..5 {
        want.push((Action::Decrypt, Outcome::Allowed, 1));
        want.push((Action::Get, Outcome::Allowed, 1));
    }
    assert_eq!(
        got[..10],
        want[..],
        "different calls are never merged, order is kept"
    );
    let denied = &runs[1][10..];
    assert!(!denied.is_empty());
    assert!(denied.iter().all(|e| e.outcome == Outcome::Denied
        && e.principal == "stranger"
        && e.action == Action::Decrypt));
    assert_eq!(calls(denied), 7, "each denial is counted");

    assert_eq!(calls(runs[2]), 2500);
    assert!(runs[2].len() as u64 >= 2500u64.div_ceil(MAX_PENDING_CALLS));
    assert!(
        new.iter()
            .all(|e| e.calls >= 1 && e.calls <= MAX_PENDING_CALLS && e.time_ms <= e.last_ms)
    );
    let report = v.audit_verify().expect("verify");
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries, log.len() as u64);
}

/// A refused call is not counted: when the group commit that a read triggers fails, the read
/// is refused and withdrawn from the waiting entry it had joined; the calls before it stay.
#[test]
fn a_read_refused_at_a_failed_group_commit_is_not_counted() {
    use phivault::audit::MAX_PENDING_CALLS;
    let dir = tempfile::tempdir().expect("tmp");
    let fail = Arc::new(AtomicBool::new(false));
    let store = FlakyAuditStore {
        inner: SledStore::open(&dir.path().join("store"), Durability::Immediate).expect("sled"),
        fail: fail.clone(),
    };
    let v = Vault::create_in(Box::new(store), &root(), Backend::Ring).expect("create");
    let ctx = Context::new().with("k", "v");
    let ct = v.owner().encrypt(b"x", &ctx).expect("enc");
    v.audit_verify().expect("verify (writes what waits)");
    let start = v.audit_entries(0, None, false).expect("entries").len();
    fail.store(true, Ordering::SeqCst);
    // Waiting calls need no write until the bound; the call that reaches it must write.
    let mut refused = 0;
    for _ in 0..MAX_PENDING_CALLS {
        if v.owner().decrypt(&ct, &ctx).is_err() {
            refused += 1;
        }
    }
    assert!(refused >= 1, "the call that reached the bound was refused");
    fail.store(false, Ordering::SeqCst);
    v.owner().decrypt(&ct, &ctx).expect("dec after recovery");
    let log = v.audit_entries(0, None, false).expect("entries");
    let counted: u64 = log[start..]
        .iter()
        .filter(|e| e.action == Action::Decrypt)
        .map(|e| e.calls)
        .sum();
    assert_eq!(
        counted,
        MAX_PENDING_CALLS - refused + 1,
        "refused calls are not counted"
    );
    assert!(v.audit_verify().expect("verify").ok);
}

/// The record format byte is covered by the MAC: a record of the current format (3) relabelled
/// as the old one (1) fails verification.
#[test]
fn audit_record_format_is_authenticated() {
    let dir = tempfile::tempdir().expect("tmp");
    let n = fresh_log(dir.path());
    assert!(n > 2);
    let report = tamper(dir.path(), |db| {
        let (k, v) = blocks(db).pop().expect("a block");
        let recs = records(&v);
        assert_eq!(recs[0][0], 3, "entries are written in format 3");
        let mut block = vec![2u8];
        for (i, mut r) in recs.into_iter().enumerate() {
            if i == 0 {
                r[0] = 1;
            }
            block.extend_from_slice(&(r.len() as u32).to_be_bytes());
            block.extend_from_slice(&r);
        }
        db.insert(k, block).expect("insert");
    });
    assert!(!report.ok, "{report:?}");
}

/// An entry that stands for several calls is found by a window that starts after its first
/// call but covers a later one (`audit_entries` filters on the last call's time).
#[test]
fn a_shared_entry_is_found_by_a_window_that_holds_its_last_call() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    let ctx = Context::new().with("k", "v");
    let ct = v.owner().encrypt(b"x", &ctx).expect("enc");
    v.audit_verify().expect("verify (writes what waits)");
    v.owner().decrypt(&ct, &ctx).expect("dec");
    std::thread::sleep(std::time::Duration::from_millis(20));
    v.owner().decrypt(&ct, &ctx).expect("dec");
    let all = v.audit_entries(0, None, false).expect("entries");
    let shared = all.last().expect("an entry");
    assert_eq!((shared.action, shared.calls), (Action::Decrypt, 2));
    assert!(shared.last_ms >= shared.time_ms + 20);
    let window = v
        .audit_entries(shared.time_ms + 10, None, false)
        .expect("entries");
    assert!(
        window.iter().any(|e| e.seq == shared.seq),
        "the entry's last call is in the window"
    );
}
