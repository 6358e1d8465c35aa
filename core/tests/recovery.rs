//! M-of-N recovery: any M of N shares reset the root, M-1 do not, shares of another vault or
//! split are refused by name, mistyped shares fail their checksum, forged shares are caught,
//! and both actions are audited.

use phivault::recovery::{self, RecoveryShare};
use phivault::root::KeyFile;
use phivault::{Error, Key32, Vault};
use std::path::PathBuf;

fn fresh_key() -> KeyFile {
    KeyFile::from_key(Key32::random().expect("rng"))
}

fn setup(n: u8, m: u8) -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v");
    let v = Vault::create(&path, &fresh_key()).expect("create");
    v.owner().put("notes", "1", b"note one", None).expect("put");
    v.owner()
        .put("notes", "2", b"subject note", Some("patient-1"))
        .expect("put");
    let shares = v
        .recovery_split(n, m)
        .expect("split")
        .iter()
        .map(|s| s.to_text().to_string())
        .collect();
    (dir, path, shares)
}

fn parse(texts: &[&String]) -> Vec<RecoveryShare> {
    texts
        .iter()
        .map(|t| RecoveryShare::parse(t).expect("parse"))
        .collect()
}

fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    if k == 0 {
        return vec![vec![]];
    }
    if n < k {
        return vec![];
    }
    let mut out = combinations(n - 1, k);
    for mut c in combinations(n - 1, k - 1) {
        c.push(n - 1);
        out.push(c);
    }
    out
}

#[test]
fn any_m_of_n_recover_and_m_minus_1_do_not() {
    let (_dir, path, shares) = setup(5, 3);
    for k in [3, 4, 5] {
        for combo in combinations(5, k) {
            let picked: Vec<&String> = combo.iter().map(|&i| &shares[i]).collect();
            let new_root = fresh_key();
            recovery::recovery_unlock(&path, &parse(&picked), &new_root)
                .unwrap_or_else(|e| panic!("{combo:?}: {e}"));
            let v = Vault::open(&path, &new_root).expect("new root opens");
            assert_eq!(
                &*v.owner().get("notes", "1").expect("get").expect("present"),
                b"note one"
            );
            assert_eq!(
                &*v.owner().get("notes", "2").expect("get").expect("present"),
                b"subject note"
            );
        }
    }
    let current = fresh_key();
    recovery::recovery_unlock(
        &path,
        &parse(&[&shares[0], &shares[1], &shares[2]]),
        &current,
    )
    .expect("unlock");
    for combo in combinations(5, 2) {
        let picked: Vec<&String> = combo.iter().map(|&i| &shares[i]).collect();
        let e = recovery::recovery_unlock(&path, &parse(&picked), &fresh_key())
            .expect_err("two shares must not unlock");
        assert!(
            matches!(
                e,
                Error::NotEnoughShares {
                    given: 2,
                    threshold: 3
                }
            ),
            "{e}"
        );
    }
    // The same share three times is still one share.
    let e = recovery::recovery_unlock(
        &path,
        &parse(&[&shares[0], &shares[0], &shares[1]]),
        &fresh_key(),
    )
    .expect_err("duplicates");
    assert!(matches!(e, Error::NotEnoughShares { given: 2, .. }), "{e}");
    // Nothing changed: the last good root still opens the vault.
    Vault::open(&path, &current).expect("root unchanged");
}

