//! Fuzz target `ff1_differential`: see `phivault::fuzzing::ff1_differential` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::ff1_differential(data));
