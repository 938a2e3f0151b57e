//! One frame delivered by a replay.

use crate::frame::VideoFormat;
use std::sync::Arc;

/// Where a replayed frame came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameOrigin {
    /// Decoded from the episode's `CAM.mp4`.
    Video,
    /// A frame still pending in the episode's spill directory (not yet
    /// encoded; see [`super::spill`]).
    Spill,
}

/// One decoded frame with its recording metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayFrame {
    /// Camera name (the file stem of `CAM.mp4` / `CAM.idx`).
    pub camera: Arc<str>,
    /// Episode number.
    pub episode: u32,
    /// Frame number within the episode (0-based), from the index.
    pub frame_index: u64,
    /// Capture timestamp, ns since the Unix epoch, from the index.
    pub capture_ts_ns: u64,
    /// Presentation time in frame units (the video PTS / frame duration).
    pub pts: i64,
    /// Whether the frame was coded as a keyframe.
    pub keyframe: bool,
    /// Video or pending spill.
    pub origin: FrameOrigin,
    /// `false` when the index had no record for this frame (a torn index
    /// tail): the capture timestamp was then extrapolated at the nominal rate.
    pub indexed: bool,
    /// Size, rate and layout of `data` (always 8-bit I420, tightly packed).
    pub format: VideoFormat,
    /// Pixels: `width * height` luma, then the U and V planes.
    pub data: Vec<u8>,
}

impl ReplayFrame {
    /// A copy of the metadata with no pixels.
    pub fn clone_meta(&self) -> ReplayFrame {
        ReplayFrame {
            camera: self.camera.clone(),
            episode: self.episode,
            frame_index: self.frame_index,
            capture_ts_ns: self.capture_ts_ns,
            pts: self.pts,
            keyframe: self.keyframe,
            origin: self.origin,
            indexed: self.indexed,
            format: self.format,
            data: Vec::new(),
        }
    }

    /// The luma plane.
    pub fn luma(&self) -> &[u8] {
        let n = self.format.width as usize * self.format.height as usize;
        &self.data[..n.min(self.data.len())]
    }
}
