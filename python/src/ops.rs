//! The data operations, each written once over [`Who`]: `Vault`'s methods call them as the
//! owner, `Session`'s as the session's caller. Core's `Session` makes the policy decision and
//! the audit entry; this module converts arguments and results and releases the GIL.

use crate::arrow::{self, ArrowIn, Errors, PyBatchReport};
use crate::convert::{self, DETACH_THRESHOLD, run};
use crate::errors::{PvError, PvResult};
use crate::tokens::str_list;
use phivault::policy::Caller;
use phivault::session::Session;
use phivault::tokens::View;
use phivault::{EncryptOptions, Vault};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyBytes;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Whom a call acts as: the vault's owner (`caller` is `None`) or a session's caller.
pub(crate) struct Who {
    vault: Arc<Vault>,
    caller: Option<Caller>,
    /// A job's worker: its audit entries go to the spool after every batch, before the data
    /// is handed back.
    job: bool,
}

impl Who {
    /// `vault.owner()`.
    pub(crate) fn owner(vault: Arc<Vault>) -> Self {
        Who {
            vault,
            caller: None,
            job: false,
        }
    }

    /// A session's caller.
    pub(crate) fn caller(vault: Arc<Vault>, caller: Caller) -> Self {
        Who {
            vault,
            caller: Some(caller),
            job: false,
        }
    }

    /// A job worker's caller (see [`Who::job`]).
    pub(crate) fn job(vault: Arc<Vault>, caller: Caller) -> Self {
        Who {
            vault,
            caller: Some(caller),
            job: true,
        }
    }

    /// After a batch: a job worker's audit entries are written to its spool now.
    pub(crate) fn flushed(&self) -> PvResult<()> {
        if self.job {
            self.vault.audit_flush()?;
        }
        Ok(())
    }

    /// The vault the call acts on.
    pub(crate) fn vault(&self) -> &Vault {
        &self.vault
    }

    pub(crate) fn session(&self) -> Session<'_> {
        match &self.caller {
            None => self.vault.owner(),
            Some(c) => self.vault.session(c.clone()),
        }
    }
}

/// A token view by name.
pub(crate) fn view(name: &str) -> PvResult<View> {
    View::parse(name).ok_or(PvError::Invalid(
        "view must be 'plaintext', 'masked' or 'redacted'",
    ))
}

/// Encryption options from the keyword arguments.
pub(crate) fn encrypt_options(keyring: Option<&str>, deterministic: bool) -> EncryptOptions {
    let mut o = EncryptOptions::new();
    if let Some(k) = keyring {
        o = o.keyring(k);
    }
    if deterministic {
        o = o.deterministic();
    }
    o
}

/// `encrypt` and `encrypt_text`: the binary envelope.
#[allow(clippy::too_many_arguments)] // the Python method's keyword arguments
pub(crate) fn seal(
    who: &Who,
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    context: Option<&Bound<'_, PyAny>>,
    keyring: Option<&str>,
    deterministic: bool,
    subject: Option<&str>,
    text: bool,
) -> PvResult<Vec<u8>> {
    let data = convert::data(data, "data")?;
    let ctx = convert::context(context)?;
    let opts = encrypt_options(keyring, deterministic);
    // Small values: the GIL release costs more than the work.
    let big = data.len() >= DETACH_THRESHOLD || subject.is_some();
    run(py, big, || {
        let s = who.session();
        let bin = match subject {
            Some(sub) => s.encrypt_for_subject(&data, &ctx, sub, &opts)?,
            None => s.encrypt_with(&data, &ctx, &opts)?,
        };
        Ok(if text {
            phivault::envelope::to_text(&bin)?.into_bytes()
        } else {
            bin
        })
    })
}

/// `decrypt`.
pub(crate) fn decrypt<'py>(
    who: &Who,
    py: Python<'py>,
    envelope: &Bound<'py, PyAny>,
    context: Option<&Bound<'py, PyAny>>,
) -> PvResult<Bound<'py, PyBytes>> {
    let env = convert::data(envelope, "envelope")?;
    let ctx = convert::context(context)?;
    let big = env.len() >= DETACH_THRESHOLD;
    let pt = run(py, big, || Ok(who.session().decrypt(&env, &ctx)?))?;
    Ok(PyBytes::new(py, &pt))
}

/// `put`.
pub(crate) fn put(
    who: &Who,
    py: Python<'_>,
    collection: &str,
    id: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    subject: Option<&str>,
    keyring: Option<&str>,
) -> PvResult<()> {
    let id = convert::text(id, "id")?;
    let data = convert::data(data, "data")?;
    run(py, true, || {
        Ok(who.session().put_with(
            collection,
            &id,
            &data,
            &phivault::records::PutOptions { subject, keyring },
        )?)
    })
}

