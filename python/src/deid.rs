//! De-identification of FHIR and JSON documents (core's `deid`): a `dict` in and out, or an
//! NDJSON file to a file, on `Vault` (as the owner) and `Session` (as its caller). A schema is
//! named (a preset or one stored in the vault) or given as TOML or JSON text.

use crate::convert::run;
use crate::errors::{PvError, PvResult};
use crate::ops::{self, Who};
use crate::session::PySession;
use crate::vault::PyVault;
use phivault::Vault;
use phivault::deid::{DeidReport, NdjsonOptions, OnError, Schema};
use phivault::outfile::PrivateOutput;
use phivault::tokens::View;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;

fn io_error(action: &str, source: std::io::Error) -> PvError {
    PvError::Core(phivault::Error::Io {
        action: action.to_owned(),
        source,
    })
}

fn schema(vault: &Vault, spec: &str) -> PvResult<Schema> {
    Ok(vault.schema_named_or_text(spec)?)
}

/// A Python object as JSON text (through the standard `json` module).
fn to_json(py: Python<'_>, doc: &Bound<'_, PyAny>) -> PvResult<String> {
    let json = py.import("json")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("allow_nan", false)?;
    Ok(json
        .call_method("dumps", (doc,), Some(&kwargs))
        .map_err(|_| PvError::Invalid("document is not JSON-serializable"))?
        .extract()?)
}

fn from_json<'py>(py: Python<'py>, text: &str) -> PvResult<Bound<'py, PyAny>> {
    Ok(py.import("json")?.call_method1("loads", (text,))?)
}

/// The report as a `dict` (counts, never values).
fn report_dict<'py>(py: Python<'py>, r: &DeidReport) -> PvResult<Bound<'py, PyAny>> {
    from_json(py, &r.to_json())
}

fn one<'py>(
    who: &Who,
    py: Python<'py>,
    doc: &Bound<'py, PyAny>,
    schema_arg: &str,
    reid: Option<View>,
) -> PvResult<Bound<'py, PyAny>> {
    let text = to_json(py, doc)?;
    let out: String = run(py, true, || {
        let s = schema(who.vault(), schema_arg)?;
        let mut value: serde_json::Value =
            serde_json::from_str(&text).map_err(|_| PvError::Invalid("document is not JSON"))?;
        let session = who.session();
        match reid {
            Some(view) => session.reidentify(&s, &mut value, view)?,
            None => session.deidentify(&s, &mut value)?,
        };
        who.flushed()?;
        serde_json::to_string(&value).map_err(|_| PvError::Invalid("document cannot be written"))
    })?;
    from_json(py, &out)
}

#[allow(clippy::too_many_arguments)] // the Python method's keyword arguments
fn file<'py>(
    who: &Who,
    py: Python<'py>,
    input: PathBuf,
    output: PathBuf,
    schema_arg: &str,
    errors: &str,
    batch_lines: usize,
    reid: Option<View>,
) -> PvResult<Bound<'py, PyAny>> {
    let errors =
        OnError::from_name(errors).ok_or(PvError::Invalid("errors is 'skip' or 'fail'"))?;
    let report = run(py, true, || {
        let s = schema(who.vault(), schema_arg)?;
        let opts = NdjsonOptions::default()
            .errors(errors)
            .batch_lines(batch_lines);
        let src =
            std::fs::File::open(&input).map_err(|e| io_error("opening the NDJSON input", e))?;
        let mut out =
            PrivateOutput::create(&output).map_err(|e| io_error("creating the output", e))?;
        let f = out
            .take_file()
            .map_err(|e| io_error("creating the output", e))?;
        let session = who.session();
        let (r, w) = (
            BufReader::with_capacity(1 << 20, src),
            BufWriter::with_capacity(1 << 20, &f),
        );
        let report = match reid {
            Some(view) => session.reidentify_ndjson(&s, view, r, w, &opts, &mut |_| {})?,
            None => session.deidentify_ndjson(&s, r, w, &opts, &mut |_| {})?,
        };
        who.flushed()?;
        out.commit_file(f)
            .map_err(|e| io_error("writing the output", e))?;
        Ok(report)
    })?;
    report_dict(py, &report)
}

