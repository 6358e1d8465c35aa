//! `pv_vault`: create, open, close and free a vault; encrypt and decrypt bound to a context;
//! keyrings and rotation; status.
//!
//! One handle may be shared by many threads: every function that takes a `const pv_vault *`
//! may run concurrently with any other such call on the same handle (the core `Vault` is
//! `Send + Sync`). `pv_vault_close` may also run concurrently: it waits for calls in flight,
//! and later calls get `PV_VAULT_CLOSED`. Only `pv_vault_free` needs every other thread to be
//! done with the handle.

use crate::buffer::pv_buffer;
use crate::context::pv_context;
use crate::error::{Failure, pv_result};
use crate::ffi::{Out, arg_bytes, arg_opt_str, arg_ref, arg_str, boundary, free_raw, into_raw};
use crate::root::pv_root_key;
use crate::session::Who;
use phivault_core::{EncryptOptions, Vault};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

/// Flag for `pv_vault_encrypt_with`: deterministic encryption (AES-SIV). Equal plaintexts
/// under the same context and key version give equal envelopes, which allows equality
/// lookups and reveals equality. Use only for lookup columns.
pub const PV_ENCRYPT_DETERMINISTIC: u32 = 1;
/// Flag for `pv_vault_encrypt_with` / `pv_vault_encrypt_for_subject`: return the text form
/// `pv1:<keyring>:<version>:<base64url>` instead of the binary envelope.
pub const PV_ENCRYPT_TEXT: u32 = 2;
pub(crate) const KNOWN_FLAGS: u32 = PV_ENCRYPT_DETERMINISTIC | PV_ENCRYPT_TEXT;

/// An opaque handle to an open vault. Share one handle across threads; see each function for
/// what may run concurrently.
pub struct pv_vault {
    /// `None` once closed. Calls hold the read lock; `close` takes the write lock. Shared
    /// with the sessions made from this handle, so a session outliving its vault handle sees
    /// `PV_VAULT_CLOSED` instead of freed memory.
    pub(crate) inner: SharedVault,
}

/// An open-or-closed vault shared by a handle and its sessions.
pub(crate) type SharedVault = Arc<RwLock<Option<Vault>>>;

/// Runs `f` on the open vault in `shared`, or fails with `PV_VAULT_CLOSED`.
pub(crate) fn with_shared<T>(
    shared: &SharedVault,
    f: impl FnOnce(&Vault) -> Result<T, Failure>,
) -> Result<T, Failure> {
    // A poisoned lock means a panic happened during `close`; the Option is still coherent.
    let guard = shared.read().unwrap_or_else(PoisonError::into_inner);
    let v = guard
        .as_ref()
        .ok_or_else(|| Failure::code(pv_result::PV_VAULT_CLOSED))?;
    f(v)
}

/// Closes the vault in `shared`; `false` if it was closed already.
/// Takes the vault out of the handle and closes it: `None` when it was closed already, else
/// the outcome of [`Vault::close`] (pending audit entries written, store flushed).
fn close_shared(shared: &SharedVault) -> Option<phivault_core::Result<()>> {
    let taken = shared
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    taken.map(Vault::close)
}

/// Runs `f` on the open vault behind `vault`.
///
/// # Safety
/// `vault` is NULL or a live handle from this library.
pub(crate) unsafe fn with_vault<T>(
    vault: *const pv_vault,
    f: impl FnOnce(&Vault) -> Result<T, Failure>,
) -> Result<T, Failure> {
    // SAFETY: forwarded contract.
    let handle = unsafe { arg_ref(vault, "vault") }?;
    with_shared(&handle.inner, f)
}

