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
//! because other work holds the CPUs (on a kernel without preemption, even a
//! real-time thread waits for kernel code to yield). Two measures keep the
//! delivery on time:
//!
//! * Where the process may (root or `CAP_SYS_NICE`), the pacing thread
//!   sleeps and spins at `SCHED_FIFO` priority [`BOOST_PRIORITY`] and
//!   returns to normal scheduling as soon as the frame is due: only the
//!   wake-up is real-time, the work on the frame is not.
//! * It wakes early by a margin learnt from its own recent wake-up delays
//!   (the longest of the last [`HISTORY`] wake-up delays plus 0.2 ms, at
//!   most a quarter of the frame interval) and spins the rest of the way
//!   to the deadline. On a quiet machine the margin is a fraction of a
//!   millisecond; only when wake-ups get late does the pacer spend CPU.

use nix::sys::time::TimeSpec;
use nix::time::{clock_gettime, clock_nanosleep, ClockId, ClockNanosleepFlags};
use std::time::Duration;

/// Real-time priority of the pacing thread while it sleeps.
pub const BOOST_PRIORITY: i32 = 10;

/// Wake-up delays remembered to size the early-wake margin.
pub const HISTORY: usize = 32;
/// Smallest early-wake margin.
const MIN_MARGIN_NS: u128 = 200_000;

/// Paces frames to their recorded spacing.
#[derive(Debug, Default)]
pub struct Pacer {
    /// (monotonic start in ns, first capture timestamp) of the current segment.
    origin: Option<(u128, u64)>,
    /// Whether a real-time wake-up was refused (then it is not tried again).
    no_boost: bool,
    /// Recent wake-up delays past the early target, ns (ring of [`HISTORY`]).
    delays: Vec<u64>,
    next_delay: usize,
    /// Offset of the previous frame in its segment (for the frame interval).
    last_offset: Option<u128>,
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
        self.last_offset = None;
    }

    /// How early to wake: the longest of the recent wake-up delays plus
    /// [`MIN_MARGIN_NS`].
    fn margin_ns(&self) -> u128 {
        if self.delays.is_empty() {
            return MIN_MARGIN_NS;
        }
        let worst = self.delays.iter().copied().max().unwrap_or(0);
        u128::from(worst) + MIN_MARGIN_NS
    }

    fn remember(&mut self, delay_ns: u64) {
        if self.delays.len() < HISTORY {
            self.delays.push(delay_ns);
        } else {
            self.delays[self.next_delay] = delay_ns;
            self.next_delay = (self.next_delay + 1) % HISTORY;
        }
    }

    /// Sleeps (then spins) until the frame captured at `capture_ts_ns` is
    /// due. Returns how late it returned (how late the frame came, when it
    /// was already due on arrival).
    pub fn wait(&mut self, capture_ts_ns: u64) -> Duration {
        let (start, first) = *self
            .origin
            .get_or_insert_with(|| (monotonic_ns(), capture_ts_ns));
        // A timestamp before the segment's first one (clock step) is due now.
        let offset = u128::from(capture_ts_ns.saturating_sub(first));
        let due = start + offset;
        let interval = self
            .last_offset
            .filter(|&o| offset > o)
            .map_or(u128::MAX, |o| offset - o);
        self.last_offset = Some(offset);
        let margin = self.margin_ns().min(interval / 4);
        let target = due.saturating_sub(margin);
        let target_ts = TimeSpec::from_duration(Duration::from_nanos(
            u64::try_from(target).unwrap_or(u64::MAX),
        ));
        let arrived_late = due <= monotonic_ns();
        let mut boosted = false;
        if !self.no_boost && !arrived_late {
            boosted = set_fifo(true);
            if !boosted {
                self.no_boost = true;
                log::debug!("realtime playback: no SCHED_FIFO wake-ups (not permitted)");
            }
        }
        if !arrived_late {
            while clock_nanosleep(
                ClockId::CLOCK_MONOTONIC,
                ClockNanosleepFlags::TIMER_ABSTIME,
                &target_ts,
            ) == Err(nix::errno::Errno::EINTR)
            {}
            let woke = monotonic_ns();
            self.remember(u64::try_from(woke.saturating_sub(target)).unwrap_or(u64::MAX));
            while monotonic_ns() < due {
                std::hint::spin_loop();
            }
        }
        if boosted {
            set_fifo(false);
        }
        let now = monotonic_ns();
        let late = now.saturating_sub(due);
        if late > 2_000_000 {
            log::debug!(
                "realtime playback: frame due at +{:.1} ms {} {:.2} ms late",
                offset as f64 / 1e6,
                if arrived_late { "arrived" } else { "woke" },
                late as f64 / 1e6
            );
        }
        Duration::from_nanos(u64::try_from(late).unwrap_or(u64::MAX))
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
    fn follows_recorded_spacing_never_early_and_restarts() {
        let mut p = Pacer::new();
        let t0 = monotonic_ns();
        let base = 1_700_000_000_000_000_000u64;
        let mut late = Vec::new();
        for k in 0..20u64 {
            // 10 ms spacing with jitter in the recording itself.
            let ts = base + k * 10_000_000 + (k % 3) * 1_000_000;
            p.wait(ts);
            let elapsed = monotonic_ns() - t0;
            let want = u128::from(ts - base);
            assert!(elapsed >= want, "frame {k} early: {elapsed} < {want}");
            late.push(elapsed - want);
        }
        // Loaded machines stall single wake-ups, so only the median is
        // bounded here (tests/replay.rs measures delivery intervals).
        late.sort_unstable();
        assert!(late[10] < 2_000_000, "median lateness {} ns", late[10]);
        assert!(p.margin_ns() <= 20_000_000, "margin {}", p.margin_ns());
        // A new segment restarts the origin: no sleep for the jump.
        p.restart();
        let t1 = monotonic_ns();
        p.wait(base + 3_600_000_000_000);
        assert!(monotonic_ns() - t1 < 50_000_000);
    }
}
