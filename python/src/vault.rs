//! `phivault.Vault`: a thin Python face over [`phivault::Vault`].
//!
//! Every method converts its arguments, calls one core method (with the GIL released for store
//! I/O, Argon2, large inputs and batches), and converts the result. The closed state is the
//! only state kept here.

use crate::convert::{self, DETACH_THRESHOLD, Data, run};
use crate::errors::{PvError, PvResult};
use crate::ops::{self, Who};
use phivault::lifecycle::{RewrapOptions, RewrapProgress};
use phivault::records::PutOptions;
use phivault::root::{Argon2Config, KeyFile, Passphrase, RootKeySource};
use phivault::store::Durability;
use phivault::{Backend, KeyringInfo, VaultOptions};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An open phivault vault.
///
/// Create one with `Vault.create(path, key=...)` or open one with `Vault.open(...)`; use it as a
/// context manager or call `close()`. A `Vault` may be shared by many threads: long and batch
/// calls release the GIL, so threads run in parallel.
#[pyclass(frozen, module = "phivault", name = "Vault")]
pub struct PyVault {
    /// `None` once closed. Calls clone the `Arc`, so `close()` never waits for them; the vault
    /// (and its lock) is released when the last running call returns.
    inner: Mutex<Option<Arc<phivault::Vault>>>,
    /// Where the vault was opened from and how, for `handle()` (no secret: a location and a
    /// key file's path).
    origin: Option<Origin>,
}

impl Origin {
    /// The directory or URL as given.
    pub(crate) fn location(&self) -> &std::path::Path {
        &self.location
    }

    /// The key file the vault was opened with.
    pub(crate) fn key_file(&self) -> Option<&std::path::Path> {
        self.key_file.as_deref()
    }

    /// The AES-GCM backend's name.
    pub(crate) fn backend(&self) -> &str {
        &self.backend
    }
}

/// Where a vault was opened from (for `handle()`).
pub(crate) struct Origin {
    /// The directory or `postgres://` URL as given.
    location: PathBuf,
    /// The key file it was opened with, if any (made absolute).
    key_file: Option<PathBuf>,
    backend: String,
}

/// How the root key was given.
pub(crate) enum RootArg {
    Passphrase(Passphrase),
    Key(KeyFile),
}

impl RootArg {
    pub(crate) fn source(&self) -> &dyn RootKeySource {
        match self {
            RootArg::Passphrase(p) => p,
            RootArg::Key(k) => k,
        }
    }
}

/// Reads the mutually exclusive `passphrase=`, `key=`, `key_file=` arguments.
pub(crate) fn root_arg(
    passphrase: Option<&Bound<'_, PyAny>>,
    key: Option<&Bound<'_, PyAny>>,
    key_file: Option<PathBuf>,
    argon2: Option<(u32, u32, u32)>,
) -> PvResult<RootArg> {
    let given = usize::from(passphrase.is_some())
        + usize::from(key.is_some())
        + usize::from(key_file.is_some());
    if given != 1 {
        return Err(PvError::Invalid(
            "give exactly one of passphrase=, key= or key_file=",
        ));
    }
    if let Some(p) = passphrase {
        let p = convert::text(p, "passphrase")?;
        let mut pp = Passphrase::new(&*p);
        if let Some((m_kib, t, p)) = argon2 {
            pp = pp.with_config(Argon2Config { m_kib, t, p });
        }
        return Ok(RootArg::Passphrase(pp));
    }
    if argon2.is_some() {
        return Err(PvError::Invalid("argon2= applies only to passphrase="));
    }
    if let Some(k) = key {
        if k.is_instance_of::<PyString>() {
            return Err(convert::type_error(
                k,
                "key",
                "bytes (32 raw bytes or 64 hex digits)",
            ));
        }
        let raw = convert::data(k, "key")?;
        // KeyFile copies the key; our copy of the bytes is wiped when `raw` is dropped only for
        // Rust-owned copies: Python's own `bytes` object stays the caller's to manage.
        return Ok(RootArg::Key(KeyFile::from_bytes(&raw)?));
    }
    match key_file {
        Some(path) => Ok(RootArg::Key(KeyFile::from_file(path)?)),
        None => Err(PvError::Invalid(
            "give exactly one of passphrase=, key= or key_file=",
        )),
    }
}

