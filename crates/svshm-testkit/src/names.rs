//! Names and keys no other test uses, and skipping a test with a reason.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use svshm::Key;

/// A name no other test uses, in this process or another:
/// `svshm-test-TAG-PID-N`, N counting up in this process.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "svshm-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A key no other test uses ([`Key::from_name`] of a [`unique_name`]).
pub fn unique_key(tag: &str) -> Key {
    Key::from_name(&unique_name(tag))
}

/// The key of test `test` in this process: the same on every call, so a test
/// and the children it starts agree on it, and different per test and process.
pub fn key_for(test: &str) -> Key {
    Key::from_name(&format!("svshm-it/{test}/{}", std::process::id()))
}

/// Whether this process runs with euid 0.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Prints why a test is skipped, past the test harness's output capture
/// (which only captures `print!`/`eprint!`), so the reason is always seen.
pub fn skip(test: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "\nSKIPPED {test}: {reason}");
}
