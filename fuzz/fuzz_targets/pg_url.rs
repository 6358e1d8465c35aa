//! Fuzz target `pg_url`: see `phivault::fuzzing::pg_url` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::pg_url(data));
