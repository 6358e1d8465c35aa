//! Tokenization on `phivault.Vault`: consistent tokens, FF1, pseudonyms, date shift, field
//! definitions. Mirrors core's `tokens` module; every rule lives there.

use crate::arrow::PyBatchReport;
use crate::convert::{self, run};
use crate::errors::{PvError, PvResult};
use crate::ops::{self, Who};
use crate::vault::PyVault;
use phivault::tokens::{FieldSpec, Shape, TokenKind};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

fn kind(name: &str) -> PvResult<TokenKind> {
    TokenKind::from_name(name).ok_or(PvError::Invalid(
        "kind must be 'vaulted', 'ff1', 'pseudonym' or 'date-shift'",
    ))
}

pub(crate) fn str_list<'py, S: AsRef<str>>(
    py: Python<'py>,
    values: &[Option<S>],
) -> PvResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for v in values {
        match v {
            None => list.append(py.None())?,
            Some(s) => list.append(PyString::new(py, s.as_ref()))?,
        }
    }
    Ok(list)
}

#[pymethods]
impl PyVault {
    /// Tokenizes `value` as field `field` (a preset such as `ssn`, `mrn`, `dob`, `pseudonym`,
    /// or a defined field). Consistent: the same value gives the same token, so joins work.
    /// Fields tied to data subjects (`dob`) need `subject`.
    #[pyo3(signature = (value, field, *, subject=None))]
    fn tokenize(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        field: &str,
        subject: Option<&str>,
    ) -> PvResult<String> {
        ops::tokenize(&Who::owner(self.vault()?), py, value, field, subject)
    }

