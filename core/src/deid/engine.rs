//! The walk that applies a schema to documents, in three phases per batch:
//!
//! 1. **plan** (per document, on the pool): every element is matched against the rules; the
//!    local actions (keep, redact, generalize, substitute, fixed date shifts) are done at
//!    once; an element that needs the vault (tokenize, pseudonym, reference, dateShift per
//!    patient, encrypt — or their reverse) has its value taken out into an [`Op`] and a
//!    marker left in its place;
//! 2. **vault** (once per batch): the ops of all documents grouped by field and keyring, one
//!    [`Session`] call per group — one policy decision and audit entry each;
//! 3. **apply** (per document): a second walk, in the same order, puts each op's result where
//!    its marker is (or removes the element when the op failed for that value), drops
//!    containers left empty and adds the `meta.security` labels.
//!
//! Both walks visit object members in key order (serde_json's map is ordered) and arrays in
//! index order, so the n-th marker is the n-th op.

use super::schema::{Action, DefaultAction, Generalize, Partial, Schema};
use super::{path, types};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::session::Session;
use crate::tokens::{TokenKind, View};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Put in place of a value that an op will replace. A document that holds it is refused.
const MARK: &str = "\u{0}phivault-deid-pending\u{0}";
/// The rule number of elements no rule matched.
const DEFAULT_RULE: u16 = u16::MAX;
/// The rule number of free text removed by `free_text = "redact"`.
const FREE_TEXT_RULE: u16 = u16::MAX - 1;
/// Most nesting the walk follows (deeper documents are refused).
const MAX_DEPTH: usize = 128;

/// The HL7 code system of the security labels.
pub const SECURITY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// `meta.security` labels, as bits.
const REDACTED: u8 = 1;
const MASKED: u8 = 2;
const PSEUDED: u8 = 4;
const LABELS: [(u8, &str, &str); 3] = [
    (REDACTED, "REDACTED", "redacted"),
    (MASKED, "MASKED", "masked"),
    (PSEUDED, "PSEUDED", "pseudonymized"),
];

/// Which way the walk goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Deid,
    Reid(View),
}

/// A value that needs the vault.
#[derive(Debug)]
pub(crate) struct Op {
    kind: OpKind,
    rule: u16,
    value: String,
    /// The patient of the resource, for fields tied to subjects.
    subject: Option<Arc<str>>,
    /// The resource (index into the document's resources).
    resource: u32,
}

#[derive(Debug)]
enum OpKind {
    /// Tokenize (or pseudonymize) as a field.
    Token(u16),
    /// A resource id or a reference through a field.
    Reference(u16, RefForm),
    /// The date part shifted through a field; the rest of a dateTime kept.
    ShiftDate(u16, String),
    /// Encrypted under a keyring, bound to the resource and the element's path.
    Encrypt(u16, String),
    /// Detokenized.
    Detoken(u16),
    /// Decrypted, bound to the resource and the element's path.
    Decrypt(String),
}

/// How a pseudonymized reference is written back.
#[derive(Debug, Clone)]
enum RefForm {
    /// A resource's own id: the token.
    Id,
    /// `Type/token`.
    Relative(String),
    /// `urn:uuid:` + a UUID made of the token.
    Uuid,
}

/// A resource met in a document, in walk order.
#[derive(Debug)]
struct Res {
    rtype: String,
    /// The id as it is in the input.
    id: Option<String>,
    /// The op that rewrites the id, if one does.
    id_op: Option<usize>,
    /// The id the output holds when no op rewrites it (`None`: removed).
    id_final: Option<String>,
    labels: u8,
}

/// What the plan of one document needs from the vault, and what the apply walk needs.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    ops: Vec<Op>,
    res: Vec<Res>,
    /// Elements per rule (index) and for the default (last) and free text (before last).
    pub(crate) counts: Vec<u64>,
    /// Elements whose op failed, per rule.
    pub(crate) failed: Vec<u64>,
}

impl Plan {
    /// The resources met (a plain JSON document counts none).
    pub(crate) fn resources(&self) -> usize {
        self.res.iter().filter(|r| !r.rtype.is_empty()).count()
    }
}

/// The names a schema's ops use, resolved once per call.
pub(crate) struct Compiled<'s> {
    pub(crate) schema: &'s Schema,
    /// Field or keyring name per rule (empty when the rule has none).
    names: Vec<String>,
    mode: Mode,
    track_paths: bool,
    this_year: i64,
    /// Rules whose path starts with `nodesByType(T)`, by `T`: started at every node of that
    /// type rather than carried down the walk.
    floating: HashMap<&'s str, Vec<u16>>,
    /// The first such rule (`u16::MAX` if none).
    first_floating: u16,
}

impl<'s> Compiled<'s> {
    pub(crate) fn new(schema: &'s Schema, mode: Mode) -> Compiled<'s> {
        let names = schema
            .rules
            .iter()
            .map(|r| match &r.action {
                Action::Tokenize(f)
                | Action::Pseudonym(f)
                | Action::Reference(f)
                | Action::DateShift { field: f, .. }
                | Action::Encrypt(f) => f.clone(),
                _ => String::new(),
            })
            .collect();
        let mut floating: HashMap<&'s str, Vec<u16>> = HashMap::new();
        for (i, r) in schema.rules.iter().enumerate() {
            if let Some(path::Step::NodesByType(t)) = r.path.steps().first() {
                floating.entry(t.as_str()).or_default().push(i as u16);
            }
        }
        let first_floating = floating
            .values()
            .flat_map(|v| v.first().copied())
            .min()
            .unwrap_or(u16::MAX);
        Compiled {
            schema,
            names,
            mode,
            track_paths: schema.encrypts(),
            this_year: this_year(),
            floating,
            first_floating,
        }
    }

    /// Whether rule `i` starts with `nodesByType` (see `floating`).
    fn is_floating(&self, i: usize) -> bool {
        matches!(
            self.schema.rules[i].path.steps().first(),
            Some(path::Step::NodesByType(_))
        )
    }

    fn slots(&self) -> usize {
        self.schema.rules.len() + 2
    }
}

fn this_year() -> i64 {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64);
    crate::tokens::dateshift::year_of_days(days)
}

/// A path state: rule and the step it is at.
#[derive(Clone, Copy, Debug)]
struct St {
    rule: u16,
    pos: u8,
}

/// Where the walk is in the current resource.
struct Here<'a> {
    /// Index into `Plan::res`.
    res: u32,
    subject: Option<&'a Arc<str>>,
    /// Whether the resource is contained (its id is local and kept).
    contained: bool,
    /// The depth of the resource's root.
    depth: usize,
}

fn counts_index(c: &Compiled<'_>, rule: u16) -> usize {
    match rule {
        DEFAULT_RULE => c.schema.rules.len() + 1,
        FREE_TEXT_RULE => c.schema.rules.len(),
        r => r as usize,
    }
}

