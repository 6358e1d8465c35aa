//! Fuzz target `deid_schema`: see `phivault::fuzzing::deid_schema` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::deid_schema(data));
