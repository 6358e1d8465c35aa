//! Policy and audit through the CLI: acting as a principal, denials, break-the-glass, verify,
//! show, export, and tamper detection with exit code 8.

mod common;

use common::run_on;
use std::path::PathBuf;
use std::process::Output;

struct Env {
    tmp: tempfile::TempDir,
    vault: PathBuf,
    key: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().expect("tmp");
        let key = tmp.path().join("root.key");
        std::fs::write(&key, [0x44u8; 32]).expect("key");
        let vault = tmp.path().join("vault");
        let e = Env { tmp, vault, key };
        assert!(e.pv(&["init"], b"").status.success());
        e
    }

    fn pv(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_on(&self.vault, &self.key, args, stdin)
    }
}

const POLICY: &str = r#"
[[principal]]
name = "nurse"
roles = ["nursing"]

[[rule]]
roles = ["nursing"]
purposes = ["treatment"]
actions = ["get"]
collections = ["notes"]

[[break_glass]]
roles = ["nursing"]
"#;

#[test]
fn principals_denials_break_glass_and_audit() {
    let e = Env::new();
    let pf = e.tmp.path().join("policy.toml");
    std::fs::write(&pf, POLICY).expect("w");
    assert!(
        e.pv(&["policy", "set", pf.to_str().expect("utf8")], b"")
            .status
            .success()
    );
    let shown = e.pv(&["policy", "show"], b"");
    assert!(String::from_utf8_lossy(&shown.stdout).contains("nurse"));
    assert!(
        e.pv(&["put", "notes", "MRN-1"], b"CANARY-c3 note")
            .status
            .success()
    );
    assert!(
        e.pv(&["put", "labs", "MRN-1"], b"CANARY-c3 lab")
            .status
            .success()
    );
    let ok = e.pv(
        &[
            "get",
            "notes",
            "MRN-1",
            "--as",
            "nurse",
            "--purpose",
            "treatment",
        ],
        b"",
    );
    assert!(ok.status.success());
    let denied = e.pv(
        &[
            "get",
            "labs",
            "MRN-1",
            "--as",
            "nurse",
            "--purpose",
            "treatment",
        ],
        b"",
    );
    assert_eq!(denied.status.code(), Some(9));
    assert!(denied.stdout.is_empty());
    let bg = e.pv(
        &[
            "get",
            "labs",
            "MRN-1",
            "--as",
            "nurse",
            "--purpose",
            "emergency",
            "--break-glass",
            "patient crashing",
        ],
        b"",
    );
    assert!(
        bg.status.success(),
        "{}",
        String::from_utf8_lossy(&bg.stderr)
    );
    let v = e.pv(&["audit", "verify", "--json"], b"");
    assert!(v.status.success());
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).expect("json");
    assert_eq!(report["ok"], true);
    let show = e.pv(&["audit", "show", "--json", "--principal", "nurse"], b"");
    let entries: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
    let entries = entries.as_array().expect("array");
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().any(|x| x["outcome"] == "denied"));
    assert!(
        entries
            .iter()
            .any(|x| x["outcome"] == "break-glass" && x["break_glass"] == true)
    );
    assert!(
        !String::from_utf8_lossy(&show.stdout).contains("patient crashing"),
        "reasons only on request"
    );
    let with = e.pv(&["audit", "show", "--json", "--include-reasons"], b"");
    assert!(String::from_utf8_lossy(&with.stdout).contains("patient crashing"));
    let recent = e.pv(&["audit", "show", "--since", "1h"], b"");
    assert!(String::from_utf8_lossy(&recent.stdout).lines().count() >= 5);
    let out = e.tmp.path().join("audit.jsonl");
    assert!(
        e.pv(&["audit", "export", out.to_str().expect("utf8")], b"")
            .status
            .success()
    );
    let text = std::fs::read_to_string(&out).expect("read");
    assert!(text.lines().count() >= 5);
    assert!(
        !text.contains("CANARY-c3") && !text.contains("MRN-1"),
        "no PHI in the export"
    );
    for l in text.lines() {
        serde_json::from_str::<serde_json::Value>(l).expect("each line is JSON");
    }
    // an anchor recorded earlier must be extended
    let head = format!(
        "{}:{}",
        report["head_seq"],
        report["head_mac"].as_str().expect("mac")
    );
    assert!(
        e.pv(&["audit", "verify", "--expect-head", &head], b"")
            .status
            .success()
    );
    let future = format!(
        "{}:{}",
        report["head_seq"].as_u64().expect("seq") + 100,
        "00".repeat(32)
    );
    assert_eq!(
        e.pv(&["audit", "verify", "--expect-head", &future], b"")
            .status
            .code(),
        Some(8)
    );
    // An anchor that is not SEQ:MACHEX (64 hex digits) is a usage error, not a verdict.
    for bad in ["12", "x:00", "3:00"] {
        assert_eq!(
            e.pv(&["audit", "verify", "--expect-head", bad], b"")
                .status
                .code(),
            Some(2),
            "{bad}"
        );
    }
}

