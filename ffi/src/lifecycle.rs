//! Key lifecycle from C: rewrap stored records and outside envelopes to the active key
//! version, retire old versions (minimum decryption version), destroy them, and fully
//! re-encrypt an envelope. The rules (what may be destroyed, when) are the core's
//! (`phivault::lifecycle`).

use crate::buffer::pv_buffer;
use crate::context::pv_context;
use crate::error::{Failure, pv_result};
use crate::ffi::{Out, arg_bytes, arg_opt_str, arg_ref, arg_str, boundary, into_raw};
use crate::vault::{pv_vault, with_vault};
use phivault_core::lifecycle::RewrapOptions;
use std::ffi::c_char;

/// Moves every stored record (and subject key) of `keyring` (NULL, 0 for all keyrings) whose
/// data key is wrapped by an older key version to the keyring's active version, without
/// re-encrypting payloads. Runs beside readers and writers, is idempotent, and resumes from
/// a checkpoint after a crash. If `out_report_json` is not NULL it receives a JSON report
/// (`scanned`, `rewrapped`, `up_to_date`, `unreadable`, ...).
///
/// # Safety
/// `vault` is a live handle; `keyring` points to `keyring_len` readable bytes or is NULL
/// with 0; `out_report_json` is NULL or points to writable memory for one pointer.
///
/// Thread safety: may run concurrently with any call on the same vault; it may take long.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_rewrap(
    vault: *const pv_vault,
    keyring: *const c_char,
    keyring_len: usize,
    out_report_json: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::optional(out_report_json, "out_report_json") }?;
        // SAFETY: forwarded contract.
        let keyring = unsafe { arg_opt_str(keyring, keyring_len, "keyring") }?;
        let opts = RewrapOptions {
            keyring: keyring.map(str::to_owned),
            ..RewrapOptions::default()
        };
        // SAFETY: forwarded contract.
        let report = unsafe { with_vault(vault, |v| Ok(v.rewrap(&opts, &mut |_| {})?)) }?;
        if let Some(out) = out {
            let json = serde_json::to_vec(&report).map_err(|_| {
                Failure::new(pv_result::PV_INTERNAL_ERROR, "report could not be encoded")
            })?;
            out.set(into_raw(pv_buffer::from_slice(&json)));
        }
        Ok(())
    })
}

/// Rewraps an envelope kept outside the vault (binary or text form; the result has the same
/// form) to its keyring's active version: only the wrapped data key changes; the payload and
/// its context binding do not. Current envelopes and subject envelopes come back unchanged.
/// Deterministic envelopes are refused (`PV_INVALID_ARGUMENT`): use `pv_vault_reencrypt`.
///
/// # Safety
/// `vault` is a live handle; `envelope` points to `envelope_len` readable bytes;
/// `out_envelope` points to writable memory for one pointer.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_rewrap_envelope(
    vault: *const pv_vault,
    envelope: *const u8,
    envelope_len: usize,
    out_envelope: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_envelope, "out_envelope") }?;
        // SAFETY: forwarded contract.
        let envelope = unsafe { arg_bytes(envelope, envelope_len, "envelope") }?;
        // SAFETY: forwarded contract.
        let new = unsafe { with_vault(vault, |v| Ok(v.rewrap_envelope(envelope)?)) }?;
        out.set(into_raw(pv_buffer::from_slice(&new)));
        Ok(())
    })
}

/// Decrypts `envelope` under `ctx` and encrypts it again with a fresh data key under the
/// active version of the same keyring, keeping the subject tie and the form (binary or text).
/// For when a data key itself is suspect, and for deterministic envelopes.
///
/// # Safety
/// As `pv_vault_rewrap_envelope`; `ctx` is a live context.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_reencrypt(
    vault: *const pv_vault,
    envelope: *const u8,
    envelope_len: usize,
    ctx: *const pv_context,
    out_envelope: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_envelope, "out_envelope") }?;
        // SAFETY: forwarded contract.
        let envelope = unsafe { arg_bytes(envelope, envelope_len, "envelope") }?;
        // SAFETY: forwarded contract.
        let ctx = unsafe { arg_ref(ctx, "ctx") }?;
        // SAFETY: forwarded contract.
        let new = unsafe { with_vault(vault, |v| Ok(v.reencrypt(envelope, &ctx.inner)?)) }?;
        out.set(into_raw(pv_buffer::from_slice(&new)));
        Ok(())
    })
}

/// Retires every key version of `keyring` below `min_version`: they no longer decrypt
/// (`PV_KEY_RETIRED`) but are kept, so this is reversible by lowering it again.
///
/// # Safety
/// `vault` is a live handle; `keyring` points to `keyring_len` readable bytes.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_set_min_decryption_version(
    vault: *const pv_vault,
    keyring: *const c_char,
    keyring_len: usize,
    min_version: u32,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let keyring = unsafe { arg_str(keyring, keyring_len, "keyring") }?;
        // SAFETY: forwarded contract.
        unsafe {
            with_vault(vault, |v| {
                Ok(v.set_min_decryption_version(keyring, min_version)?)
            })
        }
    })
}

/// Destroys key version `version` of `keyring`: its key is wiped and nothing under it can
/// ever be decrypted again. Refuses the active version (`PV_INVALID_ARGUMENT`), and refuses
/// while records, tokens or subject keys still depend on it (`PV_KEY_IN_USE`) unless `force`
/// is true. Irreversible.
///
/// # Safety
/// `vault` is a live handle; `keyring` points to `keyring_len` readable bytes.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_destroy_key_version(
    vault: *const pv_vault,
    keyring: *const c_char,
    keyring_len: usize,
    version: u32,
    force: bool,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let keyring = unsafe { arg_str(keyring, keyring_len, "keyring") }?;
        // SAFETY: forwarded contract.
        unsafe {
            with_vault(vault, |v| {
                Ok(v.destroy_key_version(keyring, version, force).map(|_| ())?)
            })
        }
    })
}
