//! Fuzz target `vault_header`: see `phivault::fuzzing::vault_header` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::vault_header(data));
