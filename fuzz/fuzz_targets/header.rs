#![no_main]
//! cargo-fuzz target: see bodies/header.rs for what it checks.
#![deny(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| svshm_fuzz::header::run(data));
