//! The spill path: what happens to a frame when its camera's ring is full.
//!
//! Each camera is either **streaming** (frames travel through the pool ring
//! to the encoder) or **spilling** (the capture thread writes each frame to
//! `episodes/NNNNNN/spill/<CAM>/<frame_index>.png` and tells the encoder
//! through an unbounded channel). The switch is ordered: the capture thread
//! pushes [`super::pool::RingItem::SpillBegin`] into the ring, after which the
//! encoder drains the ring up to that marker, then reads [`SpillMsg`]s — which
//! carry frames *and* the episode/close control items while spilling — until
//! [`SpillMsg::Resume`]. The capture thread sends `Resume` only when the
//! encoder has consumed every spill message it sent, so frames reach the MP4
//! strictly in capture order.
//!
//! A spill file is a PNG holding the frame's raw bytes in their native
//! layout as an 8-bit grayscale image (I420 640x480 → 640x720), compressed
//! with the png crate's fdeflate "ultra fast" mode and the Up filter: no
//! colour conversion, ~1-4 ms of CPU per 640x480 frame (see
//! `tests/bench/spill_cost.sh`). A `tEXt` chunk `s6-spill` carries the pixel
//! format, size and capture metadata, so a spill file is self-describing
//! and `encode-pending` can finish an episode after a crash. Files are
//! written under a temporary name and renamed, so a visible spill file is
//! always complete; they are deleted only once their frames are in a durable
//! MP4 fragment and the index is synced.

use crate::frame::{frame_bytes, parse_pixel_format, pixel_format_str, FrameMeta, VideoFormat};
use anyhow::{bail, Context};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

pub use super::pending::{
    encode_pending_dataset, encode_pending_episode, PendingOptions, PendingSummary,
};

/// Name of the per-episode directory holding spill folders.
pub const SPILL_DIR: &str = "spill";
/// Extension of spill files.
pub const SPILL_EXT: &str = "png";
/// `tEXt` keyword of the metadata chunk.
const META_KEY: &str = "s6-spill";

/// `<episode dir>/spill/<camera>`.
pub fn spill_dir(episode_dir: &Path, camera: &str) -> PathBuf {
    episode_dir.join(SPILL_DIR).join(camera)
}

/// `<spill dir>/<frame_index>.png`.
pub fn spill_path(dir: &Path, frame_index: u64) -> PathBuf {
    dir.join(format!("{frame_index}.{SPILL_EXT}"))
}

