//! Fuzz target `deid_path`: see `phivault::fuzzing::deid_path` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::deid_path(data));
