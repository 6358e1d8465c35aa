//! The one error type of the binding and its conversion to the Python exceptions.
//!
//! The exception classes are defined in Python (`phivault/exceptions.py`) and imported here, so
//! `except phivault.VaultError` catches everything and the hierarchy is documented where users
//! read it. Messages are core's `Display`, which never contains secret or PHI input.

use pyo3::PyErr;
use pyo3::import_exception;
use pyo3::prelude::*;

import_exception!(phivault.exceptions, VaultError);
import_exception!(phivault.exceptions, AuthenticationError);
import_exception!(phivault.exceptions, InvalidToken);
import_exception!(phivault.exceptions, WrongRootKey);
import_exception!(phivault.exceptions, AccessDenied);
import_exception!(phivault.exceptions, VaultLocked);
import_exception!(phivault.exceptions, VaultClosed);
import_exception!(phivault.exceptions, VaultNotFound);
import_exception!(phivault.exceptions, VaultExists);
import_exception!(phivault.exceptions, KeyRetired);
import_exception!(phivault.exceptions, KeyDestroyed);
import_exception!(phivault.exceptions, SubjectForgotten);
import_exception!(phivault.exceptions, UnknownKeyring);
import_exception!(phivault.exceptions, KeyringExists);
import_exception!(phivault.exceptions, KeyInUse);
import_exception!(phivault.exceptions, Conflict);
import_exception!(phivault.exceptions, InvalidInput);
import_exception!(phivault.exceptions, UnknownField);
import_exception!(phivault.exceptions, SubjectRequired);
import_exception!(phivault.exceptions, UnsupportedVersion);
import_exception!(phivault.exceptions, CorruptVault);
import_exception!(phivault.exceptions, StorageError);
import_exception!(phivault.exceptions, InternalError);
import_exception!(phivault.exceptions, AuditError);

/// Everything a binding function can fail with.
#[derive(Debug)]
pub enum PvError {
    /// An error of the core crate.
    Core(phivault::Error),
    /// A Python error (a wrong argument type, a failing iterator, ...), passed through.
    Py(PyErr),
    /// The `Vault` was closed.
    Closed,
    /// An argument value the binding itself refuses; the text never echoes the value.
    Invalid(&'static str),
    /// A panic was caught at the boundary (a bug).
    Panic,
    /// Row `.0` of a batch failed with `.1` (`errors="raise"`): raised as `.1`'s exception,
    /// with the row's index in the message and in the `row` attribute (never the value).
    Row(usize, phivault::Error),
}

/// `Result` with [`PvError`].
pub type PvResult<T> = Result<T, PvError>;

impl From<phivault::Error> for PvError {
    fn from(e: phivault::Error) -> Self {
        PvError::Core(e)
    }
}

impl From<PyErr> for PvError {
    fn from(e: PyErr) -> Self {
        PvError::Py(e)
    }
}

impl From<PvError> for PyErr {
    fn from(e: PvError) -> PyErr {
        match e {
            PvError::Core(e) => core_to_py(&e),
            PvError::Row(row, e) => {
                let err = core_to_py(&e);
                Python::attach(|py| {
                    let exc = err.value(py);
                    let _ = exc.setattr("row", row);
                    let msg = format!("row {row}: {e}");
                    let _ = exc.setattr("args", (msg,));
                });
                err
            }
            PvError::Py(e) => e,
            PvError::Closed => VaultClosed::new_err("the vault is closed"),
            PvError::Invalid(why) => InvalidInput::new_err(why),
            PvError::Panic => InternalError::new_err(
                "internal error in phivault (a panic was caught); please report it",
            ),
        }
    }
}

/// Maps a core error to its Python exception class. Core's enum is `#[non_exhaustive]`: an
/// error this binding does not know yet becomes the base `VaultError`, never a crash.
fn core_to_py(e: &phivault::Error) -> PyErr {
    use phivault::Error as E;
    let msg = e.to_string();
    match e {
        E::AuthenticationFailed => AuthenticationError::new_err(msg),
        E::WrongRootKey | E::RootKindMismatch { .. } => WrongRootKey::new_err(msg),
        E::VaultLocked { .. } => VaultLocked::new_err(msg),
        E::VaultNotFound { .. } => VaultNotFound::new_err(msg),
        E::VaultExists { .. } => VaultExists::new_err(msg),
        E::UnsupportedVersion { .. } => UnsupportedVersion::new_err(msg),
        E::UnknownKeyring { .. } | E::UnknownKeyVersion { .. } => UnknownKeyring::new_err(msg),
        E::KeyDestroyed { .. } => KeyDestroyed::new_err(msg),
        E::KeyRetired { .. } => KeyRetired::new_err(msg),
        E::SubjectForgotten => SubjectForgotten::new_err(msg),
        E::KeyringExists { .. } => KeyringExists::new_err(msg),
        E::KeyInUse { .. } | E::KeyPinnedByField { .. } => KeyInUse::new_err(msg),
        E::AccessDenied { .. } => AccessDenied::new_err(msg),
        E::AuditUnavailable => AuditError::new_err(msg),
        E::Conflict { .. } => Conflict::new_err(msg),
        E::InvalidInput { .. }
        | E::DeidSchema { .. }
        | E::Ndjson { .. }
        | E::UnknownSchema { .. } => InvalidInput::new_err(msg),
        E::InvalidToken { .. } => InvalidToken::new_err(msg),
        E::UnknownField { .. } => UnknownField::new_err(msg),
        E::SubjectRequired { .. } => SubjectRequired::new_err(msg),
        E::CorruptMetadata { .. } | E::StoreRolledBack { .. } | E::StoreCorrupted { .. } => {
            CorruptVault::new_err(msg)
        }
        E::Store(_) | E::Io { .. } => StorageError::new_err(msg),
        _ => VaultError::new_err(msg),
    }
}
