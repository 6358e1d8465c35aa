//! `phivault.Session` and the policy/audit methods of `phivault.Vault`: every call of a session
//! runs as a principal with a purpose through core's one decision point and leaves an audit
//! entry. Mirrors core's `session`, `policy` and `audit` modules; no rule lives here.

use crate::arrow::PyBatchReport;
use crate::convert::run;
use crate::errors::PvResult;
use crate::ops::{self, Who};
use crate::vault::PyVault;
use phivault::policy::{Caller, Policy};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

/// A vault used as one principal for one purpose: every call is checked against the vault's
/// policy (default deny: `AccessDenied`) and audited. Get one with `Vault.session(...)`.
#[pyclass(frozen, module = "phivault", name = "Session")]
pub struct PySession {
    vault: Py<PyVault>,
    caller: Caller,
    /// A job's worker session (`phivault.handle`): audit entries spooled after every batch.
    job: bool,
}

impl PySession {
    /// A job worker's session over the job's vault (see `phivault.handle`).
    pub(crate) fn for_job(vault: Py<PyVault>, caller: Caller) -> Self {
        PySession {
            vault,
            caller,
            job: true,
        }
    }

    fn core(&self) -> PvResult<std::sync::Arc<phivault::Vault>> {
        self.vault.get().vault()
    }

    pub(crate) fn who(&self) -> PvResult<Who> {
        Ok(if self.job {
            Who::job(self.core()?, self.caller.clone())
        } else {
            Who::caller(self.core()?, self.caller.clone())
        })
    }
}

#[pymethods]
impl PySession {
    /// The principal this session acts as.
    #[getter]
    fn principal(&self) -> &str {
        &self.caller.principal
    }

    /// The stated purpose.
    #[getter]
    fn purpose(&self) -> &str {
        &self.caller.purpose
    }

    fn __repr__(&self) -> String {
        format!(
            "<phivault.Session principal={:?} purpose={:?}>",
            self.caller.principal, self.caller.purpose
        )
    }

