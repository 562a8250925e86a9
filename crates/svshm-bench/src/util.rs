//! Small helpers: clocks, CPU pinning, RSS, sizes, payload stamps.

// Unsafe: libc calls for clocks, CPU affinity and signals.
#![allow(unsafe_code)]

use anyhow::{Context, Result, bail};

/// CLOCK_MONOTONIC in nanoseconds. The clock is system-wide, so readings from
/// the writer and the reader process can be subtracted.
pub fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CPU time this process has used so far (all threads, user + system), in
/// nanoseconds.
pub fn cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks we pass
    // (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID) always exist.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sends SIGKILL to `pid` (kill(2)); a pid that is gone is not an error.
pub fn sigkill(pid: u32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

/// The CPUs this process may run on (sched_getaffinity), in ascending order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid for writes of size_of::<cpu_set_t>() bytes.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return vec![0];
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE, so CPU_ISSET stays inside the set.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

/// Pins the calling thread (and the threads it creates later) to one CPU.
pub fn pin_current_thread(cpu: usize) -> Result<()> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        bail!("cpu {cpu} is beyond CPU_SETSIZE");
    }
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size we pass; pid 0 is the caller.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("sched_setaffinity(cpu {cpu})"));
    }
    Ok(())
}

/// Peak resident set size of this process (VmHWM), in KiB; 0 if unknown.
pub fn rss_peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Parses a size such as `64`, `4K`, `64KiB`, `1M`, `2G` (binary multiples).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a size: {text:?} (try 64K, 1M, 2G)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?} (use K, M or G)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {text:?} overflows"))
}

/// Formats a byte count with a binary unit: `4 KiB`, `1 MiB`, `64 B`.
pub fn fmt_size(n: u64) -> String {
    if n >= 1 << 30 && n % (1 << 30) == 0 {
        format!("{} GiB", n >> 30)
    } else if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// Payload stamps: every chunk or message carries its sequence number in its
/// first 8 bytes and `seq ^ STAMP_MAGIC` in its last 8 bytes, so the reader
/// detects loss, duplication, reordering and torn chunks without touching
/// the rest. The first and the last chunk are compared whole.
pub const STAMP_MAGIC: u64 = 0x5eed_5eed_a5a5_0f0f;

/// Smallest payload that can carry both stamps.
pub const MIN_PAYLOAD: usize = 16;

/// A buffer of `len` bytes holding the fixed pattern, with both stamp words zero.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len)
        .map(|i| (i.wrapping_mul(31).wrapping_add(7)) as u8)
        .collect();
    let n = v.len();
    v[..8.min(n)].fill(0);
    v[n.saturating_sub(8)..].fill(0);
    v
}

/// Writes the stamps of sequence number `seq` into `buf`.
pub fn stamp(buf: &mut [u8], seq: u64) {
    let n = buf.len();
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    buf[n - 8..].copy_from_slice(&(seq ^ STAMP_MAGIC).to_le_bytes());
}

/// Reads the stamps; `Some(seq)` if both ends agree.
pub fn read_stamp(buf: &[u8]) -> Option<u64> {
    let n = buf.len();
    if n < MIN_PAYLOAD {
        return None;
    }
    let a = u64::from_le_bytes(buf[..8].try_into().ok()?);
    let b = u64::from_le_bytes(buf[n - 8..].try_into().ok()?);
    (a ^ STAMP_MAGIC == b).then_some(a)
}

/// Whether `buf` is the pattern apart from its stamps.
pub fn body_matches(buf: &[u8]) -> bool {
    let n = buf.len();
    n >= MIN_PAYLOAD
        && buf[8..n - 8]
            .iter()
            .enumerate()
            .all(|(j, &b)| b == ((j + 8).wrapping_mul(31).wrapping_add(7)) as u8)
}

/// Wrapping sum of the little-endian u64 words of `buf` (a trailing partial
/// word is zero-extended). Used by in-place (zero-copy) readers so they read
/// every byte without copying it out.
pub fn word_sum(buf: &[u8]) -> u64 {
    let mut it = buf.chunks_exact(8);
    let mut s = 0u64;
    for w in &mut it {
        s = s.wrapping_add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
    }
    let rem = it.remainder();
    if !rem.is_empty() {
        let mut w = [0u8; 8];
        w[..rem.len()].copy_from_slice(rem);
        s = s.wrapping_add(u64::from_le_bytes(w));
    }
    s
}

/// The `word_sum` of a `len`-byte pattern stamped with `seq`, given
/// `base = word_sum` of the pattern with zero stamps (len a multiple of 8).
pub fn expected_word_sum(base: u64, seq: u64) -> u64 {
    base.wrapping_add(seq).wrapping_add(seq ^ STAMP_MAGIC)
}

/// Wrapping sum of the first stamps of sequence numbers `0..n`.
pub fn stamp_sum(n: u64) -> u64 {
    // n(n-1)/2 without overflow in the intermediate product.
    let (a, b) = if n % 2 == 0 {
        (n / 2, n.wrapping_sub(1))
    } else {
        (n, (n - 1) / 2)
    };
    a.wrapping_mul(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_format() {
        assert_eq!(parse_size("64").unwrap(), 64);
        assert_eq!(parse_size("4K").unwrap(), 4096);
        assert_eq!(parse_size("64KiB").unwrap(), 65536);
        assert_eq!(parse_size("1M").unwrap(), 1 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert!(parse_size("x").is_err());
        assert!(parse_size("3Q").is_err());
        assert_eq!(fmt_size(4096), "4 KiB");
        assert_eq!(fmt_size(1 << 20), "1 MiB");
        assert_eq!(fmt_size(64), "64 B");
    }

    #[test]
    fn stamps_round_trip_and_detect_damage() {
        let mut b = pattern(64);
        assert!(body_matches(&b));
        stamp(&mut b, 42);
        assert_eq!(read_stamp(&b), Some(42));
        assert!(body_matches(&b));
        b[63] ^= 1;
        assert_eq!(read_stamp(&b), None);
        b[63] ^= 1;
        b[20] ^= 1;
        assert!(!body_matches(&b));
    }

    #[test]
    fn word_sums_match_the_formula() {
        let mut b = pattern(4096);
        let base = word_sum(&b);
        for seq in [0u64, 1, 77, u64::MAX] {
            stamp(&mut b, seq);
            assert_eq!(word_sum(&b), expected_word_sum(base, seq));
        }
        assert_eq!(word_sum(&[1, 0, 0]), 1);
    }

    #[test]
    fn stamp_sum_is_triangular() {
        for n in [0u64, 1, 2, 3, 10, 1001] {
            assert_eq!(stamp_sum(n), (0..n).fold(0u64, |a, b| a.wrapping_add(b)));
        }
    }
}
