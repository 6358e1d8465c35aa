//! Tokenization through the CLI: stdin lines, views, CSV streaming, fields, errors.

mod common;

use common::run_on;
use std::io::Write;
use std::path::{Path, PathBuf};
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
        std::fs::write(&key, [0x33u8; 32]).expect("key");
        let vault = tmp.path().join("vault");
        let e = Env { tmp, vault, key };
        assert!(e.pv(&["init"], b"").status.success());
        e
    }

    fn pv(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_on(&self.vault, &self.key, args, stdin)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

#[test]
fn tokenize_detokenize_lines_with_views() {
    let e = Env::new();
    let input = "900-12-3456\n\n900-65-4321\n";
    let t = e.pv(&["tokenize", "--field", "ssn"], input.as_bytes());
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let toks = String::from_utf8(t.stdout.clone()).expect("utf8");
    let lines: Vec<&str> = toks.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1], "", "empty lines pass through");
    assert!(lines[0].len() == 11 && lines[0] != "900-12-3456");
    let d = e.pv(&["detokenize", "--field", "ssn"], &t.stdout);
    assert_eq!(String::from_utf8_lossy(&d.stdout), input);
    let m = e.pv(
        &["detokenize", "--field", "ssn", "--view", "masked"],
        &t.stdout,
    );
    assert_eq!(
        String::from_utf8_lossy(&m.stdout),
        "***-**-3456\n\n***-**-4321\n"
    );
    let bad_view = e.pv(
        &["detokenize", "--field", "ssn", "--view", "peek"],
        &t.stdout,
    );
    assert_eq!(bad_view.status.code(), Some(2));
    let unknown = e.pv(&["tokenize", "--field", "nope"], b"x\n");
    assert_eq!(unknown.status.code(), Some(6));
    let forged = e.pv(&["detokenize", "--field", "mrn"], b"NOTATOKEN1\n");
    assert_eq!(forged.status.code(), Some(3));
    assert!(
        !String::from_utf8_lossy(&forged.stderr).contains("NOTATOKEN1"),
        "no token echoed"
    );
    let short = e.pv(&["tokenize", "--field", "ssn"], b"12345\n");
    assert_eq!(short.status.code(), Some(1));
    assert!(
        !String::from_utf8_lossy(&short.stderr).contains("12345"),
        "no value echoed"
    );
    let dob = e.pv(
        &["tokenize", "--field", "dob", "--subject", "p1"],
        b"1961-04-12\n",
    );
    assert!(dob.status.success());
    let back = e.pv(
        &["detokenize", "--field", "dob", "--subject", "p1"],
        &dob.stdout,
    );
    assert_eq!(back.stdout, b"1961-04-12\n");
    assert_eq!(
        e.pv(&["tokenize", "--field", "dob"], b"1961-04-12\n")
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn tokenize_csv_streams_and_keeps_joins() {
    let e = Env::new();
    let input = e.path("in.csv");
    let mut f = std::fs::File::create(&input).expect("csv");
    writeln!(f, "mrn,ssn,dob,patient,diagnosis").expect("w");
    for i in 0..25_000 {
        writeln!(
            f,
            "MRN{:07},{:03}-{:02}-{:04},19{:02}-0{}-1{},p{},E11.{}",
            i % 5000,
            100 + i % 800,
            10 + i % 90,
            i % 10000,
            40 + i % 60,
            1 + i % 9,
            i % 9,
            i % 5000,
            i % 10
        )
        .expect("w");
    }
    drop(f);
    let out = e.path("out.csv");
    let o = e.pv(
        &[
            "tokenize-csv",
            "--fields",
            "mrn=mrn,ssn=ssn,dob=dob",
            "--subject-column",
            "patient",
            s(&input),
            s(&out),
        ],
        b"",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a: Vec<Vec<String>> = read_csv(&input);
    let b: Vec<Vec<String>> = read_csv(&out);
    assert_eq!(a.len(), b.len());
    assert_eq!(a[0], b[0], "header kept");
    for (x, y) in a.iter().zip(&b).skip(1) {
        assert_ne!(x[0], y[0]);
        assert_ne!(x[1], y[1]);
        assert_ne!(x[2], y[2]);
        assert_eq!(x[3..], y[3..], "other columns untouched");
    }
    // joins: equal MRNs have equal tokens
    let mut map = std::collections::HashMap::new();
    for (x, y) in a.iter().zip(&b).skip(1) {
        let prev = map.insert(x[0].clone(), y[0].clone());
        if let Some(p) = prev {
            assert_eq!(p, y[0]);
        }
    }
    assert_eq!(map.len(), 5000);
    assert!(!out.with_extension("partial").exists());
    // errors
    let missing_col = e.pv(
        &[
            "tokenize-csv",
            "--fields",
            "nope=ssn",
            s(&input),
            s(&e.path("x.csv")),
        ],
        b"",
    );
    assert_eq!(missing_col.status.code(), Some(1));
    let bad_map = e.pv(
        &[
            "tokenize-csv",
            "--fields",
            "ssn",
            s(&input),
            s(&e.path("x.csv")),
        ],
        b"",
    );
    assert_eq!(bad_map.status.code(), Some(2));
    let ragged = e.path("ragged.csv");
    std::fs::write(&ragged, "ssn,x\n900-12-3456,1\n900-12-3457\n").expect("w");
    let r = e.pv(
        &[
            "tokenize-csv",
            "--fields",
            "ssn=ssn",
            s(&ragged),
            s(&e.path("y.csv")),
        ],
        b"",
    );
    assert_eq!(r.status.code(), Some(1));
    assert!(
        !String::from_utf8_lossy(&r.stderr).contains("900-12"),
        "no PHI in errors"
    );
    assert!(!e.path("y.csv").exists(), "no half-written output");
}

fn read_csv(p: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(p)
        .expect("read")
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[test]
fn fields_list_show_define() {
    let e = Env::new();
    let l = e.pv(&["fields", "list", "--json"], b"");
    let j: serde_json::Value = serde_json::from_slice(&l.stdout).expect("json");
    assert!(
        j.as_array()
            .expect("array")
            .iter()
            .any(|f| f["name"] == "ssn" && f["kind"] == "ff1")
    );
    let schema = e.path("fields.toml");
    std::fs::write(
        &schema,
        "[[field]]\nname = \"visit\"\nkind = \"ff1\"\nalphabet = \"upper\"\n",
    )
    .expect("w");
    assert!(
        e.pv(&["fields", "define", s(&schema)], b"")
            .status
            .success()
    );
    let t = e.pv(&["tokenize", "--field", "visit"], b"AB12CD34\n");
    assert!(t.status.success());
    let shown = e.pv(&["fields", "show"], b"");
    assert!(String::from_utf8_lossy(&shown.stdout).contains("name = \"visit\""));
    std::fs::write(&schema, "[[field]]\nname = \"bad\"\nkind = \"ff3\"\n").expect("w");
    assert_eq!(
        e.pv(&["fields", "define", s(&schema)], b"").status.code(),
        Some(1)
    );
}
