//! Fuzz target `audit_log`: see `phivault::fuzzing::audit_log` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::audit_log(data));
