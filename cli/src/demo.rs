//! `phivault demo`: the end-to-end tour on a temporary vault with synthetic patients. Every
//! step checks its own result; the demo exits non-zero if any check fails.

use crate::exit::CliError;
use phivault::lifecycle::RewrapOptions;
use phivault::policy::{Caller, Policy};
use phivault::root::Passphrase;
use phivault::tokens::View;
use phivault::{Context, EncryptOptions, Error, Vault};
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Patient {
    mrn: &'static str,
    name: &'static str,
    ssn: &'static str,
    dob: &'static str,
    note: &'static str,
}

/// Synthetic patients: invented names and numbers (SSNs in the 900 area, never issued).
const PATIENTS: [Patient; 4] = [
    Patient {
        mrn: "MRN-100234",
        name: "Ada Quist",
        ssn: "900-12-3456",
        dob: "1961-04-12",
        note: "HbA1c 9.2%, metformin increased",
    },
    Patient {
        mrn: "MRN-100235",
        name: "Bram Okafor",
        ssn: "900-23-4567",
        dob: "1978-11-30",
        note: "Chest pain, troponin negative",
    },
    Patient {
        mrn: "MRN-100236",
        name: "Chidi Lindqvist",
        ssn: "900-34-5678",
        dob: "1990-02-05",
        note: "HIV viral load undetectable",
    },
    Patient {
        mrn: "MRN-100237",
        name: "Dana Varga",
        ssn: "900-45-6789",
        dob: "2001-07-19",
        note: "Prenatal visit, 24 weeks",
    },
];

fn check(ok: bool, what: &str) -> Result<(), CliError> {
    if ok {
        println!("  ok  {what}");
        Ok(())
    } else {
        Err(CliError::msg(format!("demo check failed: {what}")))
    }
}

fn record_json(p: &Patient) -> String {
    format!(
        "{{\"mrn\":\"{}\",\"name\":\"{}\",\"ssn\":\"{}\",\"dob\":\"{}\",\"note\":\"{}\"}}",
        p.mrn, p.name, p.ssn, p.dob, p.note
    )
}

/// Counts the PHI strings that appear anywhere in the files under `dir`.
fn phi_found_on_disk(dir: &Path, needles: &[&str]) -> std::io::Result<(usize, u64)> {
    let mut found = 0;
    let mut bytes = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else {
                let data = std::fs::read(e.path())?;
                bytes += data.len() as u64;
                found += needles
                    .iter()
                    .filter(|n| data.windows(n.len()).any(|w| w == n.as_bytes()))
                    .count();
            }
        }
    }
    Ok((found, bytes))
}

