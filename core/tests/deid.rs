//! De-identification of FHIR documents (`phivault::deid`): the Safe Harbor preset on generated
//! R4 data (canaries, references, dates), round trips, encryption bound to its element, NDJSON
//! errors by line number, the policy and the audit log.

use phivault::audit::Outcome;
use phivault::deid::{NdjsonOptions, OnError, Schema};
use phivault::policy::{Caller, Policy};
use phivault::root::KeyFile;
use phivault::store::Durability;
use phivault::tokens::View;
use phivault::{Error, Key32, Vault, VaultOptions};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

fn vault(dir: &tempfile::TempDir) -> Vault {
    Vault::create_with(
        dir.path().join("v"),
        &KeyFile::from_key(Key32::from_slice(&[9u8; 32]).expect("32")),
        VaultOptions::new().durability(Durability::Deferred),
    )
    .expect("create")
}

/// Generated R4 data: patients with identifiers, names, contacts, addresses, extensions and
/// a contained resource; encounters, observations, conditions, medication requests and
/// reports referring to them; practitioners and organizations. Returns the resources and the
/// canaries (strings that must not survive de-identification).
fn generate(patients: usize) -> (Vec<Value>, Vec<String>) {
    let mut out = Vec::new();
    let mut canaries = Vec::new();
    out.push(json!({"resourceType": "Organization", "id": "org1",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
        "name": "Canaryville Clinic", "telecom": [{"system": "phone", "value": "555-0100-0001"}],
        "address": [{"line": ["1 Canary Plaza"], "city": "Canaryville", "state": "MA", "postalCode": "02139"}]}));
    out.push(json!({"resourceType": "Practitioner", "id": "prac1",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "9876543210"}],
        "name": [{"family": "Docanary", "given": ["Greta"], "prefix": ["Dr."]}],
        "qualification": [{"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0360", "code": "MD"}]}}]}));
    canaries.extend(
        [
            "1234567893",
            "Canaryville",
            "555-0100-0001",
            "1 Canary Plaza",
            "9876543210",
            "Docanary",
        ]
        .map(String::from),
    );
    for i in 0..patients {
        let pid = format!("pat{i:05}");
        let ssn = format!("900-71-{i:04}");
        let mrn = format!("MRNQ{i:06}");
        let family = format!("Famcanary{i}");
        let given = format!("Givcanary{i}");
        let phone = format!("555-02{:02}-{:04}", i % 100, i);
        let line = format!("{i} Canary Street");
        let birth = format!("{}-0{}-1{}", 1940 + i % 60, 1 + i % 9, i % 10);
        let note = format!("Notecanary{i} called {family} at {phone}");
        canaries.extend([
            pid.clone(),
            ssn.clone(),
            mrn.clone(),
            family.clone(),
            given.clone(),
            phone.clone(),
            line.clone(),
            birth.clone(),
            note.clone(),
        ]);
        out.push(json!({"resourceType": "Patient", "id": pid,
            "meta": {"lastUpdated": "2024-05-01T10:00:00Z", "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
            "text": {"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{family}</div>")},
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                           "valueAddress": {"city": format!("Birthcanary{i}"), "state": "MA"}},
                          {"url": "http://example.org/fav-color", "valueString": format!("Colorcanary{i}")}],
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": ssn},
                           {"system": "http://hospital.example/mrn", "value": mrn,
                            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}}],
            "active": true,
            "name": [{"use": "official", "family": family, "given": [given]}],
            "telecom": [{"system": "phone", "value": phone, "use": "home"},
                        {"system": "email", "value": format!("mailcanary{i}@example.org")}],
            "gender": if i % 2 == 0 { "female" } else { "male" },
            "birthDate": birth,
            "address": [{"line": [line], "city": "Springfield", "state": "MA", "postalCode": format!("0{:04}", 2100 + i % 50), "country": "US"}],
            "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]},
            "contact": [{"relationship": [{"coding": [{"code": "N"}]}], "name": {"family": format!("Kincanary{i}")}}],
            "contained": [{"resourceType": "Organization", "id": "ins", "name": format!("Insurecanary{i}")}],
            "managingOrganization": {"reference": "Organization/org1", "display": "Canaryville Clinic"},
            "generalPractitioner": [{"reference": "Practitioner/prac1"}]}));
        canaries.extend([
            format!("Birthcanary{i}"),
            format!("Colorcanary{i}"),
            format!("mailcanary{i}"),
            format!("Kincanary{i}"),
            format!("Insurecanary{i}"),
        ]);
        let enc = format!("enc{i:05}");
        out.push(
            json!({"resourceType": "Encounter", "id": enc, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/{pid}"), "display": family},
            "participant": [{"individual": {"reference": "Practitioner/prac1"}}],
            "period": {"start": "2023-03-01T09:00:00Z", "end": "2023-03-04T17:30:00Z"},
            "serviceProvider": {"reference": "Organization/org1"}}),
        );
        out.push(json!({"resourceType": "Observation", "id": format!("obs{i:05}"), "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
            "subject": {"reference": format!("Patient/{pid}")},
            "encounter": {"reference": format!("Encounter/{enc}")},
            "effectiveDateTime": "2023-03-02T08:30:00Z", "issued": "2023-03-02T12:00:00.000Z",
            "valueQuantity": {"value": 7.1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
            "note": [{"text": note}]}));
        out.push(json!({"resourceType": "Condition", "id": format!("cond{i:05}"),
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}], "text": format!("Diabcanary{i}")},
            "subject": {"reference": format!("Patient/{pid}")},
            "onsetAge": {"value": 40 + (i % 60), "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"},
            "recordedDate": "2023-03-03"}));
        canaries.push(format!("Diabcanary{i}"));
        out.push(json!({"resourceType": "MedicationRequest", "id": format!("mr{i:05}"), "status": "active", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975"}]},
            "subject": {"reference": format!("Patient/{pid}")}, "authoredOn": "2023-03-04",
            "requester": {"reference": "Practitioner/prac1"},
            "dosageInstruction": [{"text": format!("Dosecanary{i}"), "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}}]}));
        canaries.push(format!("Dosecanary{i}"));
        out.push(
            json!({"resourceType": "DiagnosticReport", "id": format!("dr{i:05}"), "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "subject": {"reference": format!("Patient/{pid}")},
            "result": [{"reference": format!("Observation/obs{i:05}")}],
            "effectiveDateTime": "2023-03-02", "conclusion": format!("Conccanary{i}")}),
        );
        canaries.push(format!("Conccanary{i}"));
    }
    (out, canaries)
}

fn ids_and_refs(docs: &[Value]) -> (HashSet<String>, Vec<String>) {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, c) in o {
                    if k == "reference"
                        && let Some(s) = c.as_str()
                    {
                        out.push(s.to_owned());
                    }
                    refs(c, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }
    let mut ids = HashSet::new();
    let mut all = Vec::new();
    for d in docs {
        ids.insert(format!(
            "{}/{}",
            d["resourceType"].as_str().expect("type"),
            d["id"].as_str().expect("id")
        ));
        refs(d, &mut all);
    }
    (ids, all)
}

#[test]
fn safe_harbor_leaves_no_canary_and_keeps_links() {
    let dir = tempfile::tempdir().expect("dir");
    let v = vault(&dir);
    let (docs, canaries) = generate(60);
    let input: String = docs.iter().map(|d| format!("{d}\n")).collect();
    let schema = Schema::preset("safe-harbor").expect("preset");
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let report = v
        .owner()
        .deidentify_ndjson(
            &schema,
            input.as_bytes(),
            &mut out,
            &NdjsonOptions::default().batch_lines(100),
            &mut |p| seen.push(p.lines),
        )
        .expect("deid");
    let text = String::from_utf8(out).expect("utf-8");
    for c in &canaries {
        assert!(!text.contains(c.as_str()), "canary survived");
    }
    let out_docs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(out_docs.len(), docs.len());
    assert_eq!(report.documents, docs.len() as u64);
    assert!(seen.len() >= 4 && seen.windows(2).all(|w| w[0] < w[1]));
    // References resolve inside the output; nothing keeps its old id.
    let (ids, refs) = ids_and_refs(&out_docs);
    assert!(!refs.is_empty());
    for r in &refs {
        assert!(ids.contains(r), "dangling reference");
        assert!(r.contains("/psn-"));
    }
    let p = &out_docs[2];
    assert_eq!(p["resourceType"], "Patient");
    assert_eq!(p["gender"], "female");
    assert_eq!(p["birthDate"].as_str().map(str::len), Some(4));
    assert_eq!(p["address"][0]["postalCode"], "021");
    assert_eq!(p["address"][0]["state"], "MA");
    assert!(p["address"][0].get("city").is_none() && p.get("name").is_none());
    assert!(p.get("text").is_none() && p.get("telecom").is_none());
    assert_eq!(p["contained"][0]["id"], "ins"); // local ids stay
    assert!(
        p["identifier"][0]["value"]
            .as_str()
            .expect("token")
            .starts_with("tok_")
    );
    let labels: Vec<&str> = p["meta"]["security"]
        .as_array()
        .expect("labels")
        .iter()
        .filter_map(|c| c["code"].as_str())
        .collect();
    assert!(labels.contains(&"REDACTED") && labels.contains(&"PSEUDED"));
    assert_eq!(
        p["meta"]["profile"][0],
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
    );
    // Clinical content stays.
    let obs = &out_docs[4];
    assert_eq!(obs["valueQuantity"]["value"], 7.1);
    assert_eq!(obs["code"]["coding"][0]["code"], "4548-4");
    assert_eq!(obs["effectiveDateTime"], "2023");
    assert!(obs.get("issued").is_none() && obs.get("note").is_none());
    // Ages over 89 are 90+.
    let old = out_docs
        .iter()
        .filter(|d| d["resourceType"] == "Condition")
        .find(|d| d["onsetAge"]["comparator"] == ">=")
        .expect("an onset age over 89");
    assert_eq!(old["onsetAge"]["value"], 90);
    // Every rule's count is in the report, and no value is.
    let json = report.to_json();
    assert!(!json.contains("canary") && json.contains("nodesByType('HumanName')"));
}

#[test]
fn shifted_dates_keep_intervals_per_patient() {
    let dir = tempfile::tempdir().expect("dir");
    let v = vault(&dir);
    let schema = Schema::preset("shifted-dates").expect("preset");
    let owner = v.owner();
    let mut offsets = HashMap::new();
    for pid in ["a1", "b2", "c3"] {
        let mut pat = json!({"resourceType": "Patient", "id": pid, "birthDate": "1980-06-15"});
        let mut obs = json!({"resourceType": "Observation", "id": "o", "status": "final",
            "subject": {"reference": format!("Patient/{pid}")},
            "effectiveDateTime": "1980-06-25T08:00:00Z"});
        owner.deidentify(&schema, &mut pat).expect("patient");
        owner.deidentify(&schema, &mut obs).expect("observation");
        let born = pat["birthDate"].as_str().expect("date").to_owned();
        let seen = obs["effectiveDateTime"].as_str().expect("date").to_owned();
        assert_ne!(born, "1980-06-15");
        assert!(seen.ends_with("T08:00:00Z"));
        let day = |s: &str| {
            let d = chrono_days(&s[..10]);
            d - chrono_days("1980-06-15")
        };
        assert_eq!(day(&seen) - day(&born), 10, "interval kept");
        offsets.insert(pid, day(&born));
        // The same patient in another file gets the same shift.
        let mut again = json!({"resourceType": "Patient", "id": pid, "birthDate": "1980-06-15"});
        owner.deidentify(&schema, &mut again).expect("again");
        assert_eq!(again["birthDate"].as_str(), Some(born.as_str()));
    }
    let distinct: HashSet<i64> = offsets.values().copied().collect();
    assert!(distinct.len() > 1, "offsets differ between patients");
    // Forgetting the patient kills the shift: the old dates can no longer be shifted back.
    let mut pat = json!({"resourceType": "Patient", "id": "a1", "birthDate": "1980-06-15"});
    owner.deidentify(&schema, &mut pat).expect("deid");
    let shifted = pat["birthDate"].as_str().expect("date").to_owned();
    assert_eq!(
        &*owner
            .detokenize_for_subject("date", &shifted, "a1", View::Plaintext)
            .expect("reverse"),
        "1980-06-15"
    );
    assert!(v.forget_subject("a1").expect("forget"));
    assert!(matches!(
        owner.detokenize_for_subject("date", &shifted, "a1", View::Plaintext),
        Err(Error::SubjectForgotten)
    ));
}

/// Days since 1970 of `YYYY-MM-DD` (test helper).
fn chrono_days(s: &str) -> i64 {
    let y: i64 = s[0..4].parse().expect("y");
    let m: i64 = s[5..7].parse().expect("m");
    let d: i64 = s[8..10].parse().expect("d");
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

const POLICY: &str = r#"
[[principal]]
name = "steward"
roles = ["steward"]
[[principal]]
name = "analyst"
roles = ["research"]
[[rule]]
roles = ["steward", "research"]
purposes = ["research"]
actions = ["tokenize"]
fields = ["identifier", "pseudonym"]
[[rule]]
roles = ["steward"]
purposes = ["reid"]
actions = ["detokenize"]
fields = ["identifier"]
[[rule]]
roles = ["steward"]
purposes = ["research", "reid"]
actions = ["encrypt", "decrypt"]
keyrings = ["default"]
"#;

#[test]
fn round_trip_as_a_permitted_role_and_denial_logged() {
    let dir = tempfile::tempdir().expect("dir");
    let v = vault(&dir);
    v.set_policy(&Policy::from_toml(POLICY).expect("policy"))
        .expect("set");
    let schema = Schema::from_toml(
        r#"
default = "keep"
[[rule]]
path = "Resource.id"
action = "reference"
[[rule]]
path = "nodesByType('Reference').reference"
action = "reference"
[[rule]]
path = "Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn').value"
action = "tokenize"
field = "identifier"
[[rule]]
path = "Patient.identifier.value"
action = "redact"
[[rule]]
path = "Patient.name"
action = "encrypt"
[[rule]]
path = "Patient.birthDate"
action = "dateShift"
offset_days = -40
"#,
    )
    .expect("schema");
    let original = json!({"resourceType": "Patient", "id": "patient-0009",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "900-33-1234"},
                       {"system": "http://other.example", "value": "XOTHER-0001"}],
        "name": [{"family": "Quistcanary", "given": ["Adacanary", "Lovecanary"]}],
        "birthDate": "1971-02-03", "gender": "female"});
    let steward = v.session(Caller::new("steward", "research"));
    let mut doc = original.clone();
    steward.deidentify(&schema, &mut doc).expect("deid");
    let text = doc.to_string();
    for secret in [
        "900-33-1234",
        "XOTHER-0001",
        "Quistcanary",
        "Adacanary",
        "Lovecanary",
        "1971-02-03",
        "patient-0009",
    ] {
        assert!(!text.contains(secret), "{secret} survived");
    }
    assert_eq!(doc["birthDate"], "1970-12-25");
    assert!(
        doc["name"][0]["family"]
            .as_str()
            .expect("env")
            .starts_with("pv1:")
    );
    assert_eq!(doc["identifier"].as_array().expect("ids").len(), 2);
    assert!(doc["identifier"][1].get("value").is_none());

    // The analyst may not re-identify: denied and logged.
    let analyst = v.session(Caller::new("analyst", "reid"));
    let mut copy = doc.clone();
    assert!(matches!(
        analyst.reidentify(&schema, &mut copy, View::Plaintext),
        Err(Error::AccessDenied { .. })
    ));
    assert!(copy.is_null());
    let denied = v
        .audit_entries(0, Some("analyst"), false)
        .expect("audit")
        .into_iter()
        .filter(|e| e.outcome == Outcome::Denied)
        .count();
    assert!(denied >= 1);

    // The steward re-identifies: the reversible elements come back exactly.
    let reid = v.session(Caller::new("steward", "reid"));
    let mut back = doc.clone();
    reid.reidentify(&schema, &mut back, View::Plaintext)
        .expect("reid");
    assert_eq!(back["identifier"][0]["value"], "900-33-1234");
    assert_eq!(back["name"], original["name"]);
    assert_eq!(back["birthDate"], "1971-02-03");
    assert_eq!(back["id"], doc["id"]); // references are one-way
    // A masked view shows masked identifiers and leaves encrypted elements encrypted.
    let mut masked = doc.clone();
    reid.reidentify(&schema, &mut masked, View::Masked)
        .expect("masked");
    assert_eq!(masked["identifier"][0]["value"], "***-**-1234");
    assert_eq!(masked["name"], doc["name"]);
    assert!(v.audit_verify().expect("verify").ok);
}

#[test]
fn encrypted_elements_are_bound_to_resource_and_path() {
    let dir = tempfile::tempdir().expect("dir");
    let v = vault(&dir);
    let schema = Schema::from_toml(
        "default = \"keep\"\nfree_text = \"rules\"\n[[rule]]\npath = \"Observation.note.text\"\naction = \"encrypt\"\n",
    )
    .expect("schema");
    let owner = v.owner();
    let mut a = json!({"resourceType": "Observation", "id": "a", "note": [{"text": "first"}, {"text": "second"}]});
    let mut b = json!({"resourceType": "Observation", "id": "b", "note": [{"text": "third"}]});
    owner.deidentify(&schema, &mut a).expect("a");
    owner.deidentify(&schema, &mut b).expect("b");
    // Swapping two elements, or moving one to another resource, fails authentication.
    let mut swapped = a.clone();
    swapped["note"][0]["text"] = a["note"][1]["text"].clone();
    assert!(matches!(
        owner.reidentify(&schema, &mut swapped, View::Plaintext),
        Err(Error::AuthenticationFailed)
    ));
    let mut moved = b.clone();
    moved["note"][0]["text"] = a["note"][0]["text"].clone();
    assert!(matches!(
        owner.reidentify(&schema, &mut moved, View::Plaintext),
        Err(Error::AuthenticationFailed)
    ));
    owner
        .reidentify(&schema, &mut a, View::Plaintext)
        .expect("reid");
    assert_eq!(a["note"][1]["text"], "second");
}

#[test]
fn malformed_lines_are_named_by_number_never_echoed() {
    let dir = tempfile::tempdir().expect("dir");
    let v = vault(&dir);
    let schema = Schema::preset("safe-harbor").expect("preset");
    let input = concat!(
        "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n",
        "\n",
        "{\"resourceType\":\"Patient\",\"id\":\"SECRET-900-12\n",
        "[\"SECRET-900-13\"]\n",
        "{\"resourceType\":\"Patient\",\"id\":\"b\",\"x\":\"\\u0000phivault-deid-pending\\u0000\"}\n",
        "{\"resourceType\":\"Patient\",\"id\":\"c\"}\n",
    );
    let owner = v.owner();
    let mut out = Vec::new();
    let e = owner
        .deidentify_ndjson(
            &schema,
            input.as_bytes(),
            &mut out,
            &NdjsonOptions::default(),
            &mut |_| {},
        )
        .expect_err("fails");
    assert!(matches!(e, Error::Ndjson { line: 3, .. }));
    assert!(!e.to_string().contains("SECRET"));
    let mut out = Vec::new();
    let r = owner
        .deidentify_ndjson(
            &schema,
            input.as_bytes(),
            &mut out,
            &NdjsonOptions::default().errors(OnError::Skip),
            &mut |_| {},
        )
        .expect("skips");
    assert_eq!(r.bad_line_numbers, vec![3, 4, 5]);
    assert_eq!(String::from_utf8(out).expect("utf8").lines().count(), 2);
    // A single document: typed errors, the document nulled.
    let mut deep = json!({"resourceType": "Patient"});
    let mut cur = &mut deep;
    for _ in 0..200 {
        cur["extension"] = json!({});
        cur = &mut cur["extension"];
    }
    assert!(matches!(
        owner.deidentify(&schema, &mut deep),
        Err(Error::InvalidInput { .. })
    ));
    assert!(deep.is_null());
}

#[test]
fn bundles_keep_links_and_json_paths_work() {
    let dir = tempfile::tempdir().expect("dir");
    let v = vault(&dir);
    let schema = Schema::preset("safe-harbor").expect("preset");
    let owner = v.owner();
    let mut bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6f0c6a36-6c2e-4c43-9d6b-2a8f2b7a8f11",
         "resource": {"resourceType": "Patient", "name": [{"family": "Bundlecanary"}], "birthDate": "2001-01-01"},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:0b5f7c1e-2d55-4d7b-8f0e-3a1f8c9d2e44",
         "resource": {"resourceType": "Observation", "status": "final",
                      "subject": {"reference": "urn:uuid:6f0c6a36-6c2e-4c43-9d6b-2a8f2b7a8f11"},
                      "effectiveDateTime": "2020-01-01"},
         "request": {"method": "POST", "url": "Observation"}}]});
    owner.deidentify(&schema, &mut bundle).expect("bundle");
    let text = bundle.to_string();
    assert!(!text.contains("Bundlecanary") && !text.contains("6f0c6a36"));
    let full = bundle["entry"][0]["fullUrl"].as_str().expect("url");
    assert!(full.starts_with("urn:uuid:"));
    assert_eq!(bundle["entry"][1]["resource"]["subject"]["reference"], full);
    assert_eq!(bundle["entry"][0]["request"]["url"], "Patient");
    assert_eq!(bundle["entry"][1]["resource"]["effectiveDateTime"], "2020");

    let json_schema = Schema::from_toml(
        "default = \"keep\"\n[[rule]]\npath = \"$.patient.ssn\"\naction = \"tokenize\"\nfield = \"ssn\"\n[[rule]]\npath = \"$.patient.names[*].first\"\naction = \"redact\"\n",
    )
    .expect("schema");
    let mut doc = json!({"patient": {"ssn": "900-12-3456", "names": [{"first": "Ada", "last": "Q"}]}, "visit": 3});
    owner.deidentify(&json_schema, &mut doc).expect("json");
    assert_ne!(doc["patient"]["ssn"], "900-12-3456");
    assert_eq!(doc["patient"]["names"][0], json!({"last": "Q"}));
    assert_eq!(doc["visit"], 3);
    owner
        .reidentify(&json_schema, &mut doc, View::Plaintext)
        .expect("reid");
    assert_eq!(doc["patient"]["ssn"], "900-12-3456");
}

