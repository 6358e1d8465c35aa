//! `pv_context`: the ordered key/value pairs bound to a ciphertext (`phivault::Context`).
//!
//! Build one with `pv_context_new` and `pv_context_add`, pass it `const` to encrypt and
//! decrypt, free it with `pv_context_free`. Limits (pairs, key and value lengths, unique
//! keys) are the core's and are checked on every add.

use crate::error::{Failure, pv_result};
use crate::ffi::{Out, arg_mut, arg_str, boundary, free_raw, into_raw};
use phivault_core::Context;

/// An opaque, ordered set of key/value text pairs that a ciphertext is bound to (for
/// example record=4711, field=note). Decryption needs the same pairs in the same order.
pub struct pv_context {
    pub(crate) inner: Context,
}

/// Creates an empty context in `*out_ctx`.
///
/// # Safety
/// `out_ctx` points to writable memory for one pointer.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_context_new(out_ctx: *mut *mut pv_context) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_ctx, "out_ctx") }?;
        out.set(into_raw(pv_context {
            inner: Context::new(),
        }));
        Ok(())
    })
}

/// Appends the pair `key` = `value` (both UTF-8 text, given by pointer and length). Keys are
/// 1–255 bytes and unique within the context; values are at most 65535 bytes; at most 64
/// pairs. On failure the context is unchanged.
///
/// Returns `PV_NULL_ARGUMENT`, `PV_INVALID_UTF8`, `PV_LENGTH_TOO_LARGE`, or
/// `PV_INVALID_ARGUMENT` (a limit; the last error says which).
///
/// # Safety
/// `ctx` is a live context; `key`/`value` point to `key_len`/`value_len` readable bytes (or
/// are NULL with length 0).
///
/// Thread safety: mutates `ctx`: no other thread may use `ctx` during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_context_add(
    ctx: *mut pv_context,
    key: *const std::ffi::c_char,
    key_len: usize,
    value: *const std::ffi::c_char,
    value_len: usize,
) -> pv_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        let ctx = unsafe { arg_mut(ctx, "ctx") }?;
        // SAFETY: forwarded contract.
        let key = unsafe { arg_str(key, key_len, "context key") }?;
        // SAFETY: forwarded contract.
        let value = unsafe { arg_str(value, value_len, "context value") }?;
        let mut next = ctx.inner.clone();
        next.push(key, value);
        next.validate().map_err(Failure::from)?;
        ctx.inner = next;
        Ok(())
    })
}

/// The number of pairs in the context (0 if `ctx` is NULL).
///
/// # Safety
/// `ctx` is NULL or a live context.
///
/// Thread safety: may be called from several threads at once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_context_len(ctx: *const pv_context) -> usize {
    crate::ffi::boundary_value(0, || {
        // SAFETY: forwarded contract.
        let ctx = unsafe { crate::ffi::arg_ref(ctx, "ctx") }.ok()?;
        Some(ctx.inner.len())
    })
}

/// Frees a context. `pv_context_free(NULL)` does nothing. The pointer must not be used
/// afterwards; freeing it twice is undefined behaviour.
///
/// # Safety
/// `ctx` is NULL or a live context that no other thread is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_context_free(ctx: *mut pv_context) {
    crate::ffi::boundary_value((), || {
        // SAFETY: forwarded contract.
        unsafe { free_raw(ctx) };
        Some(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;

    #[test]
    fn add_checks_and_leaves_context_unchanged_on_failure() {
        let mut ctx: *mut pv_context = ptr::null_mut();
        // SAFETY: all pointers are live locals or NULL as each call documents.
        unsafe {
            assert_eq!(pv_context_new(&mut ctx), pv_result::PV_OK);
            assert_eq!(
                pv_context_add(ctx, c"record".as_ptr(), 6, c"1".as_ptr(), 1),
                pv_result::PV_OK
            );
            // Duplicate key.
            assert_eq!(
                pv_context_add(ctx, c"record".as_ptr(), 6, c"2".as_ptr(), 1),
                pv_result::PV_INVALID_ARGUMENT
            );
            // Invalid UTF-8.
            let bad = [0xffu8, 0xfe];
            assert_eq!(
                pv_context_add(ctx, bad.as_ptr().cast(), 2, c"2".as_ptr(), 1),
                pv_result::PV_INVALID_UTF8
            );
            // NULL with a length.
            assert_eq!(
                pv_context_add(ctx, ptr::null(), 3, c"2".as_ptr(), 1),
                pv_result::PV_NULL_ARGUMENT
            );
            assert_eq!(pv_context_len(ctx), 1);
            pv_context_free(ctx);
            assert_eq!(pv_context_new(ptr::null_mut()), pv_result::PV_NULL_ARGUMENT);
        }
    }
}
