//! Run metrics: per-camera counters, per-stage latency histograms, backlog
//! samples, and the files `-x/--output-log` writes (`metrics.json`,
//! `perf.log.json`).

pub mod histogram;
pub mod perf_stats;
pub mod trace;

use anyhow::Context;
use histogram::{Histogram, LatencySummary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters a capture thread and an encoder thread update concurrently.
#[derive(Debug, Default)]
pub struct CameraCounters {
    /// Frames captured inside episodes.
    pub captured: AtomicU64,
    /// Frames encoded into the MP4.
    pub encoded: AtomicU64,
    /// Frames written to the spill path because the ring was full.
    pub spilled: AtomicU64,
    /// Frames lost (source sequence gaps, or ring and spill both failed).
    pub dropped: AtomicU64,
}

/// Per-stage latency histograms owned by one camera's threads.
#[derive(Clone, Default)]
pub struct StageHistograms {
    /// Time a source took to deliver a frame into the pool buffer.
    pub capture: Histogram,
    /// Time a frame waited in the ring.
    pub queue: Histogram,
    /// Pixel conversion.
    pub convert: Histogram,
    /// Plugin encode call.
    pub encode: Histogram,
    /// Muxing and index writes.
    pub mux: Histogram,
    /// Writing a spill file (capture thread, ring full).
    pub spill: Histogram,
    /// Capture timestamp to packet written.
    pub total: Histogram,
}

impl StageHistograms {
    /// Summaries keyed by stage name.
    pub fn summaries(&self) -> BTreeMap<String, LatencySummary> {
        [
            ("capture", &self.capture),
            ("queue", &self.queue),
            ("convert", &self.convert),
            ("encode", &self.encode),
            ("mux", &self.mux),
            ("spill", &self.spill),
            ("total", &self.total),
        ]
        .into_iter()
        .filter(|(_, h)| h.count() > 0)
        .map(|(k, h)| (k.to_string(), h.summary()))
        .collect()
    }
}

/// One camera's section of `metrics.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CameraMetrics {
    /// Frames captured inside episodes.
    pub frames_captured: u64,
    /// Frames encoded.
    pub frames_encoded: u64,
    /// Frames spilled to disk.
    pub frames_spilled: u64,
    /// Frames lost.
    pub frames_dropped: u64,
    /// Ring depth in frames.
    pub ring_frames: u64,
    /// Highest ring occupancy.
    pub ring_high_water: u64,
    /// Nominal frame rate.
    pub fps_nominal: f64,
    /// Frames captured per second of recording.
    pub fps_achieved: f64,
    /// Per-stage latency summaries.
    pub stages: BTreeMap<String, LatencySummary>,
    /// Backlog samples: (seconds since start, frames waiting for the
    /// encoder in the ring and in spill files).
    pub backlog: Vec<(f64, u64)>,
    /// Most spilled frames waiting for the encoder at once.
    #[serde(default)]
    pub spill_backlog_high_water: u64,
}

/// One finished episode in `metrics.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EpisodeMetrics {
    /// Episode number.
    pub index: u32,
    /// From the end of the episode to `episode.json` being durable.
    pub finish_latency_ms: f64,
    /// Recording length.
    pub duration_s: f64,
}

/// The whole `metrics.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunMetrics {
    /// s6-edge version.
    pub s6_edge_version: String,
    /// Start, RFC 3339.
    pub started: String,
    /// Wall-clock length of the run.
    pub duration_s: f64,
    /// Encoder backend.
    pub backend: String,
    /// Process CPU time (user + system) over the run.
    pub cpu_time_s: f64,
    /// Peak resident set size.
    pub max_rss_kib: u64,
    /// Per camera.
    pub cameras: BTreeMap<String, CameraMetrics>,
    /// Per episode.
    pub episodes: Vec<EpisodeMetrics>,
}

/// Creates `<log_dir>/runs/<timestamp>/` and returns it.
pub fn create_run_dir(log_dir: &Path) -> anyhow::Result<PathBuf> {
    let stamp = chrono::Local::now()
        .format("%Y-%m-%dT%H-%M-%S%.3f")
        .to_string();
    let dir = log_dir.join("runs").join(stamp);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create log directory {}", dir.display()))?;
    Ok(dir)
}

/// Writes `metrics.json` into `dir`.
pub fn write_metrics(dir: &Path, metrics: &RunMetrics) -> anyhow::Result<()> {
    let path = dir.join("metrics.json");
    let json = serde_json::to_vec_pretty(metrics)?;
    std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `perf.log.json` (Chrome trace-event format) into `dir`.
pub fn write_trace(dir: &Path, mut events: Vec<trace::TraceEvent>) -> anyhow::Result<()> {
    events.sort_by_key(|e| e.ts);
    let file = trace::TraceFile {
        trace_events: events,
        display_time_unit: "ms",
    };
    let path = dir.join("perf.log.json");
    let f =
        std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
    serde_json::to_writer(std::io::BufWriter::new(f), &file)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Process CPU time (user + system) in seconds and peak RSS in KiB.
pub fn process_usage() -> (f64, u64) {
    match nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            (tv(u.user_time()) + tv(u.system_time()), u.max_rss() as u64)
        }
        Err(_) => (0.0, 0),
    }
}

/// Loads a counter.
pub fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}