#[pymethods]
impl PyVault {
    /// De-identifies one FHIR resource (or Bundle, or JSON document for `$` paths) by
    /// `schema` — a preset (`"safe-harbor"`, `"shifted-dates"`), a schema stored with
    /// `define_schema`, or TOML/JSON text — and returns the new `dict` (the argument is not
    /// changed).
    #[pyo3(signature = (doc, schema="safe-harbor"))]
    fn deidentify<'py>(
        &self,
        py: Python<'py>,
        doc: &Bound<'py, PyAny>,
        schema: &str,
    ) -> PvResult<Bound<'py, PyAny>> {
        one(&Who::owner(self.vault()?), py, doc, schema, None)
    }

    /// Re-identifies what `deidentify` made reversible (tokens, shown as `view`; encrypted
    /// elements in the plaintext view).
    #[pyo3(signature = (doc, schema="safe-harbor", *, view="plaintext"))]
    fn reidentify<'py>(
        &self,
        py: Python<'py>,
        doc: &Bound<'py, PyAny>,
        schema: &str,
        view: &str,
    ) -> PvResult<Bound<'py, PyAny>> {
        let view = ops::view(view)?;
        one(&Who::owner(self.vault()?), py, doc, schema, Some(view))
    }

    /// De-identifies an NDJSON file (one resource per line) into `output`, written beside and
    /// renamed into place when complete; returns the report (counts per rule, never values).
    /// `errors="skip"` leaves malformed lines out and lists their numbers in the report.
    #[pyo3(signature = (input, output, schema="safe-harbor", *, errors="fail", batch_lines=4096))]
    fn deidentify_file<'py>(
        &self,
        py: Python<'py>,
        input: PathBuf,
        output: PathBuf,
        schema: &str,
        errors: &str,
        batch_lines: usize,
    ) -> PvResult<Bound<'py, PyAny>> {
        let who = Who::owner(self.vault()?);
        file(&who, py, input, output, schema, errors, batch_lines, None)
    }

    /// The reverse of `deidentify_file` (see `reidentify`).
    #[pyo3(signature = (input, output, schema="safe-harbor", *, view="plaintext", errors="fail", batch_lines=4096))]
    #[allow(clippy::too_many_arguments)] // the Python method's keyword arguments
    fn reidentify_file<'py>(
        &self,
        py: Python<'py>,
        input: PathBuf,
        output: PathBuf,
        schema: &str,
        view: &str,
        errors: &str,
        batch_lines: usize,
    ) -> PvResult<Bound<'py, PyAny>> {
        let view = ops::view(view)?;
        let who = Who::owner(self.vault()?);
        file(
            &who,
            py,
            input,
            output,
            schema,
            errors,
            batch_lines,
            Some(view),
        )
    }

    /// Stores a de-identification schema (TOML or JSON text) under `name`, sealed.
    fn define_schema(&self, py: Python<'_>, name: &str, text: &str) -> PvResult<()> {
        let v = self.vault()?;
        run(py, true, || Ok(v.define_schema(name, text)?))
    }

    /// The schema names: the presets, then the stored ones.
    fn schemas<'py>(&self, py: Python<'py>) -> PvResult<Bound<'py, PyList>> {
        let v = self.vault()?;
        let names = run(py, true, || Ok(v.schemas()?))?;
        Ok(PyList::new(py, names)?)
    }
}

#[pymethods]
impl PySession {
    /// `Vault.deidentify` as this caller.
    #[pyo3(signature = (doc, schema="safe-harbor"))]
    fn deidentify<'py>(
        &self,
        py: Python<'py>,
        doc: &Bound<'py, PyAny>,
        schema: &str,
    ) -> PvResult<Bound<'py, PyAny>> {
        one(&self.who()?, py, doc, schema, None)
    }

    /// `Vault.reidentify` as this caller: needs the policy's detokenize (and decrypt) rights;
    /// a denial is logged and raises `AccessDenied`.
    #[pyo3(signature = (doc, schema="safe-harbor", *, view="plaintext"))]
    fn reidentify<'py>(
        &self,
        py: Python<'py>,
        doc: &Bound<'py, PyAny>,
        schema: &str,
        view: &str,
    ) -> PvResult<Bound<'py, PyAny>> {
        let view = ops::view(view)?;
        one(&self.who()?, py, doc, schema, Some(view))
    }

    /// `Vault.deidentify_file` as this caller.
    #[pyo3(signature = (input, output, schema="safe-harbor", *, errors="fail", batch_lines=4096))]
    fn deidentify_file<'py>(
        &self,
        py: Python<'py>,
        input: PathBuf,
        output: PathBuf,
        schema: &str,
        errors: &str,
        batch_lines: usize,
    ) -> PvResult<Bound<'py, PyAny>> {
        file(
            &self.who()?,
            py,
            input,
            output,
            schema,
            errors,
            batch_lines,
            None,
        )
    }

    /// `Vault.reidentify_file` as this caller.
    #[pyo3(signature = (input, output, schema="safe-harbor", *, view="plaintext", errors="fail", batch_lines=4096))]
    #[allow(clippy::too_many_arguments)] // the Python method's keyword arguments
    fn reidentify_file<'py>(
        &self,
        py: Python<'py>,
        input: PathBuf,
        output: PathBuf,
        schema: &str,
        view: &str,
        errors: &str,
        batch_lines: usize,
    ) -> PvResult<Bound<'py, PyAny>> {
        let view = ops::view(view)?;
        file(
            &self.who()?,
            py,
            input,
            output,
            schema,
            errors,
            batch_lines,
            Some(view),
        )
    }
}
