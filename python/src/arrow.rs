//! Arrow in, Arrow out, and per-row outcomes for the batch calls.
//!
//! Any object with `__arrow_c_array__` (pyarrow `Array`, arro3, nanoarrow) or
//! `__arrow_c_stream__` (pyarrow `ChunkedArray`, polars `Series`) is read in place through the
//! Arrow C Data Interface (`pyo3-arrow`): no Python object per value. All chunks go to core as
//! one batch (one policy decision and audit entry), and the answer is an Arrow array of the
//! same length and chunking, nulls kept as nulls — a pyarrow object when pyarrow is installed,
//! else an object with the same PyCapsule interface.
//!
//! Bad rows: `errors="raise"` raises the first bad row's exception, with its index (`row`
//! attribute and message) and the reason, never the value; `errors="null"` makes bad rows null
//! and fills `report` (a [`PyBatchReport`]). No rule lives here: the outcomes are core's.

use crate::errors::{PvError, PvResult};
use arrow_array::builder::{BinaryBuilder, LargeBinaryBuilder, LargeStringBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Field};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyList;
use pyo3_arrow::{PyArray, PyChunkedArray};
use std::sync::Arc;

/// What to do with a row core refused.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Errors {
    /// Raise the first bad row's error (with its index).
    Raise,
    /// Make the row null and count it in the report.
    Null,
}

impl Errors {
    /// `"raise"` or `"null"`.
    pub fn parse(s: &str) -> PvResult<Errors> {
        match s {
            "raise" => Ok(Errors::Raise),
            "null" => Ok(Errors::Null),
            _ => Err(PvError::Invalid("errors must be 'raise' or 'null'")),
        }
    }
}

/// Which rows of a batch failed and why (filled by calls made with `errors="null"`).
///
/// `rows`: the batch's length; `failed`: how many rows were made null; `indexes`: their
/// positions (0-based, over all chunks); `reasons`: the reason of each (core's message, never
/// the value).
#[pyclass(module = "phivault", name = "BatchReport")]
#[derive(Default)]
pub struct PyBatchReport {
    /// Rows in the batch.
    #[pyo3(get)]
    pub rows: usize,
    /// Rows that failed (made null).
    #[pyo3(get)]
    pub failed: usize,
    /// Positions of the failed rows.
    #[pyo3(get)]
    pub indexes: Vec<usize>,
    /// The reason of each failed row.
    #[pyo3(get)]
    pub reasons: Vec<String>,
}

#[pymethods]
impl PyBatchReport {
    /// An empty report, to pass as `report=`.
    #[new]
    fn py_new() -> Self {
        Self::default()
    }

    fn __repr__(&self) -> String {
        format!(
            "<phivault.BatchReport rows={} failed={}>",
            self.rows, self.failed
        )
    }
}

/// Applies the errors mode to per-row outcomes (present rows only, in order), given the
/// batch position of each: the values, `None` where a row failed under `Errors::Null`.
pub fn settle<T>(
    py: Python<'_>,
    outcomes: Vec<phivault::Result<T>>,
    positions: &[usize],
    rows: usize,
    errors: Errors,
    report: Option<&Bound<'_, PyBatchReport>>,
) -> PvResult<Vec<Option<T>>> {
    let mut out = Vec::with_capacity(outcomes.len());
    let mut failed = Vec::new();
    let mut reasons = Vec::new();
    for (i, o) in outcomes.into_iter().enumerate() {
        let at = positions.get(i).copied().unwrap_or(i);
        match o {
            Ok(v) => out.push(Some(v)),
            Err(e) if errors == Errors::Raise => return Err(PvError::Row(at, e)),
            Err(e) => {
                failed.push(at);
                reasons.push(e.to_string());
                out.push(None);
            }
        }
    }
    if let Some(r) = report {
        let _ = py;
        let mut r = r.borrow_mut();
        r.rows = rows;
        r.failed = failed.len();
        r.indexes = failed;
        r.reasons = reasons;
    }
    Ok(out)
}

/// Arrow input: one array or a chunked array.
pub enum ArrowIn {
    /// `__arrow_c_array__`.
    Array(ArrayRef),
    /// `__arrow_c_stream__`.
    Chunked(Vec<ArrayRef>),
}

impl ArrowIn {
    /// The Arrow data of `obj`, or `None` for other objects (lists, numpy arrays).
    pub fn of(obj: &Bound<'_, PyAny>) -> PvResult<Option<ArrowIn>> {
        let py = obj.py();
        if obj.hasattr(intern!(py, "__arrow_c_array__"))? {
            let a: PyArray = obj.extract()?;
            return Ok(Some(ArrowIn::Array(a.into_inner().0)));
        }
        if obj.hasattr(intern!(py, "__arrow_c_stream__"))? {
            let c: PyChunkedArray = obj.extract()?;
            return Ok(Some(ArrowIn::Chunked(c.into_inner().0)));
        }
        Ok(None)
    }

