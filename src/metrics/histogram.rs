//! Fixed-size log-linear latency histogram: no allocation after creation,
//! about 1.5 % relative precision, from 1 µs to ~1 hour.

use serde::Serialize;

const LINEAR: usize = 64;
const HALF: usize = 32;
const BUCKETS: usize = LINEAR + 58 * HALF;

/// Latency histogram in microseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum: f64,
    sum_sq: f64,
    min: u64,
    max: u64,
}

/// Summary statistics of a histogram, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Standard deviation.
    pub std_ms: f64,
    /// Minimum.
    pub min_ms: f64,
    /// 5th percentile.
    pub p5_ms: f64,
    /// 25th percentile.
    pub p25_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 75th percentile.
    pub p75_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0.0,
            sum_sq: 0.0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Bucket of a value: exact below 64 µs, then 32 buckets per power of two.
    fn bucket(us: u64) -> usize {
        if us < LINEAR as u64 {
            return us as usize;
        }
        let octave = (63 - us.leading_zeros() as usize) - 5; // >= 1
        let sub = (us >> octave) as usize; // in 32..64
        LINEAR + (octave - 1) * HALF + (sub - HALF)
    }

    /// Midpoint value of a bucket (keeps the relative error under 1.6 %).
    fn bucket_value(index: usize) -> u64 {
        if index < LINEAR {
            return index as u64;
        }
        let rel = index - LINEAR;
        let octave = rel / HALF + 1;
        let sub = (rel % HALF + HALF) as u64;
        (sub << octave) + ((1u64 << octave) >> 1)
    }

    /// Adds one sample.
    pub fn record_us(&mut self, us: u64) {
        self.counts[Self::bucket(us)] += 1;
        self.count += 1;
        let v = us as f64;
        self.sum += v;
        self.sum_sq += v * v;
        self.min = self.min.min(us);
        self.max = self.max.max(us);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Value (µs) at quantile `q` in 0..=1.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::bucket_value(i).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Summary in milliseconds.
    pub fn summary(&self) -> LatencySummary {
        if self.count == 0 {
            return LatencySummary::default();
        }
        let n = self.count as f64;
        let mean = self.sum / n;
        let var = (self.sum_sq / n - mean * mean).max(0.0);
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            count: self.count,
            mean_ms: mean / 1000.0,
            std_ms: var.sqrt() / 1000.0,
            min_ms: ms(self.min),
            p5_ms: ms(self.quantile_us(0.05)),
            p25_ms: ms(self.quantile_us(0.25)),
            p50_ms: ms(self.quantile_us(0.50)),
            p75_ms: ms(self.quantile_us(0.75)),
            p95_ms: ms(self.quantile_us(0.95)),
            p99_ms: ms(self.quantile_us(0.99)),
            max_ms: ms(self.max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_two_percent() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record_us(v);
        }
        for (q, want) in [
            (0.5, 50_000.0),
            (0.95, 95_000.0),
            (0.99, 99_000.0),
            (0.05, 5_000.0),
        ] {
            let got = h.quantile_us(q) as f64;
            assert!(
                (got - want).abs() / want < 0.02,
                "q{q}: got {got}, want {want}"
            );
        }
        let s = h.summary();
        assert_eq!(s.count, 100_000);
        assert!((s.mean_ms - 50.0005).abs() < 0.01);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(s.min_ms, 0.001);
    }

    #[test]
    fn small_values_are_exact_and_huge_values_do_not_panic() {
        let mut h = Histogram::new();
        for v in [0, 1, 2, 63] {
            h.record_us(v);
        }
        assert_eq!(h.quantile_us(0.25), 0);
        assert_eq!(h.quantile_us(1.0), 63);
        h.record_us(u64::MAX / 2);
        assert_eq!(h.summary().count, 5);
    }
}
