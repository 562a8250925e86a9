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
