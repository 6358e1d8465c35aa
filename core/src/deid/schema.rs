//! De-identification schemas: ordered rules of a path and an action, a default for the
//! elements no rule matches, and options. Written in TOML or JSON (docs/fhir.md, "Schemas");
//! two presets ship with the library (`safe-harbor`, `shifted-dates`).
//!
//! ```toml
//! default = "redact"           # keep | redact: elements no rule matches
//! free_text = "redact"         # redact | rules: narrative, notes and comments
//! security_labels = true       # tag each resource's meta.security
//!
//! [[rule]]
//! path = "Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn').value"
//! action = "tokenize"
//! field = "identifier"
//! ```

use super::path::{Path, Root};
use crate::error::{Error, Result};
use serde::Deserialize;

/// The 3-digit ZIP areas of fewer than 20,000 people (HHS guidance on Safe Harbor, from the
/// 2000 census, with the 2010 additions): their ZIP codes become `000`.
pub const RESTRICTED_ZIP3: [&str; 19] = [
    "036", "059", "063", "102", "203", "205", "369", "556", "692", "790", "821", "823", "830",
    "831", "878", "879", "884", "890", "893",
];

/// What becomes of the elements no rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    /// Left as they are.
    Keep,
    /// Removed (Safe Harbor style: only what a rule keeps survives).
    Redact,
}

/// What a `redact` keeps of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partial {
    /// The year of a date or dateTime (removed when it is 90 or more years ago, as Safe
    /// Harbor asks of dates indicative of an age over 89; instants are removed).
    Year,
    /// The first three digits of a US ZIP code; `000` for the restricted areas.
    Zip3,
    /// Ages over 89 become 90 (an `Age` gets the comparator `>=`).
    Age,
}

/// How `generalize` coarsens a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Generalize {
    /// Dates and dateTimes cut to a precision: 4 (year), 7 (month) or 10 (day) characters.
    DatePrecision(usize),
    /// Numbers rounded down to a multiple of this.
    Bucket(f64),
    /// Strings cut to this many characters.
    Truncate(usize),
}

/// A rule's action.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Left as it is.
    Keep,
    /// Removed, or cut to a FHIR-valid partial value.
    Redact(Option<Partial>),
    /// Tokenized as a field (any kind but date-shift; vaulted and FF1 tokens can be
    /// re-identified, pseudonyms cannot).
    Tokenize(String),
    /// A one-way keyed pseudonym of a `pseudonym` field.
    Pseudonym(String),
    /// Resource ids and references pseudonymized consistently (through a field; the default
    /// `pseudonym`), so links between resources survive.
    Reference(String),
    /// Dates moved by the patient's offset (a `date-shift` field, tied to subjects) or by a
    /// fixed number of days.
    DateShift {
        /// The date-shift field.
        field: String,
        /// A fixed offset instead of the patient's.
        offset_days: Option<i32>,
    },
    /// Replaced by an envelope in the text form, bound to the resource type, id and path.
    Encrypt(String),
    /// Coarsened.
    Generalize(Generalize),
    /// Replaced by a fixed JSON value.
    Substitute(serde_json::Value),
}

impl Action {
    /// The action's name as schemas spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Redact(_) => "redact",
            Action::Tokenize(_) => "tokenize",
            Action::Pseudonym(_) => "pseudonym",
            Action::Reference(_) => "reference",
            Action::DateShift { .. } => "dateShift",
            Action::Encrypt(_) => "encrypt",
            Action::Generalize(_) => "generalize",
            Action::Substitute(_) => "substitute",
        }
    }
}

/// One rule: the elements a path reaches, and what is done to them.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The path as written.
    pub path_text: String,
    /// The parsed path.
    pub path: Path,
    /// The action.
    pub action: Action,
}

/// A de-identification schema. Rules are tried in order for each element: the first rule
/// that matches the element or one of its ancestors decides.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// What becomes of elements no rule matches.
    pub default: DefaultAction,
    /// Whether free text (narratives, notes, comments) is removed whatever the rules say.
    pub redact_free_text: bool,
    /// Whether each processed resource gets `meta.security` labels for what was done.
    pub security_labels: bool,
    /// The 3-digit ZIP areas that become `000`.
    pub restricted_zip3: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    free_text: Option<String>,
    #[serde(default)]
    security_labels: Option<bool>,
    #[serde(default)]
    restricted_zip3: Option<Vec<String>>,
    #[serde(default, alias = "rules")]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    path: String,
    action: String,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    partial: Option<String>,
    #[serde(default)]
    offset_days: Option<i32>,
    #[serde(default)]
    keyring: Option<String>,
    #[serde(default)]
    value: Option<serde_json::Value>,
    #[serde(default)]
    precision: Option<String>,
    #[serde(default)]
    bucket: Option<f64>,
    #[serde(default)]
    truncate: Option<usize>,
}

