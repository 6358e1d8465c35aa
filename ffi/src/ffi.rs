//! The boundary between C and Rust: one wrapper that every exported function runs in
//! ([`boundary`], [`boundary_value`]) and the helpers that turn C pointers into Rust values.
//!
//! Model: rustls-ffi's `ffi_panic_boundary!` (`panic.rs`) and its typed pointer helpers
//! (`ffi.rs`). Every NULL, alignment, length and UTF-8 check on caller memory happens here,
//! once, so the exported functions contain no ad hoc pointer casts.
//!
//! Rules the helpers apply:
//! - a NULL handle, string or output pointer is [`pv_result::PV_NULL_ARGUMENT`];
//! - a byte pointer may be NULL only with length 0 (an empty slice);
//! - a length above `isize::MAX` is [`pv_result::PV_LENGTH_TOO_LARGE`] (no Rust slice can be
//!   that long, so it is certainly a bug or an attack on the caller's side);
//! - text that is not UTF-8 is [`pv_result::PV_INVALID_UTF8`].
//!
//! What the helpers cannot check — that a non-NULL pointer points to `len` readable bytes, or
//! to a live handle — is the caller's contract, stated in the header.

use crate::error::{Failure, pv_result, set_last_error};
use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

/// Runs `f`, the body of an exported function, and turns its outcome into a status: `Ok` is
/// `PV_OK`; an error is recorded as the thread's last error and its code returned; a panic is
/// caught (it must never unwind into C) and becomes `PV_PANIC`.
pub(crate) fn boundary(f: impl FnOnce() -> Result<(), Failure>) -> pv_result {
    // AssertUnwindSafe: after a panic nothing the closure captured is used again by this
    // function; shared state inside the vault is protected by the core's own locks.
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => pv_result::PV_OK,
        Ok(Err(failure)) => {
            let code = failure.code;
            set_last_error(failure);
            code
        }
        Err(_) => {
            // The panic payload is not forwarded: it could quote data.
            set_last_error(Failure::new(
                pv_result::PV_PANIC,
                "internal error: a panic was caught at the C boundary",
            ));
            pv_result::PV_PANIC
        }
    }
}

/// Like [`boundary`] for functions that return a value rather than a status (accessors):
/// on error or panic, `fallback` is returned. Nothing is recorded as the last error.
pub(crate) fn boundary_value<T>(fallback: T, f: impl FnOnce() -> Option<T>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Some(v)) => v,
        Ok(None) | Err(_) => fallback,
    }
}

fn null(what: &'static str) -> Failure {
    Failure::new(
        pv_result::PV_NULL_ARGUMENT,
        Cow::Owned(format!("{what} is NULL")),
    )
}

fn check_aligned<T>(p: *const T, what: &'static str) -> Result<(), Failure> {
    if p.is_aligned() {
        Ok(())
    } else {
        Err(Failure::new(
            pv_result::PV_INVALID_ARGUMENT,
            Cow::Owned(format!("{what} is not aligned")),
        ))
    }
}

/// Borrows the object behind a `const T *` argument.
///
/// # Safety
/// `p` is NULL or points to a live, properly initialised `T` that is not mutated while the
/// returned reference is used (for handles: it came from this library and was not freed).
pub(crate) unsafe fn arg_ref<'a, T>(p: *const T, what: &'static str) -> Result<&'a T, Failure> {
    check_aligned(p, what)?;
    // SAFETY: aligned; non-NULL is checked by `as_ref`; liveness is the caller's contract.
    unsafe { p.as_ref() }.ok_or_else(|| null(what))
}

/// Borrows the object behind a `T *` argument mutably.
///
/// # Safety
/// As [`arg_ref`], and no other reference to the object exists during the call.
pub(crate) unsafe fn arg_mut<'a, T>(p: *mut T, what: &'static str) -> Result<&'a mut T, Failure> {
    check_aligned(p, what)?;
    // SAFETY: aligned; non-NULL is checked by `as_mut`; liveness and exclusivity are the
    // caller's contract.
    unsafe { p.as_mut() }.ok_or_else(|| null(what))
}

/// Borrows `len` bytes at `p`. NULL with length 0 is the empty slice.
///
/// # Safety
/// If `p` is not NULL it points to `len` readable bytes that stay unchanged during the call.
pub(crate) unsafe fn arg_bytes<'a>(
    p: *const u8,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], Failure> {
    if len > isize::MAX as usize {
        return Err(Failure::new(
            pv_result::PV_LENGTH_TOO_LARGE,
            Cow::Owned(format!("length of {what} is larger than any buffer can be")),
        ));
    }
    if p.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(null(what)) };
    }
    // SAFETY: `p` is non-NULL, `u8` needs no alignment, `len` fits in isize; that `len` bytes
    // are readable is the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Borrows `len` bytes at `p` as UTF-8 text. NULL with length 0 is "".
