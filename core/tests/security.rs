//! Regression tests for the access-control and audit holes of the security review (issue 16):
//! each test failed on the code before the fix. The class-closing test walks every public
//! `Session` operation as a principal without rights and expects a refusal and a logged denial.

use phivault::audit::{Action, Outcome};
use phivault::policy::{Caller, Policy};
use phivault::records::PutOptions;
use phivault::root::KeyFile;
use phivault::store::{CasItem, Durability, Entry, SledStore, Space, Store, WriteOp};
use phivault::stream::StreamOptions;
use phivault::tokens::View;
use phivault::{Backend, Context, EncryptOptions, Error, Key32, StoreError, Vault};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn root() -> KeyFile {
    KeyFile::from_key(Key32::from_slice(&[0x5e; 32]).expect("32"))
}

const POLICY: &str = r#"
[[principal]]
name = "thief"
roles = ["decryptor"]

[[principal]]
name = "clerk"
roles = ["billing"]

[[principal]]
name = "dr-house"
roles = ["clinician"]

[[principal]]
name = "mallory"
roles = []

[[rule]]
roles = ["decryptor"]
purposes = ["x"]
actions = ["decrypt"]
keyrings = ["*"]

[[rule]]
roles = ["billing"]
purposes = ["billing"]
actions = ["tokenize", "detokenize", "put"]
fields = ["acct"]
collections = ["bills"]
view = "masked"

[[break_glass]]
roles = ["clinician"]
"#;

const FIELDS: &str = r#"
[[field]]
name = "acct"
kind = "vaulted"
consistent = true
mask_keep_last = 8
"#;

fn setup(v: &Vault) {
    v.set_policy(&Policy::from_toml(POLICY).expect("policy"))
        .expect("set policy");
    v.define_fields_toml(FIELDS).expect("fields");
}

/// The one stored value of `space` (the vault must be closed).
fn raw_values(store_dir: &Path, space: Space) -> Vec<Vec<u8>> {
    let store = SledStore::open(store_dir, Durability::Immediate).expect("sled");
    store
        .scan(space, &[], None, 1000)
        .expect("scan")
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn denials(v: &Vault, principal: &str) -> Vec<phivault::audit::AuditView> {
    v.audit_entries(0, Some(principal), false)
        .expect("entries")
        .into_iter()
        .filter(|e| e.outcome == Outcome::Denied)
        .collect()
}

/// Finding 1: a principal with `decrypt` on every keyring took a record's envelope (and a
/// vaulted token's) from the store and opened it through the envelope API with the reserved
/// context. Failed before: the plaintext came back.
#[test]
fn stored_records_and_token_values_cannot_be_opened_through_the_envelope_api() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v");
    let token = {
        let v = Vault::create(&path, &root()).expect("create");
        setup(&v);
        v.owner()
            .put("notes", "r1", b"record canary 7c1f", None)
            .expect("put");
        v.owner()
            .put("notes", "r2", b"subject canary 7c1f", Some("p1"))
            .expect("put subject");
        v.owner().tokenize("acct", "4711002").expect("tokenize")
    };
    let records = raw_values(&path.join("store"), Space::Record);
    let tokens = raw_values(&path.join("store"), Space::Token);
    assert_eq!((records.len(), tokens.len()), (2, 1));
    let v = Vault::open(&path, &root()).expect("open");
    let thief = v.session(Caller::new("thief", "x"));
    let rec_ctx = |id: &str| {
        Context::new()
            .with("phivault.collection", "notes")
            .with("phivault.id", id)
    };
    let tok_ctx = Context::new()
        .with("phivault.field", "acct")
        .with("phivault.token", token.as_str());
    for (env, ctx) in [
        (&records[0][1..], rec_ctx("r1")),
        (&records[0][1..], rec_ctx("r2")),
        (&records[1][1..], rec_ctx("r1")),
        (&records[1][1..], rec_ctx("r2")),
        (&tokens[0][1..], tok_ctx.clone()),
    ] {
        for out in [
            thief.decrypt(env, &ctx).map(|p| p.to_vec()),
            v.owner().decrypt(env, &ctx).map(|p| p.to_vec()),
            thief
                .decrypt_many(&[env], &ctx)
                .map(|mut p| p.remove(0).to_vec()),
            // The envelope's own domain refuses it even under an unreserved context.
            thief
                .decrypt(env, &Context::new().with("collection", "notes"))
                .map(|p| p.to_vec()),
        ] {
            assert!(
                matches!(
                    out,
                    Err(Error::InvalidInput { .. } | Error::AuthenticationFailed)
                ),
                "opened: {out:?}"
            );
        }
    }
    assert!(
        !denials(&v, "thief").is_empty(),
        "the refused reserved-context decrypts are logged as denials"
    );
    // Their own paths still open them.
    assert_eq!(
        &*v.owner().get("notes", "r1").expect("get").expect("some"),
        b"record canary 7c1f"
    );
    assert_eq!(
        &*v.owner()
            .detokenize("acct", &token, View::Plaintext)
            .expect("detok"),
        "4711002"
    );
}

