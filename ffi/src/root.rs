//! `pv_root_key`: what unlocks a vault — 32 key bytes or a passphrase (Argon2id) — and
//! `pv_key_generate` for new key bytes.
//!
//! A root key object holds its secret until `pv_root_key_free` wipes it: create it just
//! before `pv_vault_create` / `pv_vault_open` and free it right after.

use crate::error::{Failure, pv_result};
use crate::ffi::{Out, arg_bytes, arg_ref, arg_str, boundary, free_raw, into_raw};
use phivault_core::Key32;
use phivault_core::root::{Argon2Config, KeyFile, Passphrase, RootKeySource};

/// Length in bytes of a raw root key (`pv_key_generate`, `pv_root_key_from_bytes`).
pub const PV_KEY_LEN: usize = 32;

/// Argon2id costs for a new passphrase vault (RFC 9106). Opening a vault always uses the costs
/// stored in the vault, so this only matters for `pv_vault_create`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pv_argon2_config {
    /// Memory in KiB (at least 8192).
    pub m_kib: u32,
    /// Passes (1–64).
    pub t: u32,
    /// Lanes (1–64).
    pub p: u32,
}

/// An opaque root key: key bytes or a passphrase. Holds a secret: free it with
/// `pv_root_key_free` as soon as the vault is open.
pub struct pv_root_key {
    pub(crate) inner: Box<dyn RootKeySource>,
}

/// Makes a root key from key bytes: exactly 32 raw bytes, or 64 hex digits optionally
/// followed by a newline (the contents of a key file). The library keeps its own copy; wipe
/// yours when done.
///
/// Returns `PV_INVALID_ARGUMENT` for any other length or content.
///
/// # Safety
/// `key` points to `key_len` readable bytes; `out_root` to writable memory for one pointer.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_root_key_from_bytes(
    key: *const u8,
    key_len: usize,
    out_root: *mut *mut pv_root_key,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_root, "out_root") }?;
        // SAFETY: forwarded contract.
        let key = unsafe { arg_bytes(key, key_len, "key") }?;
        let source = KeyFile::from_bytes(key).map_err(Failure::from)?;
        out.set(into_raw(pv_root_key {
            inner: Box::new(source),
        }));
        Ok(())
    })
}

/// Makes a root key from a UTF-8 passphrase, stretched with Argon2id. `config` gives the
/// costs for a new vault; NULL means the RFC 9106 defaults (64 MiB, t=3, p=4). Costs are
/// checked when the vault is created.
///
/// # Safety
/// `passphrase` points to `passphrase_len` readable bytes; `config` is NULL or points to a
/// `pv_argon2_config`; `out_root` to writable memory for one pointer.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_root_key_from_passphrase(
    passphrase: *const std::ffi::c_char,
    passphrase_len: usize,
    config: *const pv_argon2_config,
    out_root: *mut *mut pv_root_key,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_root, "out_root") }?;
        // SAFETY: forwarded contract. Checked in place: no unwiped copy on failure.
        let text = unsafe { arg_str(passphrase, passphrase_len, "passphrase") }?;
        let mut source = Passphrase::new(text.to_owned());
        if !config.is_null() {
            // SAFETY: non-NULL; forwarded contract.
            let c = unsafe { arg_ref(config, "config") }?;
            source = source.with_config(Argon2Config {
                m_kib: c.m_kib,
                t: c.t,
                p: c.p,
            });
        }
        out.set(into_raw(pv_root_key {
            inner: Box::new(source),
        }));
        Ok(())
    })
}

/// Wipes and frees a root key. `pv_root_key_free(NULL)` does nothing. The pointer must not be
/// used afterwards; freeing it twice is undefined behaviour.
///
/// # Safety
/// `root` is NULL or a live root key that no other thread is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_root_key_free(root: *mut pv_root_key) {
    crate::ffi::boundary_value((), || {
        // SAFETY: forwarded contract; the core's key types wipe themselves on drop.
        unsafe { free_raw(root) };
        Some(())
    })
}

/// Fills `out_key` with `PV_KEY_LEN` (32) fresh random bytes from the operating system, for a
/// new key-bytes vault. Store them like any secret (a 0600 file, an HSM, a secrets manager).
///
/// Returns `PV_INVALID_ARGUMENT` if `out_key_len` is not 32; `PV_CRYPTO_FAILURE` if the
/// random generator fails.
///
/// # Safety
/// `out_key` points to `out_key_len` writable bytes.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_key_generate(out_key: *mut u8, out_key_len: usize) -> pv_result {
    boundary(|| {
        if out_key.is_null() {
            return Err(Failure::code(pv_result::PV_NULL_ARGUMENT));
        }
        if out_key_len != PV_KEY_LEN {
            return Err(Failure::new(
                pv_result::PV_INVALID_ARGUMENT,
                "out_key_len must be PV_KEY_LEN (32)",
            ));
        }
        let key = Key32::random().map_err(Failure::from)?;
        // SAFETY: `out_key` is non-NULL and, by the contract, has 32 writable bytes; the
        // source is a Rust value that cannot overlap it.
        unsafe { std::ptr::copy_nonoverlapping(key.expose().as_ptr(), out_key, PV_KEY_LEN) };
        Ok(())
    })
}
