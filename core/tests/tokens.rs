//! Tokenization: every kind round-trips and keeps its format; consistent tokens under 8
//! concurrent threads; uniqueness of random tokens; views; subjects; rotation; bad tokens.

use phivault::lifecycle::RewrapOptions;
use phivault::root::KeyFile;
use phivault::store::Durability;
use phivault::tokens::{FieldSpec, Shape, TokenKind, View};
use phivault::{Error, Key32, Vault, VaultOptions};
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;

fn vault(dir: &tempfile::TempDir) -> Vault {
    Vault::create_with(
        dir.path().join("v"),
        &KeyFile::from_key(Key32::from_slice(&[4u8; 32]).expect("32")),
        VaultOptions::new().durability(Durability::Deferred),
    )
    .expect("create")
}

/// Same length; alphabet characters stay in the alphabet, every other character in place.
fn same_shape(a: &str, b: &str) -> bool {
    shaped(a, b, |c| c.is_ascii_digit())
}

fn shaped(a: &str, b: &str, in_alphabet: impl Fn(char) -> bool) -> bool {
    a.len() == b.len()
        && a.chars().zip(b.chars()).all(|(x, y)| {
            if in_alphabet(x) {
                in_alphabet(y)
            } else {
                x == y
            }
        })
}

#[test]
fn every_kind_round_trips_and_keeps_its_format() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let cases = [
        ("ssn", "900-12-3456"),
        ("phone", "+1 (555) 010-9999"),
        ("mrn", "MRN0012345"),
        ("email", "ada.quist@example.org"),
        ("account", "ACC-77G1X9"),
    ];
    for (field, value) in cases {
        let t = v.owner().tokenize(field, value).expect(field);
        assert_ne!(t, value, "{field}");
        let alnum = matches!(field, "mrn" | "email" | "account");
        let ok = if alnum {
            shaped(value, &t, |c| c.is_ascii_alphanumeric())
        } else {
            same_shape(value, &t)
        };
        assert!(ok, "{field}: {value} -> {t}");
        assert_eq!(
            t,
            v.owner().tokenize(field, value).expect("again"),
            "{field} consistent"
        );
        assert_eq!(
            &*v.owner()
                .detokenize(field, &t, View::Plaintext)
                .expect("detok"),
            value,
            "{field}"
        );
    }
    let z = v.owner().tokenize("zip", "02139").expect("zip");
    assert!(z.starts_with("tok_"));
    assert_eq!(
        &*v.owner()
            .detokenize("zip", &z, View::Plaintext)
            .expect("zip"),
        "02139"
    );
    let n = v.owner().tokenize("name", "Ada Quist").expect("name");
    assert!(n.starts_with("tok_") && n.len() == 26, "{n}");
    assert_eq!(
        &*v.owner()
            .detokenize("name", &n, View::Plaintext)
            .expect("detok"),
        "Ada Quist"
    );
    let p = v
        .owner()
        .tokenize("pseudonym", "Ada Quist")
        .expect("pseudonym");
    assert!(p.starts_with("psn_") && p.len() == 30);
    assert!(
        v.verify_pseudonym("pseudonym", "Ada Quist", &p)
            .expect("verify")
    );
    assert!(
        !v.verify_pseudonym("pseudonym", "Ada Quisd", &p)
            .expect("verify")
    );
    assert!(
        v.owner()
            .detokenize("pseudonym", &p, View::Plaintext)
            .is_err(),
        "one-way"
    );
}

#[test]
fn views_mask_and_redact() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let t = v.owner().tokenize("ssn", "900-12-3456").expect("tok");
    assert_eq!(
        &*v.owner().detokenize("ssn", &t, View::Masked).expect("m"),
        "***-**-3456"
    );
    assert_eq!(
        &*v.owner().detokenize("ssn", &t, View::Redacted).expect("r"),
        "[REDACTED]"
    );
    let e = v.owner().tokenize("email", "ada@example.org").expect("tok");
    assert_eq!(
        &*v.owner().detokenize("email", &e, View::Masked).expect("m"),
        "a**@*******.***"
    );
    let d = v
        .owner()
        .tokenize_for_subject("dob", "1961-04-12", "patient-1")
        .expect("dob");
    assert_eq!(
        &*v.owner()
            .detokenize_for_subject("dob", &d, "patient-1", View::Masked)
            .expect("m"),
        "1961-**-**"
    );
}

#[test]
fn ff1_enforces_the_minimum_domain() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    match v.owner().tokenize("ssn", "12345") {
        Err(Error::InvalidInput { why, .. }) => assert!(why.contains("1,000,000")),
        other => panic!("expected the NIST domain error, got {other:?}"),
    }
    assert!(v.owner().tokenize("ssn", "123456").is_ok());
    assert!(v.owner().tokenize("ssn", "").is_err());
}

