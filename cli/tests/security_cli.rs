//! The CLI side of the security review (issue 16): `--as` is never accepted and ignored, file
//! outputs never follow a planted link, and decrypted output is written only for a caller the
//! policy allows.

mod common;

use std::path::Path;
use std::process::Output;

type Env = common::Vault;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

/// Before the fix, commands that flattened the shared arguments accepted `--as` and ran as
/// the owner (logging the owner). Now only commands with a policy decision take it; every
/// other command refuses it as a usage error (exit 2) and does nothing.
#[test]
fn as_is_refused_by_every_owner_only_command() {
    let e = Env::new();
    let file = e.path("f.pvs");
    std::fs::write(&file, b"x").expect("write");
    for cmd in [
        vec!["status"],
        vec!["forget-subject", "p1"],
        vec!["erasures"],
        vec!["rewrap"],
        vec!["rewrap-envelope"],
        vec!["rewrap-file", s(&file)],
        vec!["keys", "list"],
        vec!["keys", "rotate", "default"],
    ] {
        let mut args = cmd.clone();
        args.extend(["--as", "mallory", "--purpose", "curiosity"]);
        let o = e.pv(&args, b"");
        assert_eq!(code(&o), 2, "{cmd:?} accepted --as: {o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--as"), "{cmd:?}: {err}");
    }
    // Nothing ran: the log holds no entry of those commands.
    let o = e.pv(&["audit", "show", "--json"], b"");
    assert!(o.status.success());
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(!log.contains("forget"), "{log}");
    assert!(!log.contains("rotate"), "{log}");
}

/// Before the fix `decrypt-file --as mallory` decrypted as the owner and logged the owner.
#[test]
fn file_commands_run_as_the_named_principal() {
    let e = Env::new();
    let plain = e.path("scan.txt");
    std::fs::write(&plain, b"scan bytes canary-7f1c").expect("write");
    let enc = e.path("scan.pvs");
    assert!(
        e.pv(&["encrypt-file", s(&plain), s(&enc)], b"")
            .status
            .success()
    );
    let out = e.path("out.txt");
    let o = e.pv(
        &[
            "decrypt-file",
            "--as",
            "mallory",
            "--purpose",
            "curiosity",
            s(&enc),
            s(&out),
        ],
        b"",
    );
    assert!(!o.status.success());
    assert!(!out.exists(), "nothing written for a refused caller");
    let o = e.pv(
        &[
            "encrypt-file",
            "--as",
            "mallory",
            "--purpose",
            "curiosity",
            s(&plain),
            s(&e.path("m.pvs")),
        ],
        b"",
    );
    assert!(!o.status.success());
    assert!(!e.path("m.pvs").exists());
    // The refusals are logged as mallory's, not the owner's.
    let o = e.pv(&["audit", "show", "--principal", "mallory", "--json"], b"");
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(log.matches("denied").count() >= 2, "{log}");
    // No leftover temporary files beside the outputs.
    let left: Vec<_> = std::fs::read_dir(e.tmp.path())
        .expect("ls")
        .flatten()
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        e.pv(&["decrypt-file", s(&enc), s(&out)], b"")
            .status
            .success()
    );
    assert_eq!(
        std::fs::read(&out).expect("read"),
        b"scan bytes canary-7f1c"
    );
}

/// Before the fix the output was `<out>.partial`, opened with O_TRUNC and following links: a
/// link planted there received the decrypted PHI.
#[cfg(unix)]
#[test]
fn a_planted_link_beside_the_output_receives_nothing() {
    let e = Env::new();
    let plain = e.path("scan.txt");
    std::fs::write(&plain, b"scan bytes canary-7f1c").expect("write");
    let enc = e.path("scan.pvs");
    assert!(
        e.pv(&["encrypt-file", s(&plain), s(&enc)], b"")
            .status
            .success()
    );
    let csv = e.path("in.csv");
    std::fs::write(&csv, b"mrn\nMRN-4711\n").expect("csv");
    let stolen = e.path("stolen");
    std::fs::write(&stolen, b"").expect("stolen");
    for (args, out) in [
        (
            vec!["decrypt-file".to_owned(), s(&enc).to_owned()],
            e.path("out.txt"),
        ),
        (
            vec![
                "tokenize-csv".to_owned(),
                "--fields".to_owned(),
                "mrn=mrn".to_owned(),
                s(&csv).to_owned(),
            ],
            e.path("out.csv"),
        ),
    ] {
        let mut planted = out.clone().into_os_string();
        planted.push(".partial");
        std::os::unix::fs::symlink(&stolen, &planted).expect("plant");
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.push(s(&out));
        let o = e.pv(&all, b"");
        assert!(o.status.success(), "{o:?}");
        assert_eq!(
            std::fs::read(&stolen).expect("read").len(),
            0,
            "{all:?} wrote through the planted link"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).expect("out").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{all:?}: output readable by others");
    }
}

/// `rewrap-file` replaces the file atomically: the rewrapped file decrypts, and no temporary
/// file is left.
#[test]
fn rewrap_file_replaces_the_file_whole() {
    let e = Env::new();
    let plain = e.path("scan.txt");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&plain, &data).expect("write");
    let enc = e.path("scan.pvs");
    assert!(
        e.pv(&["encrypt-file", s(&plain), s(&enc)], b"")
            .status
            .success()
    );
    assert!(e.pv(&["keys", "rotate", "default"], b"").status.success());
    let before = std::fs::read(&enc).expect("read");
    let o = e.pv(&["rewrap-file", s(&enc)], b"");
    assert!(o.status.success(), "{o:?}");
    let after = std::fs::read(&enc).expect("read");
    assert_eq!(before.len(), after.len());
    assert_ne!(before, after);
    let out = e.path("out.bin");
    assert!(
        e.pv(&["decrypt-file", s(&enc), s(&out)], b"")
            .status
            .success()
    );
    assert_eq!(std::fs::read(&out).expect("read"), data);
    let names: Vec<_> = std::fs::read_dir(e.tmp.path())
        .expect("ls")
        .flatten()
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("partial")), "{names:?}");
}