/// Plans one document (phase 1). `doc` is a resource (an object with `resourceType`) or,
/// for `$` paths, any JSON document.
pub(crate) fn plan(c: &Compiled<'_>, doc: &mut Value) -> Result<Plan> {
    let mut p = Planner {
        c,
        plan: Plan {
            counts: vec![0; c.slots()],
            failed: vec![0; c.slots()],
            ..Plan::default()
        },
        path: Vec::new(),
        bundles: Vec::new(),
        entry_url: None,
    };
    let is_resource = doc
        .as_object()
        .is_some_and(|o| o.get("resourceType").is_some_and(Value::is_string));
    if is_resource {
        if let Value::Object(o) = doc {
            p.resource(o, None, false, 0)?;
        }
    } else {
        let states: Vec<St> = c
            .schema
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.path.root() == &path::Root::Json)
            .map(|(i, _)| St {
                rule: i as u16,
                pos: 0,
            })
            .collect();
        p.plan.res.push(Res {
            rtype: String::new(),
            id: None,
            id_op: None,
            id_final: None,
            labels: 0,
        });
        let here = Here {
            res: 0,
            subject: None,
            contained: false,
            depth: usize::MAX,
        };
        let keep = p.value(doc, "", None, &states, DEFAULT_RULE, &here, 0)?;
        if !keep {
            *doc = Value::Object(Map::new());
        }
    }
    Ok(p.plan)
}

struct Planner<'c, 's> {
    c: &'c Compiled<'s>,
    plan: Plan,
    /// The element path, when encrypt rules need it for the context.
    path: Vec<String>,
    /// `fullUrl` → (type, id) of the Bundles being walked, to find patients of `urn:uuid`
    /// references.
    bundles: Vec<HashMap<String, (String, Option<String>)>>,
    /// The `fullUrl` of the Bundle entry whose resource is about to be planned.
    entry_url: Option<String>,
}