/// Most rules a schema may have.
pub const MAX_RULES: usize = 4096;

fn bad(rule: usize, why: &'static str) -> Error {
    Error::DeidSchema {
        rule,
        position: 0,
        why,
    }
}

impl RawRule {
    fn build(self, n: usize) -> Result<Rule> {
        let path = Path::parse(&self.path, n)?;
        let field = |default: &str| -> Result<String> {
            let f = self.field.clone().unwrap_or_else(|| default.to_owned());
            crate::envelope::check_keyring_name(&f)
                .map_err(|_| bad(n, "field is not a valid field name"))?;
            Ok(f)
        };
        let action = match self.action.as_str() {
            "keep" => Action::Keep,
            "redact" => Action::Redact(match self.partial.as_deref() {
                None => None,
                Some("year") => Some(Partial::Year),
                Some("zip3") => Some(Partial::Zip3),
                Some("age") => Some(Partial::Age),
                Some(_) => return Err(bad(n, "partial is year, zip3 or age")),
            }),
            "tokenize" => Action::Tokenize(field("identifier")?),
            "pseudonym" | "cryptoHash" => Action::Pseudonym(field("pseudonym")?),
            "reference" => Action::Reference(field("pseudonym")?),
            "dateShift" | "date-shift" => Action::DateShift {
                field: field("date")?,
                offset_days: match self.offset_days {
                    Some(0) => return Err(bad(n, "offset_days is not 0")),
                    Some(d) if d.unsigned_abs() > 3_650_000 => {
                        return Err(bad(n, "offset_days is at most 10,000 years"));
                    }
                    d => d,
                },
            },
            "encrypt" => {
                let k = self.keyring.clone().unwrap_or_else(|| "default".into());
                crate::envelope::check_keyring_name(&k)
                    .map_err(|_| bad(n, "keyring is not a valid keyring name"))?;
                Action::Encrypt(k)
            }
            "generalize" => {
                let given = [
                    self.precision.is_some(),
                    self.bucket.is_some(),
                    self.truncate.is_some(),
                ];
                if given.iter().filter(|g| **g).count() != 1 {
                    return Err(bad(
                        n,
                        "generalize takes one of precision, bucket, truncate",
                    ));
                }
                Action::Generalize(match (&self.precision, self.bucket, self.truncate) {
                    (Some(p), _, _) => Generalize::DatePrecision(match p.as_str() {
                        "year" => 4,
                        "month" => 7,
                        "day" => 10,
                        _ => return Err(bad(n, "precision is year, month or day")),
                    }),
                    (_, Some(b), _) if b.is_finite() && b > 0.0 => Generalize::Bucket(b),
                    (_, Some(_), _) => return Err(bad(n, "bucket is a positive number")),
                    (_, _, Some(t)) if t > 0 => Generalize::Truncate(t),
                    _ => return Err(bad(n, "truncate is at least 1")),
                })
            }
            "substitute" => match self.value.clone() {
                Some(v) => Action::Substitute(v),
                None => return Err(bad(n, "substitute needs a value")),
            },
            _ => {
                return Err(bad(
                    n,
                    "action is keep, redact, tokenize, pseudonym, reference, dateShift, encrypt, generalize or substitute",
                ));
            }
        };
        // Options that do not belong to the action are mistakes, not silently ignored.
        let stray = match &action {
            Action::Keep => self.any_option(),
            Action::Redact(_) => self.field.is_some() || self.others(&["partial"]),
            Action::Tokenize(_) | Action::Pseudonym(_) | Action::Reference(_) => {
                self.others(&["field"])
            }
            Action::DateShift { .. } => self.others(&["field", "offset_days"]),
            Action::Encrypt(_) => self.others(&["keyring"]),
            Action::Generalize(_) => self.others(&["precision", "bucket", "truncate"]),
            Action::Substitute(_) => self.others(&["value"]),
        };
        if stray {
            return Err(bad(n, "an option does not apply to the rule's action"));
        }
        if path.root() == &Root::Json && matches!(action, Action::Reference(_)) {
            return Err(bad(n, "reference is for FHIR paths"));
        }
        Ok(Rule {
            path_text: self.path,
            path,
            action,
        })
    }

    fn any_option(&self) -> bool {
        self.others(&[])
    }

