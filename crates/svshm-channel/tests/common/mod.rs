//! Shared helpers for the cross-process channel tests: children are this test
//! binary re-executed with a role (never `fork()` in the threaded harness).
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the role a re-executed test binary plays.
pub const ROLE: &str = "SVSHM_CHANNEL_TEST_ROLE";

/// Spawns this test binary running only the test `entry`, with `role` and extra env.
pub fn spawn(entry: &str, role: &str, env: &[(&str, String)], stdout: Stdio) -> Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", entry, "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE, role)
        .stdout(stdout);
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("spawn child test process")
}

/// The role this process plays, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// A unique channel name for a test.
pub fn unique(test: &str) -> String {
    format!(
        "svshm-test-{test}-{}-{}",
        std::process::id(),
        rand_u64() % 100_000
    )
}

/// A cheap random number (no extra dependency): hash of time and pid.
pub fn rand_u64() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    splitmix(t ^ (u64::from(std::process::id()) << 32))
}

/// SplitMix64 step: a deterministic PRNG for chunk sizes and payloads.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A deterministic PRNG.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = splitmix(self.0);
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The byte at stream offset `i`: lets any reader check any byte on its own.
pub fn pattern(i: u64) -> u8 {
    (splitmix(i / 8) >> ((i % 8) * 8)) as u8
}

/// Fills `buf` with the pattern starting at offset `at`.
pub fn fill_pattern(at: u64, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = pattern(at + k as u64);
    }
}

/// Checks `buf` against the pattern at `at`; returns the first bad offset.
pub fn check_pattern(at: u64, buf: &[u8]) -> Option<u64> {
    buf.iter()
        .enumerate()
        .find(|(k, b)| **b != pattern(at + *k as u64))
        .map(|(k, _)| at + k as u64)
}

/// Payload of message number `n`: its length is derived from `n`, and so is
/// every byte.
pub fn message(n: u64, max: usize) -> Vec<u8> {
    let len = (splitmix(n) % (max as u64 + 1)) as usize;
    (0..len)
        .map(|k| splitmix(n ^ (k as u64) << 20) as u8)
        .collect()
}

/// Waits for a child with a generous bound (a hung child fails the test
/// instead of hanging CI); kills it if the bound passes.
pub fn wait_child(child: &mut Child, bound: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t0.elapsed() > bound {
            let _ = child.kill();
            let s = child.wait().unwrap();
            panic!(
                "child {} did not finish within {bound:?} (killed: {s})",
                child.id()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends SIGKILL to a child.
pub fn sigkill(child: &Child) {
    // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
    let r = unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    assert_eq!(r, 0);
}

/// Whether segment `id` no longer exists.
pub fn segment_gone(id: i32) -> bool {
    !svshm::proc_segments().unwrap().iter().any(|s| s.id == id)
}
