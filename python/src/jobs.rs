//! Jobs for many worker processes (`Vault.handle()`, `phivault/handle.py`): begin, end and
//! merge on the owner's `Vault`; open a job's snapshot in a worker. Mirrors core's `jobs`
//! module; the handle object itself is pure Python (it carries no secret).

use crate::convert::run;
use crate::errors::{PvError, PvResult};
use crate::session::PySession;
use crate::vault::{PyVault, options, root_arg};
use phivault::jobs::{JobId, JobVault};
use phivault::policy::Caller;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::time::Duration;

fn report_dict<'py>(
    py: Python<'py>,
    r: &phivault::jobs::MergeReport,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("spools", r.spools)?;
    d.set_item("entries", r.entries)?;
    d.set_item("torn", r.torn)?;
    Ok(d)
}

#[pymethods]
impl PyVault {
    /// A picklable handle that opens this vault in other processes (Dask, Spark,
    /// `multiprocessing`): `handle.open()` in a worker gives an object with the batch calls,
    /// opened once per process. The handle carries the vault's location and where the worker
    /// finds the root key — `key_file=` (a path), `key_env=` (an environment variable holding
    /// the key's 64 hex digits) or `passphrase_env=` — never key bytes or a passphrase. By
    /// default, the key file this vault was opened with.
    ///
    /// A directory vault begins a job (a sealed snapshot of its keys for the stateless kinds,
    /// valid `ttl_seconds`): workers act as `principal`/`purpose` (default: the owner) and
    /// their audit entries are merged by `end_job(handle.job_id)`. A PostgreSQL vault is
    /// opened by each worker; its URL must not carry a password (workers read
    /// `PGPASSFILE`/`~/.pgpass`).
    #[pyo3(signature = (*, key_file=None, key_env=None, passphrase_env=None, principal=None,
        purpose=None, ttl_seconds=86_400, threads=1))]
    #[allow(clippy::too_many_arguments)]
    fn handle<'py>(
        &self,
        py: Python<'py>,
        key_file: Option<PathBuf>,
        key_env: Option<String>,
        passphrase_env: Option<String>,
        principal: Option<&str>,
        purpose: Option<&str>,
        ttl_seconds: u64,
        threads: usize,
    ) -> PvResult<Bound<'py, PyAny>> {
        let v = self.vault()?;
        let origin = self.origin().ok_or(PvError::Invalid(
            "this vault has no location to hand to workers",
        ))?;
        let given = usize::from(key_file.is_some())
            + usize::from(key_env.is_some())
            + usize::from(passphrase_env.is_some());
        if given > 1 {
            return Err(PvError::Invalid(
                "give at most one of key_file=, key_env= or passphrase_env=",
            ));
        }
        let root = PyDict::new(py);
        if let Some(k) = key_file {
            root.set_item(
                "key_file",
                std::path::absolute(&k).unwrap_or(k).to_string_lossy(),
            )?;
        } else if let Some(e) = key_env {
            root.set_item("key_env", e)?;
        } else if let Some(e) = passphrase_env {
            root.set_item("passphrase_env", e)?;
        } else if let Some(k) = origin.key_file() {
            root.set_item("key_file", k.to_string_lossy())?;
        } else {
            return Err(PvError::Invalid(
                "this vault was opened with key= or passphrase=: say where workers find the root \
                 key (key_file=, key_env= or passphrase_env=)",
            ));
        }
        let location = origin.location();
        let is_dir = v.path().is_some();
        let (job_id, expires) = if is_dir {
            let (id, exp) = self._begin_job(py, principal, purpose, ttl_seconds)?;
            (Some(id), Some(exp))
        } else {
            let url = location.to_string_lossy();
            if phivault::store::pg_connect::has_password(&url) {
                return Err(PvError::Invalid(
                    "the vault's URL carries a password, which a handle would pickle: put it in \
                     PGPASSFILE or ~/.pgpass on the workers and open the vault without it",
                ));
            }
            (None, None)
        };
        let module = py.import("phivault.handle")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("location", location.to_string_lossy())?;
        kwargs.set_item("root", root)?;
        kwargs.set_item("job_id", job_id)?;
        kwargs.set_item("expires_unix", expires)?;
        kwargs.set_item("principal", principal)?;
        kwargs.set_item("purpose", purpose)?;
        kwargs.set_item("backend", origin.backend())?;
        kwargs.set_item("threads", threads)?;
        Ok(module.getattr("VaultHandle")?.call((), Some(&kwargs))?)
    }

    /// Begins a job on this directory vault (see `Vault.handle`): returns `(job_id,
    /// expires_unix)`. `principal=None` acts as the owner.
    #[pyo3(signature = (principal, purpose, ttl_seconds))]
    fn _begin_job(
        &self,
        py: Python<'_>,
        principal: Option<&str>,
        purpose: Option<&str>,
        ttl_seconds: u64,
    ) -> PvResult<(String, u64)> {
        let v = self.vault()?;
        let caller = match principal {
            None => Caller::owner(),
            Some(p) => Caller::new(p, purpose.unwrap_or("research")),
        };
        let job = run(py, true, || {
            Ok(v.begin_job(&caller, Duration::from_secs(ttl_seconds))?)
        })?;
        Ok((job.id.to_string(), job.expires_unix))
    }

    /// Merges the audit entries job `job_id`'s workers spooled into this vault's log:
    /// `{"spools", "entries", "torn"}`.
    fn merge_job_audit<'py>(&self, py: Python<'py>, job_id: &str) -> PvResult<Bound<'py, PyDict>> {
        let v = self.vault()?;
        let id = JobId::parse(job_id)?;
        let r = run(py, true, || Ok(v.merge_job_audit(&id)?))?;
        Ok(report_dict(py, &r)?)
    }

    /// Ends job `job_id`: its snapshot is deleted (workers can no longer open it) and its
    /// workers' audit entries are merged; returns the merge report.
    fn end_job<'py>(&self, py: Python<'py>, job_id: &str) -> PvResult<Bound<'py, PyDict>> {
        let v = self.vault()?;
        let id = JobId::parse(job_id)?;
        let r = run(py, true, || Ok(v.end_job(&id)?))?;
        Ok(report_dict(py, &r)?)
    }
}

