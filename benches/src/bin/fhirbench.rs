//! FHIR de-identification throughput (issue 20): Bulk NDJSON of generated R4 resources through
//! the safe-harbor preset, on one thread and on the vault's pool, against `serde_json` parse +
//! serialize of the same lines in the same run (the floor any JSON rewriter pays). Prints one
//! JSON object: resources per second of each, and the ratios.
//!
//!     fhirbench PATIENTS ROUNDS
//!
//! The first pass over a fresh vault makes every vaulted identifier token (store writes); the
//! best of `ROUNDS` later passes finds them in the index (the steady state of repeated exports).

use phivault::deid::{NdjsonOptions, Schema};
// The bench crate's global allocator (mimalloc, as the CLI and the Python module use).
use phivault::root::KeyFile;
use phivault::{Key32, Vault, VaultOptions};
use phivault_benches as _;
use serde_json::json;
use std::time::Instant;

/// `n` patients, each with an encounter, an observation, a condition, a medication request and
/// a diagnostic report (6 resources), as NDJSON.
fn export(n: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut count = 0;
    let mut push = |v: serde_json::Value| {
        out.extend_from_slice(v.to_string().as_bytes());
        out.push(b'\n');
        count += 1;
    };
    for i in 0..n {
        let pid = format!("pat{i:07}");
        push(json!({"resourceType": "Patient", "id": pid,
            "meta": {"lastUpdated": "2024-05-01T10:00:00Z"},
            "text": {"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">Patient {i}</div>")},
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                           "valueAddress": {"city": "Springfield", "state": "MA"}}],
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": format!("900-{:02}-{:04}", i % 100, i % 10_000)},
                           {"system": "http://hospital.example/mrn", "value": format!("MRN{i:07}"),
                            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}}],
            "active": true,
            "name": [{"use": "official", "family": format!("Family{i}"), "given": [format!("Given{i}")]}],
            "telecom": [{"system": "phone", "value": format!("555-{:04}-{:04}", i % 10_000, (i * 7) % 10_000)}],
            "gender": (["female", "male"][i % 2]), "birthDate": format!("{}-0{}-1{}", 1940 + i % 60, 1 + i % 9, i % 10),
            "address": [{"line": [format!("{i} Main Street")], "city": "Springfield", "state": "MA", "postalCode": format!("{:05}", (i * 37) % 100_000)}],
            "managingOrganization": {"reference": "Organization/org-1"}}));
        push(
            json!({"resourceType": "Encounter", "id": format!("enc{i:07}"), "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/{pid}")},
            "period": {"start": "2023-03-10T09:00:00Z", "end": "2023-03-12T17:30:00Z"},
            "serviceProvider": {"reference": "Organization/org-1"}}),
        );
        push(
            json!({"resourceType": "Observation", "id": format!("obs{i:07}"), "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
            "subject": {"reference": format!("Patient/{pid}")}, "encounter": {"reference": format!("Encounter/enc{i:07}")},
            "effectiveDateTime": "2023-03-11T08:30:00Z", "issued": "2023-03-11T12:00:00Z",
            "valueQuantity": {"value": 7.1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
            "note": [{"text": format!("Note {i}")}]}),
        );
        push(
            json!({"resourceType": "Condition", "id": format!("cond{i:07}"),
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
            "subject": {"reference": format!("Patient/{pid}")},
            "onsetAge": {"value": 40 + i % 60, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"},
            "recordedDate": "2023-03-11"}),
        );
        push(
            json!({"resourceType": "MedicationRequest", "id": format!("mr{i:07}"), "status": "active", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975"}]},
            "subject": {"reference": format!("Patient/{pid}")}, "authoredOn": "2023-03-12",
            "dosageInstruction": [{"text": "1 tablet twice a day", "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}}]}),
        );
        push(
            json!({"resourceType": "DiagnosticReport", "id": format!("dr{i:07}"), "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "subject": {"reference": format!("Patient/{pid}")}, "result": [{"reference": format!("Observation/obs{i:07}")}],
            "effectiveDateTime": "2023-03-11", "conclusion": "Within range"}),
        );
    }
    (out, count)
}

fn vault(dir: &std::path::Path, threads: usize) -> Vault {
    let root = KeyFile::from_key(Key32::random().expect("randomness"));
    Vault::create_with(dir, &root, VaultOptions::new().threads(threads)).expect("create vault")
}

/// Resources per second of de-identifying `data` once.
fn deid_once(v: &Vault, schema: &Schema, data: &[u8], count: usize) -> f64 {
    let t = Instant::now();
    let r = v
        .owner()
        .deidentify_ndjson(
            schema,
            data,
            std::io::sink(),
            &NdjsonOptions::default(),
            &mut |_| {},
        )
        .expect("deid");
    assert_eq!(r.documents as usize, count);
    count as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("PATIENTS and ROUNDS are numbers"))
        .collect();
    let patients = args.first().copied().unwrap_or(20_000);
    let rounds = args.get(1).copied().unwrap_or(3);
    let (data, count) = export(patients);
    let schema = Schema::preset("safe-harbor").expect("preset");

    // The reference: serde_json parse + serialize of each line, one thread.
    let mut reference = 0f64;
    for _ in 0..rounds {
        let t = Instant::now();
        let mut bytes = 0usize;
        for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).expect("json");
            bytes += serde_json::to_vec(&v).expect("write").len();
        }
        assert!(bytes > 0);
        reference = reference.max(count as f64 / t.elapsed().as_secs_f64());
    }

    let dir = tempfile::tempdir().expect("temporary directory");
    let mut results = serde_json::Map::new();
    // FHIRBENCH_ONLY=one_thread|pool runs one configuration (for a profiler).
    let only = std::env::var("FHIRBENCH_ONLY").ok();
    for (name, threads) in [("one_thread", 1usize), ("pool", 0)] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let v = vault(&dir.path().join(name), threads);
        let first = deid_once(&v, &schema, &data, count);
        let mut steady = 0f64;
        for _ in 0..rounds {
            steady = steady.max(deid_once(&v, &schema, &data, count));
        }
        results.insert(
            name.into(),
            json!({"first_pass_per_s": first.round(), "steady_per_s": steady.round(),
                   "steady_ratio_to_serde": (steady / reference * 1000.0).round() / 1000.0,
                   "first_ratio_to_serde": (first / reference * 1000.0).round() / 1000.0}),
        );
    }
    // The vault's share: the pseudonyms and identifier tokens of one pass, as batch calls.
    {
        let v = vault(&dir.path().join("ops"), 1);
        let refs: Vec<String> = (0..count * 13 / 6)
            .map(|i| format!("Patient/pat{i:07}"))
            .collect();
        let ids: Vec<String> = (0..count / 3).map(|i| format!("MRN{i:07}")).collect();
        let owner = v.owner();
        owner.tokenize_rows("identifier", &ids).expect("first");
        let t = Instant::now();
        owner.tokenize_rows("pseudonym", &refs).expect("pseudonyms");
        let p = t.elapsed().as_secs_f64();
        let t = Instant::now();
        owner
            .tokenize_rows("identifier", &ids)
            .expect("identifiers");
        let i = t.elapsed().as_secs_f64();
        results.insert(
            "vault_ops_one_thread".into(),
            json!({"pseudonyms": refs.len(), "pseudonym_s": p, "identifiers": ids.len(),
                   "identifier_lookup_s": i,
                   "us_per_resource": ((p + i) / count as f64 * 1e7).round() / 10.0}),
        );
    }
    // The pipeline without the vault: the same walk under a schema that keeps everything.
    let keep = Schema::parse("default = \"keep\"\nfree_text = \"rules\"\n").expect("schema");
    let v = vault(&dir.path().join("keep"), 1);
    let mut keep_all = 0f64;
    for _ in 0..rounds {
        keep_all = keep_all.max(deid_once(&v, &keep, &data, count));
    }
    results.insert(
        "keep_all_one_thread".into(),
        json!({"steady_per_s": keep_all.round(),
               "steady_ratio_to_serde": (keep_all / reference * 1000.0).round() / 1000.0}),
    );
    println!(
        "{}",
        json!({"patients": patients, "resources": count, "bytes": data.len(),
               "threads_available": std::thread::available_parallelism().map_or(1, |n| n.get()),
               "serde_json_parse_serialize_per_s": reference.round(), "deid": results})
    );
}