/// Finding 2: `mask_keep_last = 8` on a 7-character value showed all of it to a principal
/// capped at the masked view. Failed before: `4711002` came back.
#[test]
fn the_masked_view_hides_at_least_half_of_every_value() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = Vault::create(dir.path().join("v"), &root()).expect("create");
    setup(&v);
    let clerk = v.session(Caller::new("clerk", "billing"));
    let t = clerk.tokenize("acct", "4711002").expect("tok");
    let masked = clerk.detokenize("acct", &t, View::Masked).expect("masked");
    assert_eq!(&*masked, "****002");
    assert!(clerk.detokenize("acct", &t, View::Plaintext).is_err());
    // Presets and short values: never more than half of the maskable characters shown.
    for (field, value) in [
        ("ssn", "900-12-3456"),
        ("mrn", "1234567"),
        ("email", "jo@ex.org"),
        ("phone", "555-0100"),
        ("acct", "123456789012345678"),
    ] {
        let t = v
            .owner()
            .tokenize(field, value)
            .unwrap_or_else(|e| panic!("{field}: {e}"));
        let m = v
            .owner()
            .detokenize(field, &t, View::Masked)
            .expect("masked");
        let total = value.chars().filter(|c| c.is_alphanumeric()).count();
        let shown = m.chars().filter(|c| c.is_alphanumeric()).count();
        assert!(
            shown * 2 <= total,
            "{field}: {shown} of {total} characters shown"
        );
    }
}

/// Finding 4: a subject key was made under the keyring of the subject's first write and reused
/// for every later keyring, so destroying another keyring's key version shredded nothing and
/// reported no dependents. Failed before: the destroy reported 0 dependents and the clinical
/// record stayed readable.
#[test]
fn destroying_a_keyrings_key_shreds_that_keyrings_subject_data() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = Vault::create(dir.path().join("v"), &root()).expect("create");
    v.create_keyring("research").expect("kr");
    v.create_keyring("clinical").expect("kr");
    let opts = |k| PutOptions {
        subject: Some("p1"),
        keyring: Some(k),
    };
    v.owner()
        .put_with("study", "s1", b"research data", &opts("research"))
        .expect("put research");
    v.owner()
        .put_with("chart", "c1", b"clinical data", &opts("clinical"))
        .expect("put clinical");
    v.rotate("clinical").expect("rotate");
    match v.destroy_key_version("clinical", 1, false) {
        Err(Error::KeyInUse { subject_keys, .. }) => assert_eq!(subject_keys, 1),
        other => panic!("destroy of a version wrapping a subject key: {other:?}"),
    }
    let deps = v
        .destroy_key_version("clinical", 1, true)
        .expect("forced destroy");
    assert_eq!((deps.subject_keys, deps.records), (1, 1));
    assert!(
        v.owner().get("chart", "c1").is_err(),
        "the clinical record is shredded"
    );
    assert_eq!(
        &*v.owner().get("study", "s1").expect("get").expect("some"),
        b"research data"
    );
    // forget_subject still destroys every key of the subject.
    assert!(v.forget_subject("p1").expect("forget"));
    assert!(matches!(
        v.owner().get("study", "s1"),
        Err(Error::SubjectForgotten)
    ));
}

/// A store that records writes of the audit space and syncs, in order, and can fail audit
/// writes on demand.
struct Recording {
    inner: SledStore,
    events: Arc<Mutex<Vec<&'static str>>>,
    fail_audit: Arc<AtomicBool>,
}