/// Opens job `job_id` of the directory vault at `path` in a worker process, with the vault's
/// root key (`passphrase=`, `key=` or `key_file=`): a `Session` acting as the job's sealed
/// caller, whose batch calls spool their audit entries before returning.
#[pyfunction]
#[pyo3(signature = (path, job_id, *, passphrase=None, key=None, key_file=None, backend="ring",
    threads=1))]
#[allow(clippy::too_many_arguments)]
pub fn _open_job(
    py: Python<'_>,
    path: PathBuf,
    job_id: &str,
    passphrase: Option<&Bound<'_, PyAny>>,
    key: Option<&Bound<'_, PyAny>>,
    key_file: Option<PathBuf>,
    backend: &str,
    threads: usize,
) -> PvResult<PySession> {
    let id = JobId::parse(job_id)?;
    let root = root_arg(passphrase, key, key_file, None)?;
    let opts = options("immediate", backend, threads)?;
    let job = run(py, true, || {
        Ok(JobVault::open(&path, &id, root.source(), opts)?)
    })?;
    let (vault, caller) = job.into_parts();
    let vault = Py::new(py, PyVault::new(vault))?;
    Ok(PySession::for_job(vault, caller))
}

/// Opens the vault at `location` (a `postgres://` URL: every process opens it) in a worker:
/// a `Session` acting as `principal`/`purpose` (`None`: the owner) whose every audit entry is
/// written before its call returns (`Vault::write_audit_entries_at_once`).
#[pyfunction]
#[pyo3(signature = (location, *, principal=None, purpose=None, passphrase=None, key=None,
    key_file=None, backend="ring", threads=1))]
#[allow(clippy::too_many_arguments)]
pub fn _open_worker(
    py: Python<'_>,
    location: PathBuf,
    principal: Option<&str>,
    purpose: Option<&str>,
    passphrase: Option<&Bound<'_, PyAny>>,
    key: Option<&Bound<'_, PyAny>>,
    key_file: Option<PathBuf>,
    backend: &str,
    threads: usize,
) -> PvResult<PySession> {
    let root = root_arg(passphrase, key, key_file, None)?;
    let opts = options("immediate", backend, threads)?;
    let v = run(py, true, || {
        Ok(phivault::Vault::open_at(&location, root.source(), opts)?)
    })?;
    v.write_audit_entries_at_once();
    let caller = match principal {
        None => Caller::owner(),
        Some(p) => Caller::new(p, purpose.unwrap_or("research")),
    };
    let vault = Py::new(py, PyVault::new(v))?;
    Ok(PySession::for_job(vault, caller))
}
