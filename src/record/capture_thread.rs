//! The capture thread of one camera: pulls frames from the source into pool
//! buffers, tags them with their episode and frame index, and queues them for
//! the encoder. It never converts pixels and never allocates per frame.
//!
//! When the ring is full it does not wait for the encoder: the camera turns
//! to **spilling** ([`super::spill`]): each frame is captured into the
//! spiller's own buffer and written as a spill file, until the encoder has
//! drained every spilled frame; then it streams through the ring again. A
//! frame is lost only when the spill write fails too; it is then counted,
//! logged and recorded as a gap, and a full disk stops the recording.

use super::control::Control;
use super::pool::{CaptureEnd, FilledFrame, RingItem, CAPTURE_IN_SOURCE};
use super::spill::{SpillMsg, Spiller};
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
    /// Time each spill write took.
    pub spill_latency: Histogram,
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
    /// The spill path of this camera.
    pub spill: Spiller,
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
        let mut spill_hist = Histogram::new();
        let mut spilling = false;
        let mut spill_warnings = 0u32;
        if !self.spill.streaming_encoding() {
            // Low-resource mode: every frame spills; the encoder works
            // between episodes.
            self.begin_spill();
            spilling = true;
        }
        let error = loop {
            let state = self.control.get();
            if state.stopping() {
                break None;
            }
            if feeding.is_some() && feeding != state.recording() {
                self.end_episode(&mut feeding, spilling);
            }
            if self.source.pausable() && state.recording().is_none() {
                // A pausable source (replay:) loses nothing by waiting: its
                // frames are pulled only while an episode records.
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            if spilling && self.spill.streaming_encoding() && self.spill.drained() {
                self.spill.send(SpillMsg::Resume);
                spilling = false;
                log::info!(
                    "camera {}: spill backlog encoded; streaming again",
                    self.camera
                );
            }
            // Where to capture: a pool buffer while streaming (kept from a
            // frame outside any episode, or a free one), else the spill buffer.
            let mut pool_buf = if spilling {
                None
            } else if self.source.pausable() {
                // A pausable source waits for ring space instead of spilling.
                match spare.take().or_else(|| self.ring.take_free()) {
                    Some(b) => Some(b),
                    None => {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                }
            } else {
                spare.take().or_else(|| self.ring.take_free())
            };
            let t0 = Instant::now();
            let target = match pool_buf.as_mut() {
                Some(b) => b,
                None => self.spill.buf(),
            };
            // While we wait in the source, the encoder may finish an episode
            // that ends meanwhile instead of waiting for this frame (see
            // `EncodeThread::close_ended_episode`).
            let phase = &self.ring.stats().capture_phase;
            phase.store(CAPTURE_IN_SOURCE, Ordering::Release);
            let got = self.source.next_frame(target);
            phase.swap(0, Ordering::AcqRel);
            let meta = match got {
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
                self.end_episode(&mut feeding, spilling);
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
                if pool_buf.is_some() {
                    spare = pool_buf;
                }
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
            let index = next_index;
            next_index += 1;
            if let Some(buf) = pool_buf {
                let frame = FilledFrame {
                    episode,
                    index,
                    meta,
                    buf,
                };
                if let Err(item) = self.ring.push(RingItem::Frame(frame)) {
                    // Unreachable: a frame only exists if a pool buffer was free.
                    log::error!(
                        "camera {}: ring rejected a frame; this is a bug",
                        self.camera
                    );
                    drop(item);
                }
                continue;
            }
            // The ring is full (or everything spills): write a spill file.
            if !spilling {
                self.begin_spill();
                spilling = true;
                log::warn!(
                    "camera {}: ring full at frame {index} of episode {episode}: spilling frames to disk until the encoder catches up",
                    self.camera
                );
            }
            let t_spill = Instant::now();
            match self.spill.spill(episode, index, meta) {
                Ok(_) => {
                    self.counters.spilled.fetch_add(1, Ordering::Relaxed);
                    let t_end = Instant::now();
                    spill_hist.record_us(t_end.duration_since(t_spill).as_micros() as u64);
                    self.trace.span("spill", t_spill, t_end, episode, index);
                }
                Err(e) => {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    let reason = e.to_string();
                    self.spill.send(SpillMsg::Dropped {
                        episode,
                        index,
                        meta,
                        reason: reason.clone(),
                    });
                    if e.is_disk_full() {
                        let msg = format!(
                            "camera {}: frame {index} of episode {episode} dropped: ring full and {reason}; stopping the recording. \
                             Frames already on disk are kept: free space, then run `s6-edge encode-pending` (or `s6-edge recover`) on the dataset",
                            self.camera
                        );
                        log::error!("{msg}");
                        self.control.stop();
                        break Some(msg);
                    }
                    spill_warnings += 1;
                    if spill_warnings <= 10 || spill_warnings.is_power_of_two() {
                        log::error!(
                            "camera {}: frame {index} of episode {episode} dropped: ring full and {reason} ({spill_warnings} so far)",
                            self.camera
                        );
                    }
                }
            }
        };
        if feeding.is_some() {
            self.end_episode(&mut feeding, spilling);
        }
        let closed_error = error.clone();
        if spilling {
            self.spill.send(SpillMsg::Closed {
                error: closed_error,
            });
        } else {
            self.push_control(RingItem::Closed {
                error: closed_error,
            });
        }
        CaptureReport {
            capture_latency: hist,
            spill_latency: spill_hist,
            trace: self.trace,
            error,
        }
    }

    /// Tells the encoder that, after what the ring holds, frames come from
    /// the spill path.
    fn begin_spill(&mut self) {
        self.push_control(RingItem::SpillBegin);
    }

    /// Ends the episode on whichever path is active.
    fn end_episode(&mut self, feeding: &mut Option<u32>, spilling: bool) {
        if let Some(episode) = feeding.take() {
            if spilling {
                self.spill.send(SpillMsg::EndEpisode { episode });
            } else {
                self.push_control(RingItem::EndEpisode { episode });
            }
        }
    }

    /// Queues a control item. The ring keeps spare places for them, so this
    /// only waits in the pathological case of many queued episode ends.
    fn push_control(&mut self, mut item: RingItem) {
        let mut warned = false;
        loop {
            match self.ring.push(item) {
                Ok(()) => return,
                Err(back) => item = back,
            }
            if self.control.get().aborting() {
                log::warn!(
                    "camera {}: control item {item:?} not queued (aborting)",
                    self.camera
                );
                return;
            }
            if !warned {
                log::warn!(
                    "camera {}: ring has no room for a control item; waiting",
                    self.camera
                );
                warned = true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
