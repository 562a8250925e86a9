#![no_main]
//! cargo-fuzz target: see bodies/offset.rs for what it checks.
#![deny(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| svshm_fuzz::offset::run(data));
