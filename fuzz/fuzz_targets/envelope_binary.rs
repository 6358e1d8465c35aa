//! Fuzz target `envelope_binary`: see `phivault::fuzzing::envelope_binary` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::envelope_binary(data));
