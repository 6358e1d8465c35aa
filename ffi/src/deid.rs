//! De-identification of FHIR and JSON documents from C: JSON text in, JSON text out, by a
//! schema named (a preset or one stored in the vault) or given as TOML/JSON text. Every rule
//! is the core's (`phivault::deid`).

use crate::buffer::pv_buffer;
use crate::error::{Failure, pv_result};
use crate::ffi::{Out, arg_str, boundary, into_raw};
use crate::session::{Who, pv_session};
use crate::vault::{pv_vault, with_vault};
use std::ffi::c_char;

/// # Safety
/// The handle of `who` is NULL or live; pointers satisfy `arg_str`'s and `Out::new`'s
/// contracts.
#[allow(clippy::too_many_arguments)]
unsafe fn process(
    who: Who,
    schema: *const c_char,
    schema_len: usize,
    json: *const c_char,
    json_len: usize,
    view: Option<u32>,
    out_json: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_json, "out_json") }?;
        // SAFETY: forwarded contract.
        let schema = unsafe { arg_str(schema, schema_len, "schema") }?;
        // SAFETY: forwarded contract.
        let json = unsafe { arg_str(json, json_len, "json") }?;
        let view = view.map(crate::tokens::view).transpose()?;
        let mut doc: serde_json::Value = serde_json::from_str(json).map_err(|_| {
            // serde_json's message may quote the document: never passed on.
            Failure::new(
                pv_result::PV_INVALID_ARGUMENT,
                "json is not a JSON document",
            )
        })?;
        // SAFETY: forwarded contract.
        unsafe {
            who.call(|s| {
                let schema = s.schema(schema)?;
                match view {
                    Some(v) => s.reidentify(&schema, &mut doc, v)?,
                    None => s.deidentify(&schema, &mut doc)?,
                };
                Ok(())
            })
        }?;
        let text =
            serde_json::to_vec(&doc).map_err(|_| Failure::code(pv_result::PV_INTERNAL_ERROR))?;
        out.set(into_raw(pv_buffer::from_slice(&text)));
        Ok(())
    })
}

/// De-identifies one FHIR resource, Bundle or (for `$` paths) JSON document, given as UTF-8
/// JSON text, by `schema` — a preset (`safe-harbor`, `shifted-dates`), a schema stored with
/// `pv_vault_define_schema`, or TOML/JSON schema text — as the vault's owner.
/// `*out_json` receives the de-identified document (free it with `pv_buffer_free`). Errors
/// never contain a value of the document.
///
/// # Safety
/// `vault` is a live handle; `schema` and `json` point to `schema_len` and `json_len`
/// readable bytes; `out_json` points to a writable pointer.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_deidentify(
    vault: *const pv_vault,
    schema: *const c_char,
    schema_len: usize,
    json: *const c_char,
    json_len: usize,
    out_json: *mut *mut pv_buffer,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        process(
            Who::Owner(vault),
            schema,
            schema_len,
            json,
            json_len,
            None,
            out_json,
        )
    }
}

/// `pv_vault_deidentify` as the session's caller (checked against the policy and audited).
///
/// # Safety
/// As `pv_vault_deidentify`, with a live `session`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_session_deidentify(
    session: *const pv_session,
    schema: *const c_char,
    schema_len: usize,
    json: *const c_char,
    json_len: usize,
    out_json: *mut *mut pv_buffer,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        process(
            Who::Session(session),
            schema,
            schema_len,
            json,
            json_len,
            None,
            out_json,
        )
    }
}

/// Re-identifies a document `pv_vault_deidentify` made with the same schema: tokens come
/// back shown as `view` (`PV_VIEW_*`), encrypted elements in the plaintext view; pseudonyms
/// and references stay one-way.
///
/// # Safety
/// As `pv_vault_deidentify`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_reidentify(
    vault: *const pv_vault,
    schema: *const c_char,
    schema_len: usize,
    json: *const c_char,
    json_len: usize,
    view: u32,
    out_json: *mut *mut pv_buffer,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        process(
            Who::Owner(vault),
            schema,
            schema_len,
            json,
            json_len,
            Some(view),
            out_json,
        )
    }
}

/// `pv_vault_reidentify` as the session's caller: needs the policy's detokenize (and decrypt)
/// rights; a denial is logged and returns `PV_ACCESS_DENIED`.
///
/// # Safety
/// As `pv_vault_deidentify`, with a live `session`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_session_reidentify(
    session: *const pv_session,
    schema: *const c_char,
    schema_len: usize,
    json: *const c_char,
    json_len: usize,
    view: u32,
    out_json: *mut *mut pv_buffer,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        process(
            Who::Session(session),
            schema,
            schema_len,
            json,
            json_len,
            Some(view),
            out_json,
        )
    }
}

/// Stores a de-identification schema (TOML or JSON text) under `name`, sealed in the vault
/// (owner only). Errors name the rule and position.
///
/// # Safety
/// `vault` is a live handle; `name` and `text` point to `name_len` and `text_len` readable
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_define_schema(
    vault: *const pv_vault,
    name: *const c_char,
    name_len: usize,
    text: *const c_char,
    text_len: usize,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let name = unsafe { arg_str(name, name_len, "name") }?;
        // SAFETY: forwarded contract.
        let text = unsafe { arg_str(text, text_len, "text") }?;
        // SAFETY: forwarded contract.
        unsafe { with_vault(vault, |v| Ok(v.define_schema(name, text)?)) }
    })
}