#[test]
fn unknown_malformed_and_forged_tokens_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let t = v.owner().tokenize("mrn", "MRN0012345").expect("tok");
    let mut forged: Vec<char> = t.chars().collect();
    forged[3] = if forged[3] == 'a' { 'b' } else { 'a' };
    let forged: String = forged.into_iter().collect();
    assert!(matches!(
        v.owner().detokenize("mrn", &forged, View::Plaintext),
        Err(Error::InvalidToken { .. })
    ));
    assert!(matches!(
        v.owner()
            .detokenize("name", "tok_doesnotexist", View::Plaintext),
        Err(Error::InvalidToken { .. })
    ));
    assert!(matches!(
        v.owner().detokenize("mrn", "", View::Plaintext),
        Err(Error::InvalidToken { .. })
    ));
    assert!(matches!(
        v.owner().detokenize("ssn", "12-3", View::Plaintext),
        Err(Error::InvalidToken { .. })
    ));
    assert!(matches!(
        v.owner().tokenize("nosuchfield", "x"),
        Err(Error::UnknownField { .. })
    ));
    assert!(matches!(
        v.owner().tokenize("dob", "1961-04-12"),
        Err(Error::SubjectRequired { .. })
    ));
    // a token of one field is not a token of another
    let n = v.owner().tokenize("name", "Ada").expect("tok");
    let mut other = FieldSpec::new("name2", TokenKind::Vaulted);
    other.shape = Shape::Opaque;
    v.define_field(other).expect("define");
    assert!(matches!(
        v.owner().detokenize("name2", &n, View::Plaintext),
        Err(Error::InvalidToken { .. })
    ));
}