impl<'s> Planner<'_, 's> {
    fn schema(&self) -> &'s Schema {
        self.c.schema
    }

    /// Plans a resource: fresh path states from its type, its own patient.
    fn resource(
        &mut self,
        o: &mut Map<String, Value>,
        parent_subject: Option<&Arc<str>>,
        contained: bool,
        depth: usize,
    ) -> Result<()> {
        let rtype = o
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if rtype.is_empty()
            || rtype.len() > 64
            || !rtype.as_bytes()[0].is_ascii_uppercase()
            || !rtype.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(Error::invalid(
                "FHIR resource",
                "resourceType is not a resource type name",
            ));
        }
        let entry_url = self.entry_url.take();
        let subject = self
            .subject_of(o, &rtype, entry_url.as_deref())
            .or_else(|| parent_subject.cloned());
        let bundle = rtype == "Bundle";
        if bundle {
            self.bundles.push(bundle_map(o));
        }
        let res = self.plan.res.len() as u32;
        self.plan.res.push(Res {
            rtype: rtype.clone(),
            id: o.get("id").and_then(Value::as_str).map(str::to_owned),
            id_op: None,
            id_final: None,
            labels: 0,
        });
        let root_type = types::resource_root(&rtype);
        let mut states = Vec::new();
        for (i, r) in self.schema().rules.iter().enumerate() {
            let ok = match r.path.root() {
                path::Root::Type(t) => *t == rtype,
                path::Root::AnyResource => true,
                path::Root::Json => false,
            };
            if ok && !self.c.is_floating(i) {
                states.push(St {
                    rule: i as u16,
                    pos: 0,
                });
            }
        }
        let root = Value::Object(std::mem::take(o));
        let states = self.resolve(&root, Some(root_type), &states, &rtype);
        let Value::Object(mut m) = root else {
            return Ok(());
        };
        let eff = matched(self, &states, DEFAULT_RULE);
        let here = Here {
            res,
            subject: subject.as_ref(),
            contained,
            depth,
        };
        // Paths in encryption contexts start at this resource.
        let saved_path = std::mem::take(&mut self.path);
        let mut err = None;
        m.retain(|k, v| {
            if err.is_some() || k == "resourceType" {
                return true;
            }
            match self.member(k, v, Some(root_type), &states, eff, &here, depth + 1) {
                Ok(keep) => keep,
                Err(e) => {
                    err = Some(e);
                    true
                }
            }
        });
        *o = m;
        self.path = saved_path;
        if bundle {
            self.bundles.pop();
        }
        let fin = o
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| *s != MARK)
            .map(str::to_owned);
        self.plan.res[res as usize].id_final = fin;
        err.map_or(Ok(()), Err)
    }

    /// The patient of a resource: a Patient's id, else its `subject` or `patient` reference
    /// to a Patient.
    fn subject_of(
        &self,
        o: &Map<String, Value>,
        rtype: &str,
        entry_url: Option<&str>,
    ) -> Option<Arc<str>> {
        if rtype == "Patient" {
            // A Bundle's Patient without an id is known by its entry's fullUrl, as the
            // `urn:uuid` references to it are.
            return o
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .or(entry_url)
                .map(Arc::from);
        }
        for key in ["subject", "patient"] {
            let Some(r) = o
                .get(key)
                .and_then(|v| v.get("reference"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            if r.starts_with("urn:uuid:") {
                for map in self.bundles.iter().rev() {
                    if let Some((t, id)) = map.get(r)
                        && t == "Patient"
                    {
                        return Some(Arc::from(id.as_deref().unwrap_or(r)));
                    }
                }
                continue;
            }
            if let Some(Parsed::Relative(t, id)) = parse_reference(r)
                && t == "Patient"
            {
                return Some(Arc::from(id));
            }
        }
        None
    }

    /// Path states at a node: `where` filters applied, `nodesByType` matched against the
    /// node's own type, and the rules that start with `nodesByType` of this type (kept out
    /// of the carried states: they could match anywhere) started here.
    fn resolve(&self, node: &Value, ty: Option<&str>, incoming: &[St], rtype: &str) -> Vec<St> {
        let mut out = Vec::new();
        for st in incoming {
            self.resolve_one(node, ty, *st, &mut out);
        }
        if let Some(rules) = ty.and_then(|t| self.c.floating.get(t)) {
            for &r in rules {
                let ok = match self.schema().rules[r as usize].path.root() {
                    path::Root::Type(t) => t == rtype,
                    path::Root::AnyResource => !rtype.is_empty(),
                    path::Root::Json => false,
                };
                if ok {
                    self.resolve_one(node, ty, St { rule: r, pos: 1 }, &mut out);
                }
            }
        }
        out
    }

    fn resolve_one(&self, node: &Value, ty: Option<&str>, mut st: St, out: &mut Vec<St>) {
        let steps = self.schema().rules[st.rule as usize].path.steps();
        loop {
            match steps.get(st.pos as usize) {
                Some(path::Step::Where { path, value }) => {
                    if !where_eq(node, path, value) {
                        return;
                    }
                    st.pos += 1;
                }
                Some(path::Step::NodesByType(t)) => {
                    out.push(st);
                    if ty != Some(t.as_str()) {
                        return;
                    }
                    st.pos += 1;
                }
                _ => {
                    out.push(st);
                    return;
                }
            }
        }
    }

    /// The states of a child element `name` (of type `ty`) of a node in `states`.
    fn advance(&self, states: &[St], name: &str) -> Vec<St> {
        let rules = &self.schema().rules;
        let mut out = Vec::new();
        for st in states {
            let steps = rules[st.rule as usize].path.steps();
            match steps.get(st.pos as usize) {
                Some(path::Step::Child(n)) if path::name_matches(n, name) => out.push(St {
                    rule: st.rule,
                    pos: st.pos + 1,
                }),
                Some(path::Step::NodesByType(_)) => out.push(*st),
                _ => {}
            }
        }
        out
    }

    /// Plans member `k` of an object; returns whether it stays.
    #[allow(clippy::too_many_arguments)]
    fn member(
        &mut self,
        k: &str,
        v: &mut Value,
        parent: Option<&str>,
        states: &[St],
        inherited: u16,
        here: &Here<'_>,
        depth: usize,
    ) -> Result<bool> {
        let ty = types::child_type(parent, k);
        let child = self.advance(states, k);
        if self.c.track_paths {
            self.path.push(k.to_owned());
        }
        let r = self.value(v, k, ty, &child, inherited, here, depth);
        if self.c.track_paths {
            self.path.pop();
        }
        r
    }

    /// Plans a value reached as element `name` (arrays: each item); returns whether it stays.
    #[allow(clippy::too_many_arguments)]
    fn value(
        &mut self,
        v: &mut Value,
        name: &str,
        ty: Option<&'static str>,
        states: &[St],
        inherited: u16,
        here: &Here<'_>,
        depth: usize,
    ) -> Result<bool> {
        if depth > MAX_DEPTH {
            return Err(Error::invalid(
                "document",
                "is nested more than 128 levels deep",
            ));
        }
        if let Value::Array(items) = v {
            let mut err = None;
            // Items are numbered by their place in the output (removed ones not counted), the
            // place re-identification sees.
            let mut kept = 0usize;
            items.retain_mut(|item| {
                if err.is_some() {
                    return true;
                }
                if self.c.track_paths {
                    self.path.push(format!("[{kept}]"));
                }
                let r = self.node(item, name, ty, states, inherited, here, depth + 1);
                if self.c.track_paths {
                    self.path.pop();
                }
                match r {
                    Ok(keep) => {
                        kept += usize::from(keep);
                        keep
                    }
                    Err(e) => {
                        err = Some(e);
                        true
                    }
                }
            });
            if let Some(e) = err {
                return Err(e);
            }
            return Ok(!items.is_empty());
        }
        self.node(v, name, ty, states, inherited, here, depth)
    }

    /// Plans one node (not an array); returns whether it stays.
    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        v: &mut Value,
        name: &str,
        ty: Option<&'static str>,
        states: &[St],
        inherited: u16,
        here: &Here<'_>,
        depth: usize,
    ) -> Result<bool> {
        // A nested resource (a Bundle entry's, a contained one) follows its own rules.
        if let Value::Object(o) = v
            && is_nested_resource(name, o)
        {
            self.resource(o, here.subject, name == "contained", depth)?;
            return Ok(true);
        }
        let states = self.resolve(v, ty, states, &self.plan.res[here.res as usize].rtype);
        let mut eff = matched(self, &states, inherited);
        let reid = self.c.mode != Mode::Deid;
        let fhir = !self.plan.res[here.res as usize].rtype.is_empty();
        if !reid && fhir && self.schema().redact_free_text && is_free_text(name, ty) {
            eff = FREE_TEXT_RULE;
            if !matches!(v, Value::Object(o) if holds_resources(o)) {
                self.count(eff, here, REDACTED);
                return Ok(false);
            }
        }
        let action = self.action(eff);
        match v {
            Value::Object(o) => {
                if !reid {
                    match &action {
                        Act::Redact(None)
                            if !holds_resources(o) && live(self, &states, eff) == 0 =>
                        {
                            self.count(eff, here, REDACTED);
                            return Ok(false);
                        }
                        Act::Redact(Some(Partial::Age)) => {
                            if o.values().any(holds_mark) {
                                return Err(Error::invalid("document", "holds a reserved string"));
                            }
                            self.count(eff, here, REDACTED);
                            return Ok(age_object(o));
                        }
                        Act::Substitute(s) => {
                            self.count(eff, here, MASKED);
                            *v = (*s).clone();
                            return Ok(true);
                        }
                        _ => {}
                    }
                }
                let saved_url = self.entry_url.take();
                if o.get("resource").is_some_and(Value::is_object) {
                    self.entry_url = o.get("fullUrl").and_then(Value::as_str).map(str::to_owned);
                }
                let mut err = None;
                o.retain(|k, child| {
                    if err.is_some() {
                        return true;
                    }
                    match self.member(k, child, ty, &states, eff, here, depth + 1) {
                        Ok(keep) => keep,
                        Err(e) => {
                            err = Some(e);
                            true
                        }
                    }
                });
                self.entry_url = saved_url;
                if let Some(e) = err {
                    return Err(e);
                }
                Ok(!o.is_empty() && !is_bare_extension(name, o))
            }
            Value::Array(_) => self.value(v, name, ty, &states, eff, here, depth),
            _ => self.leaf(v, name, ty, eff, action, here, depth),
        }
    }

    /// The action of an effective rule number.
    fn action(&self, eff: u16) -> Act<'s> {
        match eff {
            FREE_TEXT_RULE => Act::Redact(None),
            DEFAULT_RULE => match self.schema().default {
                DefaultAction::Keep => Act::Keep,
                DefaultAction::Redact => Act::Redact(None),
            },
            r => Act::Rule(r),
        }
        .resolve(self.c.schema)
    }

    fn count(&mut self, rule: u16, here: &Here<'_>, label: u8) {
        let i = counts_index(self.c, rule);
        self.plan.counts[i] += 1;
        self.plan.res[here.res as usize].labels |= label;
    }

    /// Plans a leaf (string, number, boolean, null); returns whether it stays.
    /// [`Planner::leaf_action`], noting the op that rewrites a resource's own id (its
    /// encrypted elements are bound to the id the output holds).
    #[allow(clippy::too_many_arguments)]
    fn leaf(
        &mut self,
        v: &mut Value,
        name: &str,
        ty: Option<&'static str>,
        eff: u16,
        action: Act<'s>,
        here: &Here<'_>,
        depth: usize,
    ) -> Result<bool> {
        let before = self.plan.ops.len();
        let keep = self.leaf_action(v, name, ty, eff, action, here, depth)?;
        let is_id = name == "id" && here.depth.checked_add(1) == Some(depth);
        if is_id && self.plan.ops.len() > before {
            self.plan.res[here.res as usize].id_op = Some(before);
        }
        Ok(keep)
    }

    #[allow(clippy::too_many_arguments)]
    fn leaf_action(
        &mut self,
        v: &mut Value,
        name: &str,
        ty: Option<&'static str>,
        eff: u16,
        action: Act<'s>,
        here: &Here<'_>,
        depth: usize,
    ) -> Result<bool> {
        if v.as_str() == Some(MARK) {
            return Err(Error::invalid("document", "holds a reserved string"));
        }
        if let Mode::Reid(_) = self.c.mode {
            return self.reid_leaf(v, eff, action, here);
        }
        match action {
            Act::Keep | Act::Rule(_) => {
                self.plan.counts[counts_index(self.c, eff)] += 1;
                Ok(true)
            }
            Act::Redact(None) => {
                self.count(eff, here, REDACTED);
                Ok(false)
            }
            Act::Redact(Some(p)) => {
                self.count(eff, here, REDACTED);
                let keep = match p {
                    Partial::Year => partial_year(v, ty, self.c.this_year),
                    Partial::Zip3 => partial_zip(v, &self.schema().restricted_zip3),
                    Partial::Age => partial_age(v),
                };
                Ok(self.noted(keep, eff, here))
            }
            Act::Generalize(g) => {
                self.count(eff, here, MASKED);
                let keep = generalize(v, g);
                Ok(self.noted(keep, eff, here))
            }
            Act::Substitute(s) => {
                self.count(eff, here, MASKED);
                *v = s.clone();
                Ok(true)
            }
            Act::Shift(Some(days)) => {
                self.count(eff, here, MASKED);
                let keep = shift_fixed(v, i64::from(days));
                Ok(self.noted(keep, eff, here))
            }
            Act::Shift(None) => {
                let Some(s) = v.as_str() else {
                    return Ok(self.fail(eff, here));
                };
                let Some((date, tail)) = split_full_date(s) else {
                    return Ok(self.fail(eff, here));
                };
                let Some(subject) = here.subject else {
                    return Ok(self.fail(eff, here));
                };
                let kind = OpKind::ShiftDate(eff, tail.to_owned());
                let date = date.to_owned();
                self.push_op(v, kind, eff, date, Some(subject.clone()), here, MASKED);
                Ok(true)
            }
            Act::Token | Act::Pseudonym => {
                let Some(s) = v.as_str() else {
                    return Ok(self.fail(eff, here));
                };
                if s.is_empty() {
                    return Ok(self.fail(eff, here));
                }
                let s = s.to_owned();
                self.push_op(
                    v,
                    OpKind::Token(eff),
                    eff,
                    s,
                    here.subject.cloned(),
                    here,
                    PSEUDED,
                );
                Ok(true)
            }
            Act::Reference => {
                let is_id = name == "id" && here.depth.checked_add(1) == Some(depth);
                self.reference(v, is_id, eff, here)
            }
            Act::Encrypt => {
                let Some(s) = v.as_str() else {
                    return Ok(self.fail(eff, here));
                };
                let s = s.to_owned();
                let kind = OpKind::Encrypt(eff, self.element_path(here));
                self.push_op(v, kind, eff, s, None, here, MASKED);
                Ok(true)
            }
        }
    }

    fn reid_leaf(
        &mut self,
        v: &mut Value,
        eff: u16,
        action: Act<'s>,
        here: &Here<'_>,
    ) -> Result<bool> {
        let Some(s) = v.as_str() else {
            return Ok(true);
        };
        match action {
            Act::Token => {
                let s = s.to_owned();
                self.push_op(v, OpKind::Detoken(eff), eff, s, None, here, 0);
            }
            Act::Encrypt if s.starts_with("pv1:") && self.c.mode == Mode::Reid(View::Plaintext) => {
                let s = s.to_owned();
                let kind = OpKind::Decrypt(self.element_path(here));
                self.push_op(v, kind, eff, s, None, here, 0);
            }
            Act::Shift(Some(days)) => {
                let i = counts_index(self.c, eff);
                self.plan.counts[i] += 1;
                // Not a full date (or shifted out of range): left as it was, counted.
                if !shift_fixed(v, -i64::from(days)) {
                    self.plan.failed[i] += 1;
                }
            }
            _ => {}
        }
        Ok(true)
    }

    /// The element's path in its resource (`Observation.note[0].text`).
    fn element_path(&self, here: &Here<'_>) -> String {
        let mut p = self.plan.res[here.res as usize].rtype.clone();
        for seg in &self.path {
            if !seg.starts_with('[') {
                p.push('.');
            }
            p.push_str(seg);
        }
        p
    }

    /// A reference-action leaf: a resource id or a reference value.
    fn reference(&mut self, v: &mut Value, is_id: bool, eff: u16, here: &Here<'_>) -> Result<bool> {
        let Some(s) = v.as_str() else {
            return Ok(self.fail(eff, here));
        };
        let res = &self.plan.res[here.res as usize];
        if is_id {
            if here.contained {
                self.plan.counts[counts_index(self.c, eff)] += 1;
                return Ok(true);
            }
            let value = format!("{}/{}", res.rtype, s);
            self.push_op(
                v,
                OpKind::Reference(eff, RefForm::Id),
                eff,
                value,
                None,
                here,
                PSEUDED,
            );
            return Ok(true);
        }
        match parse_reference(s) {
            Some(Parsed::Local) | Some(Parsed::TypeOnly) => {
                self.plan.counts[counts_index(self.c, eff)] += 1;
                Ok(true)
            }
            Some(Parsed::Relative(t, id)) => {
                let value = format!("{t}/{id}");
                self.push_op(
                    v,
                    OpKind::Reference(eff, RefForm::Relative(t.to_owned())),
                    eff,
                    value,
                    None,
                    here,
                    PSEUDED,
                );
                Ok(true)
            }
            Some(Parsed::Uuid) => {
                let value = s.to_ascii_lowercase();
                self.push_op(
                    v,
                    OpKind::Reference(eff, RefForm::Uuid),
                    eff,
                    value,
                    None,
                    here,
                    PSEUDED,
                );
                Ok(true)
            }
            None => Ok(self.fail(eff, here)),
        }
    }

    /// Counts a local action that could not apply (its element is removed) as failed.
    fn noted(&mut self, keep: bool, eff: u16, here: &Here<'_>) -> bool {
        if !keep {
            self.plan.failed[counts_index(self.c, eff)] += 1;
            self.plan.res[here.res as usize].labels |= REDACTED;
        }
        keep
    }

    /// An element the action cannot apply to: removed (fail closed) and counted.
    fn fail(&mut self, eff: u16, here: &Here<'_>) -> bool {
        let i = counts_index(self.c, eff);
        self.plan.counts[i] += 1;
        self.plan.failed[i] += 1;
        self.plan.res[here.res as usize].labels |= REDACTED;
        false
    }

    #[allow(clippy::too_many_arguments)]
    fn push_op(
        &mut self,
        v: &mut Value,
        kind: OpKind,
        rule: u16,
        value: String,
        subject: Option<Arc<str>>,
        here: &Here<'_>,
        label: u8,
    ) {
        self.plan.counts[counts_index(self.c, rule)] += 1;
        self.plan.res[here.res as usize].labels |= label;
        self.plan.ops.push(Op {
            kind,
            rule,
            value,
            subject,
            resource: here.res,
        });
        *v = Value::String(MARK.to_owned());
    }
}

