//! Field-level tokenization from C: tokenize and detokenize single values and batches, with
//! plaintext, masked or redacted views, and field definitions from TOML. Token kinds, field
//! presets and every rule are the core's (`phivault::tokens`).

use crate::buffer::pv_buffer;
use crate::error::{Failure, pv_result};
use crate::ffi::{Out, OutArray, arg_array, arg_opt_str, arg_str, boundary, into_raw};
use crate::session::Who;
use crate::vault::{pv_vault, with_vault};
use phivault_core::tokens::View;
use std::ffi::c_char;

/// View for `pv_vault_detokenize`: the value itself.
pub const PV_VIEW_PLAINTEXT: u32 = 0;
/// View for `pv_vault_detokenize`: alphabet characters replaced by `*` except those the
/// field's mask keeps (`***-**-6789`).
pub const PV_VIEW_MASKED: u32 = 1;
/// View for `pv_vault_detokenize`: the text `[REDACTED]`.
pub const PV_VIEW_REDACTED: u32 = 2;

/// A text argument in an array: pointer and length (UTF-8, not NUL-terminated). `data` may be
/// NULL only when `len` is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pv_str {
    /// The bytes.
    pub data: *const c_char,
    /// Their number.
    pub len: usize,
}

pub(crate) fn view(v: u32) -> Result<View, Failure> {
    match v {
        PV_VIEW_PLAINTEXT => Ok(View::Plaintext),
        PV_VIEW_MASKED => Ok(View::Masked),
        PV_VIEW_REDACTED => Ok(View::Redacted),
        _ => Err(Failure::new(
            pv_result::PV_INVALID_ARGUMENT,
            "view must be PV_VIEW_PLAINTEXT, PV_VIEW_MASKED or PV_VIEW_REDACTED",
        )),
    }
}

/// # Safety
/// `items` holds `pv_str`s whose pointers satisfy `arg_str`'s contract.
unsafe fn strs<'a>(items: &'a [pv_str], what: &'static str) -> Result<Vec<&'a str>, Failure> {
    items
        .iter()
        // SAFETY: forwarded contract.
        .map(|s| unsafe { arg_str(s.data, s.len, what) })
        .collect()
}

/// Defines (or redefines) the fields of a TOML schema (`[[field]]` tables), stored in the
/// vault. `*out_count` (if not NULL) receives the number of fields defined.
///
/// # Safety
/// `vault` is a live handle; `toml` points to `toml_len` readable bytes; `out_count` is NULL
/// or points to a writable `size_t`.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_define_fields_toml(
    vault: *const pv_vault,
    toml: *const c_char,
    toml_len: usize,
    out_count: *mut usize,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::optional(out_count, "out_count") }?;
        // SAFETY: forwarded contract.
        let toml = unsafe { arg_str(toml, toml_len, "toml") }?;
        // SAFETY: forwarded contract.
        let n = unsafe { with_vault(vault, |v| Ok(v.define_fields_toml(toml)?)) }?;
        if let Some(out) = out {
            out.set(n);
        }
        Ok(())
    })
}

/// Tokenizes `value` as field `field` (a preset such as `ssn`, `mrn`, `dob`, or a defined
/// field) and returns the token as NUL-terminated text in `*out_token`. Fields tied to data
/// subjects need `subject` (else `PV_SUBJECT_REQUIRED`); give NULL, 0 otherwise.
///
/// Returns `PV_UNKNOWN_FIELD`, `PV_SUBJECT_REQUIRED`, `PV_INVALID_ARGUMENT` (a value the
/// field does not accept), ...
///
/// # Safety
/// `vault` is a live handle; each text pointer points to its length in readable bytes
/// (`subject` may be NULL with 0); `out_token` points to writable memory for one pointer.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_tokenize(
    vault: *const pv_vault,
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
        tokenize(
            Who::Owner(vault),
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

/// Turns `token` of field `field` back into its value, shown as `view` (`PV_VIEW_*`), in
/// `*out_value` (NUL-terminated; wiped by `pv_buffer_free`). `subject` (or NULL, 0) is needed
/// for subject-bound fields that are not vaulted. Unknown, malformed and forged tokens give
/// `PV_INVALID_TOKEN`.
///
/// # Safety
/// As `pv_vault_tokenize`, with `token` of `token_len` bytes and `out_value`.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_detokenize(
    vault: *const pv_vault,
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
        detokenize(
            Who::Owner(vault),
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

/// Converts `values` into buffers and writes them to `out`, all or nothing.
fn set_buffers<S: AsRef<str>>(out: OutArray<*mut pv_buffer>, values: &[S]) -> Result<(), Failure> {
    let raw: Vec<*mut pv_buffer> = values
        .iter()
        .map(|v| into_raw(pv_buffer::from_slice(v.as_ref().as_bytes())))
        .collect();
    if out.set_all(raw.clone()) {
        Ok(())
    } else {
        for p in raw {
            // SAFETY: each pointer was just made by `into_raw` and was not handed out.
            unsafe { crate::ffi::free_raw(p) };
        }
        Err(Failure::code(pv_result::PV_INTERNAL_ERROR))
    }
}

/// Tokenizes `count` values of one field, in order, into `out_tokens[0..count]` (each freed
/// with `pv_buffer_free`). Vaulted tokens are made durable with one store sync for the whole
/// batch. All or nothing: on failure no output is written, and the status is that of the
/// first invalid value. Not for fields tied to subjects.
///
/// # Safety
/// `vault` is a live handle; `field` points to `field_len` readable bytes; `values` points to
/// `count` `pv_str`s (or is NULL with 0); `out_tokens` points to `count` writable pointers.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_tokenize_many(
    vault: *const pv_vault,
    field: *const c_char,
    field_len: usize,
    values: *const pv_str,
    count: usize,
    out_tokens: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { OutArray::new(out_tokens, count, "out_tokens") }?;
        // SAFETY: forwarded contract.
        let field = unsafe { arg_str(field, field_len, "field") }?;
        // SAFETY: forwarded contract.
        let values = unsafe { strs(arg_array(values, count, "values")?, "value") }?;
        // SAFETY: forwarded contract.
        let tokens =
            unsafe { with_vault(vault, |v| Ok(v.owner().tokenize_many(field, &values)?)) }?;
        set_buffers(out, &tokens)
    })
}