/// `get`.
pub(crate) fn get<'py>(
    who: &Who,
    py: Python<'py>,
    collection: &str,
    id: &Bound<'py, PyAny>,
) -> PvResult<Option<Bound<'py, PyBytes>>> {
    let id = convert::text(id, "id")?;
    let pt = run(py, true, || Ok(who.session().get(collection, &id)?))?;
    Ok(pt.map(|pt| PyBytes::new(py, &pt)))
}

/// `delete`.
pub(crate) fn delete(
    who: &Who,
    py: Python<'_>,
    collection: &str,
    id: &Bound<'_, PyAny>,
) -> PvResult<bool> {
    let id = convert::text(id, "id")?;
    run(py, true, || Ok(who.session().delete(collection, &id)?))
}

/// `tokenize`.
pub(crate) fn tokenize(
    who: &Who,
    py: Python<'_>,
    value: &Bound<'_, PyAny>,
    field: &str,
    subject: Option<&str>,
) -> PvResult<String> {
    let value = convert::text(value, "value")?;
    run(py, true, || {
        let s = who.session();
        Ok(match subject {
            Some(sub) => s.tokenize_for_subject(field, &value, sub)?,
            None => s.tokenize(field, &value)?,
        })
    })
}

/// The present values of a list-like batch (`None` skipped) and the position of each.
fn present<T>(items: &[Option<T>]) -> (Vec<&T>, Vec<usize>) {
    let mut vals = Vec::with_capacity(items.len());
    let mut pos = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        if let Some(v) = it {
            vals.push(v);
            pos.push(i);
        }
    }
    (vals, pos)
}

/// Puts settled values back at their positions in a list of `len` (`None` elsewhere).
fn scatter<T>(len: usize, values: Vec<Option<T>>, positions: &[usize]) -> Vec<Option<T>> {
    let mut out: Vec<Option<T>> = (0..len).map(|_| None).collect();
    for (v, &p) in values.into_iter().zip(positions) {
        if let Some(slot) = out.get_mut(p) {
            *slot = v;
        }
    }
    out
}

/// The subject of every row of a batch of `len` rows: one `str` for all, or a batch (Arrow or
/// list) of the same length; `None` where a row has none.
fn row_subjects(obj: &Bound<'_, PyAny>, len: usize) -> PvResult<Vec<Option<String>>> {
    if let Ok(s) = obj.cast::<pyo3::types::PyString>() {
        let s = s.to_str()?.to_owned();
        return Ok(vec![Some(s); len]);
    }
    let out: Vec<Option<String>> = match ArrowIn::of(obj)? {
        Some(input) => {
            let (vals, pos) = arrow::strings(input.chunks(), "subjects")?;
            let mut all = vec![None; input.len()];
            for (v, p) in vals.into_iter().zip(pos) {
                all[p] = Some(v.to_owned());
            }
            all
        }
        None => convert::batch(obj, "subjects", |o| {
            Ok(convert::text(o, "subject")?.to_string())
        })?,
    };
    if out.len() != len {
        return Err(PvError::Invalid(
            "subjects must be one str or a batch as long as the values",
        ));
    }
    Ok(out)
}

/// Per-row outcomes of `f` over the present values that have a subject; a present value
/// without one fails its row with `SubjectRequired`.
fn with_subjects<T>(
    field: &str,
    vals: &[&str],
    pos: &[usize],
    subjects: &[Option<String>],
    f: impl FnOnce(&[&str], &[&str]) -> phivault::Result<Vec<phivault::Result<T>>>,
) -> phivault::Result<Vec<phivault::Result<T>>> {
    let mut v = Vec::with_capacity(vals.len());
    let mut s = Vec::with_capacity(vals.len());
    for (val, &p) in vals.iter().zip(pos) {
        if let Some(Some(sub)) = subjects.get(p) {
            v.push(*val);
            s.push(sub.as_str());
        }
    }
    let mut done = f(&v, &s)?.into_iter();
    vals.iter()
        .zip(pos)
        .map(|(_, &p)| match subjects.get(p) {
            Some(Some(_)) => done.next().ok_or(phivault::Error::Crypto(
                "a subject batch returned too few rows",
            )),
            _ => Ok(Err(phivault::Error::SubjectRequired {
                field: field.to_owned(),
            })),
        })
        .collect()
}