/// # Safety
/// `path` points to `path_len` readable bytes.
unsafe fn arg_path(path: *const std::ffi::c_char, path_len: usize) -> Result<PathBuf, Failure> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: forwarded contract.
        let bytes = unsafe { arg_bytes(path.cast(), path_len, "path") }?;
        if bytes.is_empty() {
            return Err(Failure::new(
                pv_result::PV_INVALID_ARGUMENT,
                "path is empty",
            ));
        }
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        // SAFETY: forwarded contract.
        let s = unsafe { arg_str(path, path_len, "path") }?;
        if s.is_empty() {
            return Err(Failure::new(
                pv_result::PV_INVALID_ARGUMENT,
                "path is empty",
            ));
        }
        Ok(PathBuf::from(s))
    }
}

type Opener = fn(PathBuf, &dyn phivault_core::root::RootKeySource) -> phivault_core::Result<Vault>;

/// # Safety
/// As `pv_vault_create`.
unsafe fn make_vault(
    path: *const std::ffi::c_char,
    path_len: usize,
    root: *const pv_root_key,
    out_vault: *mut *mut pv_vault,
    opener: Opener,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_vault, "out_vault") }?;
        // SAFETY: forwarded contract.
        let path = unsafe { arg_path(path, path_len) }?;
        // SAFETY: forwarded contract.
        let root = unsafe { arg_ref(root, "root") }?;
        let vault = opener(path, root.inner.as_ref()).map_err(Failure::from)?;
        out.set(into_raw(pv_vault {
            inner: Arc::new(RwLock::new(Some(vault))),
        }));
        Ok(())
    })
}

/// Creates a new vault in directory `path` (created if missing, mode 0700) unlocked by `root`,
/// and returns an open handle in `*out_vault`. The directory is locked until the handle is
/// closed or freed.
///
/// Returns `PV_VAULT_EXISTS`, `PV_VAULT_LOCKED`, `PV_IO_ERROR`, `PV_INVALID_ARGUMENT` (for
/// example Argon2 costs out of range), ...
///
/// # Safety
/// `path` points to `path_len` readable bytes (a file-system path, not NUL-terminated);
/// `root` is a live root key; `out_vault` points to writable memory for one pointer.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_create(
    path: *const std::ffi::c_char,
    path_len: usize,
    root: *const pv_root_key,
    out_vault: *mut *mut pv_vault,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        make_vault(path, path_len, root, out_vault, |p, r| {
            Vault::create_at(p, r, phivault_core::VaultOptions::default())
        })
    }
}

/// Opens the vault in directory `path` with `root` and returns a handle in `*out_vault`. A
/// wrong root key is refused (`PV_WRONG_ROOT_KEY`) before anything on disk changes.
///
/// Returns `PV_VAULT_NOT_FOUND`, `PV_WRONG_ROOT_KEY`, `PV_ROOT_KIND_MISMATCH`,
/// `PV_VAULT_LOCKED` (another handle or process has it open), ...
///
/// # Safety
/// As `pv_vault_create`.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_open(
    path: *const std::ffi::c_char,
    path_len: usize,
    root: *const pv_root_key,
    out_vault: *mut *mut pv_vault,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        make_vault(path, path_len, root, out_vault, |p, r| {
            Vault::open_at(p, r, phivault_core::VaultOptions::default())
        })
    }
}

/// Closes the vault: writes the audit entries still waiting for group commit, flushes and
/// releases the store and the directory lock, and wipes the vault's keys from memory. The
/// handle stays allocated: later calls on it return `PV_VAULT_CLOSED`, and closing it again
/// returns `PV_VAULT_CLOSED` too. Free it with `pv_vault_free`.
///
/// Returns `PV_AUDIT_UNAVAILABLE` when the last audit entries could not be written (the vault
/// is closed all the same; treat the calls since the last write as unaudited), or a store
/// error when the store could not be flushed.
///
/// Waits for calls in flight on other threads to finish.
///
/// # Safety
/// `vault` is a live handle.
///
/// Thread safety: may run concurrently with other calls on the same handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_close(vault: *mut pv_vault) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let handle = unsafe { arg_ref(vault, "vault") }?;
        match close_shared(&handle.inner) {
            Some(outcome) => outcome.map_err(Failure::from),
            None => Err(Failure::code(pv_result::PV_VAULT_CLOSED)),
        }
    })
}