/// The action of a rule, borrowed from the schema.
#[derive(Clone, Copy)]
enum Act<'a> {
    Rule(u16),
    Keep,
    Redact(Option<Partial>),
    Generalize(Generalize),
    Substitute(&'a Value),
    Shift(Option<i32>),
    Token,
    Pseudonym,
    Reference,
    Encrypt,
}

impl<'s> Act<'s> {
    fn resolve(self, schema: &'s Schema) -> Act<'s> {
        let Act::Rule(r) = self else {
            return match self {
                Act::Keep => Act::Keep,
                Act::Redact(p) => Act::Redact(p),
                _ => Act::Keep,
            };
        };
        match &schema.rules[r as usize].action {
            Action::Keep => Act::Keep,
            Action::Redact(p) => Act::Redact(*p),
            Action::Tokenize(_) => Act::Token,
            Action::Pseudonym(_) => Act::Pseudonym,
            Action::Reference(_) => Act::Reference,
            Action::DateShift { offset_days, .. } => Act::Shift(*offset_days),
            Action::Encrypt(_) => Act::Encrypt,
            Action::Generalize(g) => Act::Generalize(*g),
            Action::Substitute(v) => Act::Substitute(v),
        }
    }
}

/// The first rule among completed states, or `inherited` if it comes first.
fn matched(p: &Planner<'_, '_>, states: &[St], inherited: u16) -> u16 {
    let rules = &p.schema().rules;
    states
        .iter()
        .filter(|s| s.pos as usize == rules[s.rule as usize].path.steps().len())
        .map(|s| s.rule)
        .chain(std::iter::once(inherited))
        .filter(|r| *r != DEFAULT_RULE)
        .min()
        .unwrap_or(DEFAULT_RULE)
}

/// How many states of rules before `eff` can still match below a node (only those can
/// override the node's own rule there).
fn live(p: &Planner<'_, '_>, states: &[St], eff: u16) -> usize {
    let rules = &p.schema().rules;
    let floating = usize::from(p.c.first_floating < eff);
    floating
        + states
            .iter()
            .filter(|s| {
                s.rule < eff && (s.pos as usize) < rules[s.rule as usize].path.steps().len()
            })
            .count()
}

/// A resource inside another (a Bundle entry's, a contained one, an outcome).
fn is_nested_resource(name: &str, o: &Map<String, Value>) -> bool {
    matches!(name, "resource" | "contained" | "outcome")
        && o.get("resourceType").is_some_and(Value::is_string)
}

fn holds_resources(o: &Map<String, Value>) -> bool {
    o.contains_key("resource") || o.contains_key("contained") || o.contains_key("entry")
}

/// Free text: narratives, annotations, notes, comments and instructions.
fn is_free_text(name: &str, ty: Option<&str>) -> bool {
    matches!(ty, Some("Narrative" | "Annotation" | "markdown" | "xhtml"))
        || matches!(
            name,
            "text" if ty == Some("Narrative")
        )
        || matches!(
            name,
            "note" | "comment" | "comments" | "patientInstruction" | "conclusion" | "description"
        )
}

/// Whether a value holds the reserved marker anywhere.
fn holds_mark(v: &Value) -> bool {
    match v {
        Value::String(s) => s == MARK,
        Value::Array(a) => a.iter().any(holds_mark),
        Value::Object(o) => o.values().any(holds_mark),
        _ => false,
    }
}

/// An extension left with its url only (its value was removed) is removed too.
fn is_bare_extension(name: &str, o: &Map<String, Value>) -> bool {
    (name == "extension" || name == "modifierExtension") && o.len() == 1 && o.contains_key("url")
}

fn where_eq(node: &Value, path: &[String], lit: &str) -> bool {
    match node {
        Value::Array(items) => items.iter().any(|i| where_eq(i, path, lit)),
        Value::Object(o) => match path.split_first() {
            Some((first, rest)) => o.get(first).is_some_and(|v| where_eq(v, rest, lit)),
            None => false,
        },
        Value::String(s) => path.is_empty() && s == lit,
        _ => false,
    }
}

/// `fullUrl` → (resourceType, id) of a Bundle's entries.
fn bundle_map(o: &Map<String, Value>) -> HashMap<String, (String, Option<String>)> {
    let mut m = HashMap::new();
    if let Some(Value::Array(entries)) = o.get("entry") {
        for e in entries {
            let (Some(url), Some(r)) =
                (e.get("fullUrl").and_then(Value::as_str), e.get("resource"))
            else {
                continue;
            };
            if let Some(t) = r.get("resourceType").and_then(Value::as_str) {
                let id = r.get("id").and_then(Value::as_str).map(str::to_owned);
                m.insert(url.to_owned(), (t.to_owned(), id));
            }
        }
    }
    m
}

/// What a reference value is.
#[derive(Debug, PartialEq, Eq)]
enum Parsed<'a> {
    /// `#id`: a contained resource, local to this one.
    Local,
    /// A resource type alone (a Bundle request's `url` of a create).
    TypeOnly,
    /// `[base/]Type/id[/_history/v]`.
    Relative(&'a str, &'a str),
    /// `urn:uuid:…`.
    Uuid,
}

