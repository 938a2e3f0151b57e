//! `--realtime-playback`: delivers frames at the spacing of their recorded
//! capture timestamps.
//!
//! Each frame has an absolute deadline on `CLOCK_MONOTONIC`:
//! `start + (capture_ts - first_capture_ts)`, and the pacer sleeps with
//! `clock_nanosleep(TIMER_ABSTIME)` until it. Sleeping to absolute deadlines
//! (instead of sleeping one interval per frame) means a late frame does not
//! push every later one back: errors never accumulate into drift. The
//! origin is reset at the start of every episode and every repeat, so pauses
//! between recorded episodes are not replayed.
//!
//! On a loaded machine a sleeping thread can wake several milliseconds late
//! because other threads hold the CPU. Where the process may (root or
//! `CAP_SYS_NICE`), the pacing thread therefore sleeps at `SCHED_FIFO`
//! priority [`BOOST_PRIORITY`] and returns to normal scheduling as soon as
//! it wakes: only the wake-up is real-time, the work on the frame is not.
//! Without the privilege it sleeps normally.

use nix::sys::time::TimeSpec;
use nix::time::{clock_gettime, clock_nanosleep, ClockId, ClockNanosleepFlags};
use std::time::Duration;

/// Real-time priority of the pacing thread while it sleeps.
pub const BOOST_PRIORITY: i32 = 10;

/// Paces frames to their recorded spacing.
#[derive(Debug, Default)]
pub struct Pacer {
    /// (monotonic start in ns, first capture timestamp) of the current segment.
    origin: Option<(u128, u64)>,
    /// Whether a real-time wake-up was refused (then it is not tried again).
    no_boost: bool,
}

/// Monotonic clock in nanoseconds.
pub fn monotonic_ns() -> u128 {
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| Duration::from(t).as_nanos())
        .unwrap_or(0)
}

impl Pacer {
    /// A pacer whose first frame is due immediately.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a new segment (episode or repeat): the next frame is due now.
    pub fn restart(&mut self) {
        self.origin = None;
    }

    /// Sleeps until the frame captured at `capture_ts_ns` is due. Returns
    /// how late the wake-up was (zero when the frame was already late).
    pub fn wait(&mut self, capture_ts_ns: u64) -> Duration {
        let (start, first) = *self
            .origin
            .get_or_insert_with(|| (monotonic_ns(), capture_ts_ns));
        // A timestamp before the segment's first one (clock step) is due now.
        let offset = u128::from(capture_ts_ns.saturating_sub(first));
        let due = start + offset;
        let due_ts =
            TimeSpec::from_duration(Duration::from_nanos(u64::try_from(due).unwrap_or(u64::MAX)));
        let mut boosted = false;
        if !self.no_boost && due > monotonic_ns() {
            boosted = set_fifo(true);
            if !boosted {
                self.no_boost = true;
                log::debug!("realtime playback: no SCHED_FIFO wake-ups (not permitted)");
            }
        }
        while clock_nanosleep(
            ClockId::CLOCK_MONOTONIC,
            ClockNanosleepFlags::TIMER_ABSTIME,
            &due_ts,
        ) == Err(nix::errno::Errno::EINTR)
        {}
        if boosted {
            set_fifo(false);
        }
        let now = monotonic_ns();
        Duration::from_nanos(u64::try_from(now.saturating_sub(due)).unwrap_or(u64::MAX))
    }
}

/// Switches the calling thread to `SCHED_FIFO` at [`BOOST_PRIORITY`]
/// (`on`) or back to `SCHED_OTHER`; `false` when refused.
fn set_fifo(on: bool) -> bool {
    let (policy, priority) = if on {
        (libc::SCHED_FIFO, BOOST_PRIORITY)
    } else {
        (libc::SCHED_OTHER, 0)
    };
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: pid 0 names the calling thread; `param` is a valid, initialised
    // sched_param that outlives the call.
    unsafe { libc::sched_setscheduler(0, policy, &param) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_recorded_spacing_without_drift() {
        let mut p = Pacer::new();
        let t0 = monotonic_ns();
        let base = 1_700_000_000_000_000_000u64;
        for k in 0..20u64 {
            // 10 ms spacing with jitter in the recording itself.
            let ts = base + k * 10_000_000 + (k % 3) * 1_000_000;
            p.wait(ts);
            let elapsed = monotonic_ns() - t0;
            let want = u128::from(ts - base);
            assert!(elapsed >= want, "frame {k} early: {elapsed} < {want}");
            assert!(
                elapsed < want + 5_000_000,
                "frame {k} late: {elapsed} vs {want}"
            );
        }
        // A new segment restarts the origin: no sleep for the jump.
        p.restart();
        let t1 = monotonic_ns();
        p.wait(base + 3_600_000_000_000);
        assert!(monotonic_ns() - t1 < 5_000_000);
    }
}
