//! Conversions between Python objects and core's types, and the GIL boundary.
//!
//! No policy lives here: these helpers only move bytes and strings across the boundary and
//! decide when to release the GIL.

use crate::errors::{PvError, PvResult};
use phivault::Context;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyMapping, PyMemoryView, PyString};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Inputs at least this long are processed with the GIL released (pyca/cryptography and
/// CPython's hashlib use the same 2 KiB threshold). Batch calls always release it.
pub const DETACH_THRESHOLD: usize = 2048;

/// Runs `f`, turning a panic into [`PvError::Panic`] so that no `PanicException` reaches
/// Python. With `detach`, the GIL is released while `f` runs.
pub fn run<T: Send>(
    py: Python<'_>,
    detach: bool,
    f: impl FnOnce() -> PvResult<T> + Send,
) -> PvResult<T> {
    let guarded = move || catch_unwind(AssertUnwindSafe(f)).unwrap_or(Err(PvError::Panic));
    if detach {
        py.detach(guarded)
    } else {
        guarded()
    }
}

/// Bytes borrowed from (or copied out of) a Python object, readable without the GIL.
pub enum Data {
    /// `bytes` or `bytearray` (a `bytearray` is copied, so it cannot change underneath).
    Bytes(PyBackedBytes),
    /// `str`, as UTF-8.
    Str(PyBackedStr),
}

impl std::ops::Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Data::Bytes(b) => b,
            Data::Str(s) => s.as_bytes(),
        }
    }
}

/// Extracts bytes-like input: `bytes`, `bytearray`, `memoryview` (copied), or `str` (UTF-8).
/// Anything else is a `TypeError` naming the argument and the type, never the value.
pub fn data(obj: &Bound<'_, PyAny>, what: &str) -> PvResult<Data> {
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyByteArray>() {
        return Ok(Data::Bytes(
            obj.extract::<PyBackedBytes>().map_err(PyErr::from)?,
        ));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Data::Str(s.to_owned().try_into()?));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let copy = obj.py().get_type::<PyBytes>().call1((obj,))?;
        return Ok(Data::Bytes(
            copy.extract::<PyBackedBytes>().map_err(PyErr::from)?,
        ));
    }
    Err(type_error(obj, what, "bytes, bytearray, memoryview or str"))
}

/// Extracts a `str` argument.
pub fn text(obj: &Bound<'_, PyAny>, what: &str) -> PvResult<PyBackedStr> {
    match obj.cast::<PyString>() {
        Ok(s) => Ok(s.to_owned().try_into()?),
        Err(_) => Err(type_error(obj, what, "str")),
    }
}

/// A `TypeError` that names the argument and the type it got (never the value).
pub fn type_error(obj: &Bound<'_, PyAny>, what: &str, expected: &str) -> PvError {
    let got = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned());
    PvError::Py(PyTypeError::new_err(format!(
        "{what} must be {expected}, not {got}"
    )))
}

/// Builds a [`Context`] from `None`, a mapping `{str: str}` (in insertion order), or an
/// iterable of `(str, str)` pairs. Order matters: it is part of what is authenticated.
pub fn context(obj: Option<&Bound<'_, PyAny>>) -> PvResult<Context> {
    let mut ctx = Context::new();
    let Some(obj) = obj else { return Ok(ctx) };
    if obj.is_none() {
        return Ok(ctx);
    }
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(type_error(
            obj,
            "context",
            "a dict[str, str] or pairs of str",
        ));
    }
    // A dict, the usual case: read in place (no items() list, no Mapping ABC check).
    if let Ok(d) = obj.cast::<PyDict>() {
        for (k, v) in d.iter() {
            let k = k
                .cast::<PyString>()
                .map_err(|_| type_error(&k, "context key", "str"))?;
            let v = v
                .cast::<PyString>()
                .map_err(|_| type_error(&v, "context value", "str"))?;
            // Borrowed from the strings' UTF-8 (no copy into a bytes object).
            ctx.push(k.to_str()?, v.to_str()?);
        }
        return Ok(ctx);
    }
    let pairs = match obj.cast::<PyMapping>() {
        Ok(m) => m.items()?.into_any(),
        Err(_) => obj.clone(),
    };
    let iter = pairs
        .try_iter()
        .map_err(|_| type_error(obj, "context", "a dict[str, str] or pairs of str"))?;
    for item in iter {
        let item = item?;
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item
            .extract()
            .map_err(|_| type_error(&item, "context item", "a (str, str) pair"))?;
        let k = text(&k, "context key")?;
        let v = text(&v, "context value")?;
        ctx.push(&*k, &*v);
    }
    Ok(ctx)
}

/// Collects a batch of values: a list, tuple, any iterable, a numpy array (via `tolist()`) or a
/// pyarrow array / chunked array (via `to_pylist()`). `None` entries stay `None` (SQL NULL).
pub fn batch<'py, T>(
    values: &Bound<'py, PyAny>,
    what: &str,
    mut each: impl FnMut(&Bound<'py, PyAny>) -> PvResult<T>,
) -> PvResult<Vec<Option<T>>> {
    if values.is_instance_of::<PyString>() || values.is_instance_of::<PyBytes>() {
        return Err(type_error(
            values,
            what,
            "a sequence of values, not one value",
        ));
    }
    let source = if values.hasattr("to_pylist")? {
        values.call_method0("to_pylist")?
    } else if values.hasattr("tolist")? && values.hasattr("dtype")? {
        values.call_method0("tolist")?
    } else {
        values.clone()
    };
    let iter = source
        .try_iter()
        .map_err(|_| type_error(values, what, "an iterable"))?;
    let mut out = Vec::with_capacity(source.len().unwrap_or(0));
    for item in iter {
        let item = item?;
        out.push(if item.is_none() {
            None
        } else {
            Some(each(&item)?)
        });
    }
    Ok(out)
}
