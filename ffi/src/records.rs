//! Encrypted records (`pv_vault_put`, `pv_vault_get`, `pv_vault_delete`) and crypto-shredding
//! of a data subject (`pv_vault_forget_subject`).
//!
//! A record is addressed by collection (1–64 characters from `A-Z a-z 0-9 _ - .`) and id
//! (1–1024 bytes of UTF-8). Ids are stored only as keyed hashes, so an MRN used as id never
//! reaches the disk; the value is bound to its collection and id.

use crate::buffer::pv_buffer;
use crate::error::{Failure, pv_result};
use crate::ffi::{Out, arg_bytes, arg_opt_str, arg_str, boundary, into_raw};
use crate::session::Who;
use crate::vault::{pv_vault, with_vault};
use std::ffi::c_char;

/// Stores `value` as record `id` of `collection`, replacing any previous value; durable when
/// it returns. `subject` (NULL, 0 for none) ties the record to a data subject, so that
/// `pv_vault_forget_subject` makes it unrecoverable.
///
/// # Safety
/// `vault` is a live handle; each pointer points to its length in readable bytes (`value`
/// and `subject` may be NULL with length 0).
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_put(
    vault: *const pv_vault,
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
        put(
            Who::Owner(vault),
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

/// Reads record `id` of `collection` into `*out_value` (free it with `pv_buffer_free`, which
/// wipes it). Returns `PV_NOT_FOUND` (and writes nothing) if there is no such record;
/// `PV_SUBJECT_FORGOTTEN` if its subject was forgotten; `PV_AUTHENTICATION_FAILED` if the
/// stored value was tampered with or moved from another record.
///
/// # Safety
/// `vault` is a live handle; `collection`/`id` point to their lengths in readable bytes;
/// `out_value` points to writable memory for one pointer.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_get(
    vault: *const pv_vault,
    collection: *const c_char,
    collection_len: usize,
    id: *const c_char,
    id_len: usize,
    out_value: *mut *mut pv_buffer,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        get(
            Who::Owner(vault),
            collection,
            collection_len,
            id,
            id_len,
            out_value,
        )
    }
}

/// Deletes record `id` of `collection`. `*out_deleted` (if `out_deleted` is not NULL) is set
/// to whether a record was there; deleting a missing record is not an error.
///
/// # Safety
/// `vault` is a live handle; `collection`/`id` point to their lengths in readable bytes;
/// `out_deleted` is NULL or points to a writable `bool`.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_delete(
    vault: *const pv_vault,
    collection: *const c_char,
    collection_len: usize,
    id: *const c_char,
    id_len: usize,
    out_deleted: *mut bool,
) -> pv_result {
    // SAFETY: forwarded contract.
    unsafe {
        delete(
            Who::Owner(vault),
            collection,
            collection_len,
            id,
            id_len,
            out_deleted,
        )
    }
}

/// Destroys the key of data subject `subject` (a patient): every record and envelope tied to
/// the subject becomes undecryptable at once, including copies outside the vault. O(1).
/// `*out_existed` (if not NULL) is set to whether the subject had a key.
///
/// # Safety
/// `vault` is a live handle; `subject` points to `subject_len` readable bytes; `out_existed`
/// is NULL or points to a writable `bool`.
///
/// Thread safety: may run concurrently with any call on the same vault.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_vault_forget_subject(
    vault: *const pv_vault,
    subject: *const c_char,
    subject_len: usize,
    out_existed: *mut bool,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::optional(out_existed, "out_existed") }?;
        if subject.is_null() {
            return Err(Failure::new(pv_result::PV_NULL_ARGUMENT, "subject is NULL"));
        }
        // SAFETY: forwarded contract.
        let subject = unsafe { arg_str(subject, subject_len, "subject") }?;
        // SAFETY: forwarded contract.
        let existed = unsafe { with_vault(vault, |v| Ok(v.forget_subject(subject)?)) }?;
        if let Some(out) = out {
            out.set(existed);
        }
        Ok(())
    })
}

/// The one body of `pv_vault_put` and `pv_session_put`.
///
/// # Safety
/// As `pv_vault_put`, with a live handle in `who`.
#[allow(clippy::too_many_arguments)] // the C function's arguments, forwarded
pub(crate) unsafe fn put(
    who: Who,
    collection: *const c_char,
    collection_len: usize,
    id: *const c_char,
    id_len: usize,
    value: *const u8,
    value_len: usize,
    subject: *const c_char,
    subject_len: usize,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let collection = unsafe { arg_str(collection, collection_len, "collection") }?;
        // SAFETY: forwarded contract.
        let id = unsafe { arg_str(id, id_len, "id") }?;
        // SAFETY: forwarded contract.
        let value = unsafe { arg_bytes(value, value_len, "value") }?;
        // SAFETY: forwarded contract.
        let subject = unsafe { arg_opt_str(subject, subject_len, "subject") }?;
        // SAFETY: forwarded contract.
        unsafe { who.call(|s| Ok(s.put(collection, id, value, subject)?)) }
    })
}

/// The one body of `pv_vault_get` and `pv_session_get`.
///
/// # Safety
/// As `pv_vault_get`, with a live handle in `who`.
pub(crate) unsafe fn get(
    who: Who,
    collection: *const c_char,
    collection_len: usize,
    id: *const c_char,
    id_len: usize,
    out_value: *mut *mut pv_buffer,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_value, "out_value") }?;
        // SAFETY: forwarded contract.
        let collection = unsafe { arg_str(collection, collection_len, "collection") }?;
        // SAFETY: forwarded contract.
        let id = unsafe { arg_str(id, id_len, "id") }?;
        // SAFETY: forwarded contract.
        let value = unsafe { who.call(|s| Ok(s.get(collection, id)?)) }?
            .ok_or_else(|| Failure::new(pv_result::PV_NOT_FOUND, "no such record"))?;
        out.set(into_raw(pv_buffer::from_slice(&value)));
        Ok(())
    })
}

/// The one body of `pv_vault_delete` and `pv_session_delete`.
///
/// # Safety
/// As `pv_vault_delete`, with a live handle in `who`.
pub(crate) unsafe fn delete(
    who: Who,
    collection: *const c_char,
    collection_len: usize,
    id: *const c_char,
    id_len: usize,
    out_deleted: *mut bool,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::optional(out_deleted, "out_deleted") }?;
        // SAFETY: forwarded contract.
        let collection = unsafe { arg_str(collection, collection_len, "collection") }?;
        // SAFETY: forwarded contract.
        let id = unsafe { arg_str(id, id_len, "id") }?;
        // SAFETY: forwarded contract.
        let deleted = unsafe { who.call(|s| Ok(s.delete(collection, id)?)) }?;
        if let Some(out) = out {
            out.set(deleted);
        }
        Ok(())
    })
}
