//! Fuzz target `detokenize`: see `phivault::fuzzing::detokenize` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::detokenize(data));
