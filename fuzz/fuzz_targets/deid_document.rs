//! Fuzz target `deid_document`: see `phivault::fuzzing::deid_document` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::deid_document(data));
