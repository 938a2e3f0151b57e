//! Capture-timestamp statistics of one camera's index: span, expected row
//! count, monotonicity, gaps and jitter.

use super::index::IndexRecord;
use serde::Serialize;

/// One gap between consecutive capture timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Gap {
    /// Frame index of the row after the gap.
    pub frame_index: u64,
    /// The interval, in milliseconds.
    pub interval_ms: f64,
}

/// Timing figures of an index.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TimingStats {
    /// Last minus first capture timestamp, seconds.
    pub span_s: f64,
    /// Rows a camera at the nominal rate delivers over the span (span × fps + 1).
    pub expected_rows: f64,
    /// Mean interval between rows, ms.
    pub mean_interval_ms: f64,
    /// Standard deviation of the intervals, ms.
    pub jitter_std_ms: f64,
    /// Largest interval, ms.
    pub max_interval_ms: f64,
    /// Intervals longer than 1.5 nominal frame intervals.
    pub gap_count: usize,
    /// The first gaps (at most [`MAX_LISTED_GAPS`]).
    pub gaps: Vec<Gap>,
    /// First place where capture timestamps do not strictly increase:
    /// (frame index, previous ns, this ns).
    pub non_monotonic: Option<(u64, u64, u64)>,
    /// Rows where timestamps do not strictly increase.
    pub non_monotonic_count: usize,
}

/// How many gaps are listed individually.
pub const MAX_LISTED_GAPS: usize = 10;

/// Computes [`TimingStats`] for `records` at the nominal rate `fps`.
pub fn timing_stats(records: &[IndexRecord], fps: f64) -> TimingStats {
    let mut stats = TimingStats::default();
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return stats;
    };
    let nominal_ns = 1e9 / fps.max(1e-9);
    stats.span_s = last.capture_ts_ns.saturating_sub(first.capture_ts_ns) as f64 / 1e9;
    stats.expected_rows = stats.span_s * fps + 1.0;
    let mut intervals = Vec::with_capacity(records.len().saturating_sub(1));
    for pair in records.windows(2) {
        let (prev, cur) = (&pair[0], &pair[1]);
        if cur.capture_ts_ns <= prev.capture_ts_ns {
            stats.non_monotonic_count += 1;
            if stats.non_monotonic.is_none() {
                stats.non_monotonic =
                    Some((cur.frame_index, prev.capture_ts_ns, cur.capture_ts_ns));
            }
            continue;
        }
        let interval = (cur.capture_ts_ns - prev.capture_ts_ns) as f64;
        if interval > 1.5 * nominal_ns {
            stats.gap_count += 1;
            if stats.gaps.len() < MAX_LISTED_GAPS {
                stats.gaps.push(Gap {
                    frame_index: cur.frame_index,
                    interval_ms: interval / 1e6,
                });
            }
        }
        intervals.push(interval);
    }
    if !intervals.is_empty() {
        let n = intervals.len() as f64;
        let mean = intervals.iter().sum::<f64>() / n;
        let var = intervals.iter().map(|i| (i - mean).powi(2)).sum::<f64>() / n;
        stats.mean_interval_ms = mean / 1e6;
        stats.jitter_std_ms = var.sqrt() / 1e6;
        stats.max_interval_ms = intervals.iter().cloned().fold(0.0, f64::max) / 1e6;
    }
    stats
}

/// Whether `rows` is within ±(1 frame + 2 %) of `expected`.
pub fn rows_match_rate(rows: usize, expected: f64) -> bool {
    (rows as f64 - expected).abs() <= 1.0 + 0.02 * expected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(ts: &[u64]) -> Vec<IndexRecord> {
        ts.iter()
            .enumerate()
            .map(|(i, &t)| IndexRecord {
                frame_index: i as u64,
                capture_ts_ns: t,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn steady_stream_has_no_gaps_or_jitter() {
        let r = rows(&(0..31).map(|i| 1_000 + i * 33_333_333).collect::<Vec<_>>());
        let s = timing_stats(&r, 30.0);
        assert!((s.span_s - 0.99999999).abs() < 1e-6);
        assert!(rows_match_rate(r.len(), s.expected_rows));
        assert_eq!(s.gap_count, 0);
        assert!(s.jitter_std_ms < 1e-6);
        assert!(s.non_monotonic.is_none());
    }

    #[test]
    fn gaps_and_backwards_steps_are_found() {
        let r = rows(&[0, 33_000_000, 200_000_000, 190_000_000, 233_000_000]);
        let s = timing_stats(&r, 30.0);
        assert_eq!(s.gap_count, 1);
        assert_eq!(s.gaps[0].frame_index, 2);
        assert_eq!(s.non_monotonic, Some((3, 200_000_000, 190_000_000)));
        assert_eq!(s.non_monotonic_count, 1);
        assert!(s.max_interval_ms > 160.0);
    }

    #[test]
    fn rate_tolerance() {
        assert!(rows_match_rate(101, 100.0));
        assert!(rows_match_rate(103, 100.0));
        assert!(!rows_match_rate(104, 100.0));
        assert!(!rows_match_rate(90, 100.0));
    }
}