/// Sets how many threads the vault's batch calls (`pv_vault_tokenize_many`,
/// `pv_vault_detokenize_many`, rewrap) may use: 1 = the calling thread only (the default),
/// 0 = one per core. Results and the audit log do not depend on it.
///
/// Returns `PV_VAULT_CLOSED` on a closed handle, `PV_INVALID_ARGUMENT` if the pool cannot
/// start.
///
/// # Safety
/// `vault` is a live handle.
///
/// Thread safety: may be called from any thread; waits for calls in flight on the handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_set_threads(vault: *mut pv_vault, threads: u32) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let handle = unsafe { arg_ref(vault, "vault") }?;
        let mut guard = handle.inner.write().unwrap_or_else(PoisonError::into_inner);
        let v = guard
            .as_mut()
            .ok_or_else(|| Failure::code(pv_result::PV_VAULT_CLOSED))?;
        v.set_threads(threads as usize).map_err(Failure::from)
    })
}

/// Closes the vault if it is open (as `pv_vault_close`) and frees the handle.
/// `pv_vault_free(NULL)` does nothing. The pointer must not be used afterwards, by any
/// thread: freeing it twice is undefined behaviour. (Closing twice is defined: use
/// `pv_vault_close` where a second close can happen.)
///
/// # Safety
/// `vault` is NULL or a live handle that no other thread is using or will use.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_free(vault: *mut pv_vault) {
    crate::ffi::boundary_value((), || {
        // Close first: sessions may still share the vault, and must not keep it open.
        // SAFETY: forwarded contract (NULL is handled by `arg_ref` returning an error).
        if let Ok(handle) = unsafe { arg_ref(vault, "vault") } {
            // Free cannot report a failed final audit write: `pv_vault_close` does.
            let _ = close_shared(&handle.inner);
        }
        // SAFETY: forwarded contract.
        unsafe { free_raw(vault) };
        Some(())
    })
}

/// # Safety
/// As `pv_vault_encrypt_with`.
#[allow(clippy::too_many_arguments)]
unsafe fn encrypt_impl(
    who: Who,
    plaintext: *const u8,
    plaintext_len: usize,
    ctx: *const pv_context,
    keyring: Option<&str>,
    subject: Option<&str>,
    flags: u32,
    out: Out<*mut pv_buffer>,
) -> Result<(), Failure> {
    if flags & !KNOWN_FLAGS != 0 {
        return Err(Failure::new(
            pv_result::PV_INVALID_ARGUMENT,
            "flags has unknown bits",
        ));
    }
    // SAFETY: forwarded contract.
    let plaintext = unsafe { arg_bytes(plaintext, plaintext_len, "plaintext") }?;
    // SAFETY: forwarded contract.
    let ctx = unsafe { arg_ref(ctx, "ctx") }?;
    let mut opts = EncryptOptions::new();
    if let Some(k) = keyring {
        opts = opts.keyring(k);
    }
    if flags & PV_ENCRYPT_DETERMINISTIC != 0 {
        opts = opts.deterministic();
    }
    // SAFETY: forwarded contract.
    let envelope = unsafe {
        who.call(|s| {
            let bin = match subject {
                Some(sub) => s.encrypt_for_subject(plaintext, &ctx.inner, sub, &opts),
                None => s.encrypt_with(plaintext, &ctx.inner, &opts),
            }?;
            if flags & PV_ENCRYPT_TEXT != 0 {
                Ok(phivault_core::envelope::to_text(&bin)?.into_bytes())
            } else {
                Ok(bin)
            }
        })
    }?;
    out.set(into_raw(pv_buffer::from_slice(&envelope)));
    Ok(())
}