fn is_type_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_uppercase()
        && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn is_fhir_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn parse_reference(s: &str) -> Option<Parsed<'_>> {
    if s.starts_with('#') {
        return Some(Parsed::Local);
    }
    if let Some(u) = s.strip_prefix("urn:uuid:") {
        return (u.len() == 36 && u.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
            .then_some(Parsed::Uuid);
    }
    if is_type_name(s) {
        return Some(Parsed::TypeOnly);
    }
    // Drop a version suffix, then take the last two segments.
    let s = match s.find("/_history/") {
        Some(i) => &s[..i],
        None => s,
    };
    let mut parts = s.rsplitn(3, '/');
    let id = parts.next()?;
    let t = parts.next()?;
    (is_type_name(t) && is_fhir_id(id)).then_some(Parsed::Relative(t, id))
}

/// `YYYY-MM-DD` and the rest of a full date or dateTime.
fn split_full_date(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' || (b.len() > 10 && b[10] != b'T') {
        return None;
    }
    if !s[10..]
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'T' | b':' | b'.' | b'+' | b'-' | b'Z'))
    {
        return None;
    }
    Some((&s[..10], &s[10..]))
}

/// The year of a date, dateTime or partial date (`YYYY`, `YYYY-MM`, …).
fn year_of(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 4 || !b[..4].iter().all(u8::is_ascii_digit) || (b.len() > 4 && b[4] != b'-') {
        return None;
    }
    s[..4].parse().ok()
}

