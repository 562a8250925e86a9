//! Percentiles and medians.

use serde::{Deserialize, Serialize};

/// Nearest-rank percentile of an ascending slice: the smallest value such that
/// at least `p`% of the samples are at or below it. `p` in (0, 100].
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    // In parts per million and integers, so 99.9% of 1000 is exactly rank 999.
    let ppm = (p * 10_000.0).round().clamp(0.0, 1e6) as u128;
    let rank = (ppm * n as u128).div_ceil(1_000_000) as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Median of a set of measurements (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Summary of round-trip times, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Number of samples.
    pub n: u64,
    /// Smallest.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Latency {
    /// The median of each statistic over several runs (counts summed).
    pub fn median_of(lats: &[Latency]) -> Latency {
        let med = |f: fn(&Latency) -> u64| {
            median(&lats.iter().map(|l| f(l) as f64).collect::<Vec<_>>()) as u64
        };
        Latency {
            n: lats.iter().map(|l| l.n).sum(),
            min: med(|l| l.min),
            p50: med(|l| l.p50),
            p99: med(|l| l.p99),
            p999: med(|l| l.p999),
            max: med(|l| l.max),
            mean: median(&lats.iter().map(|l| l.mean).collect::<Vec<_>>()),
        }
    }

    /// Summarises the samples (sorted in place).
    pub fn from_samples(samples: &mut [u64]) -> Latency {
        samples.sort_unstable();
        let n = samples.len();
        if n == 0 {
            return Latency::default();
        }
        let sum: u128 = samples.iter().map(|&x| u128::from(x)).sum();
        Latency {
            n: n as u64,
            min: samples[0],
            p50: percentile(samples, 50.0),
            p99: percentile(samples, 99.0),
            p999: percentile(samples, 99.9),
            max: samples[n - 1],
            mean: sum as f64 / n as f64,
        }
    }

    /// The named statistic: `p50`, `p99`, `p99.9`, `max`, `mean`, `min`.
    pub fn get(&self, stat: &str) -> f64 {
        match stat {
            "p50" => self.p50 as f64,
            "p99" => self.p99 as f64,
            "p99.9" => self.p999 as f64,
            "max" => self.max as f64,
            "min" => self.min as f64,
            _ => self.mean,
        }
    }
}

/// The latency statistics reported for every ping-pong, in table order.
pub const LATENCY_STATS: [&str; 4] = ["p50", "p99", "p99.9", "max"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50.0), 500);
        assert_eq!(percentile(&v, 99.0), 990);
        assert_eq!(percentile(&v, 99.9), 999);
        assert_eq!(percentile(&v, 100.0), 1000);
        assert_eq!(percentile(&v, 0.01), 1);
        assert_eq!(percentile(&[7], 99.9), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        let small = [10, 20, 30, 40];
        assert_eq!(percentile(&small, 50.0), 20);
        assert_eq!(percentile(&small, 99.0), 40);
    }

    #[test]
    fn summary_of_unsorted_samples() {
        let mut v: Vec<u64> = (1..=10_000).rev().collect();
        v[0] = 1_000_000; // one outlier replaces 10_000
        let l = Latency::from_samples(&mut v);
        assert_eq!(l.n, 10_000);
        assert_eq!(l.min, 1);
        assert_eq!(l.p50, 5000);
        assert_eq!(l.p99, 9900);
        assert_eq!(l.p999, 9990);
        assert_eq!(l.max, 1_000_000);
        assert_eq!(l.get("p99.9"), 9990.0);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