#[test]
fn a_batch_is_one_decision_per_field() {
    let dir = tempfile::tempdir().expect("dir");
    let v = vault(&dir);
    let (docs, _) = generate(30);
    let input: String = docs.iter().map(|d| format!("{d}\n")).collect();
    let schema = Schema::preset("safe-harbor").expect("preset");
    let before = v.audit_entries(0, None, false).expect("audit").len();
    let mut out = Vec::new();
    v.owner()
        .deidentify_ndjson(
            &schema,
            input.as_bytes(),
            &mut out,
            &NdjsonOptions::default(),
            &mut |_| {},
        )
        .expect("deid");
    let entries = v.audit_entries(0, None, false).expect("audit");
    let new: Vec<_> = entries[before..]
        .iter()
        .filter(|e| e.principal == "owner")
        .collect();
    // One batch: identifiers (tokenize) and references (pseudonym): two decisions, plus the
    // tokens keyring's creation on first use.
    assert!(
        (2..=3).contains(&new.len()),
        "{} entries for one batch",
        new.len()
    );
}

#[test]
fn schemas_are_stored_sealed_by_name() {
    let dir = tempfile::tempdir().expect("dir");
    let v = vault(&dir);
    let text = "default = \"redact\"\n[[rule]]\npath = \"Patient.gender\"\naction = \"keep\"\n";
    v.define_schema("study-7", text).expect("define");
    assert_eq!(
        v.schema("study-7").expect("get"),
        Schema::parse(text).expect("parse")
    );
    assert_eq!(
        v.schemas().expect("list"),
        vec!["safe-harbor", "shifted-dates", "study-7"]
    );
    assert!(v.schema("safe-harbor").is_ok());
    assert!(matches!(
        v.schema("study-8"),
        Err(Error::UnknownSchema { .. })
    ));
    assert!(matches!(
        v.define_schema("safe-harbor", text),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        v.define_schema("bad", "[[rule]]\npath = \"Patient\"\naction = \"nope\"\n"),
        Err(Error::DeidSchema { rule: 1, .. })
    ));
    let mut doc =
        json!({"resourceType": "Patient", "id": "x", "gender": "male", "birthDate": "2000-01-01"});
    v.owner()
        .deidentify(&v.schema("study-7").expect("get"), &mut doc)
        .expect("deid");
    assert_eq!(doc, json!({"resourceType": "Patient", "gender": "male"}));
    assert!(v.verify().expect("verify").ok, "stored schemas verify");
}