/// Encrypts `plaintext` bound to `ctx` under the `default` keyring (randomized) and returns
/// the binary envelope in `*out_envelope` (free it with `pv_buffer_free`). An empty plaintext
/// (NULL, 0) is allowed.
///
/// # Safety
/// `vault` and `ctx` are live handles; `plaintext` points to `plaintext_len` readable bytes
/// (or is NULL with length 0); `out_envelope` points to writable memory for one pointer.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_encrypt(
    vault: *const pv_vault,
    plaintext: *const u8,
    plaintext_len: usize,
    ctx: *const pv_context,
    out_envelope: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_envelope, "out_envelope") }?;
        // SAFETY: forwarded contract.
        unsafe {
            encrypt_impl(
                Who::Owner(vault),
                plaintext,
                plaintext_len,
                ctx,
                None,
                None,
                0,
                out,
            )
        }
    })
}

/// As `pv_vault_encrypt`, returning the text form `pv1:<keyring>:<version>:<base64url>`
/// (NUL-terminated in the buffer), for text columns and JSON.
///
/// # Safety
/// As `pv_vault_encrypt`.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_encrypt_text(
    vault: *const pv_vault,
    plaintext: *const u8,
    plaintext_len: usize,
    ctx: *const pv_context,
    out_envelope: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_envelope, "out_envelope") }?;
        // SAFETY: forwarded contract.
        unsafe {
            encrypt_impl(
                Who::Owner(vault),
                plaintext,
                plaintext_len,
                ctx,
                None,
                None,
                PV_ENCRYPT_TEXT,
                out,
            )
        }
    })
}

/// Encrypts with options: `keyring` (NULL, 0 for `default`) and `flags`, a bitwise OR of
/// `PV_ENCRYPT_DETERMINISTIC` and `PV_ENCRYPT_TEXT` (0 for neither). Unknown flag bits are
/// `PV_INVALID_ARGUMENT`, so that a newer flag is never silently ignored.
///
/// # Safety
/// As `pv_vault_encrypt`; `keyring` points to `keyring_len` readable bytes or is NULL with 0.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_encrypt_with(
    vault: *const pv_vault,
    plaintext: *const u8,
    plaintext_len: usize,
    ctx: *const pv_context,
    keyring: *const std::ffi::c_char,
    keyring_len: usize,
    flags: u32,
    out_envelope: *mut *mut pv_buffer,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        encrypt_with(
            Who::Owner(vault),
            plaintext,
            plaintext_len,
            ctx,
            keyring,
            keyring_len,
            flags,
            out_envelope,
        )
    }
}

/// Encrypts data tied to a data subject (a patient) under the `default` keyring: after
/// `pv_vault_forget_subject`, it can never be decrypted again, wherever copies went. `flags`
/// may be 0 or `PV_ENCRYPT_TEXT` (deterministic encryption cannot be tied to a subject:
/// `PV_INVALID_ARGUMENT`).
///
/// # Safety
/// As `pv_vault_encrypt`; `subject` points to `subject_len` readable bytes.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_encrypt_for_subject(
    vault: *const pv_vault,
    plaintext: *const u8,
    plaintext_len: usize,
    ctx: *const pv_context,
    subject: *const std::ffi::c_char,
    subject_len: usize,
    flags: u32,
    out_envelope: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_envelope, "out_envelope") }?;
        if subject.is_null() {
            return Err(Failure::new(pv_result::PV_NULL_ARGUMENT, "subject is NULL"));
        }
        // SAFETY: forwarded contract.
        let subject = unsafe { arg_str(subject, subject_len, "subject") }?;
        // SAFETY: forwarded contract.
        unsafe {
            encrypt_impl(
                Who::Owner(vault),
                plaintext,
                plaintext_len,
                ctx,
                None,
                Some(subject),
                flags,
                out,
            )
        }
    })
}