/// Runs the tour.
pub fn run(keep: Option<PathBuf>) -> Result<(), CliError> {
    let tmp = tempfile::tempdir()?;
    let dir = keep.unwrap_or_else(|| tmp.path().join("vault"));
    let pass = "demo passphrase: correct horse battery staple";

    println!(
        "phivault demo: a vault of synthetic patients in {}\n",
        dir.display()
    );
    println!("1. Create a vault (root key: Argon2id passphrase, m=64 MiB t=3 p=4)");
    let t = Instant::now();
    let vault = Vault::create(&dir, &Passphrase::new(pass))?;
    println!(
        "     created vault {} in {:?}",
        vault.vault_id_hex(),
        t.elapsed()
    );

    println!(
        "2. Store {} patient records, each tied to its patient (subject)",
        PATIENTS.len()
    );
    for p in &PATIENTS {
        vault
            .owner()
            .put("patients", p.mrn, record_json(p).as_bytes(), Some(p.mrn))?;
    }
    check(
        vault.scan("patients").count() == PATIENTS.len(),
        "records listed by scan without decrypting",
    )?;
    drop(vault);

    println!("3. Reopen (a restart) and read every record back");
    let t = Instant::now();
    let vault = Vault::open(&dir, &Passphrase::new(pass))?;
    println!("     reopened in {:?}", t.elapsed());
    for p in &PATIENTS {
        let got = vault
            .owner()
            .get("patients", p.mrn)?
            .ok_or_else(|| CliError::msg("record missing"))?;
        check(
            got.as_slice() == record_json(p).as_bytes(),
            &format!(
                "record {} reads back intact",
                p.mrn.replace(|c: char| c.is_ascii_digit(), "#")
            ),
        )?;
    }
    match Vault::open(&dir, &Passphrase::new("wrong passphrase")) {
        Err(Error::VaultLocked { .. }) => {
            check(true, "a second opener is refused: vault is locked")?
        }
        other => check(
            false,
            &format!("second opener refused (got {:?})", other.map(|_| ())),
        )?,
    }

    println!("4. Scan every byte on disk for the PHI");
    let needles: Vec<&str> = PATIENTS
        .iter()
        .flat_map(|p| [p.mrn, p.name, p.ssn, p.dob, p.note])
        .collect();
    let (found, bytes) = phi_found_on_disk(&dir, &needles)?;
    println!(
        "     {} of {} PHI strings found in {bytes} bytes of vault files",
        found,
        needles.len()
    );
    check(found == 0, "no plaintext PHI at rest")?;

    println!("5. Envelope encryption bound to context");
    let ctx = Context::new().with("record", "100234").with("field", "ssn");
    let ct =
        vault
            .owner()
            .encrypt_text(PATIENTS[0].ssn.as_bytes(), &ctx, &EncryptOptions::new())?;
    println!("     {}...", &ct[..ct.len().min(60)]);
    check(
        vault.owner().decrypt(ct.as_bytes(), &ctx)?.as_slice() == PATIENTS[0].ssn.as_bytes(),
        "decrypts with its context",
    )?;
    let moved = Context::new().with("record", "100235").with("field", "ssn");
    check(
        matches!(
            vault.owner().decrypt(ct.as_bytes(), &moved),
            Err(Error::AuthenticationFailed)
        ),
        "moved to another record: authentication failed",
    )?;
    let mut bin = phivault::envelope::from_text(&ct)?;
    let mid = bin.len() / 2;
    bin[mid] ^= 1;
    check(
        matches!(
            vault.owner().decrypt(&bin, &ctx),
            Err(Error::AuthenticationFailed)
        ),
        "one flipped bit: authentication failed",
    )?;
    let det = EncryptOptions::new().deterministic();
    let a = vault.owner().encrypt_text(
        PATIENTS[1].ssn.as_bytes(),
        &Context::new().with("field", "ssn"),
        &det,
    )?;
    let b = vault.owner().encrypt_text(
        PATIENTS[1].ssn.as_bytes(),
        &Context::new().with("field", "ssn"),
        &det,
    )?;
    check(
        a == b,
        "deterministic opt-in: equal values give equal ciphertexts (for lookups)",
    )?;

    println!("6. Tokenize identifiers for an analytics copy (joins keep working)");
    let ssns: Vec<&str> = PATIENTS.iter().map(|p| p.ssn).collect();
    let toks = vault.owner().tokenize_many("ssn", &ssns)?;
    for (p, t) in PATIENTS.iter().zip(&toks) {
        println!(
            "     ssn ###-##-#### -> {}   (masked view: {})",
            t,
            &*vault.owner().detokenize("ssn", t, View::Masked)?
        );
        check(
            t.len() == p.ssn.len() && t.as_str() != p.ssn,
            "FF1 keeps the ddd-dd-dddd shape",
        )?;
    }
    check(
        vault.owner().tokenize_many("ssn", &ssns)? == toks,
        "same value, same token (consistent)",
    )?;
    check(
        *vault.owner().detokenize("ssn", &toks[0], View::Plaintext)? == PATIENTS[0].ssn,
        "authorised detokenize returns the value",
    )?;
    let mrn_tok = vault.owner().tokenize("mrn", PATIENTS[0].mrn)?;
    check(
        *vault.owner().detokenize("mrn", &mrn_tok, View::Plaintext)? == PATIENTS[0].mrn,
        "vaulted MRN token round-trips",
    )?;
    let psn = vault.owner().tokenize("pseudonym", PATIENTS[0].name)?;
    println!("     name -> {psn} (one-way pseudonym)");
    let d = vault
        .owner()
        .tokenize_for_subject("dob", PATIENTS[0].dob, PATIENTS[0].mrn)?;
    check(
        d.as_str() != PATIENTS[0].dob && d.len() == 10,
        "date of birth shifted by the patient's secret offset",
    )?;

    println!("7. Rotate the default keyring: new data uses v2, old data still reads");
    vault
        .owner()
        .put("labs", "LAB-1", b"potassium 4.1 mmol/L", None)?;
    let v2 = vault.rotate("default")?;
    vault
        .owner()
        .put("labs", "LAB-2", b"sodium 139 mmol/L", None)?;
    let ct2 = vault
        .owner()
        .encrypt_text(b"x", &ctx, &EncryptOptions::new())?;
    check(
        ct2.starts_with(&format!("pv1:default:{v2}:")),
        "new ciphertexts name key version 2 in their prefix",
    )?;
    check(
        vault.owner().decrypt(ct.as_bytes(), &ctx).is_ok(),
        "a version-1 ciphertext still decrypts",
    )?;
    let report = vault.rewrap(&RewrapOptions::default(), &mut |_| {})?;
    println!(
        "     rewrap: {} records moved to v{v2} (header only), {} subject keys rewrapped",
        report.rewrapped, report.subject_keys_rewrapped
    );
    check(report.unreadable == 0, "rewrap moved everything it scanned")?;
    vault.destroy_key_version("default", 1, false)?;
    check(
        vault.owner().get("patients", PATIENTS[0].mrn)?.is_some(),
        "version 1 destroyed after rewrap; data still reads",
    )?;

    println!("8. Forget a patient (crypto-shredding)");
    vault.forget_subject(PATIENTS[2].mrn)?;
    check(
        matches!(
            vault.owner().get("patients", PATIENTS[2].mrn),
            Err(Error::SubjectForgotten)
        ),
        "the forgotten patient's record is unrecoverable",
    )?;
    check(
        vault.owner().get("patients", PATIENTS[3].mrn)?.is_some(),
        "other patients are untouched",
    )?;

    println!("9. Access policy and the audit log");
    vault.set_policy(&Policy::from_toml(
        "[[principal]]\nname = \"nurse-17\"\nroles = [\"nursing\"]\n\
         [[rule]]\nroles = [\"nursing\"]\npurposes = [\"treatment\"]\nactions = [\"get\"]\ncollections = [\"patients\"]\n",
    )?)?;
    let nurse = vault.session(Caller::new("nurse-17", "treatment"));
    check(
        nurse.get("patients", PATIENTS[3].mrn)?.is_some(),
        "nurse-17 reads a patient record for treatment",
    )?;
    check(
        matches!(nurse.get("labs", "LAB-1"), Err(Error::AccessDenied { .. })),
        "labs are not granted: denied by default, and logged",
    )?;
    let report = vault.audit_verify()?;
    println!(
        "     {} audit entries, head {}:{}...",
        report.entries,
        report.head_seq,
        &report.head_mac[..16]
    );
    check(report.ok, "the audit chain verifies")?;
    let log = serde_json::to_string(&vault.audit_entries(0, None, false)?)
        .map_err(|e| CliError::msg(e.to_string()))?;
    check(
        !needles.iter().any(|n| log.contains(n)),
        "no PHI in the audit log",
    )?;

    println!("10. Status");
    let st = vault.status()?;
    for k in &st.keyrings {
        for v in &k.versions {
            println!(
                "     keyring {:<8} v{} {:<13} {} records",
                k.name,
                v.version,
                v.state.as_str(),
                v.records
            );
        }
    }
    println!(
        "     {} records, {} tied to subjects",
        st.records, st.subject_records
    );
    println!("\ndemo complete: every check held");
    Ok(())
}