impl Recording {
    fn note(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
        let audit = ops.iter().any(|op| {
            matches!(
                op,
                WriteOp::Put {
                    space: Space::Audit,
                    ..
                }
            )
        });
        if audit {
            if self.fail_audit.load(Ordering::SeqCst) {
                return Err(StoreError::Backend("injected audit failure".into()));
            }
            self.events.lock().expect("lock").push("audit");
        }
        Ok(())
    }
}

impl Store for Recording {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if space == Space::Keyring {
            self.events.lock().expect("lock").push("keyring-read");
        }
        self.inner.get(space, key)
    }
    fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.note(&ops)?;
        self.inner.write(ops)?;
        self.events.lock().expect("lock").push("sync");
        Ok(())
    }
    fn write_unsynced(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.note(&ops)?;
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
        self.inner.sync()?;
        self.events.lock().expect("lock").push("sync");
        Ok(())
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
        self.inner.flush()?;
        self.events.lock().expect("lock").push("sync");
        Ok(())
    }
}

type Events = Arc<Mutex<Vec<&'static str>>>;

fn recording_vault(dir: &Path) -> (Vault, Events, Arc<AtomicBool>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let fail = Arc::new(AtomicBool::new(false));
    let store = Recording {
        inner: SledStore::open(&dir.join("store"), Durability::Immediate).expect("sled"),
        events: events.clone(),
        fail_audit: fail.clone(),
    };
    let v = Vault::create_in(Box::new(store), &root(), Backend::Ring).expect("create");
    (v, events, fail)
}

/// Finding 5: break-the-glass reads were dropped with read auditing off, and returned before
/// their entry was durable with it on. Failed before: no entry was written before the data
/// came back (and none at all with read auditing off).
#[test]
fn break_the_glass_is_written_and_synced_before_data_is_returned() {
    for reads_audited in [false, true] {
        let dir = tempfile::tempdir().expect("tmp");
        let (v, events, _) = recording_vault(dir.path());
        setup(&v);
        v.owner()
            .put("notes", "r1", b"emergency canary", None)
            .expect("put");
        v.set_read_auditing(reads_audited).expect("reads");
        events.lock().expect("lock").clear();
        let doc =
            v.session(Caller::new("dr-house", "treatment").break_glass("patient unconscious"));
        let got = doc.get("notes", "r1").expect("break glass").expect("some");
        assert_eq!(&*got, b"emergency canary");
        let seen = events.lock().expect("lock").clone();
        let audit_at = seen.iter().position(|e| *e == "audit");
        let synced_after = audit_at.is_some_and(|i| seen[i..].contains(&"sync"));
        assert!(
            synced_after,
            "reads audited {reads_audited}: events before return: {seen:?}"
        );
        let entries = v.audit_entries(0, Some("dr-house"), false).expect("e");
        assert!(
            entries
                .iter()
                .any(|e| e.outcome == Outcome::BreakGlass && e.action == Action::Get)
        );
    }
}

/// Finding 6: the final flush at close was ignored. Failed before: `Vault::close` did not
/// exist and dropping the vault lost the pending read entries silently.
#[test]
fn close_reports_audit_entries_it_could_not_write() {
    let dir = tempfile::tempdir().expect("tmp");
    let (v, _, fail) = recording_vault(dir.path());
    v.owner().put("notes", "r1", b"x", None).expect("put");
    // A read's entry waits for group commit...
    v.owner().get("notes", "r1").expect("get");
    fail.store(true, Ordering::SeqCst);
    // ...and cannot be written at close: reported, not swallowed.
    assert!(matches!(v.close(), Err(Error::AuditUnavailable)));

    let dir = tempfile::tempdir().expect("tmp");
    let (v, _, _) = recording_vault(dir.path());
    v.owner().get("notes", "none").expect("get");
    v.close().expect("a clean close succeeds");
}

/// Finding 8: smaller holes.
#[test]
fn a_caller_named_owner_gets_no_rights_and_is_marked_in_the_log() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = Vault::create(dir.path().join("v"), &root()).expect("create");
    setup(&v);
    v.owner().put("notes", "r1", b"x", None).expect("put");
    let fake = v.session(Caller::new("owner", "administration"));
    assert!(matches!(
        fake.get("notes", "r1"),
        Err(Error::AccessDenied { .. })
    ));
    let entries = v.audit_entries(0, Some("owner"), false).expect("entries");
    let denied: Vec<_> = entries
        .iter()
        .filter(|e| e.outcome == Outcome::Denied)
        .collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(
        denied[0].target.detail.as_deref(),
        Some(phivault::policy::IMPERSONATION)
    );
}