///
/// # Safety
/// As [`arg_bytes`].
pub(crate) unsafe fn arg_str<'a>(
    p: *const std::ffi::c_char,
    len: usize,
    what: &'static str,
) -> Result<&'a str, Failure> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { arg_bytes(p.cast(), len, what) }?;
    std::str::from_utf8(bytes).map_err(|_| {
        Failure::new(
            pv_result::PV_INVALID_UTF8,
            Cow::Owned(format!("{what} is not valid UTF-8")),
        )
    })
}

/// Like [`arg_str`] but NULL (with length 0) means "absent".
///
/// # Safety
/// As [`arg_bytes`].
pub(crate) unsafe fn arg_opt_str<'a>(
    p: *const std::ffi::c_char,
    len: usize,
    what: &'static str,
) -> Result<Option<&'a str>, Failure> {
    if p.is_null() && len == 0 {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { arg_str(p, len, what) }.map(Some)
}

/// Borrows an array of `count` elements of `T` at `p`. NULL with count 0 is the empty array.
///
/// # Safety
/// If `p` is not NULL it points to `count` initialised `T`s that stay unchanged during the
/// call.
pub(crate) unsafe fn arg_array<'a, T>(
    p: *const T,
    count: usize,
    what: &'static str,
) -> Result<&'a [T], Failure> {
    if count > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(Failure::new(
            pv_result::PV_LENGTH_TOO_LARGE,
            Cow::Owned(format!("count of {what} is larger than any array can be")),
        ));
    }
    if p.is_null() {
        return if count == 0 { Ok(&[]) } else { Err(null(what)) };
    }
    check_aligned(p, what)?;
    // SAFETY: non-NULL, aligned, the total size fits in isize; that `count` elements are
    // readable and initialised is the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, count) })
}

/// An output array of `count` elements, checked before any work is done and written only by
/// [`OutArray::set_all`].
pub(crate) struct OutArray<T> {
    ptr: *mut T,
    count: usize,
}

impl<T> OutArray<T> {
    /// Checks an output array. NULL is accepted only with count 0.
    ///
    /// # Safety
    /// If `p` is not NULL it points to writable memory for `count` elements of `T`.
    pub(crate) unsafe fn new(p: *mut T, count: usize, what: &'static str) -> Result<Self, Failure> {
        if count > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
            return Err(Failure::new(
                pv_result::PV_LENGTH_TOO_LARGE,
                Cow::Owned(format!("count of {what} is larger than any array can be")),
            ));
        }
        if p.is_null() && count > 0 {
            return Err(null(what));
        }
        check_aligned(p, what)?;
        Ok(OutArray { ptr: p, count })
    }

    /// Writes all elements; `values` must have exactly `count` elements (else nothing is
    /// written and `false` is returned).
    pub(crate) fn set_all(self, values: Vec<T>) -> bool {
        if values.len() != self.count {
            return false;
        }
        for (i, v) in values.into_iter().enumerate() {
            // SAFETY: `i < count`; the array is writable for `count` elements by the contract
            // of `new` (non-NULL whenever count > 0, aligned).
            unsafe { self.ptr.add(i).write(v) };
        }
        true
    }
}

/// An output argument, checked non-NULL and aligned before any work is done, so that a bad
/// output pointer never leaves a side effect behind. Written only by [`Out::set`].
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// Checks a required output pointer.
    ///
    /// # Safety
    /// If `p` is not NULL it points to writable memory for one `T` (it may be uninitialised).
    pub(crate) unsafe fn new(p: *mut T, what: &'static str) -> Result<Self, Failure> {
        check_aligned(p, what)?;
        NonNull::new(p).map(Out).ok_or_else(|| null(what))
    }

    /// Checks an optional output pointer: NULL means the caller does not want the value.
    ///
    /// # Safety
    /// As [`Out::new`].
    pub(crate) unsafe fn optional(p: *mut T, what: &'static str) -> Result<Option<Self>, Failure> {
        check_aligned(p, what)?;
        Ok(NonNull::new(p).map(Out))
    }

    /// Writes the output. Call only once the operation has succeeded.
    pub(crate) fn set(self, value: T) {
        // SAFETY: non-NULL and aligned (checked in `new`); writable for one `T` by the
        // contract of `new`. `write` does not read or drop the old (maybe uninitialised) value.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// Moves `value` to the heap and gives C ownership of it.
pub(crate) fn into_raw<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back ownership of a handle made by [`into_raw`] and drops it. NULL is a no-op.
///
/// # Safety
/// `p` is NULL or came from [`into_raw`] with the same `T` and was not freed before.
pub(crate) unsafe fn free_raw<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: by the contract, `p` is a live `Box<T>` pointer owned by the caller, who
        // gives it up now.
        drop(unsafe { Box::from_raw(p) });
    }
}