/// `tokenize_many`: Arrow in, Arrow out; otherwise a list (GIL released; `None`/null stays).
/// With `subjects`, each row is tokenized for its own subject.
pub(crate) fn tokenize_many<'py>(
    who: &Who,
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    field: &str,
    subjects: Option<&Bound<'py, PyAny>>,
    errors: &str,
    report: Option<&Bound<'py, PyBatchReport>>,
) -> PvResult<Bound<'py, PyAny>> {
    let errors = Errors::parse(errors)?;
    let tokenize = |vals: &[&str], pos: &[usize], subs: &Option<Vec<Option<String>>>| {
        let s = who.session();
        let r = match subs {
            None => s.tokenize_rows(field, vals)?,
            Some(subs) => with_subjects(field, vals, pos, subs, |v, sb| {
                s.tokenize_rows_for_subjects(field, v, sb)
            })?,
        };
        who.flushed()?;
        Ok(r)
    };
    if let Some(input) = ArrowIn::of(values)? {
        let (vals, pos) = arrow::strings(input.chunks(), "values")?;
        let subs = subjects.map(|o| row_subjects(o, input.len())).transpose()?;
        let outcomes = run(py, true, || tokenize(&vals, &pos, &subs))?;
        let settled = arrow::settle(py, outcomes, &pos, input.len(), errors, report)?;
        return input.answer(py, arrow::string_chunks(input.chunks(), &settled, &pos)?);
    }
    let items: Vec<Option<PyBackedStr>> =
        convert::batch(values, "values", |o| convert::text(o, "value"))?;
    let (vals, pos) = present(&items);
    let subs = subjects.map(|o| row_subjects(o, items.len())).transpose()?;
    let outcomes = run(py, true, || {
        let refs: Vec<&str> = vals.iter().map(|s| &***s).collect();
        tokenize(&refs, &pos, &subs)
    })?;
    let settled = arrow::settle(py, outcomes, &pos, items.len(), errors, report)?;
    Ok(str_list(py, &scatter(items.len(), settled, &pos))?.into_any())
}

/// `detokenize`.
pub(crate) fn detokenize(
    who: &Who,
    py: Python<'_>,
    token: &Bound<'_, PyAny>,
    field: &str,
    subject: Option<&str>,
    view: &str,
) -> PvResult<String> {
    let token = convert::text(token, "token")?;
    let view = self::view(view)?;
    let out = run(py, true, || {
        let s = who.session();
        Ok(match subject {
            Some(sub) => s.detokenize_for_subject(field, &token, sub, view)?,
            None => s.detokenize(field, &token, view)?,
        })
    })?;
    Ok(out.as_str().to_owned())
}

/// `detokenize_many`: Arrow in, Arrow out; otherwise a list (GIL released).
#[allow(clippy::too_many_arguments)] // the Python method's keyword arguments
pub(crate) fn detokenize_many<'py>(
    who: &Who,
    py: Python<'py>,
    tokens: &Bound<'py, PyAny>,
    field: &str,
    subjects: Option<&Bound<'py, PyAny>>,
    view: &str,
    errors: &str,
    report: Option<&Bound<'py, PyBatchReport>>,
) -> PvResult<Bound<'py, PyAny>> {
    let errors = Errors::parse(errors)?;
    let view = self::view(view)?;
    let detokenize = |vals: &[&str], pos: &[usize], subs: &Option<Vec<Option<String>>>| {
        let s = who.session();
        let r = match subs {
            None => s.detokenize_rows(field, vals, view)?,
            Some(subs) => with_subjects(field, vals, pos, subs, |v, sb| {
                s.detokenize_rows_for_subjects(field, v, sb, view)
            })?,
        };
        who.flushed()?;
        Ok(r)
    };
    if let Some(input) = ArrowIn::of(tokens)? {
        let (vals, pos) = arrow::strings(input.chunks(), "tokens")?;
        let subs = subjects.map(|o| row_subjects(o, input.len())).transpose()?;
        let outcomes = run(py, true, || detokenize(&vals, &pos, &subs))?;
        let settled = arrow::settle(py, outcomes, &pos, input.len(), errors, report)?;
        return input.answer(py, arrow::string_chunks(input.chunks(), &settled, &pos)?);
    }
    let items: Vec<Option<PyBackedStr>> =
        convert::batch(tokens, "tokens", |o| convert::text(o, "token"))?;
    let (vals, pos) = present(&items);
    let subs = subjects.map(|o| row_subjects(o, items.len())).transpose()?;
    let outcomes = run(py, true, || {
        let refs: Vec<&str> = vals.iter().map(|s| &***s).collect();
        detokenize(&refs, &pos, &subs)
    })?;
    let settled = arrow::settle(py, outcomes, &pos, items.len(), errors, report)?;
    let out = scatter(items.len(), settled, &pos);
    let out: Vec<Option<&str>> = out.iter().map(|o| o.as_ref().map(|s| s.as_str())).collect();
    Ok(str_list(py, &out)?.into_any())
}