#[test]
fn choosing_a_keyring_for_a_record_needs_a_decision_on_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = Vault::create(dir.path().join("v"), &root()).expect("create");
    setup(&v);
    let clerk = v.session(Caller::new("clerk", "billing"));
    clerk
        .put("bills", "b1", b"ok", None)
        .expect("default keyring");
    let out = clerk.put_with(
        "bills",
        "b2",
        b"x",
        &PutOptions {
            subject: None,
            keyring: Some("tokens"),
        },
    );
    assert!(matches!(out, Err(Error::AccessDenied { .. })), "{out:?}");
    assert!(v.owner().get("bills", "b2").expect("get").is_none());
    let out = clerk.put_many(
        "bills",
        &[("b3", b"x".as_slice())],
        &PutOptions {
            subject: None,
            keyring: Some("tokens"),
        },
    );
    assert!(matches!(out, Err(Error::AccessDenied { .. })));
}

#[test]
fn a_policy_that_fails_to_unseal_blocks_the_owner_too_until_replaced() {
    let dir = tempfile::tempdir().expect("tmp");
    let events = Arc::new(Mutex::new(Vec::new()));
    let inner = SledStore::open(&dir.path().join("store"), Durability::Immediate).expect("sled");
    let store = Recording {
        inner,
        events,
        fail_audit: Arc::new(AtomicBool::new(false)),
    };
    let v = Vault::create_in(Box::new(store), &root(), Backend::Ring).expect("create");
    setup(&v);
    v.owner().put("notes", "r1", b"x", None).expect("put");
    drop(v);
    // Damage the sealed policy.
    let store = SledStore::open(&dir.path().join("store"), Durability::Immediate).expect("sled");
    let mut sealed = store
        .get(Space::Meta, b"policy")
        .expect("get")
        .expect("policy");
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    store
        .write(vec![WriteOp::Put {
            space: Space::Meta,
            key: b"policy".to_vec(),
            value: sealed,
        }])
        .expect("write");
    let v = Vault::open_in(Box::new(store), &root(), Backend::Ring).expect("open");
    assert!(matches!(
        v.owner().get("notes", "r1"),
        Err(Error::CorruptMetadata { .. })
    ));
    v.set_policy(&Policy::from_toml(POLICY).expect("p"))
        .expect("the owner replaces it");
    assert!(v.owner().get("notes", "r1").expect("get").is_some());
}

#[test]
fn forged_key_versions_do_not_reload_the_keyring_on_every_call() {
    let dir = tempfile::tempdir().expect("tmp");
    let (v, events, _) = recording_vault(dir.path());
    let ctx = Context::new().with("k", "v");
    let mut env = v.owner().encrypt(b"x", &ctx).expect("enc");
    // The key version sits right after the 7-byte fixed header and the keyring name.
    let at = 7 + "default".len();
    env[at..at + 4].copy_from_slice(&9999u32.to_be_bytes());
    events.lock().expect("lock").clear();
    for _ in 0..50 {
        assert!(matches!(
            v.owner().decrypt(&env, &ctx),
            Err(Error::UnknownKeyVersion { .. })
        ));
    }
    // Before the fix every call re-read the keyring (50 reads); now at most one read per
    // keyring per second: a handful at most, however slow the machine.
    let reads = events
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| **e == "keyring-read")
        .count();
    assert!(reads < 10, "{reads} keyring reads for 50 forged versions");
    // The real one still opens.
    let good = v.owner().encrypt(b"y", &ctx).expect("enc");
    assert_eq!(&*v.owner().decrypt(&good, &ctx).expect("dec"), b"y");
}

#[test]
fn key_equality_is_by_value() {
    let a = Key32::from_slice(&[1; 32]).expect("a");
    let b = Key32::from_slice(&[1; 32]).expect("b");
    let mut c_bytes = [1u8; 32];
    c_bytes[31] = 2;
    let c = Key32::from_slice(&c_bytes).expect("c");
    assert_eq!(a, b);
    assert_ne!(a, c);
}

