//! The capture thread of one camera: pulls frames from the source into pool
//! buffers, tags them with their episode and frame index, and queues them for
//! the encoder. It never converts pixels and never allocates per frame.

use super::control::Control;
use super::pool::{CaptureEnd, FilledFrame, RingItem};
use crate::capture::CaptureSource;
use crate::metrics::histogram::Histogram;
use crate::metrics::trace::TraceBuffer;
use crate::metrics::CameraCounters;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a capture thread hands back when it ends.
pub struct CaptureReport {
    /// Time each `next_frame` took.
    pub capture_latency: Histogram,
    /// Trace events.
    pub trace: TraceBuffer,
    /// Why it ended early, if it failed.
    pub error: Option<String>,
}

/// Everything the capture loop needs.
pub struct CaptureThread {
    /// Camera name (for logs).
    pub camera: String,
    /// The opened source.
    pub source: Box<dyn CaptureSource>,
    /// Ring ends.
    pub ring: CaptureEnd,
    /// Shared recording state.
    pub control: Arc<Control>,
    /// Shared counters.
    pub counters: Arc<CameraCounters>,
    /// Called on every frame (watchdog feed).
    pub on_frame: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Trace buffer.
    pub trace: TraceBuffer,
}

impl CaptureThread {
    /// Runs until the recorder stops or the source ends or fails.
    pub fn run(mut self) -> CaptureReport {
        let mut spare: Option<Vec<u8>> = None;
        let mut feeding: Option<u32> = None;
        let mut next_index = 0u64;
        let mut hist = Histogram::new();
        let mut warned_full = false;
        let error = loop {
            let state = self.control.get();
            if state.stopping() {
                break None;
            }
            if feeding.is_some() && feeding != state.recording() {
                self.end_episode(&mut feeding);
            }
            if self.source.pausable() && state.recording().is_none() {
                // A pausable source (replay:) loses nothing by waiting: its
                // frames are pulled only while an episode records.
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            // A pool buffer to fill: the one kept from a frame outside any episode, or a free one.
            let mut buf = match spare.take() {
                Some(b) => b,
                None => match self.wait_for_free(&mut warned_full) {
                    Some(b) => b,
                    None => break None,
                },
            };
            let t0 = Instant::now();
            let meta = match self.source.next_frame(&mut buf) {
                Ok(Some(meta)) => meta,
                Ok(None) => {
                    log::info!("camera {}: source ended", self.camera);
                    break None;
                }
                Err(e) => {
                    log::error!("camera {}: {e}", self.camera);
                    break Some(e.to_string());
                }
            };
            let t1 = Instant::now();
            hist.record_us(t1.duration_since(t0).as_micros() as u64);
            if let Some(f) = &self.on_frame {
                f();
            }
            let state = self.control.get();
            if feeding.is_some() && feeding != state.recording() {
                self.end_episode(&mut feeding);
            }
            let mut meta = meta;
            if feeding.is_none() {
                if let Some(ep) = state.recording() {
                    feeding = Some(ep);
                    next_index = 0;
                }
            }
            // Frames the source lost between episodes, or just before the
            // first frame of one, are counted for the camera but belong to no
            // episode (an episode starts with its first captured frame).
            if meta.lost_before > 0 && (feeding.is_none() || next_index == 0) {
                self.counters
                    .dropped
                    .fetch_add(meta.lost_before, Ordering::Relaxed);
                log::warn!(
                    "camera {}: source lost {} frame(s) outside an episode",
                    self.camera,
                    meta.lost_before
                );
                meta.lost_before = 0;
            }
            let Some(episode) = feeding else {
                spare = Some(buf);
                continue;
            };
            if meta.lost_before > 0 {
                self.counters
                    .dropped
                    .fetch_add(meta.lost_before, Ordering::Relaxed);
                log::warn!(
                    "camera {}: source lost {} frame(s) before frame {next_index}",
                    self.camera,
                    meta.lost_before
                );
            }
            self.trace.span("capture", t0, t1, episode, next_index);
            self.counters.captured.fetch_add(1, Ordering::Relaxed);
            let frame = FilledFrame {
                episode,
                index: next_index,
                meta,
                buf,
            };
            next_index += 1;
            if let Err(item) = self.ring.push(RingItem::Frame(frame)) {
                // Unreachable: a frame only exists if a pool buffer was free.
                log::error!(
                    "camera {}: ring rejected a frame; this is a bug",
                    self.camera
                );
                drop(item);
            }
            // Prefetch the next pool buffer lazily on the next iteration.
        };
        if feeding.is_some() {
            self.end_episode(&mut feeding);
        }
        let _ = self.ring.push(RingItem::Closed {
            error: error.clone(),
        });
        CaptureReport {
            capture_latency: hist,
            trace: self.trace,
            error,
        }
    }

    fn end_episode(&mut self, feeding: &mut Option<u32>) {
        if let Some(episode) = feeding.take() {
            let _ = self.ring.push(RingItem::EndEpisode { episode });
        }
    }

    /// Waits for the encoder to return a pool buffer. Returns `None` when the
    /// recorder stops meanwhile.
    fn wait_for_free(&mut self, warned: &mut bool) -> Option<Vec<u8>> {
        loop {
            if let Some(b) = self.ring.take_free() {
                return Some(b);
            }
            if !*warned {
                log::warn!(
                    "camera {}: ring full, the encoder is behind; capture waits",
                    self.camera
                );
                *warned = true;
            }
            if self.control.get().stopping() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
