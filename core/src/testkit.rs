//! Frozen-envelope testkit (core/tests/testkit): every file holds a `key: value` header that
//! says what to expect, a blank line, and an envelope in text form. Every later version of
//! phivault must keep producing the expected result for every file.
//!
//! `PHIVAULT_WRITE_TESTKIT=1 cargo test -p phivault testkit` writes the set anew; committed
//! files are never rewritten, only added to.

use crate::Error;
use crate::backend::Backend;
use crate::context::Context;
use crate::envelope::{self, Envelope, Kek, SealRandomness};
use crate::secret::Key32;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testkit")
}

struct Case {
    expect: &'static str,
    description: String,
    kek_version: u32,
    kek: Vec<u8>,
    context: Vec<(String, String)>,
    plaintext: Vec<u8>,
    envelope: String,
}

fn render(c: &Case) -> String {
    let mut s = String::new();
    s.push_str(&format!("expect: {}\n", c.expect));
    s.push_str(&format!("description: {}\n", c.description));
    s.push_str(&format!("kek-version: {}\n", c.kek_version));
    s.push_str(&format!("kek: {}\n", hex::encode(&c.kek)));
    for (k, v) in &c.context {
        s.push_str(&format!("context: {k}={v}\n"));
    }
    s.push_str(&format!("plaintext-hex: {}\n", hex::encode(&c.plaintext)));
    s.push('\n');
    s.push_str(&c.envelope);
    s.push('\n');
    s
}

fn parse(text: &str) -> Case {
    let (head, body) = text
        .split_once("\n\n")
        .expect("header, blank line, envelope");
    let mut c = Case {
        expect: "",
        description: String::new(),
        kek_version: 0,
        kek: Vec::new(),
        context: Vec::new(),
        plaintext: Vec::new(),
        envelope: body.trim().to_owned(),
    };
    for line in head.lines() {
        let (k, v) = line.split_once(": ").expect("key: value");
        match k {
            "expect" => {
                c.expect = match v {
                    "success" => "success",
                    "authentication failure" => "authentication failure",
                    "unsupported version" => "unsupported version",
                    other => panic!("unknown expectation {other}"),
                }
            }
            "description" => c.description = v.to_owned(),
            "kek-version" => c.kek_version = v.parse().expect("version"),
            "kek" => c.kek = hex::decode(v).expect("hex"),
            "context" => {
                let (a, b) = v.split_once('=').expect("k=v");
                c.context.push((a.to_owned(), b.to_owned()));
            }
            "plaintext-hex" => c.plaintext = hex::decode(v).expect("hex"),
            other => panic!("unknown header {other}"),
        }
    }
    c
}

fn ctx_of(pairs: &[(String, String)]) -> Context {
    pairs.iter().cloned().collect()
}

