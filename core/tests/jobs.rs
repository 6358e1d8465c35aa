//! Job snapshots (jobs.rs): workers open a directory vault's stateless kinds while the owner
//! holds it; they act as the sealed caller, through the policy, and their audit entries reach
//! the vault's chain; snapshots die with key destruction, forgetting and the end of the job.

use phivault::audit::{Action, Outcome};
use phivault::jobs::{JobId, JobVault};
use phivault::policy::{Caller, Policy};
use phivault::root::KeyFile;
use phivault::tokens::View;
use phivault::{Error, Key32, StoreError, Vault, VaultOptions};
use std::path::Path;
use std::time::Duration;

const POLICY: &str = r#"
[[principal]]
name = "etl"
roles = ["research"]

[[rule]]
roles = ["research"]
purposes = ["research"]
actions = ["tokenize", "detokenize"]
fields = ["ssn", "pseudonym"]
"#;

fn root() -> KeyFile {
    KeyFile::from_key(Key32::from_slice(&[21u8; 32]).expect("32"))
}

fn other_root() -> KeyFile {
    KeyFile::from_key(Key32::from_slice(&[22u8; 32]).expect("32"))
}

fn setup(dir: &Path) -> Vault {
    let v = Vault::create(dir.join("v"), &root()).expect("create");
    v.set_policy(&Policy::from_toml(POLICY).expect("policy"))
        .expect("set");
    v
}

fn etl() -> Caller {
    Caller::new("etl", "research")
}

fn open(v: &Vault, job: &JobId) -> phivault::Result<JobVault> {
    JobVault::open(
        v.path().expect("dir"),
        job,
        &root(),
        VaultOptions::default(),
    )
}

#[test]
fn worker_tokens_equal_the_owners_and_writes_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    let ssns = ["900-12-3456", "123-45-6789"];
    let want = v.owner().tokenize_many("ssn", &ssns).expect("owner");
    let psn = v.owner().tokenize_many("pseudonym", &ssns).expect("owner");
    let job = v
        .begin_job(&etl(), Duration::from_secs(600))
        .expect("begin");
    // The owner keeps the vault open; two workers open the job beside it.
    let w1 = open(&v, &job.id).expect("worker 1");
    let w2 = open(&v, &job.id).expect("worker 2");
    assert_eq!(w1.session().tokenize_many("ssn", &ssns).expect("w1"), want);
    assert_eq!(
        w2.session().tokenize_many("pseudonym", &ssns).expect("w2"),
        psn
    );
    let back = w2
        .session()
        .detokenize_many("ssn", &want, View::Plaintext)
        .expect("detok");
    assert_eq!(back.iter().map(|s| s.as_str()).collect::<Vec<_>>(), ssns);
    // Vaulted tokens need a write: refused with a clear error, never a wrong answer.
    v.set_policy(&Policy::default()).expect("owner only");
    let owner_job = v
        .begin_job(&Caller::owner(), Duration::from_secs(60))
        .expect("begin");
    let w3 = open(&v, &owner_job.id).expect("worker 3");
    match w3.session().tokenize("mrn-vaulted-absent", "x") {
        Err(Error::UnknownField { .. }) => {}
        other => panic!("unknown field: {other:?}"),
    }
    v.define_field(phivault::tokens::FieldSpec::new(
        "acct",
        phivault::tokens::TokenKind::Vaulted,
    ))
    .expect("define");
    let w4 = open(
        &v,
        &v.begin_job(&Caller::owner(), Duration::from_secs(60))
            .expect("b")
            .id,
    )
    .expect("worker 4");
    match w4.session().tokenize("acct", "4000123412341234") {
        Err(Error::Store(StoreError::ReadOnly(_))) => {}
        other => panic!("read-only: {other:?}"),
    }
}