    /// `Vault.encrypt` as this caller.
    #[pyo3(signature = (data, context=None, *, keyring=None, deterministic=false, subject=None))]
    fn encrypt<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
        keyring: Option<&str>,
        deterministic: bool,
        subject: Option<&str>,
    ) -> PvResult<Bound<'py, PyBytes>> {
        let ct = ops::seal(
            &self.who()?,
            py,
            data,
            context,
            keyring,
            deterministic,
            subject,
            false,
        )?;
        Ok(PyBytes::new(py, &ct))
    }

    /// `Vault.encrypt_text` as this caller.
    #[pyo3(signature = (data, context=None, *, keyring=None, deterministic=false))]
    fn encrypt_text(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
        keyring: Option<&str>,
        deterministic: bool,
    ) -> PvResult<String> {
        let ct = ops::seal(
            &self.who()?,
            py,
            data,
            context,
            keyring,
            deterministic,
            None,
            true,
        )?;
        String::from_utf8(ct).map_err(|_| crate::errors::PvError::Panic)
    }

    /// `Vault.decrypt` as this caller.
    #[pyo3(signature = (envelope, context=None))]
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        envelope: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PvResult<Bound<'py, PyBytes>> {
        ops::decrypt(&self.who()?, py, envelope, context)
    }

    /// `Vault.put` as this caller.
    #[pyo3(signature = (collection, id, data, *, subject=None))]
    fn put(
        &self,
        py: Python<'_>,
        collection: &str,
        id: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        subject: Option<&str>,
    ) -> PvResult<()> {
        ops::put(&self.who()?, py, collection, id, data, subject, None)
    }

    /// `Vault.get` as this caller.
    fn get<'py>(
        &self,
        py: Python<'py>,
        collection: &str,
        id: &Bound<'py, PyAny>,
    ) -> PvResult<Option<Bound<'py, PyBytes>>> {
        ops::get(&self.who()?, py, collection, id)
    }

    /// `Vault.delete` as this caller.
    fn delete(&self, py: Python<'_>, collection: &str, id: &Bound<'_, PyAny>) -> PvResult<bool> {
        ops::delete(&self.who()?, py, collection, id)
    }

    /// `Vault.tokenize` as this caller.
    #[pyo3(signature = (value, field, *, subject=None))]
    fn tokenize(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        field: &str,
        subject: Option<&str>,
    ) -> PvResult<String> {
        ops::tokenize(&self.who()?, py, value, field, subject)
    }

    /// `Vault.tokenize_many` as this caller: Arrow in, Arrow out, or a list; `errors` and
    /// `report` as there.
    #[pyo3(signature = (values, field, *, subjects=None, errors="raise", report=None))]
    fn tokenize_many<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'py, PyAny>,
        field: &str,
        subjects: Option<&Bound<'py, PyAny>>,
        errors: &str,
        report: Option<&Bound<'py, PyBatchReport>>,
    ) -> PvResult<Bound<'py, PyAny>> {
        ops::tokenize_many(&self.who()?, py, values, field, subjects, errors, report)
    }

    /// `Vault.pseudonym` over a batch as this caller (`tokenize_many` of a pseudonym field).
    #[pyo3(signature = (values, field="pseudonym", *, errors="raise", report=None))]
    fn pseudonym_many<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'py, PyAny>,
        field: &str,
        errors: &str,
        report: Option<&Bound<'py, PyBatchReport>>,
    ) -> PvResult<Bound<'py, PyAny>> {
        ops::tokenize_many(&self.who()?, py, values, field, None, errors, report)
    }

    /// `Vault.encrypt_many` as this caller.
    #[pyo3(signature = (values, context=None, *, keyring=None, deterministic=false, text=false))]
    fn encrypt_many<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
        keyring: Option<&str>,
        deterministic: bool,
        text: bool,
    ) -> PvResult<Bound<'py, PyAny>> {
        ops::encrypt_many(
            &self.who()?,
            py,
            values,
            context,
            keyring,
            deterministic,
            text,
        )
    }

    /// `Vault.decrypt_many` as this caller.
    #[pyo3(signature = (envelopes, context=None))]
    fn decrypt_many<'py>(
        &self,
        py: Python<'py>,
        envelopes: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PvResult<Bound<'py, PyAny>> {
        ops::decrypt_many(&self.who()?, py, envelopes, context)
    }

    /// `Vault.detokenize` as this caller; the policy may limit the `view`.
    #[pyo3(signature = (token, field, *, subject=None, view="plaintext"))]
    fn detokenize(
        &self,
        py: Python<'_>,
        token: &Bound<'_, PyAny>,
        field: &str,
        subject: Option<&str>,
        view: &str,
    ) -> PvResult<String> {
        ops::detokenize(&self.who()?, py, token, field, subject, view)
    }

    /// `Vault.detokenize_many` as this caller: Arrow in, Arrow out, or a list.
    #[pyo3(signature = (tokens, field, *, subjects=None, view="plaintext", errors="raise", report=None))]
    #[allow(clippy::too_many_arguments)] // the Python method's keyword arguments
    fn detokenize_many<'py>(
        &self,
        py: Python<'py>,
        tokens: &Bound<'py, PyAny>,
        field: &str,
        subjects: Option<&Bound<'py, PyAny>>,
        view: &str,
        errors: &str,
        report: Option<&Bound<'py, PyBatchReport>>,
    ) -> PvResult<Bound<'py, PyAny>> {
        ops::detokenize_many(
            &self.who()?,
            py,
            tokens,
            field,
            subjects,
            view,
            errors,
            report,
        )
    }
}

#[pymethods]
impl PyVault {
    /// A session acting as `principal` for `purpose`: every call is checked against the policy
    /// and audited. `break_glass` states the reason for an emergency override (flagged in the
    /// audit log; keep it free of PHI).
    #[pyo3(signature = (principal, purpose, *, break_glass=None))]
    fn session(
        slf: Bound<'_, Self>,
        principal: &str,
        purpose: &str,
        break_glass: Option<&str>,
    ) -> PvResult<PySession> {
        slf.get().vault()?;
        let mut caller = Caller::new(principal, purpose);
        if let Some(reason) = break_glass {
            caller = caller.break_glass(reason);
        }
        Ok(PySession {
            vault: slf.unbind(),
            caller,
            job: false,
        })
    }

    /// The stored access policy, as TOML (empty: only the owner may act).
    fn policy(&self, py: Python<'_>) -> PvResult<String> {
        let v = self.vault()?;
        run(py, true, || Ok(v.policy()?.to_toml()?))
    }

    /// Replaces the access policy (TOML: `[[principal]]` and `[[rule]]` tables); owner only,
    /// audited.
    fn set_policy(&self, py: Python<'_>, toml: &str) -> PvResult<()> {
        let v = self.vault()?;
        run(py, true, || Ok(v.set_policy(&Policy::from_toml(toml)?)?))
    }

