//! Status codes, their messages, and the thread-local last error.
//!
//! Codes are grouped in ranges of 100 per subsystem (rustls-ffi style). `PV_OK` is 0; every
//! failure is non-zero. A code once published keeps its meaning forever; a retired code stays
//! reserved and is never reused for something else.

use phivault_core::Error;
use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::c_char;

use crate::ffi::{Out, boundary_value};

/// The status every `pv_` function returns. 0 is success.
///
/// Ranges:
/// - 0: `PV_OK`.
/// - 100–199: the caller's arguments (NULL, lengths, UTF-8, invalid values).
/// - 200–299: authentication and keys.
/// - 300–399: the vault, its storage and its metadata.
/// - 400–499: records.
/// - 500–599: tokenization.
/// - 600–699: access policy and audit.
/// - 900–999: internal failures.
///
/// The C type is `uint32_t`: a caller may meet codes added by a newer library version and
/// must treat any unknown non-zero code as a failure.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum pv_result {
    /// Success.
    PV_OK = 0,

    /// A required pointer argument (handle, string, output) was NULL, or a byte pointer was
    /// NULL with a non-zero length.
    PV_NULL_ARGUMENT = 100,
    /// An argument has an invalid value (an unknown flag, a bad name, a context over its
    /// limits, a key of the wrong length, a misaligned pointer). The last error says which.
    PV_INVALID_ARGUMENT = 101,
    /// A text argument is not valid UTF-8.
    PV_INVALID_UTF8 = 102,
    /// A length is larger than any buffer can be (above `PTRDIFF_MAX`).
    PV_LENGTH_TOO_LARGE = 103,
    /// The caller's output buffer is too small (message functions: the text was truncated).
    PV_BUFFER_TOO_SMALL = 104,

    /// A ciphertext failed authentication: it was damaged, tampered with, truncated, or does
    /// not belong to this context or key. Deliberately one code for all of these.
    PV_AUTHENTICATION_FAILED = 200,
    /// The root key (key bytes or passphrase) does not unlock this vault.
    PV_WRONG_ROOT_KEY = 201,
    /// The vault was created with another kind of root key (passphrase vs key bytes).
    PV_ROOT_KIND_MISMATCH = 202,
    /// The named keyring does not exist.
    PV_UNKNOWN_KEYRING = 203,
    /// The keyring has no such key version.
    PV_UNKNOWN_KEY_VERSION = 204,
    /// The key version is retired: below the keyring's minimum decryption version.
    PV_KEY_RETIRED = 205,
    /// The key version was destroyed; data under it is unrecoverable.
    PV_KEY_DESTROYED = 206,
    /// A keyring with that name exists already.
    PV_KEYRING_EXISTS = 207,
    /// The data belongs to a forgotten subject (crypto-shredded); it is unrecoverable.
    PV_SUBJECT_FORGOTTEN = 208,
    /// The key version still protects data; rewrap first, or destroy with `force`.
    PV_KEY_IN_USE = 209,
    /// The key version is the key of a token field (FF1, pseudonym, date shift); destroying it
    /// would make those tokens irreversible. Migrate the field first, or force.
    PV_KEY_PINNED_BY_FIELD = 210,

    /// No vault exists at the path.
    PV_VAULT_NOT_FOUND = 300,
    /// A vault exists already at the path.
    PV_VAULT_EXISTS = 301,
    /// The vault is held open by another process or another handle.
    PV_VAULT_LOCKED = 302,
    /// The handle was closed with `pv_vault_close`.
    PV_VAULT_CLOSED = 303,
    /// The data was written by an unknown or newer format version.
    PV_UNSUPPORTED_VERSION = 304,
    /// Vault metadata is damaged or was edited outside phivault.
    PV_CORRUPT_METADATA = 305,
    /// The embedded store failed.
    PV_STORE_ERROR = 306,
    /// A file-system operation failed (vault directory, lock file, header).
    PV_IO_ERROR = 307,
    /// A concurrent change got in the way; nothing was changed and the call can be retried.
    PV_CONFLICT = 308,
    /// The store holds fewer commits than its commit anchor records: an older copy of the store
    /// was put back, or damage cut its history short. Restore the latest backup, or salvage.
    PV_STORE_ROLLED_BACK = 309,
    /// The store or its commit anchor is damaged. Run `phivault verify`, then restore the latest
    /// backup or salvage.
    PV_STORE_CORRUPTED = 310,

    /// No record with that collection and id.
    PV_NOT_FOUND = 400,

    /// The token is not a token of this field: unknown, malformed or forged.
    PV_INVALID_TOKEN = 500,
    /// No field of that name is defined (and no preset has it).
    PV_UNKNOWN_FIELD = 501,
    /// The field is tied to data subjects: the call must name the subject.
    PV_SUBJECT_REQUIRED = 502,

    /// The access policy does not allow this principal this action for this purpose
    /// (default deny), or not with this view.
    PV_ACCESS_DENIED = 600,
    /// The audit entry could not be written, so the operation was refused (fail closed).
    PV_AUDIT_UNAVAILABLE = 601,

    /// The system random number generator or a cryptographic primitive failed.
    PV_CRYPTO_FAILURE = 900,
    /// A bug: a panic inside the library was caught at the C boundary.
    PV_PANIC = 901,
    /// A failure this version of the binding does not classify (a newer core error).
    PV_INTERNAL_ERROR = 902,
}