#[test]
fn a_share_of_another_vault_is_refused_by_name() {
    let (_d1, path, shares) = setup(5, 3);
    let (_d2, _, other) = setup(5, 3);
    let e = recovery::recovery_unlock(
        &path,
        &parse(&[&shares[0], &other[1], &shares[2]]),
        &fresh_key(),
    )
    .expect_err("foreign share");
    assert!(
        matches!(e, Error::ShareFromAnotherVault { index: 2, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("another vault") || e.to_string().contains("belongs to"));
    let e = recovery::recovery_unlock(
        &path,
        &parse(&[&other[0], &other[1], &other[2]]),
        &fresh_key(),
    )
    .expect_err("all foreign");
    assert!(matches!(e, Error::ShareFromAnotherVault { .. }), "{e}");
}

#[test]
fn shares_of_two_splits_do_not_mix() {
    let (_dir, path, first) = setup(5, 3);
    let v = Vault::open(&path, &fresh_key());
    assert!(v.is_err(), "sanity: a random key does not open it");
    // A second split needs the vault open: reset the root with the first split, then split again.
    let root = fresh_key();
    recovery::recovery_unlock(&path, &parse(&[&first[0], &first[1], &first[2]]), &root)
        .expect("unlock");
    let second: Vec<String> = Vault::open(&path, &root)
        .expect("open")
        .recovery_split(5, 3)
        .expect("split")
        .iter()
        .map(|s| s.to_text().to_string())
        .collect();
    let e = recovery::recovery_unlock(
        &path,
        &parse(&[&first[0], &second[1], &first[2]]),
        &fresh_key(),
    )
    .expect_err("mixed splits");
    assert!(matches!(e, Error::SharesMismatch { .. }), "{e}");
}

#[test]
fn mistyped_or_damaged_shares_fail_their_checksum() {
    let (_dir, _, shares) = setup(3, 2);
    let text = &shares[0];
    let data_line = text.lines().find(|l| l.starts_with("data:")).expect("data");
    let start = text.find(data_line).expect("pos") + "data: ".len();
    // Every hex digit of the data, changed to another digit.
    for i in start..start + 66 {
        let mut b = text.clone().into_bytes();
        b[i] = if b[i] == b'0' { b'1' } else { b'0' };
        let t = String::from_utf8(b).expect("utf8");
        let e = RecoveryShare::parse(&t).expect_err("typo");
        assert!(matches!(e, Error::InvalidShare { .. }), "{e}");
        assert!(
            !e.to_string().contains(&t[start..start + 66]),
            "error echoes share bytes"
        );
    }
    // Bit flips anywhere in the file.
    for i in 0..text.len() {
        let mut b = text.clone().into_bytes();
        b[i] ^= 0x01;
        if let Ok(t) = String::from_utf8(b) {
            if t.trim() == text.trim() {
                continue;
            }
            assert!(RecoveryShare::parse(&t).is_err(), "flip at {i} accepted");
        }
    }
    assert!(RecoveryShare::parse("hello").is_err());
    assert!(RecoveryShare::parse(&text[..text.len() / 2]).is_err());
}

#[test]
fn a_forged_share_with_a_valid_checksum_unlocks_nothing() {
    let (_dir, path, shares) = setup(3, 2);
    // Change one data byte and recompute the checksum as the format defines it.
    let lines: Vec<&str> = shares[1].lines().collect();
    let vault = hex::decode(lines[1].trim_start_matches("vault: ")).expect("hex");
    let split = hex::decode(lines[2].trim_start_matches("split: ")).expect("hex");
    let mut data = hex::decode(lines[4].trim_start_matches("data: ")).expect("hex");
    data[5] ^= 0x55;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"PVR1");
    ctx.update(&vault);
    ctx.update(&split);
    ctx.update(&[2, 3, 2]);
    ctx.update(&data);
    let check = hex::encode(&ctx.finish().as_ref()[..8]);
    let forged = format!(
        "{}\n{}\n{}\n{}\ndata: {}\ncheck: {}\n",
        lines[0],
        lines[1],
        lines[2],
        lines[3],
        hex::encode(&data),
        check
    );
    let f = RecoveryShare::parse(&forged).expect("checksum is valid");
    let good = RecoveryShare::parse(&shares[0]).expect("parse");
    let e = recovery::recovery_unlock(&path, &[good, f], &fresh_key()).expect_err("forged");
    assert!(matches!(e, Error::SharesMismatch { .. }), "{e}");
}

#[test]
fn split_and_unlock_are_audited() {
    let (_dir, path, shares) = setup(3, 2);
    let root = fresh_key();
    recovery::recovery_unlock(&path, &parse(&[&shares[0], &shares[2]]), &root).expect("unlock");
    let v = Vault::open(&path, &root).expect("open");
    let details: Vec<String> = v
        .audit_entries(0, None, false)
        .expect("entries")
        .into_iter()
        .filter_map(|e| e.target.detail)
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("recovery split: 3 shares, threshold 2"))
    );
    assert!(
        details
            .iter()
            .any(|d| d == "recovery unlock with shares 1,3")
    );
    assert!(details.iter().any(|d| d.starts_with("rotate root")));
    assert!(v.audit_verify().expect("verify").ok);
}

#[test]
fn bad_parameters_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = Vault::create(dir.path().join("v"), &fresh_key()).expect("create");
    assert!(v.recovery_split(3, 1).is_err());
    assert!(v.recovery_split(2, 3).is_err());
    assert_eq!(v.recovery_split(255, 255).expect("max").len(), 255);
    let s = &v.recovery_split(3, 2).expect("split")[0];
    let text = s.to_text();
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("data line");
    assert!(!format!("{s:?}").contains(&data[2..20]), "Debug redacts");
}
