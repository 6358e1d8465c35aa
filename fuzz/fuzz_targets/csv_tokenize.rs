//! Fuzz target `csv_tokenize`: see `phivault::fuzzing::csv_tokenize` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::csv_tokenize(data));
