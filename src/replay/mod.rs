//! Replay: recorded datasets back as decoded frames, in capture order.
//!
//! The library API is [`Replay`]: open a dataset, optionally restrict it to
//! some episodes ([`EpisodeSelection`], `3,5-7`) and cameras, then iterate
//! [`Replay::frames`]. Every item is a [`ReplayFrame`]: camera, episode,
//! frame index, the capture timestamp recorded in the index, the PTS, and
//! the pixels as tightly packed 8-bit I420. AV1 is decoded with libdav1d,
//! H.264 through GStreamer; frames still pending in an episode's spill
//! directory are merged in by frame index ([`spill`]). Two passes over the
//! same dataset deliver identical frames in the identical order.
//!
//! ```no_run
//! use s6_edge::replay::{EpisodeSelection, Replay};
//!
//! # fn main() -> anyhow::Result<()> {
//! let replay = Replay::open("datasets/pick".as_ref())?
//!     .episodes(EpisodeSelection::parse("3,5-7")?)
//!     .cameras(["left", "wrist"]);
//! for frame in replay.frames()? {
//!     let frame = frame?;
//!     let (w, h) = (frame.format.width, frame.format.height);
//!     let luma = &frame.data[..(w * h) as usize];
//!     println!(
//!         "episode {} {} frame {} captured at {} ns, mean luma {}",
//!         frame.episode,
//!         frame.camera,
//!         frame.frame_index,
//!         frame.capture_ts_ns,
//!         luma.iter().map(|&p| u64::from(p)).sum::<u64>() / luma.len() as u64
//!     );
//! }
//! # Ok(())
//! # }
//! ```
//!
//! To pace frames like the recording, wrap the loop with a [`Pacer`]
//! (`pacer.wait(frame.capture_ts_ns)` before using each frame).
//!
//! The `s6-edge replay` command ([`command`]) drives the same iterator into
//! `--sink` (GStreamer appsrc), `--raw-out` ([`raw_out`] documents the
//! per-frame header), `--png-dir` and `--hash`.

pub mod command;
pub mod frame;
#[cfg(feature = "gst")]
pub mod gst_sink;
pub mod hash;
pub mod metrics;
pub mod pacing;
pub mod png_out;
pub mod raw_out;
pub mod reader;
pub mod select;
pub mod sink;
pub mod spill;
pub mod stream;

pub use command::run;
pub use frame::{FrameOrigin, ReplayFrame};
pub use pacing::Pacer;
pub use reader::{Frames, PlannedEpisode, Replay};
pub use select::EpisodeSelection;
pub use spill::{RecordSpill, SpillReader};