/// Detokenizes `count` tokens of one field, in order, shown as `view`, into
/// `out_values[0..count]`. All or nothing, like `pv_vault_tokenize_many`.
///
/// # Safety
/// As `pv_vault_tokenize_many`, with `tokens` and `out_values`.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_detokenize_many(
    vault: *const pv_vault,
    field: *const c_char,
    field_len: usize,
    tokens: *const pv_str,
    count: usize,
    view: u32,
    out_values: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { OutArray::new(out_values, count, "out_values") }?;
        let view = self::view(view)?;
        // SAFETY: forwarded contract.
        let field = unsafe { arg_str(field, field_len, "field") }?;
        // SAFETY: forwarded contract.
        let tokens = unsafe { strs(arg_array(tokens, count, "tokens")?, "token") }?;
        // SAFETY: forwarded contract.
        let values = unsafe {
            with_vault(vault, |v| {
                Ok(v.owner().detokenize_many(field, &tokens, view)?)
            })
        }?;
        let as_str: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
        set_buffers(out, &as_str)
    })
}

/// The one body of `pv_vault_tokenize` and `pv_session_tokenize`.
///
/// # Safety
/// As `pv_vault_tokenize`, with a live handle in `who`.
#[allow(clippy::too_many_arguments)] // the C function's arguments, forwarded
pub(crate) unsafe fn tokenize(
    who: Who,
    field: *const c_char,
    field_len: usize,
    value: *const c_char,
    value_len: usize,
    subject: *const c_char,
    subject_len: usize,
    out_token: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_token, "out_token") }?;
        // SAFETY: forwarded contract.
        let field = unsafe { arg_str(field, field_len, "field") }?;
        // SAFETY: forwarded contract.
        let value = unsafe { arg_str(value, value_len, "value") }?;
        // SAFETY: forwarded contract.
        let subject = unsafe { arg_opt_str(subject, subject_len, "subject") }?;
        // SAFETY: forwarded contract.
        let token = unsafe {
            who.call(|s| {
                Ok(match subject {
                    Some(sub) => s.tokenize_for_subject(field, value, sub)?,
                    None => s.tokenize(field, value)?,
                })
            })
        }?;
        out.set(into_raw(pv_buffer::from_slice(token.as_bytes())));
        Ok(())
    })
}

/// The one body of `pv_vault_detokenize` and `pv_session_detokenize`.
///
/// # Safety
/// As `pv_vault_detokenize`, with a live handle in `who`.
#[allow(clippy::too_many_arguments)] // the C function's arguments, forwarded
pub(crate) unsafe fn detokenize(
    who: Who,
    field: *const c_char,
    field_len: usize,
    token: *const c_char,
    token_len: usize,
    subject: *const c_char,
    subject_len: usize,
    view: u32,
    out_value: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_value, "out_value") }?;
        let view = self::view(view)?;
        // SAFETY: forwarded contract.
        let field = unsafe { arg_str(field, field_len, "field") }?;
        // SAFETY: forwarded contract.
        let token = unsafe { arg_str(token, token_len, "token") }?;
        // SAFETY: forwarded contract.
        let subject = unsafe { arg_opt_str(subject, subject_len, "subject") }?;
        // SAFETY: forwarded contract.
        let value = unsafe {
            who.call(|s| {
                Ok(match subject {
                    Some(sub) => s.detokenize_for_subject(field, token, sub, view)?,
                    None => s.detokenize(field, token, view)?,
                })
            })
        }?;
        out.set(into_raw(pv_buffer::from_slice(value.as_bytes())));
        Ok(())
    })
}
