//! Streaming encryption of large files (issue 10): `Vault.encrypt_file` / `decrypt_file` (by
//! path) and `Vault.encrypt_stream` / `decrypt_stream` (binary file-like objects), over the
//! core's `phivault::stream`.
//!
//! All four run with the GIL released and constant memory. The file-like variants hold the
//! GIL only around each `.read(n)` / `.write(b)` call on the Python objects, in chunks of
//! 1 MiB, so other Python threads run while segments are sealed and opened.

use crate::convert::{self, run};
use crate::errors::{PvError, PvResult};
use crate::vault::PyVault;
use phivault::stream::StreamOptions;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use zeroize::Zeroizing;

/// Bytes asked of a reader, and written to a writer, per call.
const CHUNK: usize = 1 << 20;

/// The first Python exception raised by a reader or writer during one call. The core may turn
/// an I/O error into its own (a header cut short is an authentication failure), so the
/// exception is kept here and re-raised as is: a failing `read()` is never reported as
/// tampering.
type PyFailure = Mutex<Option<PyErr>>;

fn record(slot: &PyFailure, e: PyErr) -> io::Error {
    let msg = "the Python file object raised an exception";
    if let Ok(mut s) = slot.lock()
        && s.is_none()
    {
        *s = Some(e);
    }
    io::Error::other(msg)
}

/// `std::io::Read` over a Python object's `read(n)` (binary: it must return `bytes`-like).
struct PyReader<'a> {
    obj: &'a Py<PyAny>,
    failed: &'a PyFailure,
}

impl Read for PyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(CHUNK);
        if want == 0 {
            return Ok(0);
        }
        Python::attach(|py| {
            let got = self.obj.bind(py).call_method1("read", (want,))?;
            if got.is_none() {
                return Err(PyValueError::new_err(
                    "reader.read() returned None: non-blocking streams are not supported",
                ));
            }
            let bytes: PyBackedBytes = got.extract().map_err(|_| {
                PyTypeError::new_err("reader.read() must return bytes (open the file in 'rb' mode)")
            })?;
            if bytes.len() > want {
                return Err(PyValueError::new_err(
                    "reader.read(n) returned more than n bytes",
                ));
            }
            buf[..bytes.len()].copy_from_slice(&bytes);
            Ok(bytes.len())
        })
        .map_err(|e| record(self.failed, e))
    }
}

/// `std::io::Write` over a Python object's `write(b)`. A raw stream may write less than it was
/// given and return the count; `None` (as some wrappers return) means everything.
struct PyWriter<'a> {
    obj: &'a Py<PyAny>,
    failed: &'a PyFailure,
}

impl Write for PyWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let data = &data[..data.len().min(CHUNK)];
        if data.is_empty() {
            return Ok(0);
        }
        Python::attach(|py| {
            let n = self
                .obj
                .bind(py)
                .call_method1("write", (PyBytes::new(py, data),))?;
            if n.is_none() {
                return Ok(data.len());
            }
            let n: usize = n.extract().map_err(|_| {
                PyTypeError::new_err("writer.write() must return the number of bytes written")
            })?;
            if n == 0 || n > data.len() {
                return Err(PyValueError::new_err(
                    "writer.write(b) wrote no bytes, or more than len(b)",
                ));
            }
            Ok(n)
        })
        .map_err(|e| record(self.failed, e))
    }

    fn flush(&mut self) -> io::Result<()> {
        // The caller owns the object and decides when to flush or close it.
        Ok(())
    }
}

/// Reads until `buf` is full or the reader ends; returns how many bytes were read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The error of a failed stream: the Python exception if a reader or writer raised one, else
/// the core error an I/O error carries (authentication failure on truncation), else I/O.
fn stream_error(failed: &PyFailure, e: PvError) -> PvError {
    if let Some(py_err) = failed.lock().ok().and_then(|mut s| s.take()) {
        return PvError::Py(py_err);
    }
    e
}

fn io_to_pv(e: io::Error) -> PvError {
    if !e
        .get_ref()
        .is_some_and(|inner| inner.is::<phivault::Error>())
    {
        return PvError::Core(phivault::Error::Io {
            action: "streaming".to_owned(),
            source: e,
        });
    }
    match e
        .into_inner()
        .map(|inner| inner.downcast::<phivault::Error>())
    {
        Some(Ok(err)) => PvError::Core(*err),
        _ => PvError::Core(phivault::Error::AuthenticationFailed),
    }
}