#[test]
fn the_policy_applies_as_the_sealed_caller_and_entries_reach_the_chain() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    let job = v
        .begin_job(&etl(), Duration::from_secs(600))
        .expect("begin");
    let w = open(&v, &job.id).expect("worker");
    assert_eq!(w.caller().principal, "etl");
    w.session()
        .tokenize_many("ssn", &["900-12-3456"; 7])
        .expect("allowed");
    // The policy allows etl no records: denied in the worker, and logged.
    match w.session().encrypt(b"x", &phivault::Context::new()) {
        Err(Error::AccessDenied { .. }) => {}
        other => panic!("denied: {other:?}"),
    }
    w.flush().expect("spool");
    drop(w);
    let before = v.audit_verify().expect("verify").entries;
    let report = v.end_job(&job.id).expect("end");
    assert_eq!(report.spools, 1);
    assert!(report.entries >= 2, "{report:?}");
    assert_eq!(report.torn, 0);
    let verified = v.audit_verify().expect("verify");
    assert!(verified.ok, "{verified:?}");
    assert!(verified.entries >= before + 2);
    let etl_entries = v.audit_entries(0, Some("etl"), false).expect("entries");
    assert!(etl_entries.iter().any(|e| e.action == Action::Tokenize
        && e.outcome == Outcome::Allowed
        && e.target.count == 7));
    assert!(
        etl_entries
            .iter()
            .any(|e| e.action == Action::Encrypt && e.outcome == Outcome::Denied)
    );
    // Ended: the snapshot is gone.
    match open(&v, &job.id) {
        Err(Error::InvalidInput { what: "job", .. }) => {}
        other => panic!("ended: {other:?}"),
    }
}

#[test]
fn a_worker_without_the_root_key_or_with_a_changed_snapshot_opens_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    let job = v
        .begin_job(&etl(), Duration::from_secs(600))
        .expect("begin");
    let dirp = v.path().expect("dir").to_path_buf();
    match JobVault::open(&dirp, &job.id, &other_root(), VaultOptions::default()) {
        Err(Error::WrongRootKey) => {}
        other => panic!("wrong root: {other:?}"),
    }
    let snap = dirp.join("jobs").join(format!("{}.job", job.id));
    let mut bytes = std::fs::read(&snap).expect("read");
    let n = bytes.len();
    bytes[n - 40] ^= 1;
    std::fs::write(&snap, &bytes).expect("write");
    match open(&v, &job.id) {
        Err(Error::AuthenticationFailed) => {}
        other => panic!("tampered: {other:?}"),
    }
    // Another job's id on this file: refused too.
    let other = JobId::parse(&"ab".repeat(16)).expect("id");
    std::fs::copy(&snap, dirp.join("jobs").join(format!("{other}.job"))).expect("copy");
    assert!(open(&v, &other).is_err());
    // Ids are 32 hex digits: no path in them.
    assert!(JobId::parse("../../etc/passwd").is_err());
    assert!(JobId::parse(&"zz".repeat(16)).is_err());
}

#[test]
fn forgetting_a_subject_or_destroying_a_key_revokes_every_snapshot() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    v.owner()
        .tokenize_for_subject("dob", "1970-01-01", "patient-1")
        .expect("subject key");
    let job = v
        .begin_job(&Caller::owner(), Duration::from_secs(600))
        .expect("begin");
    let w = open(&v, &job.id).expect("worker");
    let shifted = w
        .session()
        .tokenize_for_subject("dob", "1970-01-01", "patient-1")
        .expect("known subject");
    assert_eq!(
        shifted,
        v.owner()
            .tokenize_for_subject("dob", "1970-01-01", "patient-1")
            .expect("owner")
    );
    // A subject the snapshot does not know needs a new key: a write, refused.
    assert!(matches!(
        w.session()
            .tokenize_for_subject("dob", "1970-01-01", "patient-2"),
        Err(Error::Store(StoreError::ReadOnly(_)))
    ));
    v.forget_subject("patient-1").expect("forget");
    match open(&v, &job.id) {
        Err(Error::InvalidInput { what: "job", .. }) => {}
        other => panic!("revoked: {other:?}"),
    }
    let job2 = v
        .begin_job(&Caller::owner(), Duration::from_secs(600))
        .expect("begin");
    v.rotate("default").expect("rotate");
    v.destroy_key_version("default", 1, true).expect("destroy");
    assert!(open(&v, &job2.id).is_err(), "destroy revokes");
}

