//! Fuzz target `metadata_records`: see `phivault::fuzzing::metadata_records` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::metadata_records(data));
