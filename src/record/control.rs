//! The recording state shared by the controller and every camera thread:
//! which episode is being recorded, and whether to stop or abort.

use std::sync::atomic::{AtomicU64, Ordering};

const RECORDING: u64 = 1 << 63;
const STOP: u64 = 1 << 62;
const ABORT: u64 = 1 << 61;

/// A snapshot of the shared state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State(u64);

impl State {
    /// The episode being recorded, if any.
    pub fn recording(self) -> Option<u32> {
        (self.0 & RECORDING != 0 && self.0 & (STOP | ABORT) == 0).then_some(self.0 as u32)
    }
    /// Cameras should finish their episode and close.
    pub fn stopping(self) -> bool {
        self.0 & (STOP | ABORT) != 0
    }
    /// Finish as fast as possible: skip queued frames.
    pub fn aborting(self) -> bool {
        self.0 & ABORT != 0
    }
}

/// Lock-free shared recording state.
#[derive(Debug, Default)]
pub struct Control(AtomicU64);

impl Control {
    /// Current state.
    pub fn get(&self) -> State {
        State(self.0.load(Ordering::Acquire))
    }
    /// Starts recording `episode`.
    pub fn start_episode(&self, episode: u32) {
        self.0
            .store(RECORDING | u64::from(episode), Ordering::Release);
    }
    /// Ends the current episode (cameras keep running).
    pub fn end_episode(&self) {
        self.0.fetch_and(!RECORDING, Ordering::AcqRel);
    }
    /// Ends the current episode and closes all cameras.
    pub fn stop(&self) {
        self.0.fetch_or(STOP, Ordering::AcqRel);
    }
    /// Like stop, but encoders skip frames still queued.
    pub fn abort(&self) {
        self.0.fetch_or(ABORT | STOP, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        let c = Control::default();
        assert_eq!(c.get().recording(), None);
        c.start_episode(7);
        assert_eq!(c.get().recording(), Some(7));
        c.end_episode();
        assert_eq!(c.get().recording(), None);
        c.start_episode(8);
        c.stop();
        assert!(c.get().stopping() && !c.get().aborting());
        assert_eq!(c.get().recording(), None);
        c.abort();
        assert!(c.get().aborting());
    }
}