/// Frame indices of the complete spill files in `dir`, sorted (temporary
/// files of an interrupted write are ignored). A missing dir is empty.
pub fn list_spilled(dir: &Path) -> anyhow::Result<Vec<u64>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(&format!(".{SPILL_EXT}")) {
            if let Ok(i) = stem.parse::<u64>() {
                out.push(i);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Removes `<episode>/spill/<camera>` (whatever is left in it, e.g. stale
/// temporary files) and `<episode>/spill` when it became empty.
pub fn remove_spill_dir(episode_dir: &Path, camera: &str) -> anyhow::Result<()> {
    let dir = spill_dir(episode_dir, camera);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", dir.display())),
    }
    // Only succeeds when no other camera still has a spill folder.
    let _ = std::fs::remove_dir(episode_dir.join(SPILL_DIR));
    Ok(())
}

/// Why a spill write failed.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    /// The file system is full: recording must stop.
    #[error("disk full writing {path}: {source}")]
    DiskFull {
        /// File being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Any other failure (the frame is lost, recording continues).
    #[error("cannot write spill file {path}: {source}")]
    Io {
        /// File being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// PNG encoding failed.
    #[error("cannot encode spill file {path}: {message}")]
    Encode {
        /// File being written.
        path: PathBuf,
        /// Encoder message.
        message: String,
    },
}

impl SpillError {
    /// Whether the disk is full (the recording must stop).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, SpillError::DiskFull { .. })
    }
}

/// Image geometry used to store `bytes` raw bytes of a frame `width` wide:
/// rows of `width` bytes when that divides evenly (I420, NV12, gray), rows
/// of the packed line length for 2/3/4-byte formats, else one long row.
fn image_dims(format: &VideoFormat, bytes: usize) -> (u32, u32) {
    for row in [
        format.width as usize,
        2 * format.width as usize,
        3 * format.width as usize,
        4 * format.width as usize,
    ] {
        if row > 0 && bytes.is_multiple_of(row) && bytes / row <= u32::MAX as usize {
            return (row as u32, (bytes / row) as u32);
        }
    }
    (bytes as u32, 1)
}

/// Encodes `frame` (packed, `format`) with `meta` as a spill PNG into `out`
/// (cleared first; reuse it across frames to avoid allocations).
pub fn encode_png(
    frame: &[u8],
    format: &VideoFormat,
    index: u64,
    meta: &FrameMeta,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    out.clear();
    let (w, h) = image_dims(format, frame.len());
    let mut enc = png::Encoder::new(&mut *out, w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fastest);
    enc.set_filter(png::Filter::Up);
    let text = format!(
        "v=1 fmt={} w={} h={} fps={}/{} index={index} ts={} lost={}",
        pixel_format_str(format.pixel_format),
        format.width,
        format.height,
        format.fps_num,
        format.fps_den,
        meta.capture_ts_ns,
        meta.lost_before
    );
    enc.add_text_chunk(META_KEY.to_string(), text)
        .map_err(|e| e.to_string())?;
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(frame).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}

/// Writes one spill file: encodes into `scratch`, writes `<index>.png.tmp`,
/// renames it to `<index>.png`. No fsync: a killed process keeps the page
/// cache (power cuts are covered by the MP4, synced per fragment).
pub fn write_spill(
    dir: &Path,
    frame: &[u8],
    format: &VideoFormat,
    index: u64,
    meta: &FrameMeta,
    scratch: &mut Vec<u8>,
) -> Result<u64, SpillError> {
    let path = spill_path(dir, index);
    encode_png(frame, format, index, meta, scratch).map_err(|message| SpillError::Encode {
        path: path.clone(),
        message,
    })?;
    let tmp = path.with_extension(format!("{SPILL_EXT}.tmp"));
    let io_err = |source: std::io::Error, path: &Path| {
        if source.raw_os_error() == Some(libc::ENOSPC)
            || source.raw_os_error() == Some(libc::EDQUOT)
        {
            SpillError::DiskFull {
                path: path.to_path_buf(),
                source,
            }
        } else {
            SpillError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let result = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(scratch));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(e, &tmp));
    }
    std::fs::rename(&tmp, &path).map_err(|e| io_err(e, &path))?;
    Ok(scratch.len() as u64)
}

/// A spill file read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpilledFrame {
    /// Format recorded in the file.
    pub format: VideoFormat,
    /// Frame index recorded in the file.
    pub index: u64,
    /// Capture metadata.
    pub meta: FrameMeta,
    /// Packed frame bytes.
    pub data: Vec<u8>,
}

/// Reads only the metadata chunk of a spill file (cheap: no pixel decode).
pub fn read_spill_meta(path: &Path) -> anyhow::Result<(VideoFormat, u64, FrameMeta)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let reader = decoder
        .read_info()
        .with_context(|| format!("reading spill file {}", path.display()))?;
    parse_meta(reader.info()).with_context(|| format!("spill file {}", path.display()))
}

/// Reads a spill file: its metadata and the raw frame bytes.
pub fn read_spill(path: &Path) -> anyhow::Result<SpilledFrame> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder
        .read_info()
        .with_context(|| format!("reading spill file {}", path.display()))?;
    let (format, index, meta) =
        parse_meta(reader.info()).with_context(|| format!("spill file {}", path.display()))?;
    let size = reader
        .output_buffer_size()
        .context("spill image too large")?;
    let mut data = vec![0u8; size];
    let info = reader
        .next_frame(&mut data)
        .with_context(|| format!("decoding spill file {}", path.display()))?;
    data.truncate(info.buffer_size());
    let want = frame_bytes(format.pixel_format, format.width, format.height);
    if data.len() != want {
        bail!(
            "spill file {} holds {} bytes, a {}x{} frame needs {want}",
            path.display(),
            data.len(),
            format.width,
            format.height
        );
    }
    Ok(SpilledFrame {
        format,
        index,
        meta,
        data,
    })
}