    /// Verifies the audit log's hash chain and head anchor: `{"ok", "entries", "first_bad",
    /// "problem", "head_seq", "head_mac"}`. With `expect_head="SEQ:MACHEX"` (an earlier
    /// `audit_head()` recorded elsewhere) the log must also extend that head.
    #[pyo3(signature = (*, expect_head=None))]
    fn audit_verify<'py>(
        &self,
        py: Python<'py>,
        expect_head: Option<String>,
    ) -> PvResult<Bound<'py, PyDict>> {
        let v = self.vault()?;
        let r = run(py, true, || {
            Ok(match &expect_head {
                Some(anchor) => v.audit_verify_extends(anchor)?,
                None => v.audit_verify()?,
            })
        })?;
        let d = PyDict::new(py);
        d.set_item("ok", r.ok)?;
        d.set_item("entries", r.entries)?;
        d.set_item("first_bad", r.first_bad)?;
        d.set_item("problem", r.problem.as_deref())?;
        d.set_item("head_seq", r.head_seq)?;
        d.set_item("head_mac", &r.head_mac)?;
        Ok(d)
    }

    /// Audit entries with a call at or after `since_ms` (milliseconds since the epoch),
    /// optionally of one principal, oldest first, as dicts `{"seq", "time_ms", "last_ms",
    /// "principal", "purpose", "action", "target", "item", "count", "detail", "outcome",
    /// "break_glass", "calls"}` (names and keyed hashes, never values; break-the-glass reasons
    /// are not included).
    #[pyo3(signature = (*, since_ms=0, principal=None))]
    fn audit_entries<'py>(
        &self,
        py: Python<'py>,
        since_ms: u64,
        principal: Option<String>,
    ) -> PvResult<Bound<'py, PyList>> {
        let v = self.vault()?;
        let entries = run(py, true, || {
            Ok(v.audit_entries(since_ms, principal.as_deref(), false)?)
        })?;
        let list = PyList::empty(py);
        for e in &entries {
            let d = PyDict::new(py);
            d.set_item("seq", e.seq)?;
            d.set_item("time_ms", e.time_ms)?;
            d.set_item("last_ms", e.last_ms)?;
            d.set_item("principal", &e.principal)?;
            d.set_item("purpose", &e.purpose)?;
            d.set_item("action", e.action.as_str())?;
            d.set_item("target", &e.target.name)?;
            d.set_item("item", e.target.item.as_deref())?;
            d.set_item("count", e.target.count)?;
            d.set_item("detail", e.target.detail.as_deref())?;
            d.set_item(
                "outcome",
                match e.outcome {
                    phivault::audit::Outcome::Allowed => "allowed",
                    phivault::audit::Outcome::BreakGlass => "break-glass",
                    phivault::audit::Outcome::Denied => "denied",
                },
            )?;
            d.set_item("break_glass", e.break_glass)?;
            d.set_item("calls", e.calls)?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// Checks the whole store: every entry of every space is read and authenticated, and
    /// cross-references checked (`phivault verify`). Returns `{"ok", "entries",
    /// "problem_count", "audit_entries", "store_commit", "anchor_commit", "spaces": [{"space",
    /// "entries", "ok", "unreadable", "bad"}], "problems": [{"space", "key", "what"}]}`; keys
    /// are keyed hashes (hex), never PHI. Problems are reported, not raised.
    fn verify<'py>(&self, py: Python<'py>) -> PvResult<Bound<'py, PyDict>> {
        let v = self.vault()?;
        let r = run(py, true, || Ok(v.verify()?))?;
        let d = PyDict::new(py);
        d.set_item("ok", r.ok)?;
        d.set_item("entries", r.entries)?;
        d.set_item("problem_count", r.problem_count)?;
        d.set_item("audit_entries", r.audit_entries)?;
        d.set_item("store_commit", r.store_commit)?;
        d.set_item("anchor_commit", r.anchor_commit)?;
        let spaces = PyList::empty(py);
        for s in &r.spaces {
            let e = PyDict::new(py);
            e.set_item("space", s.space)?;
            e.set_item("entries", s.entries)?;
            e.set_item("ok", s.ok)?;
            e.set_item("unreadable", s.unreadable)?;
            e.set_item("bad", s.bad)?;
            spaces.append(e)?;
        }
        d.set_item("spaces", spaces)?;
        let problems = PyList::empty(py);
        for p in &r.problems {
            let e = PyDict::new(py);
            e.set_item("space", p.space)?;
            e.set_item("key", &p.key)?;
            e.set_item("what", p.what)?;
            problems.append(e)?;
        }
        d.set_item("problems", problems)?;
        Ok(d)
    }

    /// The audit head anchor `(sequence number, MAC hex)`, to record outside the vault.
    fn audit_head(&self, py: Python<'_>) -> PvResult<(u64, String)> {
        let v = self.vault()?;
        run(py, true, || Ok(v.audit_head()?))
    }
}