/// Regressions from the review of the first version: one decision per field and batch,
/// pseudonyms left alone by re-identification, encryption bound to the id the output holds
/// and to the path within its own resource, id-less Bundle patients, markers hidden in ages,
/// and free-text names in plain JSON.
#[test]
fn review_regressions() {
    let dir = tempfile::tempdir().expect("dir");
    let v = vault(&dir);
    let owner = v.owner();

    // One tokenize decision per field for a batch, however many rules use the field.
    let (docs, _) = generate(20);
    let input: String = docs.iter().map(|d| format!("{d}\n")).collect();
    let sh = Schema::preset("safe-harbor").expect("preset");
    let before = v.audit_entries(0, None, false).expect("audit").len();
    owner
        .deidentify_ndjson(
            &sh,
            input.as_bytes(),
            Vec::new(),
            &NdjsonOptions::default(),
            &mut |_| {},
        )
        .expect("deid");
    let tokenize: Vec<String> = v.audit_entries(0, None, false).expect("audit")[before..]
        .iter()
        .filter(|e| e.action == phivault::audit::Action::Tokenize)
        .map(|e| e.target.name.clone())
        .collect();
    assert_eq!(tokenize.len(), 2, "{tokenize:?}");
    assert!(tokenize.contains(&"identifier".into()) && tokenize.contains(&"pseudonym".into()));

    // Encryption in a resource whose id is removed, and inside a Bundle (path from the
    // resource): re-identification opens both, after the entries are reordered.
    let enc = Schema::from_toml(
        "default = \"keep\"\nfree_text = \"rules\"\n[[rule]]\npath = \"Resource.id\"\naction = \"redact\"\n[[rule]]\npath = \"Observation.note.text\"\naction = \"encrypt\"\n[[rule]]\npath = \"$.x\"\naction = \"tokenize\"\nfield = \"pseudonym\"\n",
    )
    .expect("schema");
    let mut bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Observation", "id": "o1", "note": [{"text": "one"}]}},
        {"resource": {"resourceType": "Observation", "id": "o2", "note": [{"text": "two"}]}}]});
    owner.deidentify(&enc, &mut bundle).expect("deid");
    assert!(bundle["entry"][0]["resource"].get("id").is_none());
    let entries = bundle["entry"].as_array_mut().expect("entries");
    entries.reverse();
    owner
        .reidentify(&enc, &mut bundle, View::Plaintext)
        .expect("reid");
    assert_eq!(bundle["entry"][0]["resource"]["note"][0]["text"], "two");
    // A pseudonym-kind field under tokenize: one-way, left as it is by re-identification.
    let mut doc = json!({"x": "value-1"});
    owner.deidentify(&enc, &mut doc).expect("deid");
    let p = doc["x"].clone();
    owner
        .reidentify(&enc, &mut doc, View::Plaintext)
        .expect("reid");
    assert_eq!(doc["x"], p);

    // A Bundle Patient without an id: its dates and its Observation's shift together.
    let sd = Schema::preset("shifted-dates").expect("preset");
    let mut b = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6f0c6a36-6c2e-4c43-9d6b-2a8f2b7a8f11",
         "resource": {"resourceType": "Patient", "birthDate": "2000-01-01"}},
        {"resource": {"resourceType": "Observation", "status": "final",
                      "subject": {"reference": "urn:uuid:6f0c6a36-6c2e-4c43-9d6b-2a8f2b7a8f11"},
                      "effectiveDateTime": "2000-01-11"}}]});
    owner.deidentify(&sd, &mut b).expect("deid");
    let born = b["entry"][0]["resource"]["birthDate"]
        .as_str()
        .expect("born");
    let seen = b["entry"][1]["resource"]["effectiveDateTime"]
        .as_str()
        .expect("seen");
    assert_eq!(chrono_days(seen) - chrono_days(born), 10);

    // The reserved marker hidden in an Age: that line is malformed, the run goes on.
    let lines = concat!(
        "{\"resourceType\":\"Condition\",\"onsetAge\":{\"value\":3,\"unit\":\"\\u0000phivault-deid-pending\\u0000\"}}\n",
        "{\"resourceType\":\"Condition\",\"onsetAge\":{\"value\":95,\"code\":\"a\"}}\n",
    );
    let mut out = Vec::new();
    let r = owner
        .deidentify_ndjson(
            &sh,
            lines.as_bytes(),
            &mut out,
            &NdjsonOptions::default().errors(OnError::Skip),
            &mut |_| {},
        )
        .expect("skips");
    assert_eq!(r.bad_line_numbers, vec![1]);
    assert!(String::from_utf8(out).expect("utf8").contains("\">=\""));

    // Plain JSON: keys that are free text in FHIR are data here.
    let keep = Schema::from_toml("default = \"keep\"\n").expect("schema");
    let mut plain = json!({"note": "kept", "comment": "kept too"});
    owner.deidentify(&keep, &mut plain).expect("deid");
    assert_eq!(plain, json!({"note": "kept", "comment": "kept too"}));

    // Timing bounds are typed (a Period): their dates keep the year only.
    let mut mr = json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"start": "2020-05-06"}}}}]});
    owner.deidentify(&sh, &mut mr).expect("deid");
    assert_eq!(
        mr["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"],
        "2020"
    );
}

