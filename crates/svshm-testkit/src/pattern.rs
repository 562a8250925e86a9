//! Deterministic data: a PRNG, and a byte pattern any reader can check at any
//! offset on its own.

/// SplitMix64 step: a deterministic mixing function and PRNG step.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A cheap random number (no extra dependency): time and pid, mixed.
pub fn rand_u64() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    splitmix(t ^ (u64::from(std::process::id()) << 32))
}

/// A deterministic PRNG (SplitMix64) from its starting value.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = splitmix(self.0);
        self.0
    }
    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The byte at stream offset `i`.
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