fn partial_year(v: &mut Value, ty: Option<&str>, this_year: i64) -> bool {
    if ty == Some("instant") {
        return false;
    }
    let Some(year) = v.as_str().and_then(year_of) else {
        return false;
    };
    // A year 90 or more years back may show an age over 89: removed too.
    if this_year - year >= 90 {
        return false;
    }
    *v = Value::String(format!("{year:04}"));
    true
}

fn partial_zip(v: &mut Value, restricted: &[String]) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    let us = (b.len() == 5 || (b.len() == 10 && b[5] == b'-'))
        && b.iter()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || (i == 5 && *c == b'-'));
    if !us {
        return false;
    }
    let three = &s[..3];
    let out = if restricted.iter().any(|r| r == three) {
        "000"
    } else {
        three
    };
    *v = Value::String(out.to_owned());
    true
}

/// Caps a number at 90 when it is over 89; strings holding a number likewise (`"90+"`).
fn partial_age(v: &mut Value) -> bool {
    match v {
        Value::Number(n) => {
            if n.as_f64().is_some_and(|x| x > 89.0) {
                *v = Value::from(90);
            }
            true
        }
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(x) if x > 89.0 => {
                *s = "90+".into();
                true
            }
            Ok(_) => true,
            Err(_) => false,
        },
        _ => false,
    }
}

/// An `Age` over 89 years becomes `>= 90 a`; an age in another unit is converted first.
/// Returns whether the object stays.
fn age_object(o: &mut Map<String, Value>) -> bool {
    let Some(value) = o.get("value").and_then(Value::as_f64) else {
        // No value: nothing to cap; the unit alone says nothing.
        return true;
    };
    let per_year = match o.get("code").and_then(Value::as_str) {
        Some("mo") => 12.0,
        Some("wk") => 52.1775,
        Some("d") => 365.25,
        Some("h") => 8766.0,
        Some("min") => 525_960.0,
        _ => 1.0,
    };
    if value / per_year > 89.0 {
        o.insert("value".into(), Value::from(90));
        o.insert("comparator".into(), Value::from(">="));
        o.insert("unit".into(), Value::from("years"));
        o.insert("system".into(), Value::from("http://unitsofmeasure.org"));
        o.insert("code".into(), Value::from("a"));
    }
    true
}

fn generalize(v: &mut Value, g: Generalize) -> bool {
    match (g, &*v) {
        (Generalize::DatePrecision(n), Value::String(s)) => {
            if year_of(s).is_none() {
                return false;
            }
            if s.len() > n {
                // Not a character boundary there: not a date either.
                let Some(cut) = s.get(..n) else {
                    return false;
                };
                *v = Value::String(cut.to_owned());
            }
            true
        }
        (Generalize::Bucket(b), Value::Number(n)) => match n.as_f64() {
            Some(x) => {
                let y = (x / b).floor() * b;
                *v = if y.fract() == 0.0 && y.abs() < 9.0e15 {
                    Value::from(y as i64)
                } else {
                    serde_json::Number::from_f64(y).map_or(Value::Null, Value::Number)
                };
                !v.is_null()
            }
            None => false,
        },
        (Generalize::Truncate(n), Value::String(s)) => {
            if let Some((i, _)) = s.char_indices().nth(n) {
                let cut = s[..i].to_owned();
                *v = Value::String(cut);
            }
            true
        }
        _ => false,
    }
}