impl pv_result {
    /// The fixed, PHI-free description of the code.
    fn message(self) -> &'static str {
        use pv_result::*;
        match self {
            PV_OK => "success",
            PV_NULL_ARGUMENT => "a required pointer argument is NULL",
            PV_INVALID_ARGUMENT => "an argument has an invalid value",
            PV_INVALID_UTF8 => "a text argument is not valid UTF-8",
            PV_LENGTH_TOO_LARGE => "a length is larger than any buffer can be",
            PV_BUFFER_TOO_SMALL => "the output buffer is too small",
            PV_AUTHENTICATION_FAILED => "authentication failed",
            PV_WRONG_ROOT_KEY => "wrong root key: it does not unlock this vault",
            PV_ROOT_KIND_MISMATCH => "the vault uses another kind of root key",
            PV_UNKNOWN_KEYRING => "unknown keyring",
            PV_UNKNOWN_KEY_VERSION => "unknown key version",
            PV_KEY_RETIRED => "the key version is retired",
            PV_KEY_DESTROYED => "the key version was destroyed",
            PV_KEYRING_EXISTS => "the keyring exists already",
            PV_SUBJECT_FORGOTTEN => "the data subject was forgotten; the data is unrecoverable",
            PV_KEY_IN_USE => "the key version still protects data",
            PV_KEY_PINNED_BY_FIELD => "the key version is the key of a token field",
            PV_VAULT_NOT_FOUND => "no vault at that path",
            PV_VAULT_EXISTS => "a vault exists already at that path",
            PV_VAULT_LOCKED => "the vault is locked by another process or handle",
            PV_VAULT_CLOSED => "the vault handle is closed",
            PV_UNSUPPORTED_VERSION => "unsupported format version",
            PV_CORRUPT_METADATA => "vault metadata is damaged or was tampered with",
            PV_STORE_ERROR => "the store failed",
            PV_IO_ERROR => "a file-system operation failed",
            PV_CONFLICT => "a concurrent change got in the way; retry",
            PV_NOT_FOUND => "not found",
            PV_INVALID_TOKEN => "invalid token for this field",
            PV_UNKNOWN_FIELD => "unknown token field",
            PV_SUBJECT_REQUIRED => "the field is tied to data subjects: give the subject",
            PV_ACCESS_DENIED => "access denied by policy",
            PV_AUDIT_UNAVAILABLE => "audit log unavailable: operation refused",
            PV_STORE_ROLLED_BACK => {
                "the store was rolled back or lost committed writes: restore the latest backup or salvage"
            }
            PV_STORE_CORRUPTED => "the store is damaged: verify, then restore or salvage",
            PV_CRYPTO_FAILURE => "a cryptographic primitive or the random generator failed",
            PV_PANIC => "internal error (a panic was caught)",
            PV_INTERNAL_ERROR => "internal error",
        }
    }

    const ALL: [pv_result; 37] = {
        use pv_result::*;
        [
            PV_OK,
            PV_NULL_ARGUMENT,
            PV_INVALID_ARGUMENT,
            PV_INVALID_UTF8,
            PV_LENGTH_TOO_LARGE,
            PV_BUFFER_TOO_SMALL,
            PV_AUTHENTICATION_FAILED,
            PV_WRONG_ROOT_KEY,
            PV_ROOT_KIND_MISMATCH,
            PV_UNKNOWN_KEYRING,
            PV_UNKNOWN_KEY_VERSION,
            PV_KEY_RETIRED,
            PV_KEY_DESTROYED,
            PV_KEYRING_EXISTS,
            PV_SUBJECT_FORGOTTEN,
            PV_KEY_IN_USE,
            PV_KEY_PINNED_BY_FIELD,
            PV_VAULT_NOT_FOUND,
            PV_VAULT_EXISTS,
            PV_VAULT_LOCKED,
            PV_VAULT_CLOSED,
            PV_UNSUPPORTED_VERSION,
            PV_CORRUPT_METADATA,
            PV_STORE_ERROR,
            PV_IO_ERROR,
            PV_CONFLICT,
            PV_STORE_ROLLED_BACK,
            PV_STORE_CORRUPTED,
            PV_NOT_FOUND,
            PV_INVALID_TOKEN,
            PV_UNKNOWN_FIELD,
            PV_SUBJECT_REQUIRED,
            PV_ACCESS_DENIED,
            PV_AUDIT_UNAVAILABLE,
            PV_CRYPTO_FAILURE,
            PV_PANIC,
            PV_INTERNAL_ERROR,
        ]
    };

    /// The code for a raw number from C, if it is one of ours.
    fn from_u32(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| *c as u32 == code)
    }
}

