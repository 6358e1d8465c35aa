//! Fuzz target `c_api`: see `phivault_ffi::fuzzing::c_api` (ffi/src/fuzzing.rs) for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault_ffi::fuzzing::c_api(data));