/// Moves a full date or dateTime by `days` (a partial date is removed).
fn shift_fixed(v: &mut Value, days: i64) -> bool {
    let Some((date, tail)) = v.as_str().and_then(split_full_date) else {
        return false;
    };
    let Ok(d) = crate::tokens::dateshift::parse(date) else {
        return false;
    };
    match crate::tokens::dateshift::format(d + days) {
        Ok(s) => {
            *v = Value::String(format!("{s}{tail}"));
            true
        }
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------
// Phase 2: the vault.

/// Results of the ops of a batch: the new text, or `None` to remove the element.
pub(crate) fn run_ops(
    session: &Session<'_>,
    c: &Compiled<'_>,
    plans: &mut [&mut Plan],
) -> Result<Vec<Vec<Option<String>>>> {
    let mut results: Vec<Vec<Option<String>>> =
        plans.iter().map(|p| vec![None; p.ops.len()]).collect();
    // Group ops: (group, plan index, op index).
    // One group (one session call: one policy decision and audit entry) per field, then per
    // keyring; tokens, references and dates first, encryption after (it binds final ids).
    let mut groups: HashMap<(u8, &str), Vec<(usize, usize)>> = HashMap::new();
    for (pi, p) in plans.iter().enumerate() {
        for (oi, op) in p.ops.iter().enumerate() {
            let key = match &op.kind {
                OpKind::Token(r)
                | OpKind::Detoken(r)
                | OpKind::Reference(r, _)
                | OpKind::ShiftDate(r, _) => (0, c.names[*r as usize].as_str()),
                OpKind::Encrypt(r, _) => (1, c.names[*r as usize].as_str()),
                OpKind::Decrypt(_) => (2, ""),
            };
            groups.entry(key).or_default().push((pi, oi));
        }
    }
    let tokens = &session.vault().tokens;
    // Tokens re-identification could not resolve (left as they are): (plan, rule).
    let mut unresolved: Vec<(usize, u16)> = Vec::new();
    let mut keys: Vec<(u8, &str)> = groups.keys().copied().collect();
    keys.sort_unstable();
    for key in &keys {
        let members = &groups[key];
        match key.0 {
            0 => {
                let field = key.1;
                let spec = tokens.field(field)?;
                let kind = spec.spec.kind;
                let subject_bound = spec.spec.subject;
                let mut checked: Vec<u16> = Vec::new();
                for (p, o) in members {
                    let rule = plans[*p].ops[*o].rule;
                    if !checked.contains(&rule) {
                        check_field_kind(c, rule, kind, subject_bound)?;
                        checked.push(rule);
                    }
                }
                let reid = c.mode != Mode::Deid;
                if reid && kind == TokenKind::Pseudonym {
                    // One-way: left as they are.
                    for (p, o) in members {
                        results[*p][*o] = Some(plans[*p].ops[*o].value.clone());
                    }
                    continue;
                }
                let values: Vec<&str> = members
                    .iter()
                    .map(|(p, o)| plans[*p].ops[*o].value.as_str())
                    .collect();
                let out: Vec<Result<String>> = if subject_bound {
                    // Only rows with a patient; the others fail their own element.
                    let with: Vec<usize> = (0..members.len())
                        .filter(|i| {
                            let (p, o) = members[*i];
                            plans[p].ops[o].subject.is_some()
                        })
                        .collect();
                    let vals: Vec<&str> = with.iter().map(|i| values[*i]).collect();
                    let subs: Vec<&str> = with
                        .iter()
                        .map(|i| {
                            let (p, o) = members[*i];
                            plans[p].ops[o].subject.as_deref().unwrap_or("")
                        })
                        .collect();
                    let made = if vals.is_empty() {
                        Vec::new()
                    } else if let Mode::Reid(view) = c.mode {
                        session
                            .detokenize_rows_for_subjects(field, &vals, &subs, view)?
                            .into_iter()
                            .map(|r| r.map(|z| z.to_string()))
                            .collect()
                    } else {
                        session.tokenize_rows_for_subjects(field, &vals, &subs)?
                    };
                    let mut all: Vec<Result<String>> = (0..members.len())
                        .map(|_| {
                            Err(Error::SubjectRequired {
                                field: field.to_owned(),
                            })
                        })
                        .collect();
                    for (i, r) in with.into_iter().zip(made) {
                        all[i] = r;
                    }
                    all
                } else if let Mode::Reid(view) = c.mode {
                    session
                        .detokenize_rows(field, &values, view)?
                        .into_iter()
                        .map(|r| r.map(|z| z.to_string()))
                        .collect()
                } else {
                    session.tokenize_rows(field, &values)?
                };
                if out.len() != members.len() {
                    return Err(Error::Crypto(
                        "tokenization returned another number of tokens",
                    ));
                }
                for ((p, o), r) in members.iter().zip(out) {
                    let op = &plans[*p].ops[*o];
                    if reid && r.is_err() {
                        unresolved.push((*p, op.rule));
                    }
                    let text = match (r, &op.kind) {
                        (Ok(t), OpKind::Reference(_, form)) => Some(ref_text(form, &t)),
                        (Ok(t), OpKind::ShiftDate(_, tail)) => Some(format!("{t}{tail}")),
                        (Ok(t), _) => Some(t),
                        // Re-identification leaves a value it cannot resolve as it is.
                        (Err(_), _) if reid => Some(op.value.clone()),
                        (Err(_), _) => None,
                    };
                    results[*p][*o] = text;
                }
            }
            1 => {
                let keyring = key.1;
                let mut ctxs = Vec::with_capacity(members.len());
                for (p, o) in members {
                    let op = &plans[*p].ops[*o];
                    let OpKind::Encrypt(_, path) = &op.kind else {
                        continue;
                    };
                    ctxs.push(element_context(plans[*p], &results[*p], op.resource, path));
                }
                let items: Vec<(&[u8], &Context)> = members
                    .iter()
                    .zip(&ctxs)
                    .map(|((p, o), ctx)| (plans[*p].ops[*o].value.as_bytes(), ctx))
                    .collect();
                let sealed = session.encrypt_in_contexts(&items, keyring)?;
                for ((p, o), env) in members.iter().zip(sealed) {
                    results[*p][*o] = Some(crate::envelope::to_text(&env)?);
                }
            }
            _ => {
                let mut ctxs = Vec::with_capacity(members.len());
                for (p, o) in members {
                    let op = &plans[*p].ops[*o];
                    let OpKind::Decrypt(path) = &op.kind else {
                        continue;
                    };
                    let res = &plans[*p].res[op.resource as usize];
                    ctxs.push(context_of(
                        &res.rtype,
                        res.id.as_deref().unwrap_or(""),
                        path,
                    ));
                }
                let items: Vec<(&[u8], &Context)> = members
                    .iter()
                    .zip(&ctxs)
                    .map(|((p, o), ctx)| (plans[*p].ops[*o].value.as_bytes(), ctx))
                    .collect();
                let opened = session.decrypt_in_contexts(&items)?;
                for ((p, o), plain) in members.iter().zip(opened) {
                    let text = String::from_utf8(plain.to_vec())
                        .map_err(|_| Error::AuthenticationFailed)?;
                    results[*p][*o] = Some(text);
                }
            }
        }
    }
    for (p, rule) in unresolved {
        plans[p].failed[counts_index(c, rule)] += 1;
    }
    // Failed ops are counted against their rule, and their resource is labelled redacted.
    for (p, res) in plans.iter_mut().zip(&results) {
        let Plan {
            ops,
            res: infos,
            failed,
            ..
        } = &mut **p;
        for (op, r) in ops.iter().zip(res) {
            if r.is_none() {
                failed[counts_index(c, op.rule)] += 1;
                if let Some(info) = infos.get_mut(op.resource as usize) {
                    info.labels |= REDACTED;
                }
            }
        }
    }
    Ok(results)
}

/// The rule's field must be of a kind its action can use.
fn check_field_kind(c: &Compiled<'_>, rule: u16, kind: TokenKind, subject: bool) -> Result<()> {
    let ok = match &c.schema.rules[rule as usize].action {
        Action::Pseudonym(_) => kind == TokenKind::Pseudonym,
        Action::Reference(_) => kind != TokenKind::DateShift && !subject,
        Action::DateShift { .. } => kind == TokenKind::DateShift,
        Action::Tokenize(_) => kind != TokenKind::DateShift,
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::DeidSchema {
            rule: rule as usize + 1,
            position: 0,
            why: "the rule's field is not of a kind its action can use",
        })
    }
}

fn context_of(rtype: &str, id: &str, path: &str) -> Context {
    Context::new()
        .with("fhir.resource", rtype)
        .with("fhir.id", id)
        .with("fhir.path", path)
}

/// The context of an encrypted element: its resource's type and final id, and its path.
fn element_context(plan: &Plan, results: &[Option<String>], res: u32, path: &str) -> Context {
    let r = &plan.res[res as usize];
    let id = match r.id_op {
        Some(i) => results.get(i).cloned().flatten(),
        None => r.id_final.clone(),
    };
    context_of(&r.rtype, id.as_deref().unwrap_or(""), path)
}

/// A token as an id (FHIR ids allow `-` and `.`, not `_`) or in a reference.
fn ref_text(form: &RefForm, token: &str) -> String {
    let id = token.replace('_', "-");
    match form {
        RefForm::Id => id,
        RefForm::Relative(t) => format!("{t}/{id}"),
        RefForm::Uuid => format!("urn:uuid:{}", uuid_of(token)),
    }
}

/// A version-8 UUID of the token: the first 16 bytes of its SHA-256 (the token is already a
/// keyed value; the hash only gives it the UUID's shape).
fn uuid_of(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

// ---------------------------------------------------------------------------------------
// Phase 3: apply.

/// Puts the ops' results in place (phase 3), removes what failed and what is left empty, and
/// adds the security labels. `results` are this document's, in op order.
pub(crate) fn apply(
    c: &Compiled<'_>,
    plan: &Plan,
    results: &[Option<String>],
    doc: &mut Value,
) -> Result<()> {
    let mut a = Applier {
        results,
        next: 0,
        res: 0,
        plan,
        labels: c.schema.security_labels && c.mode == Mode::Deid,
    };
    let resource = doc
        .as_object()
        .is_some_and(|o| o.get("resourceType").is_some_and(Value::is_string));
    if resource {
        if let Value::Object(o) = doc {
            a.resource(o);
        }
    } else if !a.value(doc, "") {
        *doc = Value::Object(Map::new());
    }
    if a.next != results.len() {
        return Err(Error::Crypto("de-identification lost track of its values"));
    }
    Ok(())
}

struct Applier<'r> {
    results: &'r [Option<String>],
    next: usize,
    res: usize,
    plan: &'r Plan,
    labels: bool,
}

impl Applier<'_> {
    fn resource(&mut self, o: &mut Map<String, Value>) {
        let me = self.res;
        self.res += 1;
        o.retain(|k, v| k == "resourceType" || self.value(v, k));
        if self.labels {
            add_labels(o, self.plan.res.get(me).map_or(0, |r| r.labels));
        }
    }

    /// The same walk as the planner's: members in key order, items in index order.
    fn value(&mut self, v: &mut Value, name: &str) -> bool {
        if let Value::Array(items) = v {
            items.retain_mut(|item| self.node(item, name));
            return !items.is_empty();
        }
        self.node(v, name)
    }

    fn node(&mut self, v: &mut Value, name: &str) -> bool {
        match v {
            Value::Object(o) if is_nested_resource(name, o) => {
                self.resource(o);
                true
            }
            Value::Object(o) => {
                o.retain(|k, child| self.value(child, k));
                !o.is_empty() && !is_bare_extension(name, o)
            }
            Value::String(s) if s == MARK => {
                let r = self.results.get(self.next).cloned().flatten();
                self.next += 1;
                match r {
                    Some(t) => {
                        *s = t;
                        true
                    }
                    None => false,
                }
            }
            _ => true,
        }
    }
}

