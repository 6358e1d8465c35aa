//! Field schemas: what each PHI field is, how it is tokenized and masked. In code, in a TOML
//! file, and as built-in presets for the HIPAA Safe Harbor identifiers with a fixed format.
//!
//! ```toml
//! [[field]]
//! name = "account"
//! kind = "ff1"              # vaulted | ff1 | pseudonym | date-shift
//! alphabet = "digits"       # digits | alphanumeric | upper | lower | hex | custom:<chars>
//! mask_keep_last = 4
//! ```

use super::alphabet::Alphabet;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How a field's values become tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TokenKind {
    /// Random tokens; the value is stored encrypted in the vault. `consistent` gives the same
    /// token for the same value (keyed-HMAC index).
    Vaulted,
    /// FF1 format-preserving encryption (NIST SP 800-38G): vaultless, reversible.
    Ff1,
    /// One-way keyed HMAC-SHA256 pseudonym: no detokenize.
    Pseudonym,
    /// Dates (YYYY-MM-DD) moved by a consistent secret offset per subject.
    DateShift,
}

impl TokenKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [TokenKind; 4] = [
        TokenKind::Vaulted,
        TokenKind::Ff1,
        TokenKind::Pseudonym,
        TokenKind::DateShift,
    ];

    /// The kind's name as field definitions (TOML, JSON), the fronts and the CLI spell it.
    pub fn name(self) -> &'static str {
        match self {
            TokenKind::Vaulted => "vaulted",
            TokenKind::Ff1 => "ff1",
            TokenKind::Pseudonym => "pseudonym",
            TokenKind::DateShift => "date-shift",
        }
    }

    /// The kind named `name` (also `date_shift`, as Python keywords write it); `None` for any
    /// other name.
    pub fn from_name(name: &str) -> Option<TokenKind> {
        let name = if name == "date_shift" {
            "date-shift"
        } else {
            name
        };
        TokenKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The shape of vaulted random tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// The value's layout: each alphabet character replaced by a random one.
    #[default]
    SameAsInput,
    /// `prefix` followed by 22 random base62 characters (131 bits).
    Opaque,
}

/// A field's definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Name (1-64 characters of `A-Z a-z 0-9 _ - .`).
    pub name: String,
    /// Token kind.
    pub kind: TokenKind,
    /// Alphabet of format-preserving tokens (`digits`, `alphanumeric`, `upper`, `lower`,
    /// `hex`, `custom:<chars>`); other characters keep their places.
    #[serde(default = "default_alphabet")]
    pub alphabet: String,
    /// Vaulted: the same value gets the same token (default true).
    #[serde(default = "yes")]
    pub consistent: bool,
    /// Vaulted: token shape.
    #[serde(default)]
    pub shape: Shape,
    /// Vaulted, opaque shape: token prefix.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Masked view: keep this many trailing alphabet characters.
    #[serde(default)]
    pub mask_keep_last: usize,
    /// Masked view: keep this many leading alphabet characters.
    #[serde(default)]
    pub mask_keep_first: usize,
    /// Tokens are tied to a data subject and die with `forget_subject`.
    #[serde(default)]
    pub subject: bool,
    /// Keyring whose KEK protects vaulted values and from which FF1, pseudonym and date-shift
    /// keys are derived.
    #[serde(default = "default_keyring")]
    pub keyring: String,
    /// Key version FF1, pseudonym and date-shift keys are derived from (pinned, so tokens stay
    /// stable across rotations; see docs for migrating to a new version).
    #[serde(default = "one")]
    pub key_version: u32,
    /// Pseudonyms: project name, so two projects' pseudonyms cannot be linked.
    #[serde(default)]
    pub project: String,
    /// Date shift: offsets lie in ±`window_days` (never 0).
    #[serde(default = "default_window")]
    pub window_days: u32,
}

fn default_alphabet() -> String {
    "digits".into()
}
fn yes() -> bool {
    true
}
fn default_prefix() -> String {
    "tok_".into()
}
fn default_keyring() -> String {
    TOKENS_KEYRING.into()
}

pub use crate::keyring::TOKENS_KEYRING;
fn one() -> u32 {
    1
}
fn default_window() -> u32 {
    365
}

impl FieldSpec {
    /// A field of `kind` with the defaults.
    pub fn new(name: impl Into<String>, kind: TokenKind) -> Self {
        FieldSpec {
            name: name.into(),
            kind,
            alphabet: default_alphabet(),
            consistent: true,
            shape: Shape::default(),
            prefix: default_prefix(),
            mask_keep_last: 0,
            mask_keep_first: 0,
            subject: false,
            keyring: default_keyring(),
            key_version: 1,
            project: String::new(),
            window_days: default_window(),
        }
    }

    /// Checks the definition.
    pub fn validate(&self) -> Result<()> {
        crate::envelope::check_keyring_name(&self.name).map_err(|_| {
            Error::invalid(
                "field name",
                "must be 1 to 64 characters from A-Z a-z 0-9 _ - .",
            )
        })?;
        crate::envelope::check_keyring_name(&self.keyring)?;
        Alphabet::parse(&self.alphabet)?;
        if self.key_version == 0 {
            return Err(Error::invalid("key version", "must be at least 1"));
        }
        if self.mask_keep_first > 0 && self.mask_keep_last > 0 {
            return Err(Error::invalid(
                "mask",
                "keep either the first or the last characters, not both",
            ));
        }
        if self.kind == TokenKind::DateShift && !(1..=3650).contains(&self.window_days) {
            return Err(Error::invalid("window_days", "must be between 1 and 3650"));
        }
        if self.kind == TokenKind::DateShift && !self.subject {
            return Err(Error::invalid(
                "date-shift field",
                "must be tied to a subject (subject = true)",
            ));
        }
        if self.shape == Shape::Opaque
            && (self.prefix.len() > 16
                || !self
                    .prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(Error::invalid(
                "prefix",
                "must be at most 16 characters of A-Z a-z 0-9 _",
            ));
        }
        Ok(())
    }