fn stream_options(subject: Option<&str>) -> StreamOptions {
    StreamOptions {
        subject: subject.map(str::to_owned),
        ..StreamOptions::default()
    }
}

#[pymethods]
impl PyVault {
    // ---- large files (streaming) ------------------------------------------------------

    /// Encrypts the file `src` into the stream file `dst` bound to `context`, with constant
    /// memory and the GIL released. `dst` is written beside itself and renamed into place when
    /// complete. Returns the plaintext length.
    #[pyo3(signature = (src, dst, context=None, *, subject=None))]
    fn encrypt_file(
        &self,
        py: Python<'_>,
        src: PathBuf,
        dst: PathBuf,
        context: Option<&Bound<'_, PyAny>>,
        subject: Option<&str>,
    ) -> PvResult<u64> {
        let v = self.vault()?;
        let ctx = convert::context(context)?;
        let opts = stream_options(subject);
        run(py, true, || {
            Ok(v.owner()
                .encrypt_file(&src, &dst, &ctx, &opts, &mut |_| {})?)
        })
    }

    /// Decrypts the stream file `src` into `dst`, which appears only once the whole stream has
    /// authenticated (a damaged or truncated file leaves no output). Returns the length.
    #[pyo3(signature = (src, dst, context=None))]
    fn decrypt_file(
        &self,
        py: Python<'_>,
        src: PathBuf,
        dst: PathBuf,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PvResult<u64> {
        let v = self.vault()?;
        let ctx = convert::context(context)?;
        run(py, true, || {
            Ok(v.owner().decrypt_file(&src, &dst, &ctx, &mut |_| {})?)
        })
    }

    /// Encrypts everything `reader.read(n)` yields into `writer.write(b)`, bound to `context`.
    /// Neither object is closed or flushed. Returns the plaintext length.
    #[pyo3(signature = (reader, writer, context=None, *, subject=None))]
    fn encrypt_stream(
        &self,
        py: Python<'_>,
        reader: &Bound<'_, PyAny>,
        writer: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
        subject: Option<&str>,
    ) -> PvResult<u64> {
        let v = self.vault()?;
        let ctx = convert::context(context)?;
        let opts = stream_options(subject);
        let (reader, writer) = (reader.clone().unbind(), writer.clone().unbind());
        let failed = PyFailure::default();
        let result = run(py, true, || {
            let mut src = PyReader {
                obj: &reader,
                failed: &failed,
            };
            let out = io::BufWriter::with_capacity(
                CHUNK,
                PyWriter {
                    obj: &writer,
                    failed: &failed,
                },
            );
            let mut w = v.owner().encrypt_writer(out, &ctx, &opts)?;
            let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
            let mut total = 0u64;
            loop {
                let n = fill(&mut src, &mut buf).map_err(io_to_pv)?;
                if n == 0 {
                    break;
                }
                w.write_all(&buf[..n]).map_err(io_to_pv)?;
                total += n as u64;
            }
            let out = w.finish().map_err(io_to_pv)?;
            out.into_inner().map_err(|e| io_to_pv(e.into_error()))?;
            Ok(total)
        });
        result.map_err(|e| stream_error(&failed, e))
    }

    /// Decrypts the stream `reader.read(n)` yields into `writer.write(b)`. Each segment is
    /// authenticated before it is written, but a stream cut short is only detected at its end:
    /// on `AuthenticationError`, discard what the writer received. Returns the length.
    #[pyo3(signature = (reader, writer, context=None))]
    fn decrypt_stream(
        &self,
        py: Python<'_>,
        reader: &Bound<'_, PyAny>,
        writer: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PvResult<u64> {
        let v = self.vault()?;
        let ctx = convert::context(context)?;
        let (reader, writer) = (reader.clone().unbind(), writer.clone().unbind());
        let failed = PyFailure::default();
        let result = run(py, true, || {
            let src = PyReader {
                obj: &reader,
                failed: &failed,
            };
            let mut out = PyWriter {
                obj: &writer,
                failed: &failed,
            };
            let mut r = v.owner().decrypt_reader(src, &ctx)?;
            let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
            let mut total = 0u64;
            loop {
                let n = fill(&mut r, &mut buf).map_err(io_to_pv)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n]).map_err(io_to_pv)?;
                total += n as u64;
            }
            Ok(total)
        });
        result.map_err(|e| stream_error(&failed, e))
    }
}
