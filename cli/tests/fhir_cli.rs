//! `phivault fhir`: de-identification of NDJSON with the Safe Harbor preset, malformed lines
//! by number, the report, re-identification as a permitted role and a denial, JSON documents
//! and stored schemas.

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
        std::fs::write(&key, [0x45u8; 32]).expect("key");
        let vault = tmp.path().join("vault");
        let e = Env { tmp, vault, key };
        assert!(e.pv(&["init"]).status.success());
        e
    }

    fn pv(&self, args: &[&str]) -> Output {
        run_on(&self.vault, &self.key, args, b"")
    }

    fn path(&self, name: &str) -> String {
        self.tmp.path().join(name).display().to_string()
    }
}

const PATIENT: &str = r#"{"resourceType":"Patient","id":"pq1","identifier":[{"system":"http://hl7.org/fhir/sid/us-ssn","value":"900-44-1212"}],"name":[{"family":"Zedcanary"}],"birthDate":"1975-05-05"}"#;
const OBS: &str = r#"{"resourceType":"Observation","id":"oq1","status":"final","subject":{"reference":"Patient/pq1"},"effectiveDateTime":"2021-02-03T04:05:06Z"}"#;

const POLICY: &str = r#"
[[principal]]
name = "analyst"
roles = ["research"]
[[rule]]
roles = ["research"]
purposes = ["research"]
actions = ["tokenize"]
fields = ["identifier", "pseudonym"]
"#;

#[test]
fn deid_reid_errors_report_and_denial() {
    let e = Env::new();
    let input = e.path("in.ndjson");
    std::fs::write(&input, format!("{PATIENT}\n{{\"SECRETLINE\": \n{OBS}\n")).expect("in");
    let out = e.path("out.ndjson");
    // A malformed line fails the run by its number, without echoing it, and leaves no output.
    let r = e.pv(&[
        "fhir",
        "deid",
        "--schema",
        "safe-harbor",
        "--in",
        &input,
        "--out",
        &out,
    ]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("line 2") && !err.contains("SECRETLINE"),
        "{err}"
    );
    assert!(!std::path::Path::new(&out).exists());
    // Skipped, it is listed in the report.
    let report = e.path("report.json");
    let r = e.pv(&[
        "fhir",
        "deid",
        "--schema",
        "safe-harbor",
        "--in",
        &input,
        "--out",
        &out,
        "--errors",
        "skip",
        "--report",
        &report,
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = std::fs::read_to_string(&out).expect("out");
    assert_eq!(text.lines().count(), 2);
    for secret in ["900-44-1212", "Zedcanary", "pq1", "1975-05-05", "04:05:06"] {
        assert!(!text.contains(secret), "{secret} survived");
    }
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(rep["bad_line_numbers"], serde_json::json!([2]));
    assert_eq!(rep["documents"], 2);
    // Re-identification as the owner restores the identifier.
    let back = e.path("back.ndjson");
    let r = e.pv(&[
        "fhir",
        "reid",
        "--schema",
        "safe-harbor",
        "--in",
        &out,
        "--out",
        &back,
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(
        std::fs::read_to_string(&back)
            .expect("back")
            .contains("900-44-1212")
    );
    // An analyst may de-identify but not re-identify: denied (exit 9) and logged.
    let pf = e.path("policy.toml");
    std::fs::write(&pf, POLICY).expect("policy");
    assert!(e.pv(&["policy", "set", &pf]).status.success());
    let out2 = e.path("out2.ndjson");
    let r = e.pv(&[
        "fhir",
        "deid",
        "--as",
        "analyst",
        "--purpose",
        "research",
        "--schema",
        "safe-harbor",
        "--in",
        &input,
        "--out",
        &out2,
        "--errors",
        "skip",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // Consistent tokens: the analyst's output equals the owner's.
    assert_eq!(std::fs::read_to_string(&out2).expect("out2"), text);
    let r = e.pv(&[
        "fhir",
        "reid",
        "--as",
        "analyst",
        "--purpose",
        "research",
        "--schema",
        "safe-harbor",
        "--in",
        &out,
        "--out",
        &e.path("no.ndjson"),
    ]);
    assert_eq!(r.status.code(), Some(9));
    assert!(!std::path::Path::new(&e.path("no.ndjson")).exists());
    let log = e.pv(&["audit", "show", "--principal", "analyst"]);
    assert!(String::from_utf8_lossy(&log.stdout).contains("denied"));
    assert!(e.pv(&["audit", "verify"]).status.success());
}

#[test]
fn json_documents_and_stored_schemas() {
    let e = Env::new();
    let schema = e.path("study.toml");
    std::fs::write(
        &schema,
        "default = \"redact\"\n[[rule]]\npath = \"Patient.birthDate\"\naction = \"generalize\"\nprecision = \"month\"\n",
    )
    .expect("schema");
    let bad = e.path("bad.toml");
    std::fs::write(&bad, "[[rule]]\npath = \"Patient..x\"\naction = \"keep\"\n").expect("bad");
    let r = e.pv(&["fhir", "define-schema", "broken", &bad]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("rule 1, path position 9"),
        "{err}"
    );
    assert!(
        e.pv(&["fhir", "define-schema", "study", &schema])
            .status
            .success()
    );
    let list = e.pv(&["fhir", "schemas"]);
    assert_eq!(
        String::from_utf8_lossy(&list.stdout),
        "safe-harbor\nshifted-dates\nstudy\n"
    );
    let input = e.path("p.json");
    std::fs::write(&input, PATIENT).expect("in");
    let out = e.path("p.deid.json");
    let r = e.pv(&[
        "fhir", "deid", "--schema", "study", "--in", &input, "--out", &out,
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("out")).expect("json");
    assert_eq!(
        doc,
        serde_json::json!({"resourceType": "Patient", "birthDate": "1975-05"})
    );
    let r = e.pv(&[
        "fhir", "deid", "--schema", "nope", "--in", &input, "--out", &out,
    ]);
    assert_eq!(r.status.code(), Some(6));
}
