//! Fuzz target `rewrap`: see `phivault::fuzzing::rewrap` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::rewrap(data));
