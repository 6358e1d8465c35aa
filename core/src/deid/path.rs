//! The path language of de-identification rules: a small, documented subset of FHIRPath, and
//! plain JSON paths for documents that are not FHIR (docs/fhir.md, "Paths").
//!
//! ```text
//! path   := head ('.' step)*
//! head   := TypeName                 a resource type; `Resource` or `DomainResource`: any
//!         | "nodesByType('" T "')"   any resource, then the step below
//!         | '$'                      the root of a plain JSON document
//! step   := name                     a child element (`effective` also matches the choice
//!                                    elements `effectiveDateTime`, `effectivePeriod`, …)
//!         | "where(" name ('.' name)* "=" "'" text "'" ")"
//!                                    keeps the items whose element equals the text
//!         | "nodesByType('" T "')"   this node or any node below it whose FHIR type is T
//!         | name "[*]"               (JSON paths) the same as `name`: arrays are walked
//! ```
//!
//! Arrays are transparent, as collections are in FHIRPath: `Patient.name.family` reaches
//! `name[i].family` for every `i`, and `where(…)` filters the items of the array it follows.
//! Strings are single-quoted; `\'` and `\\` escape inside them.

use crate::error::{Error, Result};

/// Where a path starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Root {
    /// Resources of one type (`Patient`).
    Type(String),
    /// Any resource (`Resource`, `DomainResource`, or a leading `nodesByType`).
    AnyResource,
    /// The root of a plain JSON document (`$`).
    Json,
}

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A child element by name.
    Child(String),
    /// Keeps the node when the element at `path` (below it) equals `value`.
    Where {
        /// The element compared, as names below the node.
        path: Vec<String>,
        /// The text it must equal.
        value: String,
    },
    /// This node or any node below it whose FHIR type is the one named.
    NodesByType(String),
}

/// A parsed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    root: Root,
    steps: Vec<Step>,
}

/// FHIR choice elements (`value[x]`): a step with one of these names also matches the name
/// followed by a type (`valueQuantity`).
pub(crate) const CHOICE_PREFIXES: &[&str] = &[
    "value",
    "effective",
    "onset",
    "abatement",
    "deceased",
    "multipleBirth",
    "occurrence",
    "performed",
    "author",
    "medication",
    "reported",
    "asNeeded",
    "dose",
    "rate",
    "born",
    "age",
    "serviced",
    "timing",
    "item",
    "allowed",
    "bounds",
    "fixed",
    "pattern",
    "defaultValue",
];

/// Whether the path step `step` names the element `element`.
pub(crate) fn name_matches(step: &str, element: &str) -> bool {
    if step == element {
        return true;
    }
    element.len() > step.len()
        && element.starts_with(step)
        && element.as_bytes()[step.len()].is_ascii_uppercase()
        && CHOICE_PREFIXES.contains(&step)
}

impl Path {
    /// Parses `text`; errors name the character position (counted from 1) and what is wrong.
    /// `rule` is the rule's number, for the error.
    pub fn parse(text: &str, rule: usize) -> Result<Path> {
        Parser {
            s: text.as_bytes(),
            i: 0,
            rule,
        }
        .path()
    }

    /// Where the path starts.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The steps after the head.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    rule: usize,
}

