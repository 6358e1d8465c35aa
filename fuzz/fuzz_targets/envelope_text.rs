//! Fuzz target `envelope_text`: see `phivault::fuzzing::envelope_text` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::envelope_text(data));
