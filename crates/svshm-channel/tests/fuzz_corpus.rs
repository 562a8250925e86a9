//! Replays the committed corpora of the fuzz targets (fuzz/corpus/<target>/)
//! and their hand-made seeds through the very bodies the libFuzzer binaries
//! run (fuzz/bodies/), so every input that once found new coverage keeps
//! checking its properties in the ordinary `cargo test --workspace`. The fuzz
//! crate itself stays out of the workspace (it needs libFuzzer); see
//! fuzz/README.md for fuzzing.

#[path = "../../../fuzz/bodies/mod.rs"]
#[allow(dead_code)]
mod bodies;

use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Runs `body` on every file of the target's corpus; fails on a missing or
/// empty corpus, so the test cannot pass on nothing.
fn replay(target: &str, body: fn(&[u8]), seeds: Vec<Vec<u8>>) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    for (i, s) in seeds.iter().enumerate() {
        run_one(&format!("{target} built-in input {i}"), body, s);
    }
    for f in &files {
        let data = std::fs::read(f).unwrap();
        run_one(&f.display().to_string(), body, &data);
    }
    eprintln!(
        "{target}: replayed {} seeds and {} corpus inputs",
        seeds.len(),
        files.len()
    );
}

fn run_one(what: &str, body: fn(&[u8]), data: &[u8]) {
    if std::panic::catch_unwind(|| body(data)).is_err() {
        panic!(
            "fuzz input {what} fails ({} bytes: {data:02x?})",
            data.len()
        );
    }
}

#[test]
fn header_corpus() {
    replay("header", bodies::header::run, bodies::header::seeds());
}

#[test]
fn frame_corpus() {
    replay("frame", bodies::frame::run, bodies::frame::seeds());
}

#[test]
fn offset_corpus() {
    replay("offset", bodies::offset::run, bodies::offset::seeds());
}

/// Inputs that found bugs (fuzz/regressions/<target>/), kept so the fixes stay
/// fixed: `from_ptr` once overflowed on addresses near `usize::MAX`.
#[test]
fn offset_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/offset");
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        run_one(
            &f.display().to_string(),
            bodies::offset::run,
            &std::fs::read(&f).unwrap(),
        );
    }
}