#[test]
fn torn_spools_merge_their_complete_records_and_forged_ones_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    let job = v
        .begin_job(&etl(), Duration::from_secs(600))
        .expect("begin");
    let w = open(&v, &job.id).expect("worker");
    w.session().tokenize("ssn", "900-12-3456").expect("one");
    w.flush().expect("spool");
    w.session().tokenize("pseudonym", "x").expect("two");
    w.flush().expect("spool");
    drop(w);
    let sdir = v.path().expect("dir").join("jobs").join(job.id.to_string());
    let spool = std::fs::read_dir(&sdir)
        .expect("list")
        .next()
        .expect("one spool")
        .expect("entry")
        .path();
    let bytes = std::fs::read(&spool).expect("read");
    // A worker killed in the middle of its second record.
    std::fs::write(&spool, &bytes[..bytes.len() - 10]).expect("tear");
    let r = v.merge_job_audit(&job.id).expect("merge");
    assert_eq!((r.spools, r.torn), (1, 1));
    assert!(r.entries >= 1);
    assert!(v.audit_verify().expect("verify").ok);
    // A spool whose entry was edited does not chain: refused, nothing merged.
    let w = open(&v, &job.id).expect("worker");
    w.session().tokenize("ssn", "900-12-3456").expect("one");
    w.flush().expect("spool");
    drop(w);
    let spool = std::fs::read_dir(&sdir)
        .expect("list")
        .next()
        .expect("one spool")
        .expect("entry")
        .path();
    let mut bytes = std::fs::read(&spool).expect("read");
    let n = bytes.len();
    bytes[n - 50] ^= 1;
    std::fs::write(&spool, &bytes).expect("edit");
    let r = v.merge_job_audit(&job.id).expect("merge");
    assert_eq!((r.spools, r.refused, r.entries), (0, 1, 0));
    assert!(
        !spool.exists() && spool.with_extension("bad").exists(),
        "kept aside as .bad"
    );
    assert!(v.audit_verify().expect("verify").ok);
}

#[test]
fn expired_jobs_are_refused_and_rows_fail_alone() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    let job = v.begin_job(&etl(), Duration::from_secs(1)).expect("begin");
    std::thread::sleep(Duration::from_millis(2100));
    match open(&v, &job.id) {
        Err(Error::InvalidInput { what: "job", .. }) => {}
        other => panic!("expired: {other:?}"),
    }
    // Per-row outcomes: the bad value fails its own row, the others are tokens.
    let rows = v
        .owner()
        .tokenize_rows("ssn", &["900-12-3456", "", "12345"])
        .expect("batch");
    assert!(rows[0].is_ok());
    assert!(matches!(rows[1], Err(Error::InvalidInput { .. })));
    assert!(rows[2].is_err());
    let tok = rows[0].as_ref().expect("token").clone();
    let back = v
        .owner()
        .detokenize_rows("ssn", &[tok.as_str(), "not-a-token"], View::Plaintext)
        .expect("batch");
    assert_eq!(back[0].as_ref().expect("value").as_str(), "900-12-3456");
    assert!(matches!(back[1], Err(Error::InvalidToken { .. })));
    // Vaulted: an unknown token fails its row only.
    v.define_field(phivault::tokens::FieldSpec::new(
        "acct",
        phivault::tokens::TokenKind::Vaulted,
    ))
    .expect("define");
    let t = v
        .owner()
        .tokenize_rows("acct", &["4000123412341234", ""])
        .expect("batch");
    let t0 = t[0].as_ref().expect("token").clone();
    assert!(t[1].is_err());
    let b = v
        .owner()
        .detokenize_rows("acct", &[t0.as_str(), "tok_unknown"], View::Plaintext)
        .expect("batch");
    assert_eq!(b[0].as_ref().expect("value").as_str(), "4000123412341234");
    assert!(matches!(b[1], Err(Error::InvalidToken { .. })));
}