/// `encrypt_many`: one context for every value; Arrow in (binary or string), binary Arrow out
/// (text envelopes with `text`: a string array); otherwise a list. Fails as a whole.
#[allow(clippy::too_many_arguments)] // the Python method's keyword arguments
pub(crate) fn encrypt_many<'py>(
    who: &Who,
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    context: Option<&Bound<'py, PyAny>>,
    keyring: Option<&str>,
    deterministic: bool,
    text: bool,
) -> PvResult<Bound<'py, PyAny>> {
    let ctx = convert::context(context)?;
    let opts = encrypt_options(keyring, deterministic);
    let seal = |vals: &[&[u8]]| -> PvResult<Vec<Vec<u8>>> {
        let sealed = who.session().encrypt_many(vals, &ctx, &opts)?;
        who.flushed()?;
        if text {
            sealed
                .iter()
                .map(|ct| Ok(phivault::envelope::to_text(ct)?.into_bytes()))
                .collect()
        } else {
            Ok(sealed)
        }
    };
    if let Some(input) = ArrowIn::of(values)? {
        let (vals, pos) = arrow::binaries(input.chunks(), "values")?;
        let sealed = run(py, true, || seal(&vals))?;
        let sealed: Vec<Option<Vec<u8>>> = sealed.into_iter().map(Some).collect();
        let chunks = if text {
            let s: Vec<Option<String>> = sealed
                .into_iter()
                .map(|v| {
                    v.map(|b| String::from_utf8(b).map_err(|_| PvError::Panic))
                        .transpose()
                })
                .collect::<PvResult<_>>()?;
            arrow::string_chunks(input.chunks(), &s, &pos)?
        } else {
            arrow::binary_chunks(input.chunks(), &sealed, &pos)?
        };
        return input.answer(py, chunks);
    }
    let items = convert::batch(values, "values", |o| convert::data(o, "value"))?;
    let (vals, pos) = present(&items);
    let sealed = run(py, true, || {
        let refs: Vec<&[u8]> = vals.iter().map(|d| &d[..]).collect();
        seal(&refs)
    })?;
    let out = scatter(items.len(), sealed.into_iter().map(Some).collect(), &pos);
    Ok(arrow::list_of(py, out, |ct| {
        Ok(if text {
            pyo3::types::PyString::new(py, std::str::from_utf8(&ct).map_err(|_| PvError::Panic)?)
                .into_any()
        } else {
            PyBytes::new(py, &ct).into_any()
        })
    })?
    .into_any())
}

/// `decrypt_many`: envelopes made under one context; Arrow in (binary or text envelopes),
/// binary Arrow out; otherwise a list of `bytes`. Fails as a whole on the first envelope that
/// does not authenticate (fail closed: never a partial answer).
pub(crate) fn decrypt_many<'py>(
    who: &Who,
    py: Python<'py>,
    envelopes: &Bound<'py, PyAny>,
    context: Option<&Bound<'py, PyAny>>,
) -> PvResult<Bound<'py, PyAny>> {
    let ctx = convert::context(context)?;
    if let Some(input) = ArrowIn::of(envelopes)? {
        let (vals, pos) = arrow::binaries(input.chunks(), "envelopes")?;
        let opened = run(py, true, || {
            let r = who.session().decrypt_many(&vals, &ctx)?;
            who.flushed()?;
            Ok(r)
        })?;
        let opened: Vec<Option<Zeroizing<Vec<u8>>>> = opened.into_iter().map(Some).collect();
        return input.answer(py, arrow::binary_chunks(input.chunks(), &opened, &pos)?);
    }
    let items = convert::batch(envelopes, "envelopes", |o| convert::data(o, "envelope"))?;
    let (vals, pos) = present(&items);
    let opened = run(py, true, || {
        let refs: Vec<&[u8]> = vals.iter().map(|d| &d[..]).collect();
        let r = who.session().decrypt_many(&refs, &ctx)?;
        who.flushed()?;
        Ok(r)
    })?;
    let out = scatter(items.len(), opened.into_iter().map(Some).collect(), &pos);
    Ok(arrow::list_of(py, out, |pt| Ok(PyBytes::new(py, &pt).into_any()))?.into_any())
}
