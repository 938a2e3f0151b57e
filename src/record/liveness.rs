//! Per-camera frame flow: every capture thread stamps each frame it receives
//! (one relaxed atomic store and add), and the health monitor reads the
//! stamps to decide whether every live camera still delivers (the systemd
//! watchdog) and at what rate (`status`).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIVE: u8 = 0;
const ENDED: u8 = 1;
const FAILED: u8 = 2;

/// Flow state of one camera.
#[derive(Debug)]
struct CameraFlow {
    name: String,
    /// Microseconds after `origin` of the latest frame (of the start when
    /// no frame arrived yet).
    last_frame_us: AtomicU64,
    /// Frames received so far, inside or outside episodes.
    frames: AtomicU64,
    /// Longest silence that still counts as flowing.
    max_gap: Duration,
    state: AtomicU8,
}

/// Frame flow of all cameras of one recorder.
#[derive(Debug)]
pub struct Liveness {
    origin: Instant,
    cameras: Vec<CameraFlow>,
}

/// Why the cameras do not all flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stall {
    /// A live camera delivered no frame for longer than its allowed gap.
    Silent {
        /// Camera name.
        camera: String,
        /// Time since its last frame.
        since: Duration,
    },
    /// A camera's source failed (disconnected, error).
    Failed {
        /// Camera name.
        camera: String,
    },
    /// Every camera's source ended: nothing can flow any more.
    AllEnded,
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stall::Silent { camera, since } => write!(
                f,
                "camera {camera}: no frame for {:.1} s",
                since.as_secs_f64()
            ),
            Stall::Failed { camera } => write!(f, "camera {camera}: source failed"),
            Stall::AllEnded => write!(f, "every camera's source ended"),
        }
    }
}

impl Liveness {
    /// Tracks `cameras` as `(name, max_gap)`: a camera counts as stalled
    /// when it delivered nothing for longer than its `max_gap` (counted
    /// from now for a camera that has not delivered yet).
    pub fn new(cameras: impl IntoIterator<Item = (String, Duration)>) -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            cameras: cameras
                .into_iter()
                .map(|(name, max_gap)| CameraFlow {
                    name,
                    last_frame_us: AtomicU64::new(0),
                    frames: AtomicU64::new(0),
                    max_gap,
                    state: AtomicU8::new(LIVE),
                })
                .collect(),
        })
    }

    fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }

    /// Records a frame of camera `cam` (its position in the list).
    pub fn frame(&self, cam: usize) {
        if let Some(c) = self.cameras.get(cam) {
            c.last_frame_us.store(self.now_us(), Ordering::Relaxed);
            c.frames.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A callback for `CaptureThread::on_frame` that stamps camera `cam`.
    pub fn feeder(self: &Arc<Self>, cam: usize) -> Arc<dyn Fn() + Send + Sync> {
        let me = Arc::clone(self);
        Arc::new(move || me.frame(cam))
    }

    /// Marks camera `cam` as gone: its source ended normally (`failed` =
    /// false: it no longer counts) or failed (it counts as stalled for good).
    pub fn ended(&self, cam: usize, failed: bool) {
        if let Some(c) = self.cameras.get(cam) {
            c.state
                .store(if failed { FAILED } else { ENDED }, Ordering::Relaxed);
        }
    }

    /// Frames received so far by camera `cam`.
    pub fn frames(&self, cam: usize) -> u64 {
        self.cameras
            .get(cam)
            .map_or(0, |c| c.frames.load(Ordering::Relaxed))
    }

    /// Number of cameras tracked.
    pub fn len(&self) -> usize {
        self.cameras.len()
    }

    /// Whether no camera is tracked.
    pub fn is_empty(&self) -> bool {
        self.cameras.is_empty()
    }

    /// `Ok` when every live camera delivered a frame within its allowed gap;
    /// otherwise the first problem found.
    pub fn check(&self) -> Result<(), Stall> {
        let now = self.now_us();
        let mut live = 0;
        for c in &self.cameras {
            match c.state.load(Ordering::Relaxed) {
                ENDED => continue,
                FAILED => {
                    return Err(Stall::Failed {
                        camera: c.name.clone(),
                    })
                }
                _ => {}
            }
            live += 1;
            let since =
                Duration::from_micros(now.saturating_sub(c.last_frame_us.load(Ordering::Relaxed)));
            if since > c.max_gap {
                return Err(Stall::Silent {
                    camera: c.name.clone(),
                    since,
                });
            }
        }
        if live == 0 {
            return Err(Stall::AllEnded);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_live_camera_must_flow() {
        let gap = Duration::from_millis(80);
        let l = Liveness::new([("a".to_string(), gap), ("b".to_string(), gap)]);
        // Nothing yet, but within the gap after start: fine.
        assert_eq!(l.check(), Ok(()));
        let (fa, fb) = (l.feeder(0), l.feeder(1));
        std::thread::sleep(Duration::from_millis(100));
        assert!(matches!(l.check(), Err(Stall::Silent { camera, .. }) if camera == "a"));
        fa();
        fb();
        assert_eq!(l.check(), Ok(()));
        assert_eq!((l.frames(0), l.frames(1)), (1, 1));
        // Only `a` keeps flowing: `b` stalls the whole recorder.
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(25));
            fa();
        }
        let err = l.check().unwrap_err();
        assert!(matches!(&err, Stall::Silent { camera, .. } if camera == "b"));
        assert!(
            err.to_string().starts_with("camera b: no frame for"),
            "{err}"
        );
        // `b` ended normally: it no longer counts.
        l.ended(1, false);
        assert_eq!(l.check(), Ok(()));
        // `a` failed: stalled for good.
        l.ended(0, true);
        assert_eq!(l.check(), Err(Stall::Failed { camera: "a".into() }));
    }

    #[test]
    fn all_ended_is_a_stall() {
        let l = Liveness::new([("a".to_string(), Duration::from_secs(1))]);
        l.ended(0, false);
        assert_eq!(l.check(), Err(Stall::AllEnded));
    }
}