#[test]
fn a_batch_with_a_subject_per_row_shifts_each_row_by_its_own_subject() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    let dates = ["1970-01-01", "1980-05-05", "1970-01-01", "not-a-date"];
    let subjects = ["p1", "p2", "p2", "p1"];
    let rows = v
        .owner()
        .tokenize_rows_for_subjects("dob", &dates, &subjects)
        .expect("batch");
    for i in 0..3 {
        assert_eq!(
            rows[i].as_ref().expect("shifted"),
            &v.owner()
                .tokenize_for_subject("dob", dates[i], subjects[i])
                .expect("one")
        );
    }
    assert!(matches!(rows[3], Err(Error::InvalidInput { .. })));
    // A forgotten subject fails its own rows; the others come back.
    v.forget_subject("p2").expect("forget");
    let shifted: Vec<String> = vec![rows[0].as_ref().expect("p1").clone(), "1999-01-01".into()];
    let back = v
        .owner()
        .detokenize_rows_for_subjects("dob", &shifted, &["p1", "p2"], View::Plaintext)
        .expect("batch");
    assert_eq!(back[0].as_ref().expect("p1").as_str(), "1970-01-01");
    assert!(matches!(back[1], Err(Error::SubjectForgotten)));
    // Lengths must agree; fields not tied to subjects are refused.
    assert!(
        v.owner()
            .tokenize_rows_for_subjects("dob", &dates, &["p1"])
            .is_err()
    );
    assert!(
        v.owner()
            .tokenize_rows_for_subjects("ssn", &["900-12-3456"], &["p1"])
            .is_err()
    );
}

#[test]
fn merging_while_a_worker_appends_loses_no_entry() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    let job = v
        .begin_job(&etl(), Duration::from_secs(600))
        .expect("begin");
    let w = open(&v, &job.id).expect("worker");
    const CALLS: u64 = 60;
    let mut merged = 0usize;
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            for _ in 0..CALLS {
                w.session()
                    .tokenize("ssn", "900-12-3456")
                    .expect("tokenize");
                w.flush().expect("spool");
            }
        });
        while !worker.is_finished() {
            merged += v.merge_job_audit(&job.id).expect("merge").entries;
            std::thread::sleep(Duration::from_millis(5));
        }
        worker.join().expect("worker");
    });
    drop(w);
    merged += v.end_job(&job.id).expect("end").entries;
    let calls: u64 = v
        .audit_entries(0, Some("etl"), false)
        .expect("entries")
        .iter()
        .filter(|e| e.action == Action::Tokenize)
        .map(|e| e.calls)
        .sum();
    assert_eq!(calls, CALLS, "every worker call is in the log once");
    assert!(merged >= 1);
    assert!(v.audit_verify().expect("verify").ok);
}

#[test]
fn records_and_vaulted_tokens_are_refused_in_a_worker_never_read_as_absent() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = setup(dir.path());
    v.define_field(phivault::tokens::FieldSpec::new(
        "acct",
        phivault::tokens::TokenKind::Vaulted,
    ))
    .expect("define");
    let tok = v
        .owner()
        .tokenize("acct", "4000123412341234")
        .expect("token");
    v.owner().put("notes", "n1", b"x", None).expect("put");
    let job = v
        .begin_job(&Caller::owner(), Duration::from_secs(60))
        .expect("begin");
    let w = open(&v, &job.id).expect("worker");
    for r in [
        w.session()
            .detokenize_rows("acct", &[tok.as_str()], View::Plaintext)
            .map(|_| ()),
        w.session().get("notes", "n1").map(|_| ()),
    ] {
        assert!(
            matches!(r, Err(Error::Store(StoreError::ReadOnly(_)))),
            "{r:?}"
        );
    }
    // A new policy revokes the snapshot (it carries the policy).
    v.set_policy(&Policy::default()).expect("policy");
    assert!(open(&v, &job.id).is_err());
}