/// A failure inside the binding: its code and a PHI-free detail for the last-error slot.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: pv_result,
    detail: Cow<'static, str>,
}

impl Failure {
    pub(crate) fn new(code: pv_result, detail: impl Into<Cow<'static, str>>) -> Self {
        Failure {
            code,
            detail: detail.into(),
        }
    }

    /// A failure with the code's own description as detail.
    pub(crate) fn code(code: pv_result) -> Self {
        Failure::new(code, code.message())
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        use pv_result::*;
        let code = match &e {
            Error::AuthenticationFailed => PV_AUTHENTICATION_FAILED,
            Error::WrongRootKey => PV_WRONG_ROOT_KEY,
            Error::RootKindMismatch { .. } => PV_ROOT_KIND_MISMATCH,
            Error::VaultLocked { .. } => PV_VAULT_LOCKED,
            Error::VaultNotFound { .. } => PV_VAULT_NOT_FOUND,
            Error::VaultExists { .. } => PV_VAULT_EXISTS,
            Error::UnsupportedVersion { .. } => PV_UNSUPPORTED_VERSION,
            Error::UnknownKeyring { .. } => PV_UNKNOWN_KEYRING,
            Error::UnknownKeyVersion { .. } => PV_UNKNOWN_KEY_VERSION,
            Error::KeyDestroyed { .. } => PV_KEY_DESTROYED,
            Error::KeyRetired { .. } => PV_KEY_RETIRED,
            Error::SubjectForgotten => PV_SUBJECT_FORGOTTEN,
            Error::KeyringExists { .. } => PV_KEYRING_EXISTS,
            Error::KeyInUse { .. } => PV_KEY_IN_USE,
            Error::Conflict { .. } => PV_CONFLICT,
            Error::StoreRolledBack { .. } => PV_STORE_ROLLED_BACK,
            Error::StoreCorrupted { .. } => PV_STORE_CORRUPTED,
            Error::KeyPinnedByField { .. } => PV_KEY_PINNED_BY_FIELD,
            Error::InvalidToken { .. } => PV_INVALID_TOKEN,
            Error::UnknownField { .. } => PV_UNKNOWN_FIELD,
            Error::SubjectRequired { .. } => PV_SUBJECT_REQUIRED,
            Error::AccessDenied { .. } => PV_ACCESS_DENIED,
            Error::AuditUnavailable => PV_AUDIT_UNAVAILABLE,
            Error::InvalidInput { .. }
            | Error::DeidSchema { .. }
            | Error::Ndjson { .. }
            | Error::UnknownSchema { .. } => PV_INVALID_ARGUMENT,
            Error::CorruptMetadata { .. } => PV_CORRUPT_METADATA,
            Error::Store(_) => PV_STORE_ERROR,
            Error::Io { .. } => PV_IO_ERROR,
            Error::Crypto(_) => PV_CRYPTO_FAILURE,
            _ => PV_INTERNAL_ERROR,
        };
        // The core's messages name operations, keyrings, fields and paths, never a secret or
        // a PHI value (core/src/error.rs), so they are safe to hand to C.
        Failure::new(code, Cow::Owned(e.to_string()))
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<Failure>> = const { RefCell::new(None) };
}

/// Records `failure` as this thread's last error.
pub(crate) fn set_last_error(failure: Failure) {
    // `try_with`: during thread teardown the slot may be gone; then there is nowhere to record.
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = Some(failure);
        }
    });
}