#[test]
fn tampered_audit_log_fails_verify_with_exit_8() {
    let e = Env::new();
    for i in 0..5 {
        assert!(
            e.pv(&["put", "notes", &format!("r{i}")], b"x")
                .status
                .success()
        );
    }
    let db = open_sled(e.vault.join("store"));
    // remove the third block of the log (each put's entry is written at once, in its own block)
    let keys: Vec<_> = db.scan_prefix(b"a").map(|kv| kv.expect("kv").0).collect();
    assert!(keys.len() >= 5);
    let third = u64::from_be_bytes(keys[2][1..9].try_into().expect("seq"));
    db.remove(&keys[2]).expect("remove");
    db.flush().expect("flush");
    drop(db);
    let v = e.pv(&["audit", "verify"], b"");
    assert_eq!(v.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&v.stderr).contains(&format!("entry {third}")));
}

#[test]
fn policy_set_rejects_bad_files() {
    let e = Env::new();
    let pf = e.tmp.path().join("bad.toml");
    std::fs::write(&pf, "[[rule]]\nroles = [\"x\"]\nactions = [\"fly\"]\n").expect("w");
    assert_eq!(
        e.pv(&["policy", "set", pf.to_str().expect("utf8")], b"")
            .status
            .code(),
        Some(1)
    );
    std::fs::write(&pf, "not toml [").expect("w");
    assert_eq!(
        e.pv(&["policy", "set", pf.to_str().expect("utf8")], b"")
            .status
            .code(),
        Some(1)
    );
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

#[test]
fn audit_jobs_lists_and_merge_job_ends_a_research_job() {
    use phivault::jobs::JobVault;
    use phivault::root::KeyFile;
    let e = Env::new();
    let root = KeyFile::from_file(&e.key).expect("key file");
    let job = {
        let v = phivault::Vault::open(&e.vault, &root).expect("open");
        let job = v
            .begin_job(
                &phivault::Caller::owner(),
                std::time::Duration::from_secs(600),
            )
            .expect("begin");
        let w = JobVault::open(&e.vault, &job.id, &root, phivault::VaultOptions::default())
            .expect("worker");
        w.session()
            .tokenize("ssn", "900-12-3456")
            .expect("tokenize");
        w.flush().expect("spool");
        job
    };
    let id = job.id.to_string();
    let out = e.pv(&["audit", "jobs"], b"");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&id) && text.contains("live"), "{text}");
    let out = e.pv(&["audit", "merge-job", "--end", &id], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("merged 1 audit entries of 1"));
    let text = String::from_utf8_lossy(&e.pv(&["audit", "jobs"], b"").stdout).into_owned();
    assert!(text.contains("no jobs"), "{text}");
    assert!(e.pv(&["audit", "verify"], b"").status.success());
    // Not a job id: a usage error, nothing read.
    assert_eq!(
        e.pv(&["audit", "merge-job", "../x"], b"").status.code(),
        Some(2)
    );
}