/// Encrypted elements in arrays are bound to their place in the output (items removed before
/// them do not count), and re-identification counts the tokens it cannot resolve.
#[test]
fn array_places_and_unresolved_tokens() {
    let dir = tempfile::tempdir().expect("dir");
    let v = vault(&dir);
    let owner = v.owner();
    let schema = Schema::from_toml(
        "default = \"redact\"\nfree_text = \"rules\"\n[[rule]]\npath = \"Observation.status\"\naction = \"keep\"\n[[rule]]\npath = \"Observation.note.text\"\naction = \"encrypt\"\n[[rule]]\npath = \"Observation.identifier.value\"\naction = \"tokenize\"\n[[rule]]\npath = \"Observation.effectiveDateTime\"\naction = \"dateShift\"\noffset_days = 5\n",
    )
    .expect("schema");
    let mut doc = json!({"resourceType": "Observation", "status": "final",
        "note": [{"time": "2020-01-01"}, {"text": "second"}],
        "identifier": [{"value": "A-1"}], "effectiveDateTime": "2020-01-01"});
    owner.deidentify(&schema, &mut doc).expect("deid");
    assert_eq!(doc["note"].as_array().map(Vec::len), Some(1));
    let mut back = doc.clone();
    owner
        .reidentify(&schema, &mut back, View::Plaintext)
        .expect("reid");
    assert_eq!(back["note"][0]["text"], "second");
    assert_eq!(back["effectiveDateTime"], "2020-01-01");
    // An unknown token, and a date that is not one: left as they are, counted.
    doc["identifier"][0]["value"] = json!("tok_AAAAAAAAAAAAAAAAAAAAAA");
    doc["effectiveDateTime"] = json!("2020");
    let r = owner
        .reidentify(&schema, &mut doc, View::Plaintext)
        .expect("reid");
    assert_eq!(doc["identifier"][0]["value"], "tok_AAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(doc["effectiveDateTime"], "2020");
    assert_eq!(r.rules.iter().map(|c| c.failed).sum::<u64>(), 2);
}