/// Closes the class: every public data operation of a `Session`, as a principal the policy
/// gives no rights, is refused before any data moves, and each refusal is in the audit log.
#[test]
fn every_session_operation_refuses_a_principal_without_rights_and_logs_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = Vault::create(dir.path().join("v"), &root()).expect("create");
    setup(&v);
    let ctx = Context::new().with("k", "v");
    let env = v.owner().encrypt(b"secret", &ctx).expect("enc");
    v.owner().put("notes", "r1", b"secret", None).expect("put");
    let tok = v.owner().tokenize("acct", "4711002").expect("tok");
    let file = dir.path().join("scan.pvs");
    v.owner()
        .encrypt_file(
            &{
                let p = dir.path().join("scan.txt");
                std::fs::write(&p, b"scan bytes").expect("write");
                p
            },
            &file,
            &ctx,
            &StreamOptions::default(),
            &mut |_| {},
        )
        .expect("encrypt file");
    let m = v.session(Caller::new("mallory", "curiosity"));
    let opts = EncryptOptions::new();
    let put_opts = PutOptions::default();
    let out_path = dir.path().join("out.txt");
    let mut outcomes: Vec<(&str, bool)> = vec![
        ("encrypt", m.encrypt(b"x", &ctx).is_err()),
        ("encrypt_with", m.encrypt_with(b"x", &ctx, &opts).is_err()),
        ("encrypt_text", m.encrypt_text(b"x", &ctx, &opts).is_err()),
        (
            "encrypt_for_subject",
            m.encrypt_for_subject(b"x", &ctx, "p1", &opts).is_err(),
        ),
        (
            "encrypt_many",
            m.encrypt_many(&[b"x"], &ctx, &opts).is_err(),
        ),
        ("decrypt", m.decrypt(&env, &ctx).is_err()),
        ("decrypt_many", m.decrypt_many(&[&env], &ctx).is_err()),
        ("put", m.put("notes", "r2", b"x", None).is_err()),
        (
            "put_with",
            m.put_with("notes", "r2", b"x", &put_opts).is_err(),
        ),
        (
            "put_many",
            m.put_many("notes", &[("r2", b"x".as_slice())], &put_opts)
                .is_err(),
        ),
        ("get", m.get("notes", "r1").is_err()),
        ("delete", m.delete("notes", "r1").is_err()),
        ("tokenize", m.tokenize("acct", "1").is_err()),
        (
            "tokenize_for_subject",
            m.tokenize_for_subject("acct", "1", "p1").is_err(),
        ),
        ("tokenize_many", m.tokenize_many("acct", &["1"]).is_err()),
        (
            "detokenize",
            m.detokenize("acct", &tok, View::Redacted).is_err(),
        ),
        (
            "detokenize_for_subject",
            m.detokenize_for_subject("acct", &tok, "p1", View::Redacted)
                .is_err(),
        ),
        (
            "detokenize_many",
            m.detokenize_many("acct", &[&tok], View::Redacted).is_err(),
        ),
        (
            "encrypt_writer",
            m.encrypt_writer(Vec::new(), &ctx, &StreamOptions::default())
                .is_err(),
        ),
        (
            "decrypt_reader",
            m.decrypt_reader(std::fs::File::open(&file).expect("open"), &ctx)
                .is_err(),
        ),
        (
            "decrypt_seekable",
            m.decrypt_seekable(std::fs::File::open(&file).expect("open"), &ctx)
                .is_err(),
        ),
        (
            "encrypt_file",
            m.encrypt_file(
                &file,
                &dir.path().join("x.pvs"),
                &ctx,
                &StreamOptions::default(),
                &mut |_| {},
            )
            .is_err(),
        ),
        (
            "decrypt_file",
            m.decrypt_file(&file, &out_path, &ctx, &mut |_| {}).is_err(),
        ),
    ];
    outcomes.retain(|(_, refused)| !refused);
    assert!(outcomes.is_empty(), "allowed without rights: {outcomes:?}");
    assert!(!out_path.exists() && !dir.path().join("x.pvs").exists());
    // Identical denials one after the other share an entry (`calls`): count calls.
    assert_eq!(
        denials(&v, "mallory").iter().map(|e| e.calls).sum::<u64>(),
        23,
        "one logged denial per refused operation"
    );
    assert!(
        v.owner().get("notes", "r1").expect("get").is_some(),
        "not deleted"
    );
    assert!(v.audit_verify().expect("verify").ok);
}
