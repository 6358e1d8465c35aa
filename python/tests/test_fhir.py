"""FHIR de-identification (docs/fhir.md): a generated 10k-patient Bulk export through the
safe-harbor preset — canary scan, references, FHIR validity (fhir.resources, R4B models) —
per-patient date shifts, a permitted re-identification and a denied one, and the dict API."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest

import phivault
from phivault.exceptions import AccessDenied, InvalidInput

fhir = pytest.importorskip("fhir.resources.R4B", reason="fhir.resources is installed by scripts/test-python.sh")

PATIENTS = 10_000
SSN = "http://hl7.org/fhir/sid/us-ssn"
MRN = "http://hospital.example/mrn"


def generate(n: int) -> tuple[list[dict], list[str]]:
    """R4 resources of n patients (extensions, contained resources, references between them)
    and the canaries: every identifier, name, phone, address line, birth date, free text."""
    res: list[dict] = [
        {"resourceType": "Organization", "id": "org-1", "active": True, "name": "Canaryville General",
         "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
         "telecom": [{"system": "phone", "value": "555-0000-0001"}],
         "address": [{"line": ["1 Canary Plaza"], "city": "Canaryville", "state": "MA", "postalCode": "02139"}]},
        {"resourceType": "Practitioner", "id": "prac-1", "active": True,
         "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "9876543210"}],
         "name": [{"family": "Drcanary", "given": ["Greta"]}], "gender": "female",
         "qualification": [{"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0360", "code": "MD"}]}}]},
    ]
    canaries = ["1234567893", "9876543210", "Canaryville General", "1 Canary Plaza", "555-0000-0001", "Drcanary"]
    for i in range(n):
        pid, ssn, mrn = f"pat{i:05d}", f"900-{i % 100:02d}-{i:04d}", f"MRNQ{i:06d}"
        family, given = f"Famcanary{i}", f"Givcanary{i}"
        phone, line = f"555-{i % 10000:04d}-{(i * 7) % 10000:04d}", f"{i} Canary Street"
        birth = date(1935 + i % 70, 1 + i % 12, 1 + i % 28).isoformat()
        note = f"Notecanary{i}: {given} {family} called from {phone}"
        canaries += [pid, ssn, mrn, family, given, phone, line, birth, note,
                     f"Birthcanary{i}", f"Kincanary{i}", f"mailcanary{i}@example.org", f"Insurecanary{i}"]
        res.append({
            "resourceType": "Patient", "id": pid,
            "meta": {"lastUpdated": "2024-05-01T10:00:00Z"},
            "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{family}</div>'},
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                           "valueAddress": {"city": f"Birthcanary{i}", "state": "MA"}}],
            "identifier": [{"system": SSN, "value": ssn},
                           {"system": MRN, "value": mrn,
                            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}}],
            "active": True,
            "name": [{"use": "official", "family": family, "given": [given]}],
            "telecom": [{"system": "phone", "value": phone},
                        {"system": "email", "value": f"mailcanary{i}@example.org"}],
            "gender": ["female", "male"][i % 2], "birthDate": birth,
            "address": [{"line": [line], "city": "Springfield", "state": "MA",
                         "postalCode": f"{(i * 37) % 100000:05d}", "country": "US"}],
            "contact": [{"relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}],
                         "name": {"family": f"Kincanary{i}"}}],
            "contained": [{"resourceType": "Organization", "id": "payer", "name": f"Insurecanary{i}"}],
            "managingOrganization": {"reference": "Organization/org-1", "display": "Canaryville General"},
            "generalPractitioner": [{"reference": "Practitioner/prac-1"}],
        })
        enc, obs = f"enc{i:05d}", f"obs{i:05d}"
        res.append({"resourceType": "Encounter", "id": enc, "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                    "subject": {"reference": f"Patient/{pid}", "display": f"{given} {family}"},
                    "participant": [{"individual": {"reference": "Practitioner/prac-1"}}],
                    "period": {"start": f"2023-{1 + i % 12:02d}-10T09:00:00Z", "end": f"2023-{1 + i % 12:02d}-12T17:30:00Z"},
                    "serviceProvider": {"reference": "Organization/org-1"}})
        res.append({"resourceType": "Observation", "id": obs, "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                    "subject": {"reference": f"Patient/{pid}"}, "encounter": {"reference": f"Encounter/{enc}"},
                    "effectiveDateTime": f"2023-{1 + i % 12:02d}-11T08:30:00Z",
                    "issued": f"2023-{1 + i % 12:02d}-11T12:00:00Z",
                    "valueQuantity": {"value": 5 + (i % 40) / 10, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
                    "note": [{"text": note}]})
        res.append({"resourceType": "Condition", "id": f"cond{i:05d}",
                    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "onsetAge": {"value": 40 + i % 60, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"},
                    "recordedDate": f"2023-{1 + i % 12:02d}-11"})
        res.append({"resourceType": "MedicationRequest", "id": f"mr{i:05d}", "status": "active", "intent": "order",
                    "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975"}]},
                    "subject": {"reference": f"Patient/{pid}"}, "authoredOn": f"2023-{1 + i % 12:02d}-12",
                    "requester": {"reference": "Practitioner/prac-1"},
                    "dosageInstruction": [{"text": f"Dosecanary{i}", "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}}]})
        res.append({"resourceType": "DiagnosticReport", "id": f"dr{i:05d}", "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                    "subject": {"reference": f"Patient/{pid}"}, "result": [{"reference": f"Observation/{obs}"}],
                    "effectiveDateTime": f"2023-{1 + i % 12:02d}-11", "conclusion": f"Conccanary{i}"})
        canaries += [f"Dosecanary{i}", f"Conccanary{i}"]
    return res, canaries


# Families that every canary belongs to: a scan that finds none of them finds no canary.
FAMILIES = [
    re.compile(r"canary", re.I),
    re.compile(r"900-\d\d-\d{4}"),
    re.compile(r"MRNQ\d{6}"),
    re.compile(r"555-\d{4}-\d{4}"),
    re.compile(r"\b(?:pat|enc|obs|cond|mr|dr)\d{5}\b"),
    re.compile(r"\d{4}-\d{2}-\d{2}"),
    re.compile(r"1234567893|9876543210"),
]


def validate(doc: dict) -> None:
    fhir.get_fhir_model_class(doc["resourceType"]).model_validate(doc)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict], list[str]]:
    d = tmp_path_factory.mktemp("fhir")
    docs, canaries = generate(PATIENTS)
    src = d / "export.ndjson"
    src.write_text("".join(json.dumps(r) + "\n" for r in docs))
    return src, docs, canaries


def test_generated_input_is_valid_r4(export) -> None:
    _, docs, canaries = export
    for doc in docs[:2 + 6 * 300]:
        validate(doc)
    assert all(any(f.search(c) for f in FAMILIES) for c in canaries)


def test_safe_harbor_export_has_no_canary_and_valid_links(export, tmp_path: Path) -> None:
    src, docs, _ = export
    v = phivault.Vault.create(tmp_path / "v", key=b"\x11" * 32)
    out = tmp_path / "deid.ndjson"
    report = v.deidentify_file(src, out, "safe-harbor")
    assert report["documents"] == len(docs) and report["bad_lines"] == 0
    text = out.read_text()
    for family in FAMILIES:
        assert family.search(text) is None, f"canary family {family.pattern} found"
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == len(docs)
    ids = {f'{r["resourceType"]}/{r["id"]}' for r in rows}
    refs = []

    def walk(x):
        if isinstance(x, dict):
            for k, val in x.items():
                if k == "reference" and isinstance(val, str):
                    refs.append(val)
                walk(val)
        elif isinstance(x, list):
            for val in x:
                walk(val)

    for r in rows:
        walk(r)
    assert len(refs) > 6 * PATIENTS
    assert all(ref in ids for ref in refs), "a reference does not resolve"
    # Every output resource parses as FHIR.
    for r in rows:
        validate(r)
    # Identifiers are vaulted tokens, consistent across runs (joins work).
    pat = rows[2]
    assert pat["identifier"][0]["value"].startswith("tok_")
    again = tmp_path / "again.ndjson"
    v.deidentify_file(src, again, "safe-harbor")
    assert again.read_text() == text
    # The report has counts per rule, never a value.
    rules = {r["path"]: r for r in report["rules"]}
    assert rules["nodesByType('HumanName')"]["elements"] >= PATIENTS
    assert "canary" not in json.dumps(report).lower()
    v.close()


def test_shifted_dates_keep_each_patients_intervals(export, tmp_path: Path) -> None:
    src, docs, _ = export
    v = phivault.Vault.create(tmp_path / "v", key=b"\x12" * 32)
    out = tmp_path / "shifted.ndjson"
    v.deidentify_file(src, out, "shifted-dates")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    days = lambda s: date.fromisoformat(s[:10]).toordinal()  # noqa: E731
    by_patient_in: dict[str, list[int]] = defaultdict(list)
    by_patient_out: dict[str, list[int]] = defaultdict(list)
    for a, b in zip(docs, rows):
        key = a["id"] if a["resourceType"] == "Patient" else a.get("subject", {}).get("reference", "")[8:]
        if not key:
            continue
        for field in ("birthDate", "effectiveDateTime", "recordedDate", "authoredOn"):
            if field in a:
                by_patient_in[key].append(days(a[field]))
                by_patient_out[key].append(days(b[field]))
        if "period" in a:
            by_patient_in[key] += [days(a["period"]["start"]), days(a["period"]["end"])]
            by_patient_out[key] += [days(b["period"]["start"]), days(b["period"]["end"])]
    shifts = set()
    for pid, ins in by_patient_in.items():
        outs = by_patient_out[pid]
        offsets = {o - i for i, o in zip(ins, outs)}
        assert len(offsets) == 1, "one offset per patient"
        (off,) = offsets
        assert off != 0 and -365 <= off <= 365
        shifts.add(off)
    assert len(shifts) > 100
    for r in rows[:2 + 6 * 300]:
        validate(r)
    v.close()


POLICY = """
[[principal]]
name = "analyst"
roles = ["research"]
[[principal]]
name = "steward"
roles = ["steward"]
[[rule]]
roles = ["research", "steward"]
purposes = ["research"]
actions = ["tokenize"]
fields = ["identifier", "pseudonym"]
[[rule]]
roles = ["steward"]
purposes = ["reid"]
actions = ["detokenize"]
fields = ["identifier"]
"""


def test_round_trip_as_a_permitted_role_and_a_denial(export, tmp_path: Path) -> None:
    src, docs, _ = export
    v = phivault.Vault.create(tmp_path / "v", key=b"\x13" * 32)
    v.set_policy(POLICY)
    analyst = v.session("analyst", "research")
    out = tmp_path / "deid.ndjson"
    analyst.deidentify_file(src, out, "safe-harbor")
    # The analyst may not re-identify: denied, logged, no output file.
    with pytest.raises(AccessDenied):
        v.session("analyst", "reid").reidentify_file(out, tmp_path / "no.ndjson", "safe-harbor")
    assert not (tmp_path / "no.ndjson").exists()
    denied = [e for e in v.audit_entries(principal="analyst") if e["outcome"] == "denied"]
    assert denied
    # The steward gets every identifier back exactly.
    back = tmp_path / "back.ndjson"
    v.session("steward", "reid").reidentify_file(out, back, "safe-harbor")
    restored = [json.loads(line) for line in back.read_text().splitlines()]
    for a, b in zip(docs, restored):
        if a["resourceType"] == "Patient":
            assert [x["value"] for x in a["identifier"]] == [x["value"] for x in b["identifier"]]
    assert v.audit_verify()["ok"]
    v.close()


def test_dict_api_bundle_schema_text_and_errors(vault: phivault.Vault) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:6f0c6a36-6c2e-4c43-9d6b-2a8f2b7a8f11",
         "resource": {"resourceType": "Patient", "name": [{"family": "Dictcanary"}], "birthDate": "1990-01-02"}},
        {"fullUrl": "urn:uuid:0b5f7c1e-2d55-4d7b-8f0e-3a1f8c9d2e44",
         "resource": {"resourceType": "Observation", "status": "final", "code": {"coding": [{"code": "x"}]},
                      "subject": {"reference": "urn:uuid:6f0c6a36-6c2e-4c43-9d6b-2a8f2b7a8f11"}}}]}
    out = vault.deidentify(bundle)
    assert "Dictcanary" not in json.dumps(out)
    assert bundle["entry"][0]["resource"]["name"]  # the argument is not changed
    assert out["entry"][1]["resource"]["subject"]["reference"] == out["entry"][0]["fullUrl"]
    validate(out)
    schema = 'default = "keep"\n[[rule]]\npath = "$.mrn"\naction = "tokenize"\nfield = "mrn"\n'
    doc = vault.deidentify({"mrn": "MRN0012345", "visit": 2}, schema)
    assert doc["mrn"] != "MRN0012345" and doc["visit"] == 2
    assert vault.reidentify(doc, schema) == {"mrn": "MRN0012345", "visit": 2}
    vault.define_schema("mrn-only", schema)
    assert vault.schemas() == ["safe-harbor", "shifted-dates", "mrn-only"]
    assert vault.deidentify({"mrn": "MRN0012345"}, "mrn-only") == {"mrn": doc["mrn"]}
    with pytest.raises(InvalidInput, match="rule 1"):
        vault.define_schema("bad", '[[rule]]\npath = "Patient..x"\naction = "keep"\n')
    with pytest.raises(InvalidInput):
        vault.deidentify({"resourceType": "Patient", "x": float("nan")})
    with pytest.raises(InvalidInput):
        vault.deidentify({"resourceType": "Patient"}, "no-such-schema")