pub(crate) fn options(durability: &str, backend: &str, threads: usize) -> PvResult<VaultOptions> {
    let durability = Durability::from_name(durability).ok_or(PvError::Invalid(
        "durability must be 'immediate' or 'deferred'",
    ))?;
    let backend = Backend::from_name(backend).ok_or(PvError::Invalid(
        "backend must be 'ring', 'rustcrypto' or 'aws-lc'",
    ))?;
    Ok(VaultOptions::new()
        .durability(durability)
        .backend(backend)
        .threads(threads))
}

/// `bytes`, or `str` when the input was text.
fn same_form(py: Python<'_>, text: bool, out: Vec<u8>) -> PvResult<Bound<'_, PyAny>> {
    if text {
        let s = String::from_utf8(out).map_err(|_| PvError::Panic)?;
        Ok(PyString::new(py, &s).into_any())
    } else {
        Ok(PyBytes::new(py, &out).into_any())
    }
}

fn keyring_dict<'py>(py: Python<'py>, k: &KeyringInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &k.name)?;
    d.set_item("active_version", k.active)?;
    d.set_item("min_decryption_version", k.min_decryption_version)?;
    let versions = PyList::empty(py);
    for v in &k.versions {
        let vd = PyDict::new(py);
        vd.set_item("version", v.version)?;
        vd.set_item("state", v.state.as_str())?;
        vd.set_item("created_unix", v.created_unix)?;
        versions.append(vd)?;
    }
    d.set_item("versions", versions)?;
    Ok(d)
}

impl PyVault {
    pub(crate) fn new(v: phivault::Vault) -> Self {
        PyVault {
            inner: Mutex::new(Some(Arc::new(v))),
            origin: None,
        }
    }

    /// Where this vault was opened from (`None` for a job's vault).
    pub(crate) fn origin(&self) -> Option<&Origin> {
        self.origin.as_ref()
    }

    fn with_origin(
        mut self,
        location: &std::path::Path,
        key_file: Option<PathBuf>,
        backend: &str,
    ) -> Self {
        self.origin = Some(Origin {
            location: location.to_path_buf(),
            key_file: key_file.map(|k| std::path::absolute(&k).unwrap_or(k)),
            backend: backend.to_owned(),
        });
        self
    }

    /// The open vault, or `VaultClosed`.
    pub(crate) fn vault(&self) -> PvResult<Arc<phivault::Vault>> {
        self.inner
            .lock()
            .map_err(|_| PvError::Panic)?
            .as_ref()
            .cloned()
            .ok_or(PvError::Closed)
    }
}