fn parse_meta(info: &png::Info) -> anyhow::Result<(VideoFormat, u64, FrameMeta)> {
    let text = info
        .uncompressed_latin1_text
        .iter()
        .find(|t| t.keyword == META_KEY)
        .map(|t| t.text.as_str())
        .context("no s6-spill metadata chunk")?;
    let get = |key: &str| -> anyhow::Result<&str> {
        text.split(' ')
            .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .with_context(|| format!("metadata lacks {key}"))
    };
    let num = |key: &str| -> anyhow::Result<u64> {
        get(key)?
            .parse()
            .with_context(|| format!("metadata {key} is not a number"))
    };
    if get("v")? != "1" {
        bail!("unsupported spill metadata version {}", get("v")?);
    }
    let fmt = get("fmt")?;
    let pixel_format = parse_pixel_format(fmt).with_context(|| format!("pixel format {fmt}"))?;
    let (fps_num, fps_den) = get("fps")?
        .split_once('/')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .context("metadata fps is not N/D")?;
    let format = VideoFormat {
        width: num("w")? as u32,
        height: num("h")? as u32,
        fps_num,
        fps_den,
        pixel_format,
    };
    let meta = FrameMeta {
        capture_ts_ns: num("ts")?,
        sequence: None,
        lost_before: num("lost")?,
    };
    Ok((format, num("index")?, meta))
}

/// What a spilling capture thread tells its encoder, in capture order.
#[derive(Debug)]
pub enum SpillMsg {
    /// Frame `index` of `episode` is in its spill file.
    Frame {
        /// Episode.
        episode: u32,
        /// Frame index.
        index: u64,
        /// Capture metadata.
        meta: FrameMeta,
    },
    /// Frame `index` is lost: the ring was full and the spill write failed.
    Dropped {
        /// Episode.
        episode: u32,
        /// Frame index.
        index: u64,
        /// Capture metadata.
        meta: FrameMeta,
        /// Why the spill failed.
        reason: String,
    },
    /// No more frames of `episode` follow.
    EndEpisode {
        /// Episode.
        episode: u32,
    },
    /// The capture thread is gone.
    Closed {
        /// Why, when it was a fault.
        error: Option<String>,
    },
    /// Back to streaming: read the ring again.
    Resume,
}

/// Spill figures shared by a camera's capture and encoder threads.
#[derive(Debug, Default)]
pub struct SpillStats {
    /// Messages the capture thread sent (all but `Resume`).
    pub sent: AtomicU64,
    /// Messages the encoder has finished with (all but `Resume`).
    pub done: AtomicU64,
    /// Spilled frames not yet encoded.
    pub backlog: AtomicU64,
    /// Highest spill backlog seen.
    pub backlog_high_water: AtomicU64,
}

impl SpillStats {
    /// Counts a sent message; `frame` when it carries a spilled frame.
    pub fn on_sent(&self, frame: bool) {
        self.sent.fetch_add(1, Ordering::AcqRel);
        if frame {
            let b = self.backlog.fetch_add(1, Ordering::AcqRel) + 1;
            self.backlog_high_water.fetch_max(b, Ordering::Relaxed);
        }
    }
    /// Counts a message the encoder finished with.
    pub fn on_done(&self, frame: bool) {
        if frame {
            self.backlog.fetch_sub(1, Ordering::AcqRel);
        }
        self.done.fetch_add(1, Ordering::AcqRel);
    }
    /// Spilled frames waiting for the encoder.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Acquire)
    }
}

/// The capture thread's side of the spill path: its own frame buffer, the
/// PNG scratch buffer, and the channel to the encoder.
pub struct Spiller {
    camera: String,
    format: VideoFormat,
    episodes_dir: PathBuf,
    tx: Sender<SpillMsg>,
    stats: Arc<SpillStats>,
    streaming_encoding: bool,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    dir: Option<(u32, PathBuf)>,
    sent: u64,
}

impl Spiller {
    /// A spiller for `camera` writing under `episodes_dir`. Allocates its
    /// frame buffer once, here.
    pub fn new(
        camera: &str,
        format: VideoFormat,
        episodes_dir: PathBuf,
        tx: Sender<SpillMsg>,
        stats: Arc<SpillStats>,
        streaming_encoding: bool,
    ) -> Self {
        let bytes = format.frame_bytes();
        Self {
            camera: camera.to_string(),
            format,
            episodes_dir,
            tx,
            stats,
            streaming_encoding,
            buf: vec![0u8; bytes],
            scratch: Vec::with_capacity(bytes + bytes / 8 + 1024),
            dir: None,
            sent: 0,
        }
    }

