//! Fuzz target `aead_differential`: see `phivault::fuzzing::aead_differential` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::aead_differential(data));
