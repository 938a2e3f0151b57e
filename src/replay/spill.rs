//! Frames still pending in an episode's spill directory
//! (`episodes/NNNNNN/spill/<CAM>/<frame_index>.png`, written by
//! [`crate::record::spill`] when the encoder fell behind): `recover` or
//! `encode-pending` encode them into the video later; until then replay
//! merges them in by frame index, with the capture timestamp stored in the
//! spill file.
//!
//! [`SpillReader`] is what replay asks; [`RecordSpill`] reads the recorder's
//! own format. Another reader can be passed with
//! [`super::Replay::spill_reader`].

use crate::frame::{PixelFormat, VideoFormat};
use crate::record::spill::{list_spilled, read_spill, spill_dir, spill_path};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// One pending frame on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingFrame {
    /// Frame number within the episode.
    pub frame_index: u64,
    /// The file holding it.
    pub path: PathBuf,
}

/// A pending frame read back as I420.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedSpill {
    /// Tightly packed I420 pixels.
    pub data: Vec<u8>,
    /// Capture timestamp stored with the frame, if the format keeps one.
    pub capture_ts_ns: Option<u64>,
}

/// Reads pending spill frames of one camera in one episode.
pub trait SpillReader: Send + Sync {
    /// Pending frames of `camera` in `episode_dir`, sorted by frame index.
    fn pending(&self, episode_dir: &Path, camera: &str) -> anyhow::Result<Vec<PendingFrame>>;
    /// Loads one pending frame as I420 of `format`'s size.
    fn load(&self, frame: &PendingFrame, format: &VideoFormat) -> anyhow::Result<LoadedSpill>;
}

/// The recorder's spill files (see [`crate::record::spill`]): the captured
/// frame in its camera format plus its metadata, converted to I420 here.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordSpill;

impl SpillReader for RecordSpill {
    fn pending(&self, episode_dir: &Path, camera: &str) -> anyhow::Result<Vec<PendingFrame>> {
        let dir = spill_dir(episode_dir, camera);
        Ok(list_spilled(&dir)?
            .into_iter()
            .map(|frame_index| PendingFrame {
                frame_index,
                path: spill_path(&dir, frame_index),
            })
            .collect())
    }

    fn load(&self, frame: &PendingFrame, format: &VideoFormat) -> anyhow::Result<LoadedSpill> {
        let spilled = read_spill(&frame.path)?;
        let f = spilled.format;
        if (f.width, f.height) != (format.width, format.height) {
            bail!(
                "{} is {}x{}, the camera records {}x{}",
                frame.path.display(),
                f.width,
                f.height,
                format.width,
                format.height
            );
        }
        let mut data = Vec::new();
        crate::convert::convert_to(
            f.pixel_format,
            &spilled.data,
            f.width,
            f.height,
            PixelFormat::I420,
            &mut data,
        )
        .with_context(|| format!("converting {}", frame.path.display()))?;
        Ok(LoadedSpill {
            data,
            capture_ts_ns: Some(spilled.meta.capture_ts_ns),
        })
    }
}