    /// Parses `[[field]]` tables from TOML.
    pub fn from_toml(text: &str) -> Result<Vec<FieldSpec>> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            field: Vec<FieldSpec>,
        }
        let file: File = toml::from_str(text).map_err(|_| {
            Error::invalid(
                "field schema",
                "is not valid TOML of [[field]] tables (see docs)",
            )
        })?;
        for f in &file.field {
            f.validate()?;
        }
        Ok(file.field)
    }

    /// Writes fields as TOML `[[field]]` tables.
    pub fn to_toml(fields: &[FieldSpec]) -> Result<String> {
        #[derive(Serialize)]
        struct File<'a> {
            field: &'a [FieldSpec],
        }
        toml::to_string(&File { field: fields })
            .map_err(|_| Error::invalid("field schema", "cannot be written as TOML"))
    }
}

/// The built-in fields. All give the same token for the same value, so joins keep working.
///
/// | name | kind | token looks like |
/// |---|---|---|
/// | `ssn` | FF1, digits | `ddd-dd-dddd`, masked `***-**-6789` |
/// | `phone` | FF1, digits | the same layout, masked to the last 4 |
/// | `mrn` | vaulted, alphanumeric, same layout | `MRN0012345` → `x7Kq0219Az` |
/// | `email` | vaulted, alphanumeric, same layout | `@` and `.` keep their places |
/// | `name` | vaulted, opaque | `tok_` + 22 base62 |
/// | `account`, `license`, `device_id` | FF1, alphanumeric | same layout |
/// | `zip` | vaulted, opaque | `tok_` + 22 base62 (5 digits are too few for a same-shape token) |
/// | `dob` | date shift ±365 days per subject | `YYYY-MM-DD`, masked to the year |
/// | `pseudonym` | one-way HMAC-SHA256 | `psn_` + 26 base32 characters |
/// | `identifier` | vaulted, opaque | `tok_` + 22 base62 (record identifiers of FHIR documents) |
/// | `date` | date shift ±365 days per subject | `YYYY-MM-DD` (dates of FHIR documents) |
pub fn presets() -> Vec<FieldSpec> {
    let mut v = Vec::new();
    let mut ssn = FieldSpec::new("ssn", TokenKind::Ff1);
    ssn.mask_keep_last = 4;
    v.push(ssn);
    let mut phone = FieldSpec::new("phone", TokenKind::Ff1);
    phone.mask_keep_last = 4;
    v.push(phone);
    for name in ["account", "license", "device_id"] {
        let mut f = FieldSpec::new(name, TokenKind::Ff1);
        f.alphabet = "alphanumeric".into();
        f.mask_keep_last = 4;
        v.push(f);
    }
    let mut mrn = FieldSpec::new("mrn", TokenKind::Vaulted);
    mrn.alphabet = "alphanumeric".into();
    mrn.mask_keep_last = 3;
    v.push(mrn);
    let mut email = FieldSpec::new("email", TokenKind::Vaulted);
    email.alphabet = "alphanumeric".into();
    email.mask_keep_first = 1;
    v.push(email);
    let mut name = FieldSpec::new("name", TokenKind::Vaulted);
    name.shape = Shape::Opaque;
    name.alphabet = "alphanumeric".into();
    v.push(name);
    // 5 digits is too small a space for same-shape random tokens (the 10^6 floor applies):
    // ZIP codes get opaque tokens. (Safe Harbor keeps only 3-digit ZIPs anyway.)
    let mut zip = FieldSpec::new("zip", TokenKind::Vaulted);
    zip.shape = Shape::Opaque;
    v.push(zip);
    let mut dob = FieldSpec::new("dob", TokenKind::DateShift);
    dob.subject = true;
    dob.mask_keep_first = 4;
    v.push(dob);
    v.push(FieldSpec::new("pseudonym", TokenKind::Pseudonym));
    // Record identifiers of FHIR documents (de-identification presets): random tokens,
    // whatever the identifier's shape, that a permitted role can resolve.
    let mut identifier = FieldSpec::new("identifier", TokenKind::Vaulted);
    identifier.shape = Shape::Opaque;
    identifier.alphabet = "alphanumeric".into();
    identifier.mask_keep_last = 4;
    v.push(identifier);
    // Dates of FHIR documents shifted per patient (the `shifted-dates` preset).
    let mut date = FieldSpec::new("date", TokenKind::DateShift);
    date.subject = true;
    date.mask_keep_first = 4;
    v.push(date);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One spelling per kind: the fronts' names are the field definitions' names.
    #[test]
    fn kind_names_are_the_serialized_names_and_parse_back() {
        for k in TokenKind::ALL {
            assert_eq!(TokenKind::from_name(k.name()), Some(k));
            let json = serde_json::to_string(&k).expect("serialize");
            assert_eq!(json, format!("\"{}\"", k.name()));
        }
        assert_eq!(
            TokenKind::from_name("date_shift"),
            Some(TokenKind::DateShift)
        );
        assert_eq!(TokenKind::from_name("Vaulted"), None);
        assert_eq!(TokenKind::from_name(""), None);
    }
}
