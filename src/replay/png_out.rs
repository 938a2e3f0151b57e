//! `--png-dir DIR`: every frame as `DIR/<episode>/<camera>/<frame_index>.png`
//! (8-bit RGB, BT.601 limited range, fast compression), with its capture
//! timestamp in a `s6:capture_ts_ns` text chunk.

use super::frame::ReplayFrame;
use crate::frame::PixelFormat;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// Text chunk key carrying the capture timestamp.
pub const TS_KEY: &str = "s6:capture_ts_ns";

/// Writes frames as PNG files.
pub struct PngWriter {
    dir: PathBuf,
    rgb: Vec<u8>,
}

impl PngWriter {
    /// Creates `dir` if needed.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --png-dir {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            rgb: Vec::new(),
        })
    }

    /// The file a frame goes to.
    pub fn path_of(&self, f: &ReplayFrame) -> PathBuf {
        self.dir
            .join(crate::dataset::layout::episode_dir_name(f.episode))
            .join(&*f.camera)
            .join(format!("{:06}.png", f.frame_index))
    }

    /// Writes one frame.
    pub fn write(&mut self, f: &ReplayFrame) -> anyhow::Result<()> {
        let path = self.path_of(f);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        crate::convert::convert_to(
            PixelFormat::I420,
            &f.data,
            f.format.width,
            f.format.height,
            PixelFormat::Rgb24,
            &mut self.rgb,
        )?;
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut enc = png::Encoder::new(
            std::io::BufWriter::new(file),
            f.format.width,
            f.format.height,
        );
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        enc.add_text_chunk(TS_KEY.to_string(), f.capture_ts_ns.to_string())
            .context("PNG text chunk")?;
        let mut w = enc
            .write_header()
            .with_context(|| format!("writing {}", path.display()))?;
        w.write_image_data(&self.rgb)
            .and_then(|()| w.finish())
            .with_context(|| format!("writing {}", path.display()))
    }
}
