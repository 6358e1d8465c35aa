//! `pv_session`: a vault used by one caller — a principal and a purpose — so that every call
//! is checked against the vault's access policy and recorded in its audit log
//! (`phivault::session`, `phivault::policy`, `phivault::audit`). The plain `pv_vault_*`
//! functions act as the vault owner.
//!
//! A session shares its vault with the handle it was made from: after `pv_vault_close` or
//! `pv_vault_free` its calls return `PV_VAULT_CLOSED` (never touch freed memory), so sessions
//! and vault handles may be freed in any order.

use crate::buffer::pv_buffer;
use crate::context::pv_context;
use crate::error::{Failure, pv_result};
use crate::ffi::{Out, arg_mut, arg_ref, arg_str, boundary, into_raw};
use crate::vault::{SharedVault, pv_vault, with_shared, with_vault};
use phivault_core::Vault;
use phivault_core::policy::{Caller, Policy};
use phivault_core::session::Session;
use std::ffi::c_char;

/// An opaque session: a vault seen by one principal acting for one purpose. Every call is
/// authorized by the vault's policy (default deny: `PV_ACCESS_DENIED`) and audited.
pub struct pv_session {
    vault: SharedVault,
    caller: Caller,
}

/// Runs `f` with a core session for `session`'s caller.
///
/// # Safety
/// `session` is NULL or a live session.
unsafe fn with_session<T>(
    session: *const pv_session,
    f: impl FnOnce(&Session<'_>) -> Result<T, Failure>,
) -> Result<T, Failure> {
    // SAFETY: forwarded contract.
    let s = unsafe { arg_ref(session, "session") }?;
    with_shared(&s.vault, |v: &Vault| f(&v.session(s.caller.clone())))
}

/// Whom a data call acts as: the owner of a vault handle (the `pv_vault_*` form) or a
/// session's caller (`pv_session_*`). Each data operation has one body over a `Who`, so both
/// forms run the same code, and core's [`Session`] makes the decision and the audit entry.
#[derive(Clone, Copy)]
pub(crate) enum Who {
    /// `vault.owner()`.
    Owner(*const pv_vault),
    /// The session's caller.
    Session(*const pv_session),
}

impl Who {
    /// Runs `f` with the core session this call acts as.
    ///
    /// # Safety
    /// The handle is NULL or live.
    pub(crate) unsafe fn call<T>(
        self,
        f: impl FnOnce(&Session<'_>) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        match self {
            // SAFETY: forwarded contract.
            Who::Owner(vault) => unsafe { with_vault(vault, |v| f(&v.owner())) },
            // SAFETY: forwarded contract.
            Who::Session(session) => unsafe { with_session(session, f) },
        }
    }
}

/// Makes a session on `vault` for `principal` (a name the policy knows) acting for
/// `purpose` (treatment, research, billing, ...). Nothing is checked until the first call.
///
/// # Safety
/// `vault` is a live handle; `principal`/`purpose` point to their lengths in readable bytes;
/// `out_session` points to writable memory for one pointer.
///
/// Thread safety: may be called from any thread; a session may be used by several threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_session_new(
    vault: *const pv_vault,
    principal: *const c_char,
    principal_len: usize,
    purpose: *const c_char,
    purpose_len: usize,
    out_session: *mut *mut pv_session,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_session, "out_session") }?;
        // SAFETY: forwarded contract.
        let handle = unsafe { arg_ref(vault, "vault") }?;
        // SAFETY: forwarded contract.
        let principal = unsafe { arg_str(principal, principal_len, "principal") }?;
        // SAFETY: forwarded contract.
        let purpose = unsafe { arg_str(purpose, purpose_len, "purpose") }?;
        out.set(into_raw(pv_session {
            vault: handle.inner.clone(),
            caller: Caller::new(principal, purpose),
        }));
        Ok(())
    })
}

/// Invokes break-the-glass for this session with a stated `reason`: later calls succeed for
/// principals whose roles the policy lets break the glass, and are flagged in the audit log
/// for review. The reason is stored encrypted; keep it free of PHI anyway.
///
/// # Safety
/// `session` is a live session; `reason` points to `reason_len` readable bytes.
///
/// Thread safety: mutates the session: no other thread may use it during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_session_break_glass(
    session: *mut pv_session,
    reason: *const c_char,
    reason_len: usize,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let s = unsafe { arg_mut(session, "session") }?;
        // SAFETY: forwarded contract.
        let reason = unsafe { arg_str(reason, reason_len, "reason") }?;
        if reason.is_empty() {
            return Err(Failure::new(
                pv_result::PV_INVALID_ARGUMENT,
                "reason is empty",
            ));
        }
        s.caller = s.caller.clone().break_glass(reason);
        Ok(())
    })
}

/// Frees a session. `pv_session_free(NULL)` does nothing. The pointer must not be used
/// afterwards; freeing it twice is undefined behaviour. The vault stays open.
///
/// # Safety
/// `session` is NULL or a live session that no other thread is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_session_free(session: *mut pv_session) {
    crate::ffi::boundary_value((), || {
        // SAFETY: forwarded contract.
        unsafe { crate::ffi::free_raw(session) };
        Some(())
    })
}

