//! Key lifecycle through the CLI: SIGKILL a rewrap at many random points and prove nothing is
//! lost and a resumed rewrap completes; every lifecycle command and its error paths.

use phivault::root::KeyFile;
use phivault::store::Durability;
use phivault::{Key32, Vault, VaultOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_phivault"))
}

const KEY: [u8; 32] = [0x5a; 32];

fn setup(n: usize) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let key = tmp.path().join("root.key");
    std::fs::write(&key, KEY).expect("key");
    let vault = tmp.path().join("vault");
    let v = Vault::create_with(
        &vault,
        &KeyFile::from_key(Key32::from_slice(&KEY).expect("32")),
        VaultOptions::new().durability(Durability::Deferred),
    )
    .expect("create");
    let ids: Vec<String> = (0..n).map(|i| format!("rec-{i}")).collect();
    for chunk in ids.chunks(2000) {
        let items: Vec<(&str, &[u8])> = chunk
            .iter()
            .map(|id| (id.as_str(), id.as_bytes()))
            .collect();
        v.owner()
            .put_many("notes", &items, &Default::default())
            .expect("put");
    }
    (tmp, vault, key)
}

fn pv(vault: &Path, key: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .args([
            "--vault",
            vault.to_str().expect("utf8"),
            "--key-file",
            key.to_str().expect("utf8"),
        ])
        .env_remove("PHIVAULT_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .expect("run")
}

fn open(vault: &Path) -> Vault {
    Vault::open(
        vault,
        &KeyFile::from_key(Key32::from_slice(&KEY).expect("32")),
    )
    .expect("open")
}

fn all_readable(vault: &Path, n: usize) {
    let v = open(vault);
    for i in 0..n {
        let id = format!("rec-{i}");
        let got = v
            .owner()
            .get("notes", &id)
            .expect("readable")
            .expect("present");
        assert_eq!(got.as_slice(), id.as_bytes(), "record {i}");
    }
}

/// Records not yet on the active version, from `keys list --json`.
fn stale_records(vault: &Path, key: &Path) -> u64 {
    let o = pv(vault, key, &["keys", "list", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let active = j["keyrings"][0]["active_version"].as_u64().expect("active");
    j["keyrings"][0]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter(|v| v["version"].as_u64() != Some(active))
        .map(|v| v["records"].as_u64().expect("records"))
        .sum()
}

#[test]
fn rewrap_survives_sigkill_at_random_points() {
    let n = 20_000;
    let (_tmp, vault, key) = setup(n);
    {
        let v = open(&vault);
        v.rotate("default").expect("rotate");
    }
    // Time one full rewrap run's start-up so kill points spread over the interesting window.
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("kill-point seed {seed}");
    let mut killed_mid_way = 0;
    for round in 0..10 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(5 + seed % 600);
        let mut child = Command::new(bin())
            .args(["rewrap", "--batch", "500"])
            .args([
                "--vault",
                vault.to_str().expect("utf8"),
                "--key-file",
                key.to_str().expect("utf8"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let start = Instant::now();
        while start.elapsed() < delay {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let finished = child.try_wait().expect("try_wait").is_some();
        child.kill().ok(); // SIGKILL
        child.wait().expect("wait");
        if !finished {
            killed_mid_way += 1;
        }
        // after every kill: every record still decrypts
        all_readable(&vault, n);
        let left = stale_records(&vault, &key);
        eprintln!(
            "round {round}: killed after {delay:?} (finished: {finished}), {left} records left on old versions"
        );
        if left == 0 {
            // start again: rotate so there is work to interrupt
            let v = open(&vault);
            v.rotate("default").expect("rotate");
        }
    }
    assert!(
        killed_mid_way > 0,
        "no run was interrupted; the kill points missed"
    );
    let o = pv(&vault, &key, &["rewrap", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(report["unreadable"], 0);
    assert_eq!(
        stale_records(&vault, &key),
        0,
        "a completed rewrap leaves nothing on old versions"
    );
    all_readable(&vault, n);
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("code")
}

#[test]
fn lifecycle_commands_and_their_errors() {
    let (tmp, vault, key) = setup(50);
    assert!(
        pv(&vault, &key, &["keys", "create", "notes"])
            .status
            .success()
    );
    assert_eq!(
        code(&pv(&vault, &key, &["keys", "create", "notes"])),
        1,
        "exists"
    );
    assert_eq!(code(&pv(&vault, &key, &["keys", "create", "bad/name"])), 1);
    assert_eq!(code(&pv(&vault, &key, &["keys", "rotate", "missing"])), 6);
    let young = pv(&vault, &key, &["keys", "rotate", "--if-older-than", "90d"]);
    assert!(young.status.success());
    assert!(String::from_utf8_lossy(&young.stderr).contains("not rotated"));
    assert_eq!(
        code(&pv(
            &vault,
            &key,
            &["keys", "rotate", "--if-older-than", "ninety"]
        )),
        2
    );
    assert!(
        pv(&vault, &key, &["keys", "rotate", "--if-older-than", "0s"])
            .status
            .success()
    );
    // destroy refused while in use, names the counts
    let d = pv(&vault, &key, &["keys", "destroy", "default", "1"]);
    assert_eq!(code(&d), 1);
    assert!(
        String::from_utf8_lossy(&d.stderr).contains("50 records"),
        "{}",
        String::from_utf8_lossy(&d.stderr)
    );
    assert_eq!(
        code(&pv(&vault, &key, &["keys", "destroy", "default", "2"])),
        1,
        "active"
    );
    assert_eq!(
        code(&pv(&vault, &key, &["keys", "destroy", "default", "9"])),
        6
    );
    // retire: get fails with exit 7, naming keyring and version; reversible
    assert!(
        pv(
            &vault,
            &key,
            &["keys", "retire", "default", "--min-version", "2"]
        )
        .status
        .success()
    );
    let g = pv(&vault, &key, &["get", "notes", "rec-1"]);
    assert_eq!(code(&g), 7);
    assert!(String::from_utf8_lossy(&g.stderr).contains("'default' key version 1 is retired"));
    assert_eq!(
        code(&pv(
            &vault,
            &key,
            &["keys", "retire", "default", "--min-version", "5"]
        )),
        1
    );
    // rewrap with retired v1 cannot move those records: exit 7 and a count
    let r = pv(&vault, &key, &["rewrap"]);
    assert_eq!(code(&r), 7);
    assert!(
        pv(
            &vault,
            &key,
            &["keys", "retire", "default", "--min-version", "1"]
        )
        .status
        .success()
    );
    let r = pv(&vault, &key, &["rewrap"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("50 rewrapped"));
    assert!(
        pv(&vault, &key, &["keys", "destroy", "default", "1"])
            .status
            .success()
    );
    let l = pv(&vault, &key, &["keys", "list"]);
    assert!(String::from_utf8_lossy(&l.stdout).contains("destroyed"));
    // rewrap-envelope: text lines in, text lines out
    let ctx = ["--context", "row=1"];
    let enc = Command::new(bin())
        .args([
            "encrypt",
            "--text",
            ctx[0],
            ctx[1],
            "--vault",
            vault.to_str().expect("utf8"),
            "--key-file",
            key.to_str().expect("utf8"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(b"row one")?;
            c.wait_with_output()
        })
        .expect("encrypt");
    assert!(String::from_utf8_lossy(&enc.stdout).starts_with("pv1:default:2:"));
    assert!(pv(&vault, &key, &["keys", "rotate"]).status.success());
    let mut child = Command::new(bin())
        .args([
            "rewrap-envelope",
            "--vault",
            vault.to_str().expect("utf8"),
            "--key-file",
            key.to_str().expect("utf8"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&enc.stdout)
            .expect("write");
    }
    let re = child.wait_with_output().expect("wait");
    assert!(
        String::from_utf8_lossy(&re.stdout).starts_with("pv1:default:3:"),
        "{}",
        String::from_utf8_lossy(&re.stdout)
    );
    // forget-subject and erasures
    assert!(
        pv(&vault, &key, &["forget-subject", "patient-9"])
            .status
            .success()
    );
    let e = pv(&vault, &key, &["erasures", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&e.stdout).expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert!(!String::from_utf8_lossy(&e.stdout).contains("patient-9"));
    // rotate-root: new key opens, old refused (exit 4)
    let new_key = tmp.path().join("new.key");
    std::fs::write(&new_key, [9u8; 32]).expect("write");
    assert!(
        pv(
            &vault,
            &key,
            &[
                "rotate-root",
                "--new-key-file",
                new_key.to_str().expect("utf8")
            ]
        )
        .status
        .success()
    );
    assert_eq!(code(&pv(&vault, &key, &["status"])), 4);
    assert!(pv(&vault, &new_key, &["status"]).status.success());
    assert_eq!(
        code(&pv(&vault, &new_key, &["rotate-root"])),
        1,
        "no new key given"
    );
}

#[test]
fn lifecycle_help_has_examples() {
    for cmd in [
        &["keys", "list"][..],
        &["keys", "rotate"],
        &["keys", "retire"],
        &["keys", "destroy"],
        &["keys", "create"],
        &["rewrap"],
        &["rotate-root"],
        &["forget-subject"],
        &["rewrap-envelope"],
        &["erasures"],
    ] {
        let o = Command::new(bin())
            .args(cmd)
            .arg("--help")
            .output()
            .expect("run");
        assert!(o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Example"),
            "{cmd:?}"
        );
    }
}
