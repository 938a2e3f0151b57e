//! `--min-free SIZE`: keeps the recorder from filling the dataset's
//! filesystem. Below the threshold the current episode is finished cleanly
//! and recording pauses; once space is back above the threshold plus a small
//! hysteresis margin, recording resumes with a new episode. Nothing is ever
//! deleted.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// Hysteresis: recording resumes only once free space is back above
/// `min_free + min_free / RESUME_MARGIN_DIVISOR` (10 % more), so that an
/// episode is not started just to be cut again a moment later.
pub const RESUME_MARGIN_DIVISOR: u64 = 10;

/// Parses a size such as `500M`, `2G`, `1.5GiB`, `64k` or `1048576`
/// (bytes). Suffixes are binary (K = 1024) and case-insensitive; an optional
/// trailing `B`/`iB` is accepted.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || {
        format!("bad size {text:?}: expected a number with an optional unit K, M, G or T (binary, e.g. 500M, 2G)")
    };
    let lower = t.to_ascii_lowercase();
    let stem = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (number, unit) = match stem.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&stem[..i], c),
        _ => (stem, ' '),
    };
    let shift = match unit {
        ' ' => 0,
        'k' => 10,
        'm' => 20,
        'g' => 30,
        't' => 40,
        _ => return Err(bad()),
    };
    let number = number.trim();
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("size {text:?} is too large"));
    }
    Ok(bytes.round() as u64)
}

/// Formats a byte count for people: `512 B`, `3.2 MiB`, `1.50 GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v < 10.0 {
        format!("{v:.2} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Bytes available to an unprivileged writer on the filesystem holding
/// `path` (`statvfs`: `f_bavail * f_frsize`, so blocks reserved for root do
/// not count).
pub fn free_bytes(path: &Path) -> anyhow::Result<u64> {
    let st =
        nix::sys::statvfs::statvfs(path).with_context(|| format!("statvfs {}", path.display()))?;
    // fsblkcnt_t and c_ulong are 32-bit on some 32-bit ARM targets.
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    let (blocks, frsize) = (u64::from(st.blocks_available()), st.fragment_size() as u64);
    Ok(blocks.saturating_mul(frsize))
}

/// The guard's verdict on the current free space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskState {
    /// Enough space: record.
    Ok,
    /// Too little space: pause. The text says why, for logs and `status`.
    Low(String),
}

/// Decides, with hysteresis, whether the dataset filesystem has room.
#[derive(Debug)]
pub struct DiskGuard {
    path: PathBuf,
    min_free: u64,
    resume_at: u64,
    low: bool,
}

impl DiskGuard {
    /// A guard for the filesystem holding `path` with threshold `min_free`.
    pub fn new(path: impl Into<PathBuf>, min_free: u64) -> Self {
        Self {
            path: path.into(),
            min_free,
            resume_at: min_free.saturating_add(min_free / RESUME_MARGIN_DIVISOR),
            low: false,
        }
    }

    /// The threshold.
    pub fn min_free(&self) -> u64 {
        self.min_free
    }

    /// Measures free space now and judges it (see [`judge`](Self::judge)).
    /// A failing `statvfs` counts as low: recording into a filesystem that
    /// cannot even be queried is not safe.
    pub fn check(&mut self) -> DiskState {
        match free_bytes(&self.path) {
            Ok(free) => self.judge(free),
            Err(e) => {
                self.low = true;
                DiskState::Low(format!("disk: cannot query free space: {e:#}"))
            }
        }
    }

    /// Judges `free` bytes: low below `min_free`; once low, stays low until
    /// `free` reaches `min_free` plus 10 %.
    pub fn judge(&mut self, free: u64) -> DiskState {
        self.low = if self.low {
            free < self.resume_at
        } else {
            free < self.min_free
        };
        if self.low {
            DiskState::Low(format!(
                "disk: {} free < min-free {}",
                format_size(free),
                format_size(self.min_free)
            ))
        } else {
            DiskState::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_size(" 3 M "), Ok(3 << 20));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn bad_sizes_are_rejected_with_a_hint() {
        for bad in ["", "M", "-5M", "5X", "five", "1e3", "5MM", "1.2.3G", "NaN"] {
            let err = parse_size(bad).expect_err(bad);
            assert!(err.contains("expected a number"), "{bad}: {err}");
        }
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn sizes_format_for_people() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(3 << 20), "3.00 MiB");
        assert_eq!(format_size(500 << 20), "500.0 MiB");
        assert_eq!(format_size(2 << 30), "2.00 GiB");
    }

    #[test]
    fn guard_pauses_below_threshold_and_resumes_with_hysteresis() {
        let mut g = DiskGuard::new("/", 1000);
        assert_eq!(g.judge(5000), DiskState::Ok);
        assert_eq!(g.judge(1000), DiskState::Ok);
        assert!(matches!(g.judge(999), DiskState::Low(r) if r.contains("min-free")));
        // Back above min-free but inside the 10 % margin: still paused.
        assert!(matches!(g.judge(1050), DiskState::Low(_)));
        assert_eq!(g.judge(1100), DiskState::Ok);
        assert_eq!(g.judge(1001), DiskState::Ok);
    }

    #[test]
    fn free_bytes_reads_a_real_filesystem() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(free_bytes(dir.path()).expect("statvfs") > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
        let mut g = DiskGuard::new(dir.path(), u64::MAX);
        assert!(matches!(g.check(), DiskState::Low(_)));
        let mut g = DiskGuard::new(dir.path().join("missing"), 0);
        assert!(matches!(g.check(), DiskState::Low(r) if r.contains("cannot query")));
    }
}