/// Decrypts an envelope (binary or `pv1:` text form, detected) made under `ctx`, returning
/// the plaintext in `*out_plaintext` (free it with `pv_buffer_free`, which wipes it).
///
/// Any tampering, truncation, a wrong context or a wrong key gives the one code
/// `PV_AUTHENTICATION_FAILED`. A retired or destroyed key version, an unknown keyring or a
/// forgotten subject have their own codes.
///
/// # Safety
/// As `pv_vault_encrypt`, with `envelope` of `envelope_len` bytes.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_decrypt(
    vault: *const pv_vault,
    envelope: *const u8,
    envelope_len: usize,
    ctx: *const pv_context,
    out_plaintext: *mut *mut pv_buffer,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        decrypt(
            Who::Owner(vault),
            envelope,
            envelope_len,
            ctx,
            out_plaintext,
        )
    }
}

/// Creates the keyring `name` (1–64 characters from `A-Z a-z 0-9 _ - .`) with one active key
/// version. Returns `PV_KEYRING_EXISTS` if it exists.
///
/// # Safety
/// `vault` is a live handle; `name` points to `name_len` readable bytes.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_create_keyring(
    vault: *const pv_vault,
    name: *const std::ffi::c_char,
    name_len: usize,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let name = unsafe { arg_str(name, name_len, "name") }?;
        // SAFETY: forwarded contract.
        unsafe { with_vault(vault, |v| Ok(v.create_keyring(name).map(|_| ())?)) }
    })
}

/// Makes a new key version of `keyring` (NULL, 0 for `default`) active at once; older
/// versions stay decrypt-only. Touches no data (O(1)). The new version is written to
/// `*out_version` if `out_version` is not NULL.
///
/// # Safety
/// `vault` is a live handle; `keyring` points to `keyring_len` readable bytes or is NULL with
/// 0; `out_version` is NULL or points to a writable `uint32_t`.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_rotate(
    vault: *const pv_vault,
    keyring: *const std::ffi::c_char,
    keyring_len: usize,
    out_version: *mut u32,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::optional(out_version, "out_version") }?;
        // SAFETY: forwarded contract.
        let keyring = unsafe { arg_opt_str(keyring, keyring_len, "keyring") }?
            .unwrap_or(phivault_core::keyring::DEFAULT_KEYRING);
        // SAFETY: forwarded contract.
        let version = unsafe { with_vault(vault, |v| Ok(v.rotate(keyring)?)) }?;
        if let Some(out) = out {
            out.set(version);
        }
        Ok(())
    })
}

/// Changes the vault's root key to `new_root` (a new passphrase, or a move to key bytes) by
/// rewrapping the vault master key only: O(1), no data is touched. The old root key no longer
/// opens the vault.
///
/// # Safety
/// `vault` and `new_root` are live handles.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_rotate_root(
    vault: *const pv_vault,
    new_root: *const pv_root_key,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let root = unsafe { arg_ref(new_root, "new_root") }?;
        // SAFETY: forwarded contract.
        unsafe { with_vault(vault, |v| Ok(v.rotate_root(root.inner.as_ref())?)) }
    })
}

/// Checks the whole store (`Vault::verify`): every entry of every space is read and
/// authenticated (records, token entries and their index, subject keys, keyrings, policy, field
/// definitions, erasure records, the audit chain, the commit anchor) and cross-references are
/// checked. `*out_ok` receives whether nothing was found; `out_report_json` (if not NULL) a JSON
/// report: counts per space and the first problems with their location (space and the keyed
/// hash of the entry, never PHI). Problems are reported, not an error: the call returns `PV_OK`
/// with `*out_ok` false. Reads in constant memory.
///
/// # Safety
/// `vault` is a live handle; `out_ok` points to a writable `bool`; `out_report_json` is NULL
/// or points to writable memory for one pointer.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_verify(
    vault: *const pv_vault,
    out_ok: *mut bool,
    out_report_json: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe {
            verify_report(vault, out_ok, out_report_json, |v| {
                let r = v.verify()?;
                Ok((r.ok, json_of(&r)?))
            })
        }
    })
}

/// A report as a JSON value.
pub(crate) fn json_of<T: ?Sized + serde::Serialize>(
    report: &T,
) -> Result<serde_json::Value, Failure> {
    serde_json::to_value(report)
        .map_err(|_| Failure::new(pv_result::PV_INTERNAL_ERROR, "report could not be encoded"))
}

