//! The data operations, each written once over [`Who`]: `Vault`'s methods call them as the
//! owner, `Session`'s as the session's caller. Core's `Session` makes the policy decision and
//! the audit entry; this module converts arguments and results and releases the GIL.

use crate::convert::{self, DETACH_THRESHOLD, run};
use crate::errors::{PvError, PvResult};
use crate::tokens::{str_list, with_nones};
use phivault::policy::Caller;
use phivault::session::Session;
use phivault::tokens::View;
use phivault::{EncryptOptions, Vault};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyList};
use std::sync::Arc;

/// Whom a call acts as: the vault's owner (`caller` is `None`) or a session's caller.
pub(crate) struct Who {
    vault: Arc<Vault>,
    caller: Option<Caller>,
}

impl Who {
    /// `vault.owner()`.
    pub(crate) fn owner(vault: Arc<Vault>) -> Self {
        Who {
            vault,
            caller: None,
        }
    }

    /// A session's caller.
    pub(crate) fn caller(vault: Arc<Vault>, caller: Caller) -> Self {
        Who {
            vault,
            caller: Some(caller),
        }
    }

    fn session(&self) -> Session<'_> {
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

/// `tokenize_many` (GIL released; `None` stays `None`).
pub(crate) fn tokenize_many<'py>(
    who: &Who,
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    field: &str,
) -> PvResult<Bound<'py, PyList>> {
    let items: Vec<Option<PyBackedStr>> =
        convert::batch(values, "values", |o| convert::text(o, "value"))?;
    let out = run(py, true, || {
        let s = who.session();
        with_nones(&items, |p| s.tokenize_many(field, p))
    })?;
    str_list(py, &out)
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

/// `detokenize_many` (GIL released; `None` stays `None`).
pub(crate) fn detokenize_many<'py>(
    who: &Who,
    py: Python<'py>,
    tokens: &Bound<'py, PyAny>,
    field: &str,
    view: &str,
) -> PvResult<Bound<'py, PyList>> {
    let items: Vec<Option<PyBackedStr>> =
        convert::batch(tokens, "tokens", |o| convert::text(o, "token"))?;
    let view = self::view(view)?;
    let out = run(py, true, || {
        let s = who.session();
        with_nones(&items, |p| s.detokenize_many(field, p, view))
    })?;
    let out: Vec<Option<&str>> = out.iter().map(|o| o.as_ref().map(|s| s.as_str())).collect();
    str_list(py, &out)
}
