//! Fuzz target `ff1_roundtrip`: see `phivault::fuzzing::ff1_roundtrip` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::ff1_roundtrip(data));