#[test]
fn eight_threads_get_exactly_one_token_per_value() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = Arc::new(vault(&dir));
    let values: Arc<Vec<String>> = Arc::new((0..2000).map(|i| format!("MRN{i:07}")).collect());
    let results: Vec<Vec<String>> = (0..8)
        .map(|t| {
            let (v, values) = (v.clone(), values.clone());
            std::thread::spawn(move || {
                // each thread walks the values in its own order, in batches and singly
                let mut order: Vec<usize> = (0..values.len()).collect();
                order.rotate_left(t * 250);
                let mut out = vec![String::new(); values.len()];
                for chunk in order.chunks(100) {
                    let vals: Vec<&str> = chunk.iter().map(|&i| values[i].as_str()).collect();
                    let toks = if t % 2 == 0 {
                        v.owner().tokenize_many("mrn", &vals).expect("batch")
                    } else {
                        vals.iter()
                            .map(|x| v.owner().tokenize("mrn", x).expect("single"))
                            .collect()
                    };
                    for (&i, tok) in chunk.iter().zip(toks) {
                        out[i] = tok;
                    }
                }
                out
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    for r in &results[1..] {
        assert_eq!(r, &results[0], "threads disagree");
    }
    let unique: HashSet<&String> = results[0].iter().collect();
    assert_eq!(unique.len(), values.len(), "two values share a token");
    for (i, t) in results[0].iter().enumerate().step_by(97) {
        assert_eq!(
            &*v.owner()
                .detokenize("mrn", t, View::Plaintext)
                .expect("detok"),
            &values[i]
        );
    }
}

#[test]
fn one_million_random_tokens_are_unique() {
    // Non-consistent vaulted tokens in a 10^6-wide space would collide; use a 9-digit
    // same-shape field: 1M tokens in a 10^9 space collide ~500 times by the birthday bound, so
    // this also proves the collision retries work.
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let mut f = FieldSpec::new("acct9", TokenKind::Vaulted);
    f.consistent = false;
    v.define_field(f).expect("define");
    let values: Vec<String> = (0..1_000_000u32).map(|i| format!("{:09}", i)).collect();
    let mut seen = HashSet::with_capacity(values.len());
    for chunk in values.chunks(20_000) {
        for t in v.owner().tokenize_many("acct9", chunk).expect("batch") {
            assert_eq!(t.len(), 9);
            assert!(seen.insert(t), "duplicate token");
        }
    }
    assert_eq!(seen.len(), 1_000_000);
}

#[test]
fn subject_tokens_die_with_forget_subject() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let mut f = FieldSpec::new("mrn_s", TokenKind::Vaulted);
    f.alphabet = "alphanumeric".into();
    f.subject = true;
    v.define_field(f).expect("define");
    let a = v
        .owner()
        .tokenize_for_subject("mrn_s", "MRN0000001", "alice")
        .expect("a");
    let b = v
        .owner()
        .tokenize_for_subject("mrn_s", "MRN0000002", "bob")
        .expect("b");
    let d = v
        .owner()
        .tokenize_for_subject("dob", "1961-04-12", "alice")
        .expect("dob");
    let d2 = v
        .owner()
        .tokenize_for_subject("dob", "1961-05-12", "alice")
        .expect("dob");
    assert_eq!(
        dob_days(&d2) - dob_days(&d),
        30,
        "intervals within a subject are kept"
    );
    v.forget_subject("alice").expect("forget");
    assert!(matches!(
        v.owner().detokenize("mrn_s", &a, View::Plaintext),
        Err(Error::SubjectForgotten)
    ));
    assert!(matches!(
        v.owner()
            .detokenize_for_subject("dob", &d, "alice", View::Plaintext),
        Err(Error::SubjectForgotten)
    ));
    assert_eq!(
        &*v.owner()
            .detokenize("mrn_s", &b, View::Plaintext)
            .expect("bob"),
        "MRN0000002"
    );
    // tokenizing alice's value again gives a fresh token, not the dead one
    let a2 = v
        .owner()
        .tokenize_for_subject("mrn_s", "MRN0000001", "alice")
        .expect("a2");
    assert_ne!(a, a2);
    assert_eq!(
        &*v.owner()
            .detokenize("mrn_s", &a2, View::Plaintext)
            .expect("a2"),
        "MRN0000001"
    );
}

fn dob_days(d: &str) -> i64 {
    let y: i64 = d[0..4].parse().expect("y");
    let m: i64 = d[5..7].parse().expect("m");
    let day: i64 = d[8..10].parse().expect("d");
    // good enough for dates within one year of each other in the same months
    y * 365 + [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334][(m - 1) as usize] + day
}

#[test]
fn vaulted_tokens_survive_rotation_rewrap_and_destroy() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let toks: Vec<String> = (0..500)
        .map(|i| {
            v.owner()
                .tokenize("mrn", &format!("MRN{i:07}"))
                .expect("tok")
        })
        .collect();
    let ssn = v.owner().tokenize("ssn", "900-12-3456").expect("ssn");
    v.rotate("tokens").expect("rotate");
    assert!(matches!(
        v.destroy_key_version("tokens", 1, false),
        Err(Error::KeyPinnedByField { .. })
    ));
    let r = v
        .rewrap(&RewrapOptions::default(), &mut |_| {})
        .expect("rewrap");
    assert_eq!(r.rewrapped, 500);
    // FF1 and pseudonym keys are pinned to tokens v1 by the presets: destroying v1 needs force.
    assert!(matches!(
        v.destroy_key_version("tokens", 1, false),
        Err(Error::KeyPinnedByField { .. })
    ));
    for (i, t) in toks.iter().enumerate() {
        assert_eq!(
            &*v.owner()
                .detokenize("mrn", t, View::Plaintext)
                .expect("detok"),
            &format!("MRN{i:07}")
        );
    }
    assert_eq!(
        &*v.owner()
            .detokenize("ssn", &ssn, View::Plaintext)
            .expect("ssn"),
        "900-12-3456"
    );
    assert_eq!(
        v.owner().tokenize("mrn", "MRN0000007").expect("same"),
        toks[7],
        "consistent across rotation"
    );
}

#[test]
fn fields_from_toml() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = vault(&dir);
    let n = v
        .define_fields_toml(
            r#"
[[field]]
name = "visit_code"
kind = "ff1"
alphabet = "upper"
mask_keep_last = 2

[[field]]
name = "research_id"
kind = "pseudonym"
project = "cohort-2026"
"#,
        )
        .expect("toml");
    assert_eq!(n, 2);
    let t = v.owner().tokenize("visit_code", "AB12-CD34").expect("tok");
    assert_eq!(&t[4..5], "-");
    assert_eq!(
        &*v.owner()
            .detokenize("visit_code", &t, View::Plaintext)
            .expect("detok"),
        "AB12-CD34"
    );
    assert!(
        v.fields()
            .expect("fields")
            .iter()
            .any(|f| f.name == "research_id")
    );
    assert!(
        v.define_fields_toml("[[field]]\nname = \"x\"\nkind = \"ff3\"\n")
            .is_err()
    );
    assert!(
        v.define_fields_toml("[[field]]\nname = \"x\"\nkind = \"ff1\"\nalphabet = \"custom:aa\"\n")
            .is_err()
    );
    assert!(
        v.define_fields_toml("[[field]]\nname = \"d\"\nkind = \"date-shift\"\n")
            .is_err(),
        "date shift needs subject = true"
    );
    assert!(v.define_fields_toml("garbage = [").is_err());
    // definitions persist and are authenticated
    drop(v);
    let v = Vault::open(
        dir.path().join("v"),
        &KeyFile::from_key(Key32::from_slice(&[4u8; 32]).expect("32")),
    )
    .expect("open");
    assert_eq!(
        &*v.owner()
            .detokenize("visit_code", &t, View::Plaintext)
            .expect("detok"),
        "AB12-CD34"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn ff1_round_trips_any_digit_string(s in "[0-9]{6,20}", sep in prop::sample::select(vec!["", "-", " "])) {
        let dir = tempfile::tempdir().expect("tmp");
        let v = vault(&dir);
        let value = format!("{}{sep}{}", &s[..3], &s[3..]);
        let t = v.owner().tokenize("ssn", &value).expect("tok");
        prop_assert!(same_shape(&value, &t));
        prop_assert_eq!(&*v.owner().detokenize("ssn", &t, View::Plaintext).expect("detok"), value.as_str());
    }

    #[test]
    fn vaulted_round_trips_any_text(s in "[ -~]{1,40}") {
        let dir = tempfile::tempdir().expect("tmp");
        let v = vault(&dir);
        let t = v.owner().tokenize("name", &s).expect("tok");
        prop_assert_eq!(&*v.owner().detokenize("name", &t, View::Plaintext).expect("detok"), s.as_str());
    }
}
