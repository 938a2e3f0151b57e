//! `--hash`: one BLAKE3 digest per camera over every delivered frame's
//! pixels and metadata, so two replays can be compared byte for byte.
//!
//! Per frame, in delivery order, the hasher takes (all little-endian):
//! episode (u32), frame index (u64), capture timestamp (u64), pts (i64),
//! width (u32), height (u32), data length (u64), then the I420 bytes.

use super::frame::ReplayFrame;
use std::collections::BTreeMap;

/// Digests per camera.
#[derive(Default)]
pub struct FrameHasher {
    cameras: BTreeMap<String, (blake3::Hasher, u64)>,
}

impl FrameHasher {
    /// An empty hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one frame to its camera's digest.
    pub fn update(&mut self, f: &ReplayFrame) {
        let (h, n) = self
            .cameras
            .entry(f.camera.to_string())
            .or_insert_with(|| (blake3::Hasher::new(), 0));
        h.update(&f.episode.to_le_bytes());
        h.update(&f.frame_index.to_le_bytes());
        h.update(&f.capture_ts_ns.to_le_bytes());
        h.update(&f.pts.to_le_bytes());
        h.update(&f.format.width.to_le_bytes());
        h.update(&f.format.height.to_le_bytes());
        h.update(&(f.data.len() as u64).to_le_bytes());
        h.update(&f.data);
        *n += 1;
    }

    /// `(camera, hex digest, frames)` for every camera seen, sorted by name.
    pub fn digests(&self) -> Vec<(String, String, u64)> {
        self.cameras
            .iter()
            .map(|(c, (h, n))| (c.clone(), h.finalize().to_hex().to_string(), *n))
            .collect()
    }
}