#[pymethods]
impl PyVault {
    /// Creates a new vault in directory `path` (made with mode 0700; it must not hold a vault).
    #[staticmethod]
    #[pyo3(signature = (path, *, passphrase=None, key=None, key_file=None, argon2=None,
        durability="immediate", backend="ring", threads=1))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        path: PathBuf,
        passphrase: Option<&Bound<'_, PyAny>>,
        key: Option<&Bound<'_, PyAny>>,
        key_file: Option<PathBuf>,
        argon2: Option<(u32, u32, u32)>,
        durability: &str,
        backend: &str,
        threads: usize,
    ) -> PvResult<Self> {
        let root = root_arg(passphrase, key, key_file.clone(), argon2)?;
        let opts = options(durability, backend, threads)?;
        let v = run(py, true, || {
            Ok(phivault::Vault::create_at(&path, root.source(), opts)?)
        })?;
        Ok(Self::new(v).with_origin(&path, key_file, backend))
    }

    /// Opens the vault in directory `path`. A wrong key raises `WrongRootKey` and changes
    /// nothing on disk.
    #[staticmethod]
    #[pyo3(signature = (path, *, passphrase=None, key=None, key_file=None,
        durability="immediate", backend="ring", threads=1))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        passphrase: Option<&Bound<'_, PyAny>>,
        key: Option<&Bound<'_, PyAny>>,
        key_file: Option<PathBuf>,
        durability: &str,
        backend: &str,
        threads: usize,
    ) -> PvResult<Self> {
        let root = root_arg(passphrase, key, key_file.clone(), None)?;
        let opts = options(durability, backend, threads)?;
        let v = run(py, true, || {
            Ok(phivault::Vault::open_at(&path, root.source(), opts)?)
        })?;
        Ok(Self::new(v).with_origin(&path, key_file, backend))
    }

    /// Closes the vault and releases its lock. Idempotent. Later calls raise `VaultClosed`.
    /// Raises `AuditError` when the audit entries still waiting for group commit cannot be
    /// written (the vault is closed all the same), or a store error when it cannot flush.
    fn close(&self, py: Python<'_>) -> PvResult<()> {
        let taken = self.inner.lock().map_err(|_| PvError::Panic)?.take();
        // Flushing writes to the disk: do it without the GIL. Sessions may still hold the
        // vault: their later calls flush their own entries, and the last one closes it.
        run(py, true, move || match taken {
            Some(v) => match Arc::try_unwrap(v) {
                Ok(v) => v.close().map_err(PvError::from),
                Err(shared) => shared.flush().map_err(PvError::from),
            },
            None => Ok(()),
        })
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> PvResult<bool> {
        Ok(self.inner.lock().map_err(|_| PvError::Panic)?.is_none())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PvResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        match self.vault() {
            Ok(v) => format!("<phivault.Vault id={}>", v.vault_id_hex()),
            Err(_) => "<phivault.Vault closed>".to_owned(),
        }
    }

    /// The vault's random id (hex); not secret.
    #[getter]
    fn vault_id(&self) -> PvResult<String> {
        Ok(self.vault()?.vault_id_hex())
    }

    /// The vault's directory.
    #[getter]
    fn path(&self) -> PvResult<Option<PathBuf>> {
        Ok(self.vault()?.path().map(PathBuf::from))
    }

    // ---- envelopes --------------------------------------------------------------------

    /// Encrypts `data` bound to `context`; returns the binary envelope.
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
        let who = Who::owner(self.vault()?);
        let ct = ops::seal(
            &who,
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

    /// Encrypts `data` bound to `context`; returns the text form `pv1:<keyring>:<version>:...`.
    #[pyo3(signature = (data, context=None, *, keyring=None, deterministic=false, subject=None))]
    fn encrypt_text(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
        keyring: Option<&str>,
        deterministic: bool,
        subject: Option<&str>,
    ) -> PvResult<String> {
        let who = Who::owner(self.vault()?);
        let ct = ops::seal(
            &who,
            py,
            data,
            context,
            keyring,
            deterministic,
            subject,
            true,
        )?;
        String::from_utf8(ct).map_err(|_| PvError::Panic)
    }

    /// Decrypts an envelope (binary `bytes` or text `str`) made under exactly this `context`.
    #[pyo3(signature = (envelope, context=None))]
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        envelope: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PvResult<Bound<'py, PyBytes>> {
        ops::decrypt(&Who::owner(self.vault()?), py, envelope, context)
    }

    /// Encrypts many values under one `context` with the GIL released: Arrow in (binary or
    /// string), binary Arrow out (a string array with `text=True`); otherwise a list, `None`
    /// staying `None`. Fails as a whole.
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
            &Who::owner(self.vault()?),
            py,
            values,
            context,
            keyring,
            deterministic,
            text,
        )
    }

    /// Decrypts many envelopes made under one `context`, with the GIL released: Arrow in,
    /// binary Arrow out; otherwise a list of `bytes`. Fails as a whole on the first envelope
    /// that does not authenticate.
    #[pyo3(signature = (envelopes, context=None))]
    fn decrypt_many<'py>(
        &self,
        py: Python<'py>,
        envelopes: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PvResult<Bound<'py, PyAny>> {
        ops::decrypt_many(&Who::owner(self.vault()?), py, envelopes, context)
    }

    // ---- records ----------------------------------------------------------------------

    /// Stores `data` as record `id` of `collection` (ids are stored only as keyed hashes).
    /// With `subject`, the value is tied to that data subject for `forget_subject`.
    #[pyo3(signature = (collection, id, data, *, subject=None, keyring=None))]
    fn put(
        &self,
        py: Python<'_>,
        collection: &str,
        id: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        subject: Option<&str>,
        keyring: Option<&str>,
    ) -> PvResult<()> {
        ops::put(
            &Who::owner(self.vault()?),
            py,
            collection,
            id,
            data,
            subject,
            keyring,
        )
    }

    /// Stores many records in one atomic, durable write. `items` is a mapping `{id: data}` or
    /// an iterable of `(id, data)` pairs.
    #[pyo3(signature = (collection, items, *, subject=None, keyring=None))]
    fn put_many(
        &self,
        py: Python<'_>,
        collection: &str,
        items: &Bound<'_, PyAny>,
        subject: Option<&str>,
        keyring: Option<&str>,
    ) -> PvResult<()> {
        let v = self.vault()?;
        let pairs = match items.cast::<pyo3::types::PyMapping>() {
            Ok(m) => m.items()?.into_any(),
            Err(_) => items.clone(),
        };
        let rows: Vec<Option<(PyBackedStr, Data)>> = convert::batch(&pairs, "items", |item| {
            let (id, data): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item
                .extract()
                .map_err(|_| convert::type_error(item, "item", "an (id, data) pair"))?;
            Ok((convert::text(&id, "id")?, convert::data(&data, "data")?))
        })?;
        let rows: Vec<(PyBackedStr, Data)> = rows
            .into_iter()
            .collect::<Option<_>>()
            .ok_or(PvError::Invalid("items must not contain None"))?;
        run(py, true, || {
            let refs: Vec<(&str, &[u8])> = rows.iter().map(|(i, d)| (&**i, &**d)).collect();
            Ok(v.owner()
                .put_many(collection, &refs, &PutOptions { subject, keyring })?)
        })
    }

    /// The record `id` of `collection`, or `None`.
    fn get<'py>(
        &self,
        py: Python<'py>,
        collection: &str,
        id: &Bound<'py, PyAny>,
    ) -> PvResult<Option<Bound<'py, PyBytes>>> {
        ops::get(&Who::owner(self.vault()?), py, collection, id)
    }

    /// Deletes record `id` of `collection`; returns whether it existed.
    fn delete(&self, py: Python<'_>, collection: &str, id: &Bound<'_, PyAny>) -> PvResult<bool> {
        ops::delete(&Who::owner(self.vault()?), py, collection, id)
    }

    /// Destroys the key of data subject `subject`: everything tied to it becomes unrecoverable
    /// (`SubjectForgotten`). Returns whether the subject had a key.
    fn forget_subject(&self, py: Python<'_>, subject: &Bound<'_, PyAny>) -> PvResult<bool> {
        let v = self.vault()?;
        let subject = convert::text(subject, "subject")?;
        run(py, true, || Ok(v.forget_subject(&subject)?))
    }

    // ---- keys -------------------------------------------------------------------------

    /// Makes a new key version of `keyring` active at once (older ones stay decrypt-only);
    /// returns the new version number.
    #[pyo3(signature = (keyring="default"))]
    fn rotate(&self, py: Python<'_>, keyring: &str) -> PvResult<u32> {
        let v = self.vault()?;
        run(py, true, || Ok(v.rotate(keyring)?))
    }

    /// Creates keyring `name` with one active key version; returns its description.
    fn create_keyring<'py>(&self, py: Python<'py>, name: &str) -> PvResult<Bound<'py, PyDict>> {
        let v = self.vault()?;
        let info = run(py, true, || Ok(v.create_keyring(name)?))?;
        Ok(keyring_dict(py, &info)?)
    }

    /// Every keyring, with its key versions and their states (no key material).
    fn keyrings<'py>(&self, py: Python<'py>) -> PvResult<Bound<'py, PyList>> {
        let v = self.vault()?;
        let infos = run(py, true, || Ok(v.keyrings()?))?;
        let list = PyList::empty(py);
        for k in &infos {
            list.append(keyring_dict(py, k)?)?;
        }
        Ok(list)
    }

    /// A summary of the vault: id, formats, keyrings and how many records each key version
    /// protects (counted from headers, nothing is decrypted).
    fn status<'py>(&self, py: Python<'py>) -> PvResult<Bound<'py, PyDict>> {
        let v = self.vault()?;
        let s = run(py, true, || Ok(v.status()?))?;
        let d = PyDict::new(py);
        d.set_item("vault_id", &s.vault_id)?;
        d.set_item("format_version", s.format_version)?;
        d.set_item("root_kind", &s.root_kind)?;
        d.set_item("backend", s.backend)?;
        d.set_item("records", s.records)?;
        d.set_item("subject_records", s.subject_records)?;
        d.set_item("forgotten_records", s.forgotten_records)?;
        let rings = PyList::empty(py);
        for k in &s.keyrings {
            let kd = PyDict::new(py);
            kd.set_item("name", &k.name)?;
            kd.set_item("active_version", k.active_version)?;
            kd.set_item("min_decryption_version", k.min_decryption_version)?;
            let versions = PyList::empty(py);
            for ver in &k.versions {
                let vd = PyDict::new(py);
                vd.set_item("version", ver.version)?;
                vd.set_item("state", ver.state.as_str())?;
                vd.set_item("created_unix", ver.created_unix)?;
                vd.set_item("records", ver.records)?;
                vd.set_item("subject_keys", ver.subject_keys)?;
                versions.append(vd)?;
            }
            kd.set_item("versions", versions)?;
            rings.append(kd)?;
        }
        d.set_item("keyrings", rings)?;
        Ok(d)
    }

    // ---- key lifecycle ------------------------------------------------------------------

    /// Rotates `keyring` only if its active version is older than `max_age_seconds`; returns
    /// the new version, or `None`.
    fn rotate_if_older_than(
        &self,
        py: Python<'_>,
        keyring: &str,
        max_age_seconds: f64,
    ) -> PvResult<Option<u32>> {
        let v = self.vault()?;
        let age = Duration::try_from_secs_f64(max_age_seconds)
            .map_err(|_| PvError::Invalid("max_age_seconds must be a finite number >= 0"))?;
        run(py, true, || Ok(v.rotate_if_older_than(keyring, age)?))
    }

    /// Sets the minimum key version of `keyring` that may decrypt: older versions become
    /// retired (`KeyRetired`), reversibly.
    fn set_min_decryption_version(
        &self,
        py: Python<'_>,
        keyring: &str,
        version: u32,
    ) -> PvResult<()> {
        let v = self.vault()?;
        run(py, true, || {
            Ok(v.set_min_decryption_version(keyring, version)?)
        })
    }

    /// Destroys key version `version` of `keyring` for good. Refuses the active version, and
    /// refuses (`KeyInUse`) while data depends on it unless `force=True`. Returns what
    /// depended on it: `{"records": n, "subject_keys": n}`.
    #[pyo3(signature = (keyring, version, *, force=false))]
    fn destroy_key_version<'py>(
        &self,
        py: Python<'py>,
        keyring: &str,
        version: u32,
        force: bool,
    ) -> PvResult<Bound<'py, PyDict>> {
        let v = self.vault()?;
        let u = run(py, true, || {
            Ok(v.destroy_key_version(keyring, version, force)?)
        })?;
        let d = PyDict::new(py);
        d.set_item("records", u.records)?;
        d.set_item("subject_keys", u.subject_keys)?;
        Ok(d)
    }

    /// Moves every stored record (and subject key) to its keyring's active key version without
    /// re-encrypting payloads; resumable and safe beside readers and writers. `progress`, if
    /// given, is called as `progress(scanned, rewrapped)` after every batch. Returns the report.
    #[pyo3(signature = (*, keyring=None, batch=1000, progress=None))]
    fn rewrap<'py>(
        &self,
        py: Python<'py>,
        keyring: Option<String>,
        batch: usize,
        progress: Option<Py<PyAny>>,
    ) -> PvResult<Bound<'py, PyDict>> {
        let v = self.vault()?;
        let opts = RewrapOptions { keyring, batch };
        let mut callback_error: Option<PyErr> = None;
        let report = run(py, true, || {
            let mut report_progress = |p: &RewrapProgress| {
                if let (Some(cb), None) = (&progress, &callback_error) {
                    Python::attach(|py| {
                        if let Err(e) = cb.call1(py, (p.scanned, p.rewrapped)) {
                            callback_error = Some(e);
                        }
                    });
                }
            };
            Ok(v.rewrap(&opts, &mut report_progress)?)
        })?;
        if let Some(e) = callback_error {
            return Err(e.into());
        }
        let d = PyDict::new(py);
        d.set_item("scanned", report.scanned)?;
        d.set_item("rewrapped", report.rewrapped)?;
        d.set_item("up_to_date", report.up_to_date)?;
        d.set_item("subject_records", report.subject_records)?;
        d.set_item("raced", report.raced)?;
        d.set_item("unreadable", report.unreadable)?;
        d.set_item("subject_keys_rewrapped", report.subject_keys_rewrapped)?;
        d.set_item("resumed", report.resumed)?;
        Ok(d)
    }

    /// Rewraps one envelope held outside the vault (a database column) to its keyring's active
    /// key version; same form out as in (`bytes` or text `str`). No context needed.
    fn rewrap_envelope<'py>(
        &self,
        py: Python<'py>,
        envelope: &Bound<'py, PyAny>,
    ) -> PvResult<Bound<'py, PyAny>> {
        let v = self.vault()?;
        let is_text = envelope.is_instance_of::<PyString>();
        let env = convert::data(envelope, "envelope")?;
        let big = env.len() >= DETACH_THRESHOLD;
        let out = run(py, big, || Ok(v.rewrap_envelope(&env)?))?;
        same_form(py, is_text, out)
    }

    /// `rewrap_envelope` over a batch, with the GIL released; `None` stays `None`. The first
    /// failure raises.
    fn rewrap_envelopes<'py>(
        &self,
        py: Python<'py>,
        envelopes: &Bound<'py, PyAny>,
    ) -> PvResult<Bound<'py, PyList>> {
        let v = self.vault()?;
        let items = convert::batch(envelopes, "envelopes", |o| {
            Ok((
                o.is_instance_of::<PyString>(),
                convert::data(o, "envelope")?,
            ))
        })?;
        let out: Vec<Option<(bool, Vec<u8>)>> = run(py, true, || {
            items
                .iter()
                .map(|i| {
                    i.as_ref()
                        .map(|(t, d)| Ok((*t, v.rewrap_envelope(d)?)))
                        .transpose()
                })
                .collect()
        })?;
        let list = PyList::empty(py);
        for item in out {
            match item {
                None => list.append(py.None())?,
                Some((t, b)) => list.append(same_form(py, t, b)?)?,
            }
        }
        Ok(list)
    }

    /// Fully re-encrypts an envelope (fresh data key) under the active key version of its
    /// keyring, keeping its form and subject tie; needs its `context`.
    #[pyo3(signature = (envelope, context=None))]
    fn reencrypt<'py>(
        &self,
        py: Python<'py>,
        envelope: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PvResult<Bound<'py, PyAny>> {
        let v = self.vault()?;
        let is_text = envelope.is_instance_of::<PyString>();
        let env = convert::data(envelope, "envelope")?;
        let ctx = convert::context(context)?;
        let big = env.len() >= DETACH_THRESHOLD;
        let out = run(py, big, || Ok(v.reencrypt(&env, &ctx)?))?;
        same_form(py, is_text, out)
    }

    /// Re-encrypts one stored record with a fresh data key; returns whether it existed.
    fn reencrypt_record(
        &self,
        py: Python<'_>,
        collection: &str,
        id: &Bound<'_, PyAny>,
    ) -> PvResult<bool> {
        let v = self.vault()?;
        let id = convert::text(id, "id")?;
        run(py, true, || Ok(v.reencrypt_record(collection, &id)?))
    }

    /// Changes the root key (new passphrase, key or key file) by rewrapping the vault master
    /// key only. Give exactly one of `passphrase=`, `key=`, `key_file=`.
    #[pyo3(signature = (*, passphrase=None, key=None, key_file=None, argon2=None))]
    fn rotate_root(
        &self,
        py: Python<'_>,
        passphrase: Option<&Bound<'_, PyAny>>,
        key: Option<&Bound<'_, PyAny>>,
        key_file: Option<PathBuf>,
        argon2: Option<(u32, u32, u32)>,
    ) -> PvResult<()> {
        let v = self.vault()?;
        let root = root_arg(passphrase, key, key_file, argon2)?;
        run(py, true, || Ok(v.rotate_root(root.source())?))
    }

    /// What depends on each key version: `{"records", "subject_records", "forgotten_records",
    /// "by_version": [{"keyring", "version", "records", "subject_keys"}]}`.
    fn usage<'py>(&self, py: Python<'py>) -> PvResult<Bound<'py, PyDict>> {
        let v = self.vault()?;
        let u = run(py, true, || Ok(v.usage()?))?;
        let d = PyDict::new(py);
        d.set_item("records", u.records)?;
        d.set_item("subject_records", u.subject_records)?;
        d.set_item("forgotten_records", u.forgotten_records)?;
        let list = PyList::empty(py);
        for ((keyring, version), use_) in &u.by_version {
            let e = PyDict::new(py);
            e.set_item("keyring", keyring)?;
            e.set_item("version", version)?;
            e.set_item("records", use_.records)?;
            e.set_item("subject_keys", use_.subject_keys)?;
            list.append(e)?;
        }
        d.set_item("by_version", list)?;
        Ok(d)
    }

    /// The erasures recorded by `forget_subject`, oldest first: `{"time_unix",
    /// "subject_key_id"}` (a keyed hash, never the subject id).
    fn erasures<'py>(&self, py: Python<'py>) -> PvResult<Bound<'py, PyList>> {
        let v = self.vault()?;
        let all = run(py, true, || Ok(v.erasures()?))?;
        let list = PyList::empty(py);
        for e in &all {
            let d = PyDict::new(py);
            d.set_item("time_unix", e.time_unix)?;
            d.set_item("subject_key_id", &e.subject_key_id)?;
            list.append(d)?;
        }
        Ok(list)
    }
}