    /// Whether an option other than `allowed` is given.
    fn others(&self, allowed: &[&str]) -> bool {
        let given = [
            ("field", self.field.is_some()),
            ("partial", self.partial.is_some()),
            ("offset_days", self.offset_days.is_some()),
            ("keyring", self.keyring.is_some()),
            ("value", self.value.is_some()),
            ("precision", self.precision.is_some()),
            ("bucket", self.bucket.is_some()),
            ("truncate", self.truncate.is_some()),
        ];
        given.iter().any(|(n, g)| *g && !allowed.contains(n))
    }
}

impl RawSchema {
    fn build(self) -> Result<Schema> {
        if let Some(v) = self.version
            && v != 1
        {
            return Err(bad(0, "version is 1"));
        }
        if self.rule.len() > MAX_RULES {
            return Err(bad(0, "a schema has at most 4096 rules"));
        }
        let default = match self.default.as_deref() {
            None | Some("keep") => DefaultAction::Keep,
            Some("redact") => DefaultAction::Redact,
            Some(_) => return Err(bad(0, "default is keep or redact")),
        };
        let redact_free_text = match self.free_text.as_deref() {
            None | Some("redact") => true,
            Some("rules") => false,
            Some(_) => return Err(bad(0, "free_text is redact or rules")),
        };
        let restricted_zip3 = match self.restricted_zip3 {
            None => RESTRICTED_ZIP3.iter().map(|s| (*s).to_owned()).collect(),
            Some(z) => {
                if z.iter()
                    .any(|s| s.len() != 3 || !s.bytes().all(|b| b.is_ascii_digit()))
                {
                    return Err(bad(0, "restricted_zip3 lists 3-digit strings"));
                }
                z
            }
        };
        let rules = self
            .rule
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.build(i + 1))
            .collect::<Result<Vec<_>>>()?;
        Ok(Schema {
            rules,
            default,
            redact_free_text,
            security_labels: self.security_labels.unwrap_or(false),
            restricted_zip3,
        })
    }
}

/// Longest schema text accepted.
pub const MAX_SCHEMA_BYTES: usize = 1 << 20;

impl Schema {
    /// Parses a schema written in TOML. Errors name the rule (from 1; 0 for the schema as a
    /// whole) and, for the TOML itself, the byte position; never more of the text.
    pub fn from_toml(text: &str) -> Result<Schema> {
        if text.len() > MAX_SCHEMA_BYTES {
            return Err(bad(0, "a schema is at most 1 MiB"));
        }
        let raw: RawSchema = toml::from_str(text).map_err(|e| Error::DeidSchema {
            rule: 0,
            position: e.span().map_or(0, |s| s.start + 1),
            why: "is not TOML of a de-identification schema (see docs/fhir.md)",
        })?;
        raw.build()
    }

    /// Parses a schema written in JSON (`{"default": "redact", "rules": [{"path": …}]}`).
    pub fn from_json(text: &str) -> Result<Schema> {
        if text.len() > MAX_SCHEMA_BYTES {
            return Err(bad(0, "a schema is at most 1 MiB"));
        }
        let raw: RawSchema = serde_json::from_str(text).map_err(|e| {
            // serde_json gives line and column; the byte position is counted from them.
            let pos = text
                .split_inclusive('\n')
                .take(e.line().saturating_sub(1))
                .map(str::len)
                .sum::<usize>()
                + e.column();
            Error::DeidSchema {
                rule: 0,
                position: pos,
                why: "is not JSON of a de-identification schema (see docs/fhir.md)",
            }
        })?;
        raw.build()
    }

    /// Parses TOML or JSON: JSON when the text starts with `{`.
    pub fn parse(text: &str) -> Result<Schema> {
        if text.trim_start().starts_with('{') {
            Schema::from_json(text)
        } else {
            Schema::from_toml(text)
        }
    }

    /// A preset by name: `safe-harbor` or `shifted-dates` (docs/fhir.md lists every rule).
    pub fn preset(name: &str) -> Option<Schema> {
        match name {
            "safe-harbor" => Some(safe_harbor()),
            "shifted-dates" => Some(shifted_dates()),
            _ => None,
        }
    }

    /// The names of the presets.
    pub const PRESETS: [&'static str; 2] = ["safe-harbor", "shifted-dates"];

    /// Whether a rule encrypts (the engine then tracks element paths for the context).
    pub(crate) fn encrypts(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.action, Action::Encrypt(_)))
    }
}

/// The text of the Safe Harbor preset.
pub const SAFE_HARBOR_TOML: &str = include_str!("presets/safe-harbor.toml");

