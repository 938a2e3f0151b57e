//! Per-camera frame pool and the two lock-free SPSC rings between a camera's
//! capture thread and its encoder thread.
//!
//! All frame buffers are allocated once, up front. A buffer travels as an
//! owned `Vec<u8>` (a pointer move, never a copy or an allocation): from the
//! `free` ring to the capture thread, which fills it, through the `filled`
//! ring to the encoder thread, and back to `free`. Each ring is a ringbuf
//! single-producer single-consumer queue, so neither side ever takes a lock.

use crate::frame::FrameMeta;
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::Thread;

/// A captured frame on its way to the encoder.
#[derive(Debug)]
pub struct FilledFrame {
    /// Episode the frame belongs to.
    pub episode: u32,
    /// Frame index within the episode (0-based, contiguous).
    pub index: u64,
    /// Capture metadata.
    pub meta: FrameMeta,
    /// The pool buffer holding the packed frame.
    pub buf: Vec<u8>,
}

/// What flows from a capture thread to its encoder thread.
#[derive(Debug)]
pub enum RingItem {
    /// A frame to encode.
    Frame(FilledFrame),
    /// No more frames of this episode will follow: finish it.
    EndEpisode {
        /// The episode that ended.
        episode: u32,
    },
    /// The ring was full: after this marker the frames (and control items)
    /// come through the spill channel until its `Resume` (see `super::spill`).
    SpillBegin,
    /// The capture thread is gone (stop, end of a finite source, or a fault).
    Closed {
        /// Why, when it was a fault.
        error: Option<String>,
    },
}

/// Capture-side ends of the rings.
pub struct CaptureEnd {
    free: HeapCons<Vec<u8>>,
    filled: HeapProd<RingItem>,
    stats: Arc<RingStats>,
    encoder_thread: Option<Thread>,
}

/// Encoder-side ends of the rings.
pub struct EncoderEnd {
    free: HeapProd<Vec<u8>>,
    filled: HeapCons<RingItem>,
    stats: Arc<RingStats>,
}

/// Occupancy figures shared by both ends.
#[derive(Debug, Default)]
pub struct RingStats {
    /// Frames currently queued.
    pub depth: AtomicUsize,
    /// Highest queue depth seen.
    pub high_water: AtomicUsize,
    /// Where the capture thread is: [`CAPTURE_IN_SOURCE`] while it waits in
    /// the source for a frame, [`CAPTURE_EPISODE_CLOSED`] once the encoder
    /// has claimed that wait to finish an ended episode early, else 0.
    pub capture_phase: std::sync::atomic::AtomicU8,
}

/// [`RingStats::capture_phase`]: the capture thread is blocked in the source
/// and has pushed everything it captured before (release store).
pub const CAPTURE_IN_SOURCE: u8 = 1;
/// [`RingStats::capture_phase`]: the encoder finished the ended episode while
/// the capture thread waited; the frame it returns with is checked against
/// the ended state, so it cannot belong to that episode.
pub const CAPTURE_EPISODE_CLOSED: u8 = 2;

/// Places in the filled ring beyond the pool, for control items.
const CONTROL_SPARE: usize = 16;

/// Allocates `ring_frames` buffers of `frame_bytes` and returns both ends.
///
/// The filled ring has spare places beyond the pool so that control items
/// (end of episode, spill begin, close) always fit.
pub fn frame_ring(ring_frames: usize, frame_bytes: usize) -> (CaptureEnd, EncoderEnd) {
    let slots = ring_frames.max(2);
    let (mut free_prod, free_cons) = HeapRb::<Vec<u8>>::new(slots).split();
    for _ in 0..slots {
        // Cannot fail: the ring has exactly `slots` places.
        let _ = free_prod.try_push(vec![0u8; frame_bytes]);
    }
    let (filled_prod, filled_cons) = HeapRb::<RingItem>::new(slots + CONTROL_SPARE).split();
    let stats = Arc::new(RingStats::default());
    (
        CaptureEnd {
            free: free_cons,
            filled: filled_prod,
            stats: stats.clone(),
            encoder_thread: None,
        },
        EncoderEnd {
            free: free_prod,
            filled: filled_cons,
            stats,
        },
    )
}

impl CaptureEnd {
    /// Registers the encoder thread so it is woken after each push.
    pub fn set_encoder_thread(&mut self, thread: Thread) {
        self.encoder_thread = Some(thread);
    }

    /// Takes a free buffer, or `None` when the encoder still holds all of them
    /// (the ring is full).
    pub fn take_free(&mut self) -> Option<Vec<u8>> {
        self.free.try_pop()
    }

    /// Queues `item` for the encoder. Control items always fit; a frame only
    /// comes from a free buffer, so it fits too.
    pub fn push(&mut self, item: RingItem) -> Result<(), RingItem> {
        let is_frame = matches!(item, RingItem::Frame(_));
        // Count the frame before it becomes visible: the encoder may pop it
        // (and decrement) the moment it is pushed, which must never wrap.
        if is_frame {
            let depth = self.stats.depth.fetch_add(1, Ordering::Relaxed) + 1;
            self.stats.high_water.fetch_max(depth, Ordering::Relaxed);
        }
        if let Err(item) = self.filled.try_push(item) {
            if is_frame {
                self.stats.depth.fetch_sub(1, Ordering::Relaxed);
            }
            return Err(item);
        }
        if let Some(t) = &self.encoder_thread {
            t.unpark();
        }
        Ok(())
    }

    /// Shared occupancy figures.
    pub fn stats(&self) -> &Arc<RingStats> {
        &self.stats
    }
}

impl EncoderEnd {
    /// Next queued item, if any.
    pub fn pop(&mut self) -> Option<RingItem> {
        let item = self.filled.try_pop()?;
        if matches!(item, RingItem::Frame(_)) {
            self.stats.depth.fetch_sub(1, Ordering::Relaxed);
        }
        Some(item)
    }

    /// Returns a buffer to the pool.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        // Cannot fail: only pool buffers circulate and the ring holds them all.
        let _ = self.free.try_push(buf);
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.filled.is_empty()
    }

    /// Shared occupancy figures.
    pub fn stats(&self) -> &Arc<RingStats> {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_circulate_without_allocation_and_full_pool_is_reported() {
        let (mut cap, mut enc) = frame_ring(3, 16);
        let mut ptrs = Vec::new();
        for i in 0..3 {
            let buf = cap.take_free().expect("free buffer");
            ptrs.push(buf.as_ptr());
            let meta = FrameMeta::default();
            cap.push(RingItem::Frame(FilledFrame {
                episode: 0,
                index: i,
                meta,
                buf,
            }))
            .expect("fits");
        }
        assert!(cap.take_free().is_none(), "pool exhausted = ring full");
        assert_eq!(cap.stats().high_water.load(Ordering::Relaxed), 3);
        cap.push(RingItem::EndEpisode { episode: 0 })
            .expect("control item fits");
        for i in 0..3 {
            match enc.pop() {
                Some(RingItem::Frame(f)) => {
                    assert_eq!(f.index, i);
                    enc.recycle(f.buf);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(matches!(
            enc.pop(),
            Some(RingItem::EndEpisode { episode: 0 })
        ));
        let again: Vec<Vec<u8>> = (0..3).map(|_| cap.take_free().expect("recycled")).collect();
        for buf in &again {
            assert!(ptrs.contains(&buf.as_ptr()), "same buffers reused");
        }
    }
}
