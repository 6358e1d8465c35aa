//! Fuzz target `field_schema_toml`: see `phivault::fuzzing::field_schema_toml` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::field_schema_toml(data));