    /// Tokenizes a batch of one field with the GIL released. Arrow in, Arrow out: any Arrow
    /// string array or chunked array (pyarrow, polars, arro3) is read in place and answered
    /// with an Arrow array of the same length and chunking, nulls kept. Lists, tuples,
    /// iterables and numpy object arrays give a list, `None` staying `None`.
    /// `errors="raise"` (default) raises the first bad row's error with its index (`.row`),
    /// never its value; `errors="null"` makes bad rows null and fills `report` (a
    /// `phivault.BatchReport`) with how many and which. Fields tied to subjects (`dob`, date
    /// shifts) take `subjects`: one `str` for every row, or a batch as long as `values` (each
    /// row its own subject; a row without one fails with `SubjectRequired`).
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
        ops::tokenize_many(
            &Who::owner(self.vault()?),
            py,
            values,
            field,
            subjects,
            errors,
            report,
        )
    }

    /// Pseudonyms of a batch (`tokenize_many` of pseudonym field `field`): Arrow in, Arrow out.
    #[pyo3(signature = (values, field="pseudonym", *, errors="raise", report=None))]
    fn pseudonym_many<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'py, PyAny>,
        field: &str,
        errors: &str,
        report: Option<&Bound<'py, PyBatchReport>>,
    ) -> PvResult<Bound<'py, PyAny>> {
        self.tokenize_many(py, values, field, None, errors, report)
    }

    /// Turns a token of `field` back into its value, shown as `view` (`"plaintext"`,
    /// `"masked"` or `"redacted"`). Raises `InvalidToken` for unknown, malformed or forged
    /// tokens; pseudonyms are one-way (`InvalidInput`).
    #[pyo3(signature = (token, field, *, subject=None, view="plaintext"))]
    fn detokenize(
        &self,
        py: Python<'_>,
        token: &Bound<'_, PyAny>,
        field: &str,
        subject: Option<&str>,
        view: &str,
    ) -> PvResult<String> {
        ops::detokenize(&Who::owner(self.vault()?), py, token, field, subject, view)
    }

    /// Detokenizes a batch of one field with the GIL released: Arrow in, Arrow out, or a list;
    /// `errors` and `report` as for `tokenize_many` (an unknown or forged token is a bad row).
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
            &Who::owner(self.vault()?),
            py,
            tokens,
            field,
            subjects,
            view,
            errors,
            report,
        )
    }

    /// The one-way pseudonym of `value` (`psn_...`) in pseudonym field `field`.
    #[pyo3(signature = (value, field="pseudonym"))]
    fn pseudonym(&self, py: Python<'_>, value: &Bound<'_, PyAny>, field: &str) -> PvResult<String> {
        self.tokenize(py, value, field, None)
    }

    /// Whether `candidate` is the pseudonym of `value` (constant-time comparison).
    #[pyo3(signature = (value, candidate, field="pseudonym"))]
    fn verify_pseudonym(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        candidate: &Bound<'_, PyAny>,
        field: &str,
    ) -> PvResult<bool> {
        let v = self.vault()?;
        let value = convert::text(value, "value")?;
        let candidate = convert::text(candidate, "candidate")?;
        run(py, true, || {
            Ok(v.verify_pseudonym(field, &value, &candidate)?)
        })
    }

    /// Shifts a date by the subject's secret, consistent offset (date-shift field `field`,
    /// default `dob`). Accepts `"YYYY-MM-DD"` or a `datetime.date`, and returns the same type.
    #[pyo3(signature = (date, subject, field="dob"))]
    fn shift_date<'py>(
        &self,
        py: Python<'py>,
        date: &Bound<'py, PyAny>,
        subject: &Bound<'py, PyAny>,
        field: &str,
    ) -> PvResult<Bound<'py, PyAny>> {
        if crate::arrow::ArrowIn::of(date)?.is_some() {
            return self.tokenize_many(py, date, field, Some(subject), "raise", None);
        }
        let is_date = !date.is_instance_of::<PyString>() && date.hasattr("isoformat")?;
        let text = if is_date {
            date.call_method0("isoformat")?
        } else {
            date.clone()
        };
        let subject = convert::text(subject, "subject")?;
        let shifted = self.tokenize(py, &text, field, Some(&subject))?;
        if is_date {
            Ok(date.get_type().call_method1("fromisoformat", (shifted,))?)
        } else {
            Ok(PyString::new(py, &shifted).into_any())
        }
    }

    /// Reverses `shift_date` for the same subject.
    #[pyo3(signature = (date, subject, field="dob"))]
    fn unshift_date<'py>(
        &self,
        py: Python<'py>,
        date: &Bound<'py, PyAny>,
        subject: &Bound<'py, PyAny>,
        field: &str,
    ) -> PvResult<Bound<'py, PyAny>> {
        if crate::arrow::ArrowIn::of(date)?.is_some() {
            return ops::detokenize_many(
                &Who::owner(self.vault()?),
                py,
                date,
                field,
                Some(subject),
                "plaintext",
                "raise",
                None,
            );
        }
        let subject = convert::text(subject, "subject")?;
        let is_date = !date.is_instance_of::<PyString>() && date.hasattr("isoformat")?;
        let text = if is_date {
            date.call_method0("isoformat")?
        } else {
            date.clone()
        };
        let back = self.detokenize(py, &text, field, Some(&subject), "plaintext")?;
        if is_date {
            Ok(date.get_type().call_method1("fromisoformat", (back,))?)
        } else {
            Ok(PyString::new(py, &back).into_any())
        }
    }

    /// Defines (or redefines) a tokenization field, stored sealed in the vault.
    /// `kind` is `"vaulted"`, `"ff1"`, `"pseudonym"` or `"date-shift"`; the keyword options
    /// are those of the TOML schema (see docs).
    #[pyo3(signature = (name, kind, *, alphabet=None, consistent=None, opaque=None, prefix=None,
        mask_keep_last=None, mask_keep_first=None, subject=None, keyring=None, key_version=None,
        project=None, window_days=None))]
    #[allow(clippy::too_many_arguments)]
    fn define_field(
        &self,
        py: Python<'_>,
        name: &str,
        kind: &str,
        alphabet: Option<String>,
        consistent: Option<bool>,
        opaque: Option<bool>,
        prefix: Option<String>,
        mask_keep_last: Option<usize>,
        mask_keep_first: Option<usize>,
        subject: Option<bool>,
        keyring: Option<String>,
        key_version: Option<u32>,
        project: Option<String>,
        window_days: Option<u32>,
    ) -> PvResult<()> {
        let v = self.vault()?;
        let mut spec = FieldSpec::new(name, self::kind(kind)?);
        if let Some(x) = alphabet {
            spec.alphabet = x;
        }
        if let Some(x) = consistent {
            spec.consistent = x;
        }
        if let Some(x) = opaque {
            spec.shape = if x { Shape::Opaque } else { Shape::SameAsInput };
        }
        if let Some(x) = prefix {
            spec.prefix = x;
        }
        if let Some(x) = mask_keep_last {
            spec.mask_keep_last = x;
        }
        if let Some(x) = mask_keep_first {
            spec.mask_keep_first = x;
        }
        if let Some(x) = subject {
            spec.subject = x;
        }
        if let Some(x) = keyring {
            spec.keyring = x;
        }
        if let Some(x) = key_version {
            spec.key_version = x;
        }
        if let Some(x) = project {
            spec.project = x;
        }
        if let Some(x) = window_days {
            spec.window_days = x;
        }
        run(py, true, || Ok(v.define_field(spec)?))
    }

    /// Defines every field of a TOML schema (`[[field]]` tables); returns how many.
    fn define_fields_toml(&self, py: Python<'_>, text: &str) -> PvResult<usize> {
        let v = self.vault()?;
        run(py, true, || Ok(v.define_fields_toml(text)?))
    }

    /// Every field usable in this vault (presets and defined fields), as dicts.
    fn fields<'py>(&self, py: Python<'py>) -> PvResult<Bound<'py, PyList>> {
        let v = self.vault()?;
        let specs = run(py, true, || Ok(v.fields()?))?;
        let list = PyList::empty(py);
        for s in &specs {
            let d = PyDict::new(py);
            d.set_item("name", &s.name)?;
            d.set_item("kind", s.kind.name())?;
            d.set_item("alphabet", &s.alphabet)?;
            d.set_item("consistent", s.consistent)?;
            d.set_item("opaque", s.shape == Shape::Opaque)?;
            d.set_item("prefix", &s.prefix)?;
            d.set_item("mask_keep_last", s.mask_keep_last)?;
            d.set_item("mask_keep_first", s.mask_keep_first)?;
            d.set_item("subject", s.subject)?;
            d.set_item("keyring", &s.keyring)?;
            d.set_item("key_version", s.key_version)?;
            d.set_item("project", &s.project)?;
            d.set_item("window_days", s.window_days)?;
            list.append(d)?;
        }
        Ok(list)
    }
}
