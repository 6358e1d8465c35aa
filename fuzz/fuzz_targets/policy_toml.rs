//! Fuzz target `policy_toml`: see `phivault::fuzzing::policy_toml` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::policy_toml(data));
