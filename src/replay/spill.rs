//! Frames still pending in an episode's spill directory
//! (`episodes/NNNNNN/spill/<CAM>/<frame_index>.png`): frames the recorder
//! could not hand to the encoder in time and wrote to disk (DESIGN "Never
//! drop a frame silently"). `recover` encodes them into the video later;
//! until then replay merges them in by frame index.
//!
//! **Extension point.** [`SpillReader`] is what replay asks; [`PngSpill`]
//! is the built-in reader for the documented layout (8-bit gray, RGB or RGBA
//! PNGs named by frame index; capture timestamp from the index record with
//! that frame index, else from a PNG text chunk `s6:capture_ts_ns`, else
//! extrapolated). When the record side's spill module settles on another
//! format, implement [`SpillReader`] for it and pass it with
//! [`super::Replay::spill_reader`].

use crate::frame::{PixelFormat, VideoFormat};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// Name of the spill directory inside an episode.
pub const SPILL_DIR: &str = "spill";
/// Text chunk key carrying the capture timestamp in a spilled PNG.
pub const TS_KEY: &str = "s6:capture_ts_ns";

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

/// The built-in reader: `spill/<CAM>/<frame_index>.png`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PngSpill;

impl SpillReader for PngSpill {
    fn pending(&self, episode_dir: &Path, camera: &str) -> anyhow::Result<Vec<PendingFrame>> {
        let dir = episode_dir.join(SPILL_DIR).join(camera);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry
                .with_context(|| format!("listing {}", dir.display()))?
                .path();
            let index = path
                .extension()
                .filter(|e| e.eq_ignore_ascii_case("png"))
                .and_then(|_| path.file_stem())
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok());
            if let Some(frame_index) = index {
                out.push(PendingFrame { frame_index, path });
            }
        }
        out.sort_by_key(|f| f.frame_index);
        Ok(out)
    }

    fn load(&self, frame: &PendingFrame, format: &VideoFormat) -> anyhow::Result<LoadedSpill> {
        let file = std::fs::File::open(&frame.path)
            .with_context(|| format!("opening {}", frame.path.display()))?;
        let mut reader = png::Decoder::new(std::io::BufReader::new(file))
            .read_info()
            .with_context(|| format!("reading PNG {}", frame.path.display()))?;
        let capture_ts_ns = reader
            .info()
            .uncompressed_latin1_text
            .iter()
            .find(|t| t.keyword == TS_KEY)
            .and_then(|t| t.text.trim().parse().ok());
        let size = reader
            .output_buffer_size()
            .context("PNG output size overflows")?;
        let mut buf = vec![0u8; size];
        let info = reader
            .next_frame(&mut buf)
            .with_context(|| format!("decoding PNG {}", frame.path.display()))?;
        if (info.width, info.height) != (format.width, format.height) {
            bail!(
                "{} is {}x{}, the camera records {}x{}",
                frame.path.display(),
                info.width,
                info.height,
                format.width,
                format.height
            );
        }
        if info.bit_depth != png::BitDepth::Eight {
            bail!("{}: only 8-bit PNGs are read", frame.path.display());
        }
        let src_format = match info.color_type {
            png::ColorType::Grayscale => PixelFormat::Gray8,
            png::ColorType::Rgb => PixelFormat::Rgb24,
            png::ColorType::Rgba => PixelFormat::Rgba,
            other => bail!(
                "{}: unsupported PNG colour type {other:?}",
                frame.path.display()
            ),
        };
        let mut data = Vec::new();
        crate::convert::convert_to(
            src_format,
            &buf[..info.buffer_size()],
            info.width,
            info.height,
            PixelFormat::I420,
            &mut data,
        )?;
        Ok(LoadedSpill {
            data,
            capture_ts_ns,
        })
    }
}