    /// The chunks (one for a plain array).
    pub fn chunks(&self) -> &[ArrayRef] {
        match self {
            ArrowIn::Array(a) => std::slice::from_ref(a),
            ArrowIn::Chunked(c) => c,
        }
    }

    /// Rows over all chunks.
    pub fn len(&self) -> usize {
        self.chunks().iter().map(|c| c.len()).sum()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The answer in the same form: one array, or a chunked array cut like the input.
    pub fn answer<'py>(
        &self,
        py: Python<'py>,
        chunks: Vec<ArrayRef>,
    ) -> PvResult<Bound<'py, PyAny>> {
        let dt = chunks
            .first()
            .map(|c| c.data_type().clone())
            .unwrap_or(DataType::Utf8);
        let field = Arc::new(Field::new("", dt, true));
        let pyarrow = py.import(intern!(py, "pyarrow")).ok();
        match self {
            ArrowIn::Array(_) => {
                let a = chunks.into_iter().next().ok_or(PvError::Panic)?;
                let a = PyArray::try_new(a, field).map_err(|_| PvError::Panic)?;
                let obj = a.into_pyobject(py)?.into_any();
                Ok(match pyarrow {
                    Some(pa) => pa.getattr(intern!(py, "array"))?.call1((obj,))?,
                    None => obj,
                })
            }
            ArrowIn::Chunked(_) => {
                let c = PyChunkedArray::try_new(chunks, field)?;
                let obj = c.into_pyobject(py)?.into_any();
                Ok(match pyarrow {
                    Some(pa) => pa.getattr(intern!(py, "chunked_array"))?.call1((obj,))?,
                    None => obj,
                })
            }
        }
    }
}

/// The present (non-null) strings of the chunks, and the batch position of each.
pub fn strings<'a>(chunks: &'a [ArrayRef], what: &str) -> PvResult<(Vec<&'a str>, Vec<usize>)> {
    let mut vals = Vec::new();
    let mut pos = Vec::new();
    let mut base = 0usize;
    for c in chunks {
        let mut push = |i: usize, v: Option<&'a str>| {
            if let Some(v) = v {
                vals.push(v);
                pos.push(base + i);
            }
        };
        match c.data_type() {
            DataType::Utf8 => c
                .as_string::<i32>()
                .iter()
                .enumerate()
                .for_each(|(i, v)| push(i, v)),
            DataType::LargeUtf8 => c
                .as_string::<i64>()
                .iter()
                .enumerate()
                .for_each(|(i, v)| push(i, v)),
            DataType::Utf8View => c
                .as_string_view()
                .iter()
                .enumerate()
                .for_each(|(i, v)| push(i, v)),
            DataType::Null => {}
            other => {
                return Err(PvError::Py(pyo3::exceptions::PyTypeError::new_err(
                    format!("{what} must be an Arrow string array, not {other}"),
                )));
            }
        }
        base += c.len();
    }
    Ok((vals, pos))
}

/// The present (non-null) byte strings of the chunks (binary or string arrays), and the batch
/// position of each.
pub fn binaries<'a>(chunks: &'a [ArrayRef], what: &str) -> PvResult<(Vec<&'a [u8]>, Vec<usize>)> {
    let mut vals = Vec::new();
    let mut pos = Vec::new();
    let mut base = 0usize;
    for c in chunks {
        let mut push = |i: usize, v: Option<&'a [u8]>| {
            if let Some(v) = v {
                vals.push(v);
                pos.push(base + i);
            }
        };
        match c.data_type() {
            DataType::Binary => c
                .as_binary::<i32>()
                .iter()
                .enumerate()
                .for_each(|(i, v)| push(i, v)),
            DataType::LargeBinary => c
                .as_binary::<i64>()
                .iter()
                .enumerate()
                .for_each(|(i, v)| push(i, v)),
            DataType::BinaryView => c
                .as_binary_view()
                .iter()
                .enumerate()
                .for_each(|(i, v)| push(i, v)),
            DataType::Utf8 => c
                .as_string::<i32>()
                .iter()
                .enumerate()
                .for_each(|(i, v)| push(i, v.map(str::as_bytes))),
            DataType::LargeUtf8 => c
                .as_string::<i64>()
                .iter()
                .enumerate()
                .for_each(|(i, v)| push(i, v.map(str::as_bytes))),
            DataType::Utf8View => c
                .as_string_view()
                .iter()
                .enumerate()
                .for_each(|(i, v)| push(i, v.map(str::as_bytes))),
            DataType::Null => {}
            other => {
                return Err(PvError::Py(pyo3::exceptions::PyTypeError::new_err(
                    format!("{what} must be an Arrow binary or string array, not {other}"),
                )));
            }
        }
        base += c.len();
    }
    Ok((vals, pos))
}

