//! De-identification of FHIR R4 resources, Bundles, Bulk Data NDJSON and other JSON documents
//! by a [`Schema`] of path rules — and re-identification of what was made reversible, by a
//! permitted role. Every vault operation runs through the [`Session`] (one policy decision and
//! audit entry per field and batch); docs/fhir.md is the guide.
//!
//! ```
//! use phivault::{Vault, root::KeyFile, Key32, tokens::View};
//! use phivault::deid::Schema;
//! let dir = tempfile::tempdir()?;
//! let vault = Vault::create(dir.path().join("v"), &KeyFile::from_key(Key32::random()?))?;
//! let schema = Schema::preset("safe-harbor").expect("preset");
//! let mut doc = serde_json::json!({
//!     "resourceType": "Patient", "id": "p1", "gender": "female",
//!     "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "900-12-3456"}],
//!     "name": [{"family": "Quist"}], "birthDate": "1970-04-12",
//! });
//! let owner = vault.owner();
//! let report = owner.deidentify(&schema, &mut doc)?;
//! assert!(doc.get("name").is_none());                              // redacted
//! assert_eq!(doc["birthDate"], "1970");                            // year only
//! assert!(doc["id"].as_str().expect("id").starts_with("psn-"));    // pseudonymized
//! assert!(report.elements() > 0);
//! owner.reidentify(&schema, &mut doc, View::Plaintext)?;
//! assert_eq!(doc["identifier"][0]["value"], "900-12-3456");        // re-identified
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Security notes
//! - Errors never contain a value of the document: they name the rule, the line or the kind
//!   of problem. A malformed NDJSON line is reported by its number.
//! - On an error, the document passed to [`Session::deidentify`] is set to `null`: a
//!   half-processed document is never mistaken for a de-identified one.
//! - No PHI detector is claimed: free text (narratives, notes, comments) is removed unless the
//!   schema says `free_text = "rules"`, and under `default = "keep"` an element no rule names
//!   stays as it is.

mod engine;
mod ndjson;
pub mod path;
pub mod schema;
mod stored;
mod types;

pub use engine::SECURITY_SYSTEM;
pub use ndjson::{NdjsonOptions, NdjsonProgress, OnError};
pub use schema::{Action, DefaultAction, Generalize, Partial, Rule, Schema};
pub(crate) use stored::{KEY_PREFIX as STORED_SCHEMA_PREFIX, SEAL_LABEL as STORED_SCHEMA_LABEL};

use crate::error::Result;
use crate::session::Session;
use crate::tokens::View;
use engine::{Compiled, Mode, Plan};
use serde_json::Value;

/// What one rule (or the default, or the free-text rule) did in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleCount {
    /// The rule's number (from 1); `None` for the default and for free text.
    pub rule: Option<usize>,
    /// The rule's path, `(default)` or `(free text)`.
    pub path: String,
    /// The action's name.
    pub action: String,
    /// Elements the rule decided.
    pub elements: u64,
    /// Of those, elements its action could not apply to (removed instead; or, when
    /// re-identifying, left as they were).
    pub failed: u64,
}

/// What a de-identification or re-identification did: counts, never values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeidReport {
    /// Documents written (NDJSON lines, or 1).
    pub documents: u64,
    /// Resources met, nested ones included.
    pub resources: u64,
    /// Per rule, in schema order, then free text, then the default.
    pub rules: Vec<RuleCount>,
    /// NDJSON lines skipped as malformed (`OnError::Skip`).
    pub bad_lines: u64,
    /// The first 100 of their line numbers.
    pub bad_line_numbers: Vec<u64>,
}

/// Most line numbers a report lists.
const MAX_LISTED_LINES: usize = 100;

impl DeidReport {
    fn new(schema: &Schema) -> DeidReport {
        let mut rules: Vec<RuleCount> = schema
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| RuleCount {
                rule: Some(i + 1),
                path: r.path_text.clone(),
                action: r.action.name().to_owned(),
                elements: 0,
                failed: 0,
            })
            .collect();
        rules.push(RuleCount {
            rule: None,
            path: "(free text)".into(),
            action: "redact".into(),
            elements: 0,
            failed: 0,
        });
        rules.push(RuleCount {
            rule: None,
            path: "(default)".into(),
            action: match schema.default {
                DefaultAction::Keep => "keep",
                DefaultAction::Redact => "redact",
            }
            .into(),
            elements: 0,
            failed: 0,
        });
        DeidReport {
            rules,
            ..DeidReport::default()
        }
    }

    fn add(&mut self, plan: &Plan, resources: usize) {
        self.documents += 1;
        self.resources += resources as u64;
        for ((r, n), f) in self.rules.iter_mut().zip(&plan.counts).zip(&plan.failed) {
            r.elements += n;
            r.failed += f;
        }
    }

    fn bad_line(&mut self, line: u64) {
        self.bad_lines += 1;
        if self.bad_line_numbers.len() < MAX_LISTED_LINES {
            self.bad_line_numbers.push(line);
        }
    }

    /// Elements decided, over all rules.
    pub fn elements(&self) -> u64 {
        self.rules.iter().map(|r| r.elements).sum()
    }

    /// The report as JSON (what `phivault fhir deid --report` writes).
    pub fn to_json(&self) -> String {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                serde_json::json!({
                    "rule": r.rule, "path": r.path, "action": r.action,
                    "elements": r.elements, "failed": r.failed,
                })
            })
            .collect();
        serde_json::json!({
            "documents": self.documents,
            "resources": self.resources,
            "bad_lines": self.bad_lines,
            "bad_line_numbers": self.bad_line_numbers,
            "rules": rules,
        })
        .to_string()
    }
}

impl Session<'_> {
    /// De-identifies one document in place by `schema`: a FHIR resource (a Bundle's entries
    /// and contained resources follow their own rules) or, for `$` paths, any JSON document.
    /// Tokens, pseudonyms, references, shifted dates and encrypted elements are made through
    /// this session (one policy decision and audit entry per field or keyring). On an error
    /// the document is set to `null`.
    pub fn deidentify(&self, schema: &Schema, doc: &mut Value) -> Result<DeidReport> {
        self.one(schema, doc, Mode::Deid)
    }

    /// Re-identifies a document [`Session::deidentify`] made with the same schema: tokens are
    /// detokenized (shown as `view`), encrypted elements decrypted (plaintext view only),
    /// fixed date shifts undone. Pseudonyms, references and dates shifted per patient are
    /// one-way here and stay as they are; a token the vault does not know stays too (counted
    /// as failed). Needs the detokenize and decrypt rights of the policy; a denial is logged.
    pub fn reidentify(&self, schema: &Schema, doc: &mut Value, view: View) -> Result<DeidReport> {
        self.one(schema, doc, Mode::Reid(view))
    }

    fn one(&self, schema: &Schema, doc: &mut Value, mode: Mode) -> Result<DeidReport> {
        let c = Compiled::new(schema, mode);
        let r = (|| {
            let mut plan = engine::plan(&c, doc)?;
            let results = engine::run_ops(self, &c, &mut [&mut plan])?;
            engine::apply(&c, &plan, &results[0], doc)?;
            let mut report = DeidReport::new(schema);
            let resources = plan.resources();
            report.add(&plan, resources);
            Ok(report)
        })();
        if r.is_err() {
            *doc = Value::Null;
        }
        r
    }
}