impl Parser<'_> {
    fn err(&self, why: &'static str) -> Error {
        Error::DeidSchema {
            rule: self.rule,
            position: self.i + 1,
            why,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn name(&mut self) -> Result<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let ok = c.is_ascii_alphabetic() || c == b'_' || (self.i > start && c.is_ascii_digit());
            if !ok {
                break;
            }
            self.i += 1;
        }
        if self.i == start || self.i - start > 64 {
            return Err(self.err("expected an element name (1 to 64 letters, digits, _)"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn string(&mut self) -> Result<String> {
        if !self.eat("'") {
            return Err(self.err("expected a single-quoted string"));
        }
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("string is not closed")),
                Some(b'\'') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c @ (b'\'' | b'\\')) => out.push(c),
                        _ => return Err(self.err("only \\' and \\\\ escape in strings")),
                    }
                    self.i += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| self.err("string is not UTF-8"))
    }

    fn type_arg(&mut self) -> Result<String> {
        // after "nodesByType("
        self.spaces();
        let t = self.string()?;
        if t.is_empty()
            || t.len() > 64
            || !t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            return Err(self.err("a type name is letters and digits"));
        }
        self.spaces();
        if !self.eat(")") {
            return Err(self.err("expected ')'"));
        }
        Ok(t)
    }

    fn path(mut self) -> Result<Path> {
        if self.s.is_empty() {
            return Err(self.err("path is empty"));
        }
        if self.s.len() > 1024 {
            return Err(self.err("path is longer than 1024 characters"));
        }
        let mut steps = Vec::new();
        let root = if self.eat("$") {
            Root::Json
        } else if self.eat("nodesByType(") {
            steps.push(Step::NodesByType(self.type_arg()?));
            Root::AnyResource
        } else {
            let start = self.i;
            let n = self.name()?;
            if !n.as_bytes()[0].is_ascii_uppercase() {
                self.i = start;
                return Err(self.err("a path starts with a resource type, nodesByType or $"));
            }
            if n == "Resource" || n == "DomainResource" {
                Root::AnyResource
            } else {
                Root::Type(n)
            }
        };
        let json = root == Root::Json;
        while self.i < self.s.len() {
            if !self.eat(".") {
                return Err(self.err("expected '.' between steps"));
            }
            let rest = &self.s[self.i..];
            if json && (rest.starts_with(b"where(") || rest.starts_with(b"nodesByType(")) {
                return Err(self.err("where() and nodesByType() are for FHIR paths"));
            }
            if self.eat("where(") {
                self.spaces();
                let mut lhs = vec![self.name()?];
                while self.eat(".") {
                    lhs.push(self.name()?);
                }
                self.spaces();
                if !self.eat("=") {
                    return Err(self.err("expected '=' in where()"));
                }
                self.spaces();
                let value = self.string()?;
                self.spaces();
                if !self.eat(")") {
                    return Err(self.err("expected ')'"));
                }
                steps.push(Step::Where { path: lhs, value });
            } else if self.eat("nodesByType(") {
                steps.push(Step::NodesByType(self.type_arg()?));
            } else {
                let n = self.name()?;
                if json {
                    let _ = self.eat("[*]");
                }
                steps.push(Step::Child(n));
            }
            if steps.len() > 32 {
                return Err(self.err("a path has at most 32 steps"));
            }
        }
        if json && steps.is_empty() {
            return Err(self.err("a JSON path names at least one element"));
        }
        Ok(Path { root, steps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let p = Path::parse(
            "Patient.identifier.where(system = 'http://hl7.org/fhir/sid/us-ssn').value",
            1,
        )
        .expect("path");
        assert_eq!(p.root(), &Root::Type("Patient".into()));
        assert_eq!(
            p.steps(),
            &[
                Step::Child("identifier".into()),
                Step::Where {
                    path: vec!["system".into()],
                    value: "http://hl7.org/fhir/sid/us-ssn".into()
                },
                Step::Child("value".into()),
            ]
        );
        let p = Path::parse("nodesByType('HumanName')", 1).expect("path");
        assert_eq!(p.root(), &Root::AnyResource);
        assert_eq!(p.steps(), &[Step::NodesByType("HumanName".into())]);
        let p = Path::parse("Resource.id", 1).expect("path");
        assert_eq!(p.root(), &Root::AnyResource);
        let p = Path::parse("$.patient.names[*].first", 1).expect("path");
        assert_eq!(p.root(), &Root::Json);
        assert_eq!(p.steps().len(), 3);
        let p = Path::parse("Observation.where(code.coding.code='x\\'y').status", 1).expect("p");
        assert!(matches!(&p.steps()[0], Step::Where { value, .. } if value == "x'y"));
    }

    #[test]
    fn errors_name_rule_and_position() {
        for (text, pos) in [
            ("", 1),
            ("patient.id", 1),
            ("Patient..id", 9),
            ("Patient.where(system='x'", 25),
            ("Patient.where(system 'x')", 22),
            ("Patient.nodesByType(HumanName)", 21),
            ("$", 2),
            ("$.a.where(b='c')", 5),
            ("Patient.id!", 11),
        ] {
            match Path::parse(text, 7) {
                Err(Error::DeidSchema { rule, position, .. }) => {
                    assert_eq!((rule, position), (7, pos), "{text}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn choice_names() {
        assert!(name_matches("effective", "effectiveDateTime"));
        assert!(name_matches("value", "valueQuantity"));
        assert!(!name_matches("value", "valueset"));
        assert!(!name_matches("status", "statusReason"));
        assert!(name_matches("status", "status"));
    }
}