fn safe_harbor() -> Schema {
    // The preset is tested to parse (`presets_parse`); a failure here is a build defect.
    Schema::from_toml(SAFE_HARBOR_TOML).unwrap_or_else(|_| Schema {
        rules: Vec::new(),
        default: DefaultAction::Redact,
        redact_free_text: true,
        security_labels: true,
        restricted_zip3: Vec::new(),
    })
}

/// Safe Harbor with every date shifted per patient instead of cut to its year.
fn shifted_dates() -> Schema {
    Schema::from_toml(&shifted_dates_toml()).unwrap_or_else(|_| safe_harbor())
}

/// The text of a preset, as `phivault fhir show-preset` prints it.
pub fn preset_toml(name: &str) -> Option<String> {
    match name {
        "safe-harbor" => Some(SAFE_HARBOR_TOML.to_owned()),
        "shifted-dates" => Some(shifted_dates_toml()),
        _ => None,
    }
}

/// `shifted-dates`: the Safe Harbor text with its date rules (the year of dates, the removal
/// of instants) made per-patient date shifts — outside Safe Harbor (a limited data set or an
/// expert determination).
fn shifted_dates_toml() -> String {
    SAFE_HARBOR_TOML
        .replace(
            "# phivault preset \"safe-harbor\": HIPAA Safe Harbor (45 CFR 164.514(b)(2)) for FHIR R4",
            "# phivault preset \"shifted-dates\": safe-harbor with dates shifted per patient (NOT Safe Harbor:\n# a limited data set or an expert determination), for FHIR R4",
        )
        .replace(
            "path = \"nodesByType('instant')\"\naction = \"redact\"",
            "path = \"nodesByType('instant')\"\naction = \"dateShift\"",
        )
        .replace(
            "action = \"redact\"\npartial = \"year\"",
            "action = \"dateShift\"",
        )
        .replace(
            "# --- (C) dates: the year only (none when it shows an age over 89); instants removed",
            "# --- (C) dates: shifted by the patient's offset (field `date`), intervals kept     ",
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse() {
        let s = Schema::from_toml(SAFE_HARBOR_TOML).expect("safe-harbor parses");
        assert_eq!(s.default, DefaultAction::Redact);
        assert!(s.rules.len() > 20);
        let d = Schema::preset("shifted-dates").expect("preset");
        assert!(
            d.rules
                .iter()
                .any(|r| matches!(r.action, Action::DateShift { .. }))
        );
        assert!(
            !d.rules
                .iter()
                .any(|r| matches!(r.action, Action::Redact(Some(Partial::Year))))
        );
        assert!(Schema::preset("nope").is_none());
        let text = preset_toml("shifted-dates").expect("text");
        assert!(text.contains("shifted-dates") && !text.contains("partial = \"year\""));
        assert_eq!(Schema::from_toml(&text).expect("parses"), d);
    }

    #[test]
    fn toml_and_json_agree() {
        let t = Schema::from_toml(
            "default = \"redact\"\n[[rule]]\npath = \"Patient.birthDate\"\naction = \"redact\"\npartial = \"year\"\n",
        )
        .expect("toml");
        let j = Schema::parse(
            r#"{"default": "redact", "rules": [{"path": "Patient.birthDate", "action": "redact", "partial": "year"}]}"#,
        )
        .expect("json");
        assert_eq!(t, j);
    }

    #[test]
    fn errors_name_the_rule() {
        let cases = [
            ("[[rule]]\npath = \"Patient.id\"\naction = \"shred\"\n", 1),
            (
                "[[rule]]\npath = \"Patient.id\"\naction = \"keep\"\n[[rule]]\npath = \"Patient.x\"\naction = \"keep\"\nfield = \"ssn\"\n",
                2,
            ),
            (
                "[[rule]]\npath = \"Patient.id\"\naction = \"generalize\"\n",
                1,
            ),
            ("default = \"maybe\"\n", 0),
            ("[[rule]]\npath = \"Patient.\"\naction = \"keep\"\n", 1),
        ];
        for (text, rule) in cases {
            match Schema::from_toml(text) {
                Err(Error::DeidSchema { rule: r, .. }) => assert_eq!(r, rule, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        match Schema::from_toml("default = \"SECRET-VALUE\nx") {
            Err(e @ Error::DeidSchema { rule: 0, .. }) => {
                assert!(!e.to_string().contains("SECRET"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Schema::from_json("{\"rules\": [{\"path\": 3}]}"),
            Err(Error::DeidSchema { rule: 0, .. })
        ));
    }
}
