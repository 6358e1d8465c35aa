//! # phivault C API
//!
//! The C binding of the `phivault` crate: `libphivault.so`, `libphivault.a` and the header
//! `include/phivault.h`, which cbindgen generates from this crate (see `build.rs`).
//!
//! The binding is thin: every rule (formats, limits, key handling) lives in `phivault` (here
//! renamed `phivault_core`). This crate only converts C arguments into Rust values, calls the
//! core, and turns results into a [`pv_result`](error::pv_result) status.
//!
//! ## Map of the crate
//! - [`ffi`]: the one panic + NULL-check boundary every exported function runs in, and the
//!   helpers that turn raw pointers into references, slices and strings. All `unsafe` that
//!   reads caller memory is there.
//! - [`error`]: the `pv_result` status codes, `pv_error_message` and the thread-local last
//!   error.
//! - [`buffer`]: `pv_buffer`, bytes handed to C and wiped by `pv_buffer_free`.
//! - [`context`]: `pv_context`, the key/value context bound to every ciphertext.
//! - [`root`]: `pv_root_key` (key bytes or passphrase) and `pv_key_generate`.
//! - [`vault`]: `pv_vault`: create, open, close, encrypt, decrypt, keys, status.
//! - [`records`]: encrypted records: put, get, delete; subjects: forget.
//! - [`session`]: `pv_session` (principal + purpose: policy-checked, audited calls), policy
//!   and audit verification.
//! - [`tokens`]: tokenize and detokenize (single and batch), views, field definitions.
//! - [`lifecycle`]: key lifecycle: rewrap, retire (minimum decryption version), destroy,
//!   re-encrypt.
//! - [`stream`]: streaming encryption of large files by path (constant memory).
//! - `fuzzing` (hidden): the `c_api` fuzz target, which calls the exported functions with
//!   arbitrary bytes and lengths (`fuzz/`, replayed by this crate's unit tests).
//!
//! ## Conventions (docs/c-api.md has the whole contract)
//! Names are `pv_<object>_<verb>`; handles are opaque; `pv_x_free(NULL)` is a no-op; outputs
//! come last and are written only on success; every byte pointer is followed by its `size_t`
//! length; every function returns a `pv_result` (or, for accessors, a neutral value on bad
//! input) and never unwinds into C.

// The workspace denies unsafe code; a C binding cannot exist without it. It is confined to
// pointer handling in `ffi.rs` and the ownership transfers of the handle types, each with a
// SAFETY note.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(missing_docs)]
// C names: the header must read `pv_vault`, `PV_OK`, not Rust's casing.
#![allow(non_camel_case_types)]

pub mod buffer;
pub mod context;
pub mod deid;
pub mod error;
pub mod ffi;
// The `c_api` fuzz target (fuzz/ffi-rlib links this crate as an rlib, with the `fuzzing`
// feature); not part of the C API, not in the shipped library.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod lifecycle;
pub mod records;
pub mod root;
pub mod session;
pub mod stream;
pub mod tokens;
pub mod vault;

/// The library version as a NUL-terminated string ("0.1.0"). The pointer is static: do not
/// free it.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn pv_version() -> *const std::ffi::c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

#[cfg(test)]
mod header_check {
    /// The checked-in header must be exactly what the pinned cbindgen generates from this
    /// source (CONVENTIONS.md: CI fails on header drift).
    #[test]
    fn header_is_current() {
        let generated = include_str!(concat!(env!("OUT_DIR"), "/phivault.h"));
        let checked_in = include_str!("../include/phivault.h");
        assert!(
            generated == checked_in,
            "ffi/include/phivault.h is out of date: run PHIVAULT_BLESS_HEADER=1 cargo build -p phivault-ffi"
        );
    }
}