/// The shared body of the verify calls: runs `check`, writes its verdict to `*out_ok` and, when
/// `out_report_json` is not NULL, its report as JSON. Outputs are written only on success.
///
/// # Safety
/// As `pv_vault_verify`.
pub(crate) unsafe fn verify_report(
    vault: *const pv_vault,
    out_ok: *mut bool,
    out_report_json: *mut *mut pv_buffer,
    check: impl FnOnce(&Vault) -> Result<(bool, serde_json::Value), Failure>,
) -> Result<(), Failure> {
    // SAFETY: forwarded contract.
    let out_ok = unsafe { Out::new(out_ok, "out_ok") }?;
    // SAFETY: forwarded contract.
    let out_json = unsafe { Out::optional(out_report_json, "out_report_json") }?;
    // SAFETY: forwarded contract.
    let (ok, report) = unsafe { with_vault(vault, check) }?;
    let json = match out_json {
        Some(_) => Some(serde_json::to_vec(&report).map_err(|_| {
            Failure::new(pv_result::PV_INTERNAL_ERROR, "report could not be encoded")
        })?),
        None => None,
    };
    out_ok.set(ok);
    if let (Some(out), Some(json)) = (out_json, json) {
        out.set(into_raw(pv_buffer::from_slice(&json)));
    }
    Ok(())
}

/// Writes a JSON summary of the vault (id, format, keyrings, key versions and their states,
/// record counts per version) into `*out_json`, a NUL-terminated buffer. Contains no PHI and
/// no key material.
///
/// # Safety
/// `vault` is a live handle; `out_json` points to writable memory for one pointer.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_status_json(
    vault: *const pv_vault,
    out_json: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_json, "out_json") }?;
        // SAFETY: forwarded contract.
        let status = unsafe { with_vault(vault, |v| Ok(v.status()?)) }?;
        let json = serde_json::to_vec(&status).map_err(|_| {
            Failure::new(pv_result::PV_INTERNAL_ERROR, "status could not be encoded")
        })?;
        out.set(into_raw(pv_buffer::from_slice(&json)));
        Ok(())
    })
}

/// The one body of `pv_vault_encrypt_with` and `pv_session_encrypt`.
///
/// # Safety
/// As `pv_vault_encrypt_with`, with a live handle in `who`.
#[allow(clippy::too_many_arguments)] // the C function's arguments, forwarded
pub(crate) unsafe fn encrypt_with(
    who: Who,
    plaintext: *const u8,
    plaintext_len: usize,
    ctx: *const pv_context,
    keyring: *const std::ffi::c_char,
    keyring_len: usize,
    flags: u32,
    out_envelope: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_envelope, "out_envelope") }?;
        // SAFETY: forwarded contract.
        let keyring = unsafe { arg_opt_str(keyring, keyring_len, "keyring") }?;
        // SAFETY: forwarded contract.
        unsafe {
            encrypt_impl(
                who,
                plaintext,
                plaintext_len,
                ctx,
                keyring,
                None,
                flags,
                out,
            )
        }
    })
}

/// The one body of `pv_vault_decrypt` and `pv_session_decrypt`.
///
/// # Safety
/// As `pv_vault_decrypt`, with a live handle in `who`.
pub(crate) unsafe fn decrypt(
    who: Who,
    envelope: *const u8,
    envelope_len: usize,
    ctx: *const pv_context,
    out_plaintext: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_plaintext, "out_plaintext") }?;
        // SAFETY: forwarded contract.
        let envelope = unsafe { arg_bytes(envelope, envelope_len, "envelope") }?;
        // SAFETY: forwarded contract.
        let ctx = unsafe { arg_ref(ctx, "ctx") }?;
        // SAFETY: forwarded contract.
        let plain = unsafe { who.call(|s| Ok(s.decrypt(envelope, &ctx.inner)?)) }?;
        out.set(into_raw(pv_buffer::from_slice(&plain)));
        Ok(())
    })
}