/// Copies `msg` into the caller's buffer, NUL-terminated, truncated at a UTF-8 character
/// boundary when it does not fit.
///
/// # Safety
/// `buf` is NULL or points to `buf_len` writable bytes.
unsafe fn copy_message(
    msg: &str,
    buf: *mut c_char,
    buf_len: usize,
    out_written: *mut usize,
) -> pv_result {
    // SAFETY: forwarded contract for `out_written`.
    let Ok(out) = (unsafe { Out::new(out_written, "out_written") }) else {
        return pv_result::PV_NULL_ARGUMENT;
    };
    if buf.is_null() {
        return pv_result::PV_NULL_ARGUMENT;
    }
    if buf_len == 0 || buf_len > isize::MAX as usize {
        return pv_result::PV_BUFFER_TOO_SMALL;
    }
    let mut n = msg.len().min(buf_len - 1);
    while !msg.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: `buf` is non-NULL and, by the contract, has `buf_len > n` writable bytes; the
    // source is a Rust string that cannot overlap caller memory.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
        buf.add(n).write(0);
    }
    out.set(n);
    if n < msg.len() {
        pv_result::PV_BUFFER_TOO_SMALL
    } else {
        pv_result::PV_OK
    }
}

/// Writes the fixed description of status `code` into `buf` (`buf_len` bytes), always
/// NUL-terminated, and the number of bytes written (without the NUL) into `*out_written`.
///
/// Returns `PV_OK`; `PV_BUFFER_TOO_SMALL` if the text was truncated to fit (the one exception
/// to "outputs only on success": a fixed buffer always gets printable text); for `buf_len` 0,
/// nothing is written. An unknown code gets the text "unknown status code". Descriptions
/// contain no data; 128 bytes hold every one.
///
/// # Safety
/// `buf` points to `buf_len` writable bytes; `out_written` to a writable `size_t`.
///
/// Thread safety: may be called from any thread. Does not change the last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_error_message(
    code: u32,
    buf: *mut c_char,
    buf_len: usize,
    out_written: *mut usize,
) -> pv_result {
    boundary_value(pv_result::PV_PANIC, || {
        let msg = pv_result::from_u32(code).map_or("unknown status code", pv_result::message);
        // SAFETY: forwarded contract.
        Some(unsafe { copy_message(msg, buf, buf_len, out_written) })
    })
}

/// The code of the last failed `pv_` call on this thread, or `PV_OK` if none has failed.
/// Like `errno`, it is set by failures only: a later success does not clear it.
///
/// Thread safety: per thread; may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn pv_last_error_code() -> pv_result {
    boundary_value(pv_result::PV_PANIC, || {
        LAST_ERROR
            .try_with(|slot| {
                slot.try_borrow()
                    .ok()
                    .and_then(|s| s.as_ref().map(|f| f.code))
            })
            .ok()
            .map(|c| c.unwrap_or(pv_result::PV_OK))
    })
}

/// Writes the detail of the last failed `pv_` call on this thread into `buf` like
/// [`pv_error_message`] ("" if none has failed). The detail says which argument or check
/// failed, never a secret or a PHI value; it may name a vault path or a keyring.
///
/// # Safety
/// `buf` points to `buf_len` writable bytes; `out_written` to a writable `size_t`.
///
/// Thread safety: per thread; may be called from any thread. Does not change the last error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_last_error_message(
    buf: *mut c_char,
    buf_len: usize,
    out_written: *mut usize,
) -> pv_result {
    boundary_value(pv_result::PV_PANIC, || {
        let detail = LAST_ERROR
            .try_with(|slot| {
                slot.try_borrow()
                    .ok()
                    .and_then(|s| s.as_ref().map(|f| f.detail.to_string()))
            })
            .ok()
            .flatten()
            .unwrap_or_default();
        // SAFETY: forwarded contract.
        Some(unsafe { copy_message(&detail, buf, buf_len, out_written) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in pv_result::ALL {
            assert!(seen.insert(c as u32), "duplicate code {}", c as u32);
            assert_eq!(pv_result::from_u32(c as u32), Some(c));
            assert!(c.message().len() < 128);
        }
        assert_eq!(pv_result::from_u32(1), None);
    }

    #[test]
    fn authentication_failures_are_one_code() {
        assert_eq!(
            Failure::from(Error::AuthenticationFailed).code,
            pv_result::PV_AUTHENTICATION_FAILED
        );
    }

    #[test]
    fn message_is_truncated_at_char_boundary() {
        let mut buf = [0x7f as c_char; 4];
        let mut n = 0usize;
        // "é" is two bytes: "aé" + "é" does not fit in 3 bytes + NUL at a boundary.
        // SAFETY: the buffer and `n` are live locals of the right sizes.
        let r = unsafe { copy_message("aéé", buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(r, pv_result::PV_BUFFER_TOO_SMALL);
        assert_eq!(n, 3);
        assert_eq!(buf[3], 0);
    }
}
