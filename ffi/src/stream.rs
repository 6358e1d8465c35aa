//! Streaming encryption of large files (issue 10) by file path: `pv_vault_encrypt_file` and
//! `pv_vault_decrypt_file`, over the core's `Session::encrypt_file` / `Session::decrypt_file` (the owner's session).
//!
//! Memory stays constant whatever the file size (one segment plus 1 MiB buffers). The output
//! is written beside its final path (`<out_path>.partial`, mode 0600) and renamed into place
//! only when the call succeeds: a failed call leaves no output file and never a partial one.

use crate::context::pv_context;
use crate::error::{Failure, pv_result};
use crate::ffi::{arg_bytes, arg_opt_str, arg_ref, boundary};
use crate::vault::{pv_vault, with_vault};
use phivault_core::Context;
use phivault_core::stream::StreamOptions;
use std::borrow::Cow;
use std::path::PathBuf;

/// Reads a required path argument (pointer + length, raw bytes on Unix, UTF-8 elsewhere).
///
/// # Safety
/// `path` is NULL or points to `path_len` readable bytes.
unsafe fn arg_file_path(
    path: *const std::ffi::c_char,
    path_len: usize,
    what: &'static str,
) -> Result<PathBuf, Failure> {
    if path.is_null() {
        return Err(Failure::new(
            pv_result::PV_NULL_ARGUMENT,
            Cow::Owned(format!("{what} is NULL")),
        ));
    }
    // SAFETY: forwarded contract.
    let bytes = unsafe { arg_bytes(path.cast(), path_len, what) }?;
    if bytes.is_empty() {
        return Err(Failure::new(
            pv_result::PV_INVALID_ARGUMENT,
            Cow::Owned(format!("{what} is empty")),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(bytes).map(PathBuf::from).map_err(|_| {
            Failure::new(
                pv_result::PV_INVALID_UTF8,
                Cow::Owned(format!("{what} is not valid UTF-8")),
            )
        })
    }
}

/// Borrows an optional `const pv_context *`: NULL is `None` (the empty context).
///
/// # Safety
/// `ctx` is NULL or a live context.
unsafe fn arg_opt_context<'a>(ctx: *const pv_context) -> Result<Option<&'a Context>, Failure> {
    if ctx.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract (non-NULL here).
    Ok(Some(&unsafe { arg_ref(ctx, "ctx") }?.inner))
}

/// Encrypts the file `in_path` into the stream file `out_path` (issue 10's segmented
/// streaming format, docs/FORMAT.md) bound to `ctx` under the `default` keyring, with constant
/// memory. `ctx` may be NULL: the empty context. `subject` (NULL, 0 for none) ties the file
/// to a data subject: after `pv_vault_forget_subject` it can never be decrypted again.
///
/// The output is written to `<out_path>.partial` (mode 0600) and renamed to `out_path` only
/// on success; on failure no output is left. An existing `out_path` is replaced.
///
/// Returns `PV_NULL_ARGUMENT` (a NULL path), `PV_INVALID_ARGUMENT` (an empty path, a context
/// over its limits), `PV_IO_ERROR` (the input cannot be read, the output cannot be written),
/// `PV_UNKNOWN_KEYRING`, `PV_SUBJECT_FORGOTTEN`, `PV_AUDIT_UNAVAILABLE`, `PV_VAULT_CLOSED`, ...
///
/// # Safety
/// `vault` is a live handle; `in_path` / `out_path` point to `in_path_len` / `out_path_len`
/// readable bytes (file-system paths, not NUL-terminated); `ctx` is NULL or a live context;
/// `subject` points to `subject_len` readable bytes or is NULL with 0.
///
/// Thread safety: may run concurrently with any call on the same vault (`pv_vault_close`
/// waits for it to finish).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn pv_vault_encrypt_file(
    vault: *const pv_vault,
    in_path: *const std::ffi::c_char,
    in_path_len: usize,
    out_path: *const std::ffi::c_char,
    out_path_len: usize,
    ctx: *const pv_context,
    subject: *const std::ffi::c_char,
    subject_len: usize,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let input = unsafe { arg_file_path(in_path, in_path_len, "in_path") }?;
        // SAFETY: forwarded contract.
        let output = unsafe { arg_file_path(out_path, out_path_len, "out_path") }?;
        // SAFETY: forwarded contract.
        let ctx = unsafe { arg_opt_context(ctx) }?;
        let empty = Context::new();
        let ctx = ctx.unwrap_or(&empty);
        // SAFETY: forwarded contract.
        let subject = unsafe { arg_opt_str(subject, subject_len, "subject") }?;
        let opts = StreamOptions {
            subject: subject.map(str::to_owned),
            ..StreamOptions::default()
        };
        // SAFETY: forwarded contract.
        unsafe {
            with_vault(vault, |v| {
                v.owner()
                    .encrypt_file(&input, &output, ctx, &opts, &mut |_| {})?;
                Ok(())
            })
        }
    })
}

/// Decrypts the stream file `in_path` (made by `pv_vault_encrypt_file` or
/// `phivault encrypt-file`) under `ctx` into the file `out_path`, with constant memory.
/// `ctx` may be NULL: the empty context.
///
/// The plaintext is written to `<out_path>.partial` (mode 0600) and renamed to `out_path`
/// only once the whole stream has authenticated: a damaged, truncated, extended or reordered
/// file, a wrong context or a wrong key leave no output and return the one code
/// `PV_AUTHENTICATION_FAILED`. An existing `out_path` is replaced.
///
/// Returns `PV_AUTHENTICATION_FAILED`, `PV_UNSUPPORTED_VERSION` (not a stream of a known
/// version), `PV_NULL_ARGUMENT` (a NULL path), `PV_INVALID_ARGUMENT` (an empty path),
/// `PV_IO_ERROR`, `PV_KEY_RETIRED`, `PV_KEY_DESTROYED`, `PV_SUBJECT_FORGOTTEN`,
/// `PV_UNKNOWN_KEYRING`, `PV_VAULT_CLOSED`, ...
///
/// # Safety
/// As `pv_vault_encrypt_file`.
///
/// Thread safety: may run concurrently with any call on the same vault (`pv_vault_close`
/// waits for it to finish).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_decrypt_file(
    vault: *const pv_vault,
    in_path: *const std::ffi::c_char,
    in_path_len: usize,
    out_path: *const std::ffi::c_char,
    out_path_len: usize,
    ctx: *const pv_context,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let input = unsafe { arg_file_path(in_path, in_path_len, "in_path") }?;
        // SAFETY: forwarded contract.
        let output = unsafe { arg_file_path(out_path, out_path_len, "out_path") }?;
        // SAFETY: forwarded contract.
        let ctx = unsafe { arg_opt_context(ctx) }?;
        let empty = Context::new();
        let ctx = ctx.unwrap_or(&empty);
        // SAFETY: forwarded contract.
        unsafe {
            with_vault(vault, |v| {
                v.owner().decrypt_file(&input, &output, ctx, &mut |_| {})?;
                Ok(())
            })
        }
    })
}