/// `pv_vault_encrypt_with` as this session's caller (`keyring` NULL, 0 for `default`).
///
/// # Safety
/// As `pv_vault_encrypt_with`, with a live `session`.
///
/// Thread safety: may run concurrently with any call on the same session or vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_session_encrypt(
    session: *const pv_session,
    plaintext: *const u8,
    plaintext_len: usize,
    ctx: *const pv_context,
    keyring: *const c_char,
    keyring_len: usize,
    flags: u32,
    out_envelope: *mut *mut pv_buffer,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        crate::vault::encrypt_with(
            Who::Session(session),
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

/// `pv_vault_decrypt` as this session's caller.
///
/// # Safety
/// As `pv_vault_decrypt`, with a live `session`.
///
/// Thread safety: may run concurrently with any call on the same session or vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_session_decrypt(
    session: *const pv_session,
    envelope: *const u8,
    envelope_len: usize,
    ctx: *const pv_context,
    out_plaintext: *mut *mut pv_buffer,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        crate::vault::decrypt(
            Who::Session(session),
            envelope,
            envelope_len,
            ctx,
            out_plaintext,
        )
    }
}

/// `pv_vault_put` as this session's caller.
///
/// # Safety
/// As `pv_vault_put`, with a live `session`.
///
/// Thread safety: may run concurrently with any call on the same session or vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_session_put(
    session: *const pv_session,
    collection: *const c_char,
    collection_len: usize,
    id: *const c_char,
    id_len: usize,
    value: *const u8,
    value_len: usize,
    subject: *const c_char,
    subject_len: usize,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        crate::records::put(
            Who::Session(session),
            collection,
            collection_len,
            id,
            id_len,
            value,
            value_len,
            subject,
            subject_len,
        )
    }
}

/// `pv_vault_get` as this session's caller (`PV_NOT_FOUND` when absent).
///
/// # Safety
/// As `pv_vault_get`, with a live `session`.
///
/// Thread safety: may run concurrently with any call on the same session or vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_session_get(
    session: *const pv_session,
    collection: *const c_char,
    collection_len: usize,
    id: *const c_char,
    id_len: usize,
    out_value: *mut *mut pv_buffer,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        crate::records::get(
            Who::Session(session),
            collection,
            collection_len,
            id,
            id_len,
            out_value,
        )
    }
}

/// `pv_vault_delete` as this session's caller.
///
/// # Safety
/// As `pv_vault_delete`, with a live `session`.
///
/// Thread safety: may run concurrently with any call on the same session or vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_session_delete(
    session: *const pv_session,
    collection: *const c_char,
    collection_len: usize,
    id: *const c_char,
    id_len: usize,
    out_deleted: *mut bool,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        crate::records::delete(
            Who::Session(session),
            collection,
            collection_len,
            id,
            id_len,
            out_deleted,
        )
    }
}

/// `pv_vault_tokenize` as this session's caller.
///
/// # Safety
/// As `pv_vault_tokenize`, with a live `session`.
///
/// Thread safety: may run concurrently with any call on the same session or vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_session_tokenize(
    session: *const pv_session,
    field: *const c_char,
    field_len: usize,
    value: *const c_char,
    value_len: usize,
    subject: *const c_char,
    subject_len: usize,
    out_token: *mut *mut pv_buffer,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        crate::tokens::tokenize(
            Who::Session(session),
            field,
            field_len,
            value,
            value_len,
            subject,
            subject_len,
            out_token,
        )
    }
}

/// `pv_vault_detokenize` as this session's caller; the policy may allow only some views
/// (for example masked), refusing the others with `PV_ACCESS_DENIED`.
///
/// # Safety
/// As `pv_vault_detokenize`, with a live `session`.
///
/// Thread safety: may run concurrently with any call on the same session or vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_session_detokenize(
    session: *const pv_session,
    field: *const c_char,
    field_len: usize,
    token: *const c_char,
    token_len: usize,
    subject: *const c_char,
    subject_len: usize,
    view: u32,
    out_value: *mut *mut pv_buffer,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        crate::tokens::detokenize(
            Who::Session(session),
            field,
            field_len,
            token,
            token_len,
            subject,
            subject_len,
            view,
            out_value,
        )
    }
}

/// Replaces the vault's access policy with the TOML document `toml` (`[[principal]]` and
/// `[[rule]]` tables; see the core's `policy` module). Owner only; audited.
///
/// # Safety
/// `vault` is a live handle; `toml` points to `toml_len` readable bytes.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_set_policy_toml(
    vault: *const pv_vault,
    toml: *const c_char,
    toml_len: usize,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let toml = unsafe { arg_str(toml, toml_len, "toml") }?;
        let policy = Policy::from_toml(toml).map_err(Failure::from)?;
        // SAFETY: forwarded contract.
        unsafe { with_vault(vault, |v| Ok(v.set_policy(&policy)?)) }
    })
}

/// Verifies the audit log's hash chain and head anchor. `*out_ok` receives whether it is
/// intact; `out_report_json` (if not NULL) a JSON report (`entries`, `ok`, `first_bad`,
/// `problem`, `head_seq`, `head_mac`). A broken chain is reported, not an error: the call
/// returns `PV_OK` with `*out_ok` false.
///
/// # Safety
/// `vault` is a live handle; `out_ok` points to a writable `bool`; `out_report_json` is NULL
/// or points to writable memory for one pointer.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_audit_verify(
    vault: *const pv_vault,
    out_ok: *mut bool,
    out_report_json: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe {
            crate::vault::verify_report(vault, out_ok, out_report_json, |v| {
                let r = v.audit_verify()?;
                Ok((r.ok, crate::vault::json_of(&r)?))
            })
        }
    })
}
