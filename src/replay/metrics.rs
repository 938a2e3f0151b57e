//! `replay -x`: a `metrics.json` under `<log-dir>/runs/<timestamp>/` in the
//! record run format, so `s6-edge perf-stats` shows a replay run and
//! compares two of them. Per camera: frames delivered (as
//! `frames_captured`), delivered frames per second, and the stages
//! `decode` (getting the next frame out of the dataset), `deliver` (writing
//! it to the outputs) and, with `--realtime-playback`, `lateness` (how late
//! the pacer woke for it). Each replayed episode is listed with how long its
//! pass took.

use super::frame::ReplayFrame;
use crate::metrics::histogram::Histogram;
use crate::metrics::{CameraMetrics, EpisodeMetrics, RunMetrics};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Default)]
struct CameraStats {
    frames: u64,
    fps_nominal: f64,
    decode: Histogram,
    deliver: Histogram,
    lateness: Histogram,
}

/// Collects the figures of one replay run.
pub struct ReplayMetrics {
    started_wall: chrono::DateTime<chrono::Local>,
    started: Instant,
    cameras: BTreeMap<String, CameraStats>,
    /// (episode, when its first frame came).
    current: Option<(u32, Instant)>,
    episodes: Vec<EpisodeMetrics>,
}

impl Default for ReplayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayMetrics {
    /// Starts the clock.
    pub fn new() -> Self {
        Self {
            started_wall: chrono::Local::now(),
            started: Instant::now(),
            cameras: BTreeMap::new(),
            current: None,
            episodes: Vec::new(),
        }
    }

    /// Records one delivered frame.
    pub fn frame(
        &mut self,
        f: &ReplayFrame,
        decode: Duration,
        deliver: Duration,
        lateness: Option<Duration>,
    ) {
        let now = Instant::now();
        match self.current {
            Some((ep, _)) if ep == f.episode => {}
            _ => {
                self.close_episode(now);
                self.current = Some((f.episode, now));
            }
        }
        let c = self.cameras.entry(f.camera.to_string()).or_default();
        c.frames += 1;
        c.fps_nominal = f.format.fps();
        c.decode.record_us(decode.as_micros() as u64);
        c.deliver.record_us(deliver.as_micros() as u64);
        if let Some(l) = lateness {
            c.lateness.record_us(l.as_micros() as u64);
        }
    }

    fn close_episode(&mut self, now: Instant) {
        if let Some((index, t0)) = self.current.take() {
            self.episodes.push(EpisodeMetrics {
                index,
                finish_latency_ms: 0.0,
                duration_s: now.duration_since(t0).as_secs_f64(),
            });
        }
    }

    /// Ends the run and writes `metrics.json` into a new run directory
    /// under `log_dir`; returns that directory.
    pub fn write(mut self, log_dir: &Path) -> anyhow::Result<std::path::PathBuf> {
        self.close_episode(Instant::now());
        let duration_s = self.started.elapsed().as_secs_f64();
        let (cpu_time_s, max_rss_kib) = crate::metrics::process_usage();
        let cameras = self
            .cameras
            .into_iter()
            .map(|(name, c)| {
                let mut stages = BTreeMap::new();
                for (stage, h) in [
                    ("decode", &c.decode),
                    ("deliver", &c.deliver),
                    ("lateness", &c.lateness),
                ] {
                    if h.count() > 0 {
                        stages.insert(stage.to_string(), h.summary());
                    }
                }
                let m = CameraMetrics {
                    frames_captured: c.frames,
                    fps_nominal: c.fps_nominal,
                    fps_achieved: c.frames as f64 / duration_s.max(1e-9),
                    stages,
                    ..CameraMetrics::default()
                };
                (name, m)
            })
            .collect();
        let run = RunMetrics {
            s6_edge_version: env!("CARGO_PKG_VERSION").to_string(),
            started: self.started_wall.to_rfc3339(),
            duration_s,
            backend: "replay".to_string(),
            cpu_time_s,
            max_rss_kib,
            cameras,
            episodes: self.episodes,
        };
        let dir = crate::metrics::create_run_dir(log_dir)?;
        crate::metrics::write_metrics(&dir, &run)?;
        Ok(dir)
    }
}
