//! Fuzz target `envelope_tamper`: see `phivault::fuzzing::envelope_tamper` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::envelope_tamper(data));