/// Adds the labels of `bits` to `meta.security` (once each).
fn add_labels(o: &mut Map<String, Value>, bits: u8) {
    if bits == 0 {
        return;
    }
    let meta = o.entry("meta").or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(meta) = meta else {
        return;
    };
    let sec = meta
        .entry("security")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(sec) = sec else {
        return;
    };
    for (bit, code, display) in LABELS {
        if bits & bit == 0 {
            continue;
        }
        let present = sec.iter().any(|c| {
            c.get("system").and_then(Value::as_str) == Some(SECURITY_SYSTEM)
                && c.get("code").and_then(Value::as_str) == Some(code)
        });
        if !present {
            sec.push(serde_json::json!({
                "system": SECURITY_SYSTEM, "code": code, "display": display
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        assert_eq!(
            parse_reference("Patient/123"),
            Some(Parsed::Relative("Patient", "123"))
        );
        assert_eq!(
            parse_reference("https://h.example/fhir/Patient/1.2-3/_history/4"),
            Some(Parsed::Relative("Patient", "1.2-3"))
        );
        assert_eq!(parse_reference("#c1"), Some(Parsed::Local));
        assert_eq!(parse_reference("Patient"), Some(Parsed::TypeOnly));
        assert_eq!(
            parse_reference("urn:uuid:6f0c6a36-6c2e-4c43-9d6b-2a8f2b7a8f11"),
            Some(Parsed::Uuid)
        );
        assert_eq!(parse_reference("Patient?identifier=123"), None);
        assert_eq!(parse_reference("patient/123"), None);
        assert_eq!(parse_reference("Patient/a_b"), None);
    }

    #[test]
    fn partial_values() {
        let mut v = Value::from("2024-03-15T08:30:00Z");
        assert!(partial_year(&mut v, Some("dateTime"), 2026));
        assert_eq!(v, "2024");
        let mut v = Value::from("1930-01-01");
        assert!(!partial_year(&mut v, Some("date"), 2026));
        let mut v = Value::from("1937");
        assert!(partial_year(&mut v, Some("date"), 2026));
        let mut v = Value::from("2024-03-15T08:30:00Z");
        assert!(!partial_year(&mut v, Some("instant"), 2026));
        let mut v = Value::from("not a date");
        assert!(!partial_year(&mut v, Some("date"), 2026));
        let z = |s: &str| {
            let mut v = Value::from(s);
            partial_zip(&mut v, &["036".to_owned()]).then(|| v.as_str().map(str::to_owned))
        };
        assert_eq!(z("12345"), Some(Some("123".into())));
        assert_eq!(z("03601-1234"), Some(Some("000".into())));
        assert_eq!(z("SW1A 1AA"), None);
        let mut age = serde_json::json!({"value": 93, "unit": "years", "code": "a"});
        if let Value::Object(o) = &mut age {
            assert!(age_object(o));
        }
        assert_eq!(age["value"], 90);
        assert_eq!(age["comparator"], ">=");
        let mut months = serde_json::json!({"value": 600, "code": "mo"});
        if let Value::Object(o) = &mut months {
            assert!(age_object(o));
        }
        assert_eq!(months["value"], 600);
    }

    #[test]
    fn fixed_shift_and_generalize() {
        let mut v = Value::from("2024-02-28T10:00:00+01:00");
        assert!(shift_fixed(&mut v, 2));
        assert_eq!(v, "2024-03-01T10:00:00+01:00");
        assert!(shift_fixed(&mut v, -2));
        assert_eq!(v, "2024-02-28T10:00:00+01:00");
        let mut v = Value::from("2024-02");
        assert!(!shift_fixed(&mut v, 2));
        let mut n = Value::from(47.5);
        assert!(generalize(&mut n, Generalize::Bucket(10.0)));
        assert_eq!(n, 40);
        let mut s = Value::from("Älvsjö");
        assert!(generalize(&mut s, Generalize::Truncate(2)));
        assert_eq!(s, "Äl");
        let mut d = Value::from("2024-03-15");
        assert!(generalize(&mut d, Generalize::DatePrecision(7)));
        assert_eq!(d, "2024-03");
        let mut odd = Value::from("2024-0\u{e9}5");
        assert!(!generalize(&mut odd, Generalize::DatePrecision(7)));
    }

    #[test]
    fn uuid_tokens_are_uuids() {
        let u = uuid_of("psn_abcdefghijklmnopqrstuvwxyz");
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "8");
        assert_ne!(u, uuid_of("psn_abcdefghijklmnopqrstuvwxyy"));
    }
}
