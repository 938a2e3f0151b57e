//! The recorder's health monitor: one small thread that, periodically,
//! measures each camera's frame rate, checks free disk space (`--min-free`)
//! and pets the systemd watchdog while every live camera delivers frames.
//! The episode loop and the control socket read its findings.

use super::disk_guard::{DiskGuard, DiskState};
use super::liveness::Liveness;
use crate::sd_notify::Watchdog;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often free space is measured.
pub const DISK_CHECK_PERIOD: Duration = Duration::from_millis(200);
/// Window over which the reported frame rate is measured.
pub const FPS_WINDOW: Duration = Duration::from_secs(1);
/// Sleep between monitor rounds.
const STEP: Duration = Duration::from_millis(50);

/// What the monitor found; shared with the episode loop and `status`.
#[derive(Debug)]
pub struct Health {
    liveness: Arc<Liveness>,
    /// Measured frame rate per camera (`f64` bits).
    fps: Vec<AtomicU64>,
    /// Why recording must pause for lack of disk space, if it must.
    disk_low: Mutex<Option<String>>,
    /// The recorder is shutting down (see [`Health::shutting_down`]).
    shutting_down: AtomicBool,
    stop: AtomicBool,
}

impl Health {
    /// Why the disk is too full to record, if it is.
    pub fn disk_low(&self) -> Option<String> {
        self.disk_low
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Frames per second camera `cam` delivered over the last second.
    pub fn fps(&self, cam: usize) -> f64 {
        self.fps
            .get(cam)
            .map_or(0.0, |f| f64::from_bits(f.load(Ordering::Relaxed)))
    }

    /// Marks the start of shutdown and tells systemd (`STOPPING=1`, once).
    /// From now on the watchdog is petted whether frames flow or not,
    /// because capture stops on purpose while the encoders finish;
    /// `TimeoutStopSec=` bounds that phase.
    pub fn shutting_down(&self) {
        if !self.shutting_down.swap(true, Ordering::Relaxed) {
            if let Err(e) = crate::sd_notify::stopping() {
                log::warn!("sd_notify STOPPING=1: {e}");
            }
        }
    }

    /// The per-camera frame flow.
    pub fn liveness(&self) -> &Arc<Liveness> {
        &self.liveness
    }

    fn set_disk(&self, state: DiskState) {
        let low = match state {
            DiskState::Ok => None,
            DiskState::Low(why) => Some(why),
        };
        let mut cur = self.disk_low.lock().unwrap_or_else(PoisonError::into_inner);
        if *cur != low {
            match &low {
                Some(why) if cur.is_none() => log::warn!("{why}: pausing recording"),
                Some(_) => {}
                None => log::info!("disk: free space is back; recording may resume"),
            }
        }
        *cur = low;
    }
}

/// The running monitor thread; stops and joins when dropped.
pub struct Monitor {
    health: Arc<Health>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Starts monitoring. `guard` (from `--min-free`) is checked once before
    /// this returns, so the first episode already knows whether it may start.
    pub fn start(
        liveness: Arc<Liveness>,
        mut guard: Option<DiskGuard>,
        watchdog: Option<Watchdog>,
    ) -> anyhow::Result<Self> {
        let health = Arc::new(Health {
            fps: (0..liveness.len()).map(|_| AtomicU64::new(0)).collect(),
            liveness,
            disk_low: Mutex::new(None),
            shutting_down: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        if let Some(g) = &mut guard {
            health.set_disk(g.check());
        }
        let h = Arc::clone(&health);
        let thread = std::thread::Builder::new()
            .name("monitor".into())
            .spawn(move || run(&h, guard, watchdog))
            .map_err(|e| anyhow::anyhow!("cannot start the monitor thread: {e}"))?;
        Ok(Self {
            health,
            thread: Some(thread),
        })
    }

    /// The shared findings.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.health.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(health: &Health, mut guard: Option<DiskGuard>, watchdog: Option<Watchdog>) {
    let liveness = &health.liveness;
    let start = Instant::now();
    let mut fps_at = start;
    let mut fps_frames: Vec<u64> = (0..liveness.len()).map(|c| liveness.frames(c)).collect();
    let mut disk_at = start + DISK_CHECK_PERIOD;
    let mut wd_at = watchdog.as_ref().map(|w| start + w.tick_period());
    // Log a failing notification socket once per failure streak, not per tick.
    let mut notify_failing = false;
    if let Some(w) = &watchdog {
        log::info!(
            "watchdog: WatchdogSec={:.1} s; WATCHDOG=1 every {:.1} s while every camera delivers",
            w.interval().as_secs_f64(),
            w.tick_period().as_secs_f64()
        );
    }
    while !health.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now.duration_since(fps_at) >= FPS_WINDOW {
            let dt = now.duration_since(fps_at).as_secs_f64();
            for (cam, before) in fps_frames.iter_mut().enumerate() {
                let frames = liveness.frames(cam);
                let fps = frames.saturating_sub(*before) as f64 / dt;
                health.fps[cam].store(fps.to_bits(), Ordering::Relaxed);
                *before = frames;
            }
            fps_at = now;
        }
        if let Some(g) = &mut guard {
            if now >= disk_at {
                health.set_disk(g.check());
                disk_at = now + DISK_CHECK_PERIOD;
            }
        }
        if let (Some(w), Some(at)) = (&watchdog, &mut wd_at) {
            if now >= *at {
                let verdict = if health.shutting_down.load(Ordering::Relaxed) {
                    Ok(())
                } else {
                    liveness.check()
                };
                match w.tick(verdict) {
                    Err(e) if !notify_failing => {
                        log::warn!("watchdog: cannot notify systemd: {e}");
                        notify_failing = true;
                    }
                    Err(_) => {}
                    Ok(_) => notify_failing = false,
                }
                *at = now + w.tick_period();
            }
        }
        std::thread::sleep(STEP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_verdict_is_ready_at_start_and_fps_is_measured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let liveness = Liveness::new([("a".to_string(), Duration::from_secs(1))]);
        let feed = liveness.feeder(0);
        let low = Monitor::start(
            Arc::clone(&liveness),
            Some(DiskGuard::new(dir.path(), u64::MAX)),
            None,
        )
        .expect("monitor");
        // Checked synchronously: the first episode already knows.
        let why = low
            .health()
            .disk_low()
            .expect("below an impossible min-free");
        assert!(
            why.starts_with("disk: ") && why.contains("< min-free"),
            "{why}"
        );
        drop(low);

        let ok = Monitor::start(
            Arc::clone(&liveness),
            Some(DiskGuard::new(dir.path(), 1)),
            None,
        )
        .expect("monitor");
        assert_eq!(ok.health().disk_low(), None);
        // 50 frames/s for 1.6 s: the 1 s window reads about 50.
        let until = Instant::now() + Duration::from_millis(1600);
        while Instant::now() < until {
            feed();
            std::thread::sleep(Duration::from_millis(20));
        }
        let fps = ok.health().fps(0);
        assert!((35.0..=55.0).contains(&fps), "fps {fps}");
        assert_eq!(ok.health().fps(7), 0.0, "unknown camera");
    }
}
