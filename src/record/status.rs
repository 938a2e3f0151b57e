//! The recorder's externally visible state: what the episode loop is doing
//! (idle, recording, paused, draining), published to `status` clients of the
//! control socket and to systemd (`STATUS=`).

use super::monitor::Health;
use super::pool::RingStats;
use crate::metrics::{self, CameraCounters};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

/// What the episode loop is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecState {
    /// Cameras run, no episode is being recorded (waiting for `start`).
    Idle,
    /// An episode is being recorded.
    Recording,
    /// Recording is held back (e.g. too little disk space); see the reason.
    Paused,
    /// An episode ended and its files are being finished.
    Draining,
}

impl RecState {
    /// The name used in `status` replies.
    pub fn as_str(self) -> &'static str {
        match self {
            RecState::Idle => "idle",
            RecState::Recording => "recording",
            RecState::Paused => "paused",
            RecState::Draining => "draining",
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: RecState,
    episode: Option<u32>,
    task: Option<String>,
    reason: Option<String>,
    episodes_completed: u32,
}

/// One camera's live counters, read for `status`.
#[derive(Clone, Debug)]
pub struct CameraView {
    /// Camera name.
    pub name: String,
    /// Frame counters.
    pub counters: Arc<CameraCounters>,
    /// Ring depth.
    pub ring: Arc<RingStats>,
}

/// Shared state board; the episode loop writes, `status` reads.
#[derive(Debug)]
pub struct StatusBoard {
    inner: Mutex<Inner>,
    cameras: Vec<CameraView>,
    health: Arc<Health>,
}

impl StatusBoard {
    /// A board for `cameras`, idle.
    pub fn new(cameras: Vec<CameraView>, health: Arc<Health>) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                state: RecState::Idle,
                episode: None,
                task: None,
                reason: None,
                episodes_completed: 0,
            }),
            cameras,
            health,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the state; tells systemd (`STATUS=`) when it changed.
    pub fn set(
        &self,
        state: RecState,
        episode: Option<u32>,
        task: Option<&str>,
        reason: Option<&str>,
    ) {
        let mut i = self.lock();
        let changed = i.state != state || i.episode != episode || i.reason.as_deref() != reason;
        i.state = state;
        i.episode = episode;
        i.task = task.map(str::to_string);
        i.reason = reason.map(str::to_string);
        drop(i);
        if changed {
            let text = match (state, episode, reason) {
                (RecState::Recording, Some(e), _) => format!("recording episode {e}"),
                (RecState::Draining, Some(e), _) => format!("finishing episode {e}"),
                (s, _, Some(r)) => format!("{}: {r}", s.as_str()),
                (s, _, None) => s.as_str().to_string(),
            };
            if let Err(e) = crate::sd_notify::status(&text) {
                log::debug!("sd_notify STATUS: {e}");
            }
        }
    }

    /// Counts a completed episode.
    pub fn episode_completed(&self) {
        self.lock().episodes_completed += 1;
    }

    /// The current state.
    pub fn state(&self) -> RecState {
        self.lock().state
    }

    /// The `status` reply: state, episode, task, reason, completed episodes,
    /// disk and frame-flow problems, and per-camera fps / backlog / drops.
    pub fn to_json(&self) -> Value {
        let i = self.lock();
        let cameras: serde_json::Map<String, Value> = self
            .cameras
            .iter()
            .enumerate()
            .map(|(n, c)| {
                let fps = (self.health.fps(n) * 10.0).round() / 10.0;
                (
                    c.name.clone(),
                    json!({
                        "fps": fps,
                        "backlog": c.ring.depth.load(Ordering::Relaxed),
                        "drops": metrics::load(&c.counters.dropped),
                        "captured": metrics::load(&c.counters.captured),
                        "encoded": metrics::load(&c.counters.encoded),
                        "spilled": metrics::load(&c.counters.spilled),
                    }),
                )
            })
            .collect();
        json!({
            "ok": true,
            "state": i.state.as_str(),
            "episode": i.episode,
            "task": i.task,
            "reason": i.reason,
            "episodes_completed": i.episodes_completed,
            "disk_low": self.health.disk_low(),
            "stall": self.health.liveness().check().err().map(|s| s.to_string()),
            "cameras": cameras,
        })
    }
}
