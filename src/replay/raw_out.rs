//! `--raw-out PATH`: every frame as a small header followed by its pixels.
//!
//! Frame record layout (integers little-endian):
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 4 | magic `S6RF` |
//! | 4  | 2 | header version (1) |
//! | 6  | 2 | header length `H` in bytes (a multiple of 8, name and padding included) |
//! | 8  | 4 | episode |
//! | 12 | 4 | width |
//! | 16 | 4 | height |
//! | 20 | 4 | pixel format FourCC, `I420` |
//! | 24 | 8 | frame index |
//! | 32 | 8 | capture timestamp, ns since the Unix epoch |
//! | 40 | 8 | pts in frame units (signed) |
//! | 48 | 4 | data length `N` in bytes |
//! | 52 | 1 | flags: bit 0 keyframe, bit 1 from a pending spill file, bit 2 timestamp extrapolated (no index record) |
//! | 53 | 1 | camera name length `n` |
//! | 54 | n | camera name, UTF-8 |
//! | 54+n | | zero padding up to `H` |
//! | H | N | I420 pixels: Y, then U, then V, tightly packed |
//!
//! `PATH` `-` writes to standard output.

use super::frame::{FrameOrigin, ReplayFrame};
use anyhow::{bail, Context};
use std::io::{Read, Write};

/// Record magic.
pub const MAGIC: &[u8; 4] = b"S6RF";
/// Header version.
pub const VERSION: u16 = 1;
/// Fixed part of the header before the camera name.
const FIXED: usize = 54;

/// Header of one raw frame record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawHeader {
    /// Camera name.
    pub camera: String,
    /// Episode number.
    pub episode: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Frame index within the episode.
    pub frame_index: u64,
    /// Capture timestamp, ns since the Unix epoch.
    pub capture_ts_ns: u64,
    /// PTS in frame units.
    pub pts: i64,
    /// Bytes of pixels that follow.
    pub data_len: u32,
    /// Flag bits (see the module docs).
    pub flags: u8,
}

/// Encodes the header of `f`.
pub fn encode_header(f: &ReplayFrame) -> Vec<u8> {
    let name = f.camera.as_bytes();
    let name_len = name.len().min(255);
    let total = (FIXED + name_len).div_ceil(8) * 8;
    let mut h = Vec::with_capacity(total);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&(total as u16).to_le_bytes());
    h.extend_from_slice(&f.episode.to_le_bytes());
    h.extend_from_slice(&f.format.width.to_le_bytes());
    h.extend_from_slice(&f.format.height.to_le_bytes());
    h.extend_from_slice(b"I420");
    h.extend_from_slice(&f.frame_index.to_le_bytes());
    h.extend_from_slice(&f.capture_ts_ns.to_le_bytes());
    h.extend_from_slice(&f.pts.to_le_bytes());
    h.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
    let flags = u8::from(f.keyframe)
        | (u8::from(f.origin == FrameOrigin::Spill) << 1)
        | (u8::from(!f.indexed) << 2);
    h.push(flags);
    h.push(name_len as u8);
    h.extend_from_slice(&name[..name_len]);
    h.resize(total, 0);
    h
}

/// Writes frame records to a file or standard output.
pub struct RawWriter {
    out: Box<dyn Write + Send>,
    /// Flush after every frame (for pipes read live).
    flush_each: bool,
}

impl RawWriter {
    /// Creates `path` (`-` = standard output).
    pub fn create(path: &std::path::Path, flush_each: bool) -> anyhow::Result<Self> {
        let out: Box<dyn Write + Send> = if path.as_os_str() == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::io::BufWriter::with_capacity(
                1 << 20,
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create --raw-out {}", path.display()))?,
            ))
        };
        Ok(Self { out, flush_each })
    }

    /// Writes one frame record.
    pub fn write(&mut self, f: &ReplayFrame) -> anyhow::Result<()> {
        self.out
            .write_all(&encode_header(f))
            .and_then(|()| self.out.write_all(&f.data))
            .context("writing --raw-out")?;
        if self.flush_each {
            self.out.flush().context("flushing --raw-out")?;
        }
        Ok(())
    }

    /// Flushes what is buffered.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        self.out.flush().context("flushing --raw-out")
    }
}

/// Reads the next record from a raw stream: `Ok(None)` at a clean end.
pub fn read_frame<R: Read>(r: &mut R) -> anyhow::Result<Option<(RawHeader, Vec<u8>)>> {
    let mut fixed = [0u8; FIXED];
    let mut got = 0;
    while got < FIXED {
        let n = r.read(&mut fixed[got..]).context("reading a raw frame")?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            bail!("raw stream ends inside a frame header");
        }
        got += n;
    }
    if &fixed[..4] != MAGIC {
        bail!("not an s6-edge raw frame (bad magic)");
    }
    let u16_at = |o: usize| u16::from_le_bytes([fixed[o], fixed[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(fixed[o..o + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |o: usize| u64::from_le_bytes(fixed[o..o + 8].try_into().unwrap_or([0; 8]));
    if u16_at(4) != VERSION {
        bail!("raw frame header version {} is not supported", u16_at(4));
    }
    let total = usize::from(u16_at(6));
    let name_len = usize::from(fixed[53]);
    if total < FIXED + name_len {
        bail!("raw frame header length {total} is too short");
    }
    let mut rest = vec![0u8; total - FIXED];
    r.read_exact(&mut rest)
        .context("reading a raw frame header")?;
    let camera = String::from_utf8_lossy(&rest[..name_len]).into_owned();
    let header = RawHeader {
        camera,
        episode: u32_at(8),
        width: u32_at(12),
        height: u32_at(16),
        frame_index: u64_at(24),
        capture_ts_ns: u64_at(32),
        pts: u64_at(40) as i64,
        data_len: u32_at(48),
        flags: fixed[52],
    };
    let mut data = vec![0u8; header.data_len as usize];
    r.read_exact(&mut data)
        .context("reading raw frame pixels")?;
    Ok(Some((header, data)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{PixelFormat, VideoFormat};

    #[test]
    fn round_trip() {
        let f = ReplayFrame {
            camera: "wrist".into(),
            episode: 3,
            frame_index: 7,
            capture_ts_ns: 1_700_000_000_123_456_789,
            pts: 7,
            keyframe: true,
            origin: FrameOrigin::Spill,
            indexed: true,
            format: VideoFormat {
                width: 4,
                height: 2,
                fps_num: 15,
                fps_den: 1,
                pixel_format: PixelFormat::I420,
            },
            data: (0..12).collect(),
        };
        let h = encode_header(&f);
        assert_eq!(h.len() % 8, 0);
        let mut bytes = h.clone();
        bytes.extend_from_slice(&f.data);
        bytes.extend_from_slice(&h);
        bytes.extend_from_slice(&f.data);
        let mut r = &bytes[..];
        for _ in 0..2 {
            let (hdr, data) = read_frame(&mut r).unwrap().unwrap();
            assert_eq!(hdr.camera, "wrist");
            assert_eq!((hdr.episode, hdr.frame_index, hdr.pts), (3, 7, 7));
            assert_eq!(hdr.capture_ts_ns, f.capture_ts_ns);
            assert_eq!((hdr.width, hdr.height, hdr.flags), (4, 2, 0b011));
            assert_eq!(data, f.data);
        }
        assert!(read_frame(&mut r).unwrap().is_none());
        assert!(read_frame(&mut &bytes[..10]).is_err());
    }
}
