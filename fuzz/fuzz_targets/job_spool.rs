//! Fuzz target `job_spool`: see `phivault::fuzzing::job_spool` for the entry point and the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault::fuzzing::job_spool(data));