/// Whether the answer needs 64-bit offsets: a large input, or more bytes than 32-bit offsets
/// hold (every chunk of one answer has the same type).
fn needs_large<B: AsRef<[u8]>>(like: &[ArrayRef], values: &[Option<B>]) -> bool {
    let large_in = like
        .iter()
        .any(|c| matches!(c.data_type(), DataType::LargeUtf8 | DataType::LargeBinary));
    let bytes: usize = values.iter().flatten().map(|v| v.as_ref().len()).sum();
    large_in || bytes >= i32::MAX as usize
}

/// Text the binding itself produced (tokens, text envelopes): UTF-8 by construction.
fn utf8(b: &[u8]) -> PvResult<&str> {
    std::str::from_utf8(b).map_err(|_| PvError::Panic)
}

/// Scatters `values` (at batch `positions`) into chunks cut like `like`, each row its value or
/// null: `strings` text (else binary), with 64-bit offsets when [`needs_large`].
fn scatter_chunks<B: AsRef<[u8]>>(
    like: &[ArrayRef],
    values: &[Option<B>],
    positions: &[usize],
    strings: bool,
) -> PvResult<Vec<ArrayRef>> {
    let large = needs_large(like, values);
    let mut it = positions.iter().zip(values).peekable();
    let mut base = 0usize;
    let mut out: Vec<ArrayRef> = Vec::with_capacity(like.len());
    for c in like {
        let n = c.len();
        let mut rows: Vec<Option<&[u8]>> = Vec::with_capacity(n);
        for i in 0..n {
            match it.peek() {
                Some((p, v)) if **p == base + i => {
                    rows.push(v.as_ref().map(AsRef::as_ref));
                    it.next();
                }
                _ => rows.push(None),
            }
        }
        let arr: ArrayRef = match (strings, large) {
            (true, false) => {
                let mut b = StringBuilder::with_capacity(n, n * 16);
                for r in rows {
                    b.append_option(r.map(utf8).transpose()?);
                }
                Arc::new(b.finish())
            }
            (true, true) => {
                let mut b = LargeStringBuilder::with_capacity(n, n * 16);
                for r in rows {
                    b.append_option(r.map(utf8).transpose()?);
                }
                Arc::new(b.finish())
            }
            (false, false) => {
                let mut b = BinaryBuilder::with_capacity(n, n * 64);
                for r in rows {
                    b.append_option(r);
                }
                Arc::new(b.finish())
            }
            (false, true) => {
                let mut b = LargeBinaryBuilder::with_capacity(n, n * 64);
                for r in rows {
                    b.append_option(r);
                }
                Arc::new(b.finish())
            }
        };
        out.push(arr);
        base += n;
    }
    Ok(out)
}

/// Scatters `values` (at batch `positions`) into string chunks cut like `like`: large strings
/// for a large input or a large answer, strings otherwise; every other row null.
pub fn string_chunks<S: AsRef<str>>(
    like: &[ArrayRef],
    values: &[Option<S>],
    positions: &[usize],
) -> PvResult<Vec<ArrayRef>> {
    let bytes: Vec<Option<&[u8]>> = values
        .iter()
        .map(|v| v.as_ref().map(|s| s.as_ref().as_bytes()))
        .collect();
    scatter_chunks(like, &bytes, positions, true)
}

/// [`string_chunks`] for byte strings: binary chunks (large binary for a large input or
/// answer).
pub fn binary_chunks<B: AsRef<[u8]>>(
    like: &[ArrayRef],
    values: &[Option<B>],
    positions: &[usize],
) -> PvResult<Vec<ArrayRef>> {
    scatter_chunks(like, values, positions, false)
}

/// A Python list with `None` where a value is absent (the non-Arrow forms).
pub fn list_of<'py, T>(
    py: Python<'py>,
    values: Vec<Option<T>>,
    each: impl Fn(T) -> PvResult<Bound<'py, PyAny>>,
) -> PvResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for v in values {
        match v {
            None => list.append(py.None())?,
            Some(v) => list.append(each(v)?)?,
        }
    }
    Ok(list)
}