fn generate() -> Vec<(String, Case)> {
    let kek_bytes: Vec<u8> = (0u8..32).collect();
    let kek = Kek::new(3, Key32::from_slice(&kek_bytes).expect("32"), Backend::Ring).expect("kek");
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    let ctx2 = vec![pair("record", "4711"), pair("field", "note")];
    let pt = b"Patient 4711: HbA1c 9.2%".to_vec();
    let mut out = Vec::new();
    let mk = |expect,
              description: &str,
              context: Vec<(String, String)>,
              plaintext: Vec<u8>,
              envelope: String| Case {
        expect,
        description: description.to_owned(),
        kek_version: 3,
        kek: kek_bytes.clone(),
        context,
        plaintext,
        envelope,
    };
    let seal = |pt: &[u8], ctx: &[(String, String)]| {
        let b = envelope::seal(Backend::Ring, "default", &kek, pt, &ctx_of(ctx)).expect("seal");
        envelope::to_text(&b).expect("text")
    };
    out.push((
        "v1-gcm-two-pairs".into(),
        mk(
            "success",
            "suite 1, two context pairs",
            ctx2.clone(),
            pt.clone(),
            seal(&pt, &ctx2),
        ),
    ));
    out.push((
        "v1-gcm-empty".into(),
        mk(
            "success",
            "suite 1, empty plaintext, empty context",
            vec![],
            vec![],
            seal(b"", &[]),
        ),
    ));
    let big: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    out.push((
        "v1-gcm-5000".into(),
        mk(
            "success",
            "suite 1, 5000-byte plaintext",
            vec![pair("k", "v")],
            big.clone(),
            seal(&big, &[pair("k", "v")]),
        ),
    ));
    let det = envelope::seal_deterministic(
        "ids",
        &kek,
        b"900-12-3456",
        &ctx_of(&[pair("field", "ssn")]),
    )
    .expect("det");
    out.push((
        "v1-siv".into(),
        mk(
            "success",
            "suite 2 (deterministic), keyring ids",
            vec![pair("field", "ssn")],
            b"900-12-3456".to_vec(),
            envelope::to_text(&det).expect("text"),
        ),
    ));
    let subj = envelope::seal_with(
        Backend::Ring,
        "default",
        Some(&[0xAB; 16]),
        envelope::Domain::Caller,
        &kek,
        b"subject data",
        &ctx_of(&ctx2),
        SealRandomness::fresh().expect("rnd"),
    )
    .expect("subject");
    out.push((
        "v1-gcm-subject".into(),
        mk(
            "success",
            "suite 1 with subject flag; kek stands for the subject key",
            ctx2.clone(),
            b"subject data".to_vec(),
            envelope::to_text(&subj).expect("text"),
        ),
    ));
    let good = seal(&pt, &ctx2);
    out.push((
        "v1-gcm-wrong-context".into(),
        mk(
            "authentication failure",
            "context order swapped",
            vec![ctx2[1].clone(), ctx2[0].clone()],
            pt.clone(),
            good.clone(),
        ),
    ));
    let mut bin = envelope::from_text(&good).expect("bin");
    let last = bin.len() - 1;
    bin[last] ^= 0x80;
    out.push((
        "v1-gcm-bad-tag".into(),
        mk(
            "authentication failure",
            "last tag bit flipped",
            ctx2.clone(),
            pt.clone(),
            format!("pv1:default:3:{}", b64(&bin)),
        ),
    ));
    let mut bin = envelope::from_text(&good).expect("bin");
    bin.truncate(bin.len() - 1);
    out.push((
        "v1-gcm-truncated".into(),
        mk(
            "authentication failure",
            "one byte cut off",
            ctx2.clone(),
            pt.clone(),
            format!("pv1:default:3:{}", b64(&bin)),
        ),
    ));
    let mut bin = envelope::from_text(&good).expect("bin");
    bin[3] = 9;
    out.push((
        "v9-unknown".into(),
        mk(
            "unsupported version",
            "format version byte 9",
            ctx2.clone(),
            pt.clone(),
            format!("pv1:default:3:{}", b64(&bin)),
        ),
    ));
    out
}

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[test]
fn testkit_envelopes_keep_their_meaning() {
    if std::env::var_os("PHIVAULT_WRITE_TESTKIT").is_some() {
        std::fs::create_dir_all(dir()).expect("dir");
        for (name, case) in generate() {
            let path = dir().join(format!("{name}.txt"));
            if !path.exists() {
                std::fs::write(path, render(&case)).expect("write");
            }
        }
    }
    let mut seen = 0;
    for entry in std::fs::read_dir(dir()).expect("testkit dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let case = parse(&std::fs::read_to_string(&path).expect("read"));
        let kek = Kek::new(
            case.kek_version,
            Key32::from_slice(&case.kek).expect("kek"),
            Backend::Ring,
        )
        .expect("kek");
        let res = envelope::from_text(&case.envelope).and_then(|bin| {
            let env = Envelope::parse(&bin)?;
            envelope::open(Backend::Ring, &env, &kek, &ctx_of(&case.context))
                .map(|p| p.expose().to_vec())
        });
        match (case.expect, res) {
            ("success", Ok(pt)) => assert_eq!(pt, case.plaintext, "{}", path.display()),
            ("authentication failure", Err(Error::AuthenticationFailed)) => {}
            ("unsupported version", Err(Error::UnsupportedVersion { .. })) => {}
            (want, got) => panic!(
                "{}: expected {want}, got {:?}",
                path.display(),
                got.map(|_| "success")
            ),
        }
        seen += 1;
    }
    assert!(seen >= 9, "only {seen} testkit files");
}
