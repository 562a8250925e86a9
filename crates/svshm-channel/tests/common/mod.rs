//! The channel tests' own helpers; the shared ones come from `svshm_testkit`.
//! Children are this test binary re-executed with a role: [`spawn`] runs the
//! test `entry` with [`ROLE`] set.
#![allow(dead_code, unused_imports)]

use svshm_testkit::splitmix;
pub use svshm_testkit::{
    ROLE, Rng, check_pattern, child_args, child_command, fill_pattern, pattern, rand_u64, role,
    segment_gone, sigkill, sigkill_pid, spawn_child as spawn, unique_name as unique, wait_child,
};

/// Payload of message number `n`: its length is derived from `n`, and so is
/// every byte.
pub fn message(n: u64, max: usize) -> Vec<u8> {
    let len = (splitmix(n) % (max as u64 + 1)) as usize;
    (0..len)
        .map(|k| splitmix(n ^ (k as u64) << 20) as u8)
        .collect()
}

/// Topic message `n`: its number, a pattern derived from it, then a
/// checksum (at most `max` bytes).
pub fn numbered(n: u64, max: usize) -> Vec<u8> {
    let mut m = message(n, max.saturating_sub(16));
    let mut out = n.to_le_bytes().to_vec();
    out.append(&mut m);
    let sum = out
        .iter()
        .fold(0u64, |a, &b| a.wrapping_mul(31).wrapping_add(b as u64));
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Checks a message made by [`numbered`]; returns its number.
pub fn check_numbered(m: &[u8], max: usize) -> u64 {
    assert!(m.len() >= 16, "message of {} bytes", m.len());
    let n = u64::from_le_bytes(m[..8].try_into().unwrap());
    assert_eq!(m, numbered(n, max), "message {n} is torn or wrong");
    n
}