    /// Whether frames stream through the ring at all (`--streaming-encoding`).
    pub fn streaming_encoding(&self) -> bool {
        self.streaming_encoding
    }

    /// The buffer to capture a frame into when it will be spilled.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Whether the encoder has consumed every message sent so far.
    pub fn drained(&self) -> bool {
        self.stats.done.load(Ordering::Acquire) == self.sent
    }

    /// Sends `msg` to the encoder. A closed channel (the encoder is gone)
    /// is ignored: the spill files stay for `encode-pending`.
    pub fn send(&mut self, msg: SpillMsg) {
        let counted = !matches!(msg, SpillMsg::Resume);
        let frame = matches!(msg, SpillMsg::Frame { .. });
        if counted {
            self.sent += 1;
            self.stats.on_sent(frame);
        }
        if self.tx.send(msg).is_err() && counted {
            // Nobody will ever mark it done.
            self.stats.on_done(frame);
        }
    }

    /// Writes the frame in [`Spiller::buf`] as frame `index` of `episode`
    /// and queues it for the encoder. On error nothing is queued.
    pub fn spill(&mut self, episode: u32, index: u64, meta: FrameMeta) -> Result<u64, SpillError> {
        if self.dir.as_ref().is_none_or(|(e, _)| *e != episode) {
            let dir = spill_dir(
                &self
                    .episodes_dir
                    .join(crate::dataset::layout::episode_dir_name(episode)),
                &self.camera,
            );
            std::fs::create_dir_all(&dir).map_err(|source| {
                if source.raw_os_error() == Some(libc::ENOSPC) {
                    SpillError::DiskFull {
                        path: dir.clone(),
                        source,
                    }
                } else {
                    SpillError::Io {
                        path: dir.clone(),
                        source,
                    }
                }
            })?;
            self.dir = Some((episode, dir));
        }
        let Some((_, dir)) = self.dir.as_ref() else {
            unreachable!("set above")
        };
        let bytes = write_spill(
            dir,
            &self.buf,
            &self.format,
            index,
            &meta,
            &mut self.scratch,
        )?;
        self.send(SpillMsg::Frame {
            episode,
            index,
            meta,
        });
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::PixelFormat;

    fn fmt(w: u32, h: u32, pf: PixelFormat) -> VideoFormat {
        VideoFormat {
            width: w,
            height: h,
            fps_num: 30,
            fps_den: 1,
            pixel_format: pf,
        }
    }

    #[test]
    fn spill_files_round_trip_bytes_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let mut scratch = Vec::new();
        for (i, f) in [
            fmt(64, 48, PixelFormat::I420),
            fmt(33, 17, PixelFormat::I420),
            fmt(32, 8, PixelFormat::Yuyv),
            fmt(10, 10, PixelFormat::Rgb24),
        ]
        .into_iter()
        .enumerate()
        {
            let n = f.frame_bytes();
            let frame: Vec<u8> = (0..n).map(|k| (k * 7 + i) as u8).collect();
            let meta = FrameMeta {
                capture_ts_ns: 1_700_000_000_123_456_789 + i as u64,
                sequence: None,
                lost_before: i as u64,
            };
            let bytes =
                write_spill(dir.path(), &frame, &f, 40 + i as u64, &meta, &mut scratch).unwrap();
            assert!(bytes > 0);
            let back = read_spill(&spill_path(dir.path(), 40 + i as u64)).unwrap();
            assert_eq!(back.format, f);
            assert_eq!(back.index, 40 + i as u64);
            assert_eq!(back.meta, meta);
            assert_eq!(back.data, frame);
        }
        assert_eq!(list_spilled(dir.path()).unwrap(), vec![40, 41, 42, 43]);
        // A leftover temporary file is not listed.
        std::fs::write(dir.path().join("44.png.tmp"), b"torn").unwrap();
        assert_eq!(list_spilled(dir.path()).unwrap().len(), 4);
        assert!(list_spilled(&dir.path().join("missing"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_missing_directory_is_an_io_error_not_disk_full() {
        let dir = tempfile::tempdir().unwrap();
        let f = fmt(16, 16, PixelFormat::Gray8);
        let err = write_spill(
            &dir.path().join("nope"),
            &[0u8; 256],
            &f,
            0,
            &FrameMeta::default(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(!err.is_disk_full(), "{err}");
    }
}
