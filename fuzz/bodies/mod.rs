//! The bodies of the fuzz targets, shared by the libFuzzer binaries
//! (`fuzz_targets/*.rs`) and by the corpus replay test of the main workspace
//! (`crates/svshm-channel/tests/fuzz_corpus.rs`, which includes this file with
//! `#[path]`). Each `run(data)` panics exactly when it finds a bug: a panic
//! inside the library, an error of a kind the documentation does not allow, a
//! result that disagrees with the layout spec (docs/ARCHITECTURE.md), or
//! something reported valid that is not in bounds.
//!
//! Only public APIs are used. The channel targets go through real System V
//! segments (the only way `inspect` and `Receiver::connect` reach the header
//! and frame validation); each segment is marked for destruction as soon as it
//! is attached, so nothing outlives the process, however it ends.

// Unsafe code is confined to the bodies that open with `#![allow(unsafe_code)]`.
#![deny(unsafe_code)]

pub mod frame;
pub mod header;
pub mod offset;
pub mod segment;
