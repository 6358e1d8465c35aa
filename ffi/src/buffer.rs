//! `pv_buffer`: bytes the library hands to C (plaintexts, envelopes, JSON).
//!
//! A buffer owns its bytes; C reads them with `pv_buffer_data` / `pv_buffer_len` and gives
//! them back with `pv_buffer_free`, which overwrites them with zeros before freeing, so a
//! decrypted plaintext does not linger in freed heap memory.

use crate::ffi::{boundary_value, free_raw};
use zeroize::Zeroizing;

/// An opaque byte buffer owned by the caller once returned; free it with `pv_buffer_free`.
///
/// Its data is always followed by one NUL byte that `pv_buffer_len` does not count, so a
/// text result (a `pv1:` envelope, JSON) can be used directly as a C string.
pub struct pv_buffer {
    /// The bytes, then one NUL.
    bytes: Zeroizing<Vec<u8>>,
}

impl pv_buffer {
    /// Copies `data` into a new buffer (allocated once at its final size, so no unwiped
    /// copy is left behind by a reallocation). The source is wiped when the caller drops it
    /// if it is a `Zeroizing` value.
    pub(crate) fn from_slice(data: &[u8]) -> Self {
        let mut bytes = Zeroizing::new(Vec::with_capacity(data.len() + 1));
        bytes.extend_from_slice(data);
        bytes.push(0);
        pv_buffer { bytes }
    }

    /// The bytes without the trailing NUL.
    #[cfg(test)]
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - 1]
    }
}

/// The first byte of the buffer's data (never NULL for a valid buffer; the data is followed
/// by a NUL byte). Valid until `pv_buffer_free`. Returns NULL if `buf` is NULL.
///
/// # Safety
/// `buf` is NULL or a live buffer from this library.
///
/// Thread safety: a buffer may be read from several threads at once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_buffer_data(buf: *const pv_buffer) -> *const u8 {
    boundary_value(std::ptr::null(), || {
        // SAFETY: forwarded contract.
        let b = unsafe { crate::ffi::arg_ref(buf, "buf") }.ok()?;
        Some(b.bytes.as_ptr())
    })
}

/// The number of data bytes in the buffer, without the trailing NUL. 0 if `buf` is NULL.
///
/// # Safety
/// `buf` is NULL or a live buffer from this library.
///
/// Thread safety: a buffer may be read from several threads at once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_buffer_len(buf: *const pv_buffer) -> usize {
    boundary_value(0, || {
        // SAFETY: forwarded contract.
        let b = unsafe { crate::ffi::arg_ref(buf, "buf") }.ok()?;
        Some(b.bytes.len().saturating_sub(1))
    })
}

/// Overwrites the buffer's bytes with zeros and frees it. `pv_buffer_free(NULL)` does
/// nothing. The pointer must not be used afterwards; freeing it twice is undefined behaviour.
///
/// # Safety
/// `buf` is NULL or a live buffer from this library that no other thread is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pv_buffer_free(buf: *mut pv_buffer) {
    boundary_value((), || {
        // SAFETY: forwarded contract; `Zeroizing` wipes the bytes on drop.
        unsafe { free_raw(buf) };
        Some(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_nul_terminated_and_len_excludes_nul() {
        let raw = crate::ffi::into_raw(pv_buffer::from_slice(b"pv1:x"));
        // SAFETY: `raw` is a live buffer until freed below.
        unsafe {
            assert_eq!(pv_buffer_len(raw), 5);
            let data = pv_buffer_data(raw);
            assert_eq!(*data.add(5), 0);
            assert_eq!((*raw).as_slice(), b"pv1:x");
            pv_buffer_free(raw);
            assert_eq!(pv_buffer_len(std::ptr::null()), 0);
            assert!(pv_buffer_data(std::ptr::null()).is_null());
            pv_buffer_free(std::ptr::null_mut());
        }
    }
}
