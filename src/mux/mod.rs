//! Crash-safe fragmented MP4 writing (AV1 `av01`/`av1C`, H.264 `avc1`/`avcC`)
//! and a reader for the same files.
//!
//! Layout of a file: `ftyp` + `moov` (empty sample tables, `mvex`/`trex`),
//! then self-contained `moof` + `mdat` fragments of at most one second. Every
//! fragment is written with one `write` and made durable with `fdatasync`
//! before [`Fmp4Writer::samples_durable`] counts it.
//!
//! Timing: the media timescale is `fps_num` (times 1000 below 1000 fps) and
//! one frame lasts `fps_den` (times the same factor); packet timestamps are
//! frame indices, so PTS = frame_index / fps.

pub mod av1;
pub mod h264;
pub mod init;
pub mod reader;
pub mod writer;

pub use crate::frame::CodecId;
pub use reader::{scan, Mp4Scan, SampleInfo, TrackInfo};
pub use writer::{Fmp4Writer, FragmentPolicy};

/// Track id of the single video track.
pub const TRACK_ID: u32 = 1;

/// Whether this muxer can carry `codec` (AV1 and H.264; see
/// `init::sample_entry`). Backend selection refuses any other coded format
/// (e.g. vicodec's FWHT) before recording starts.
pub fn can_carry(codec: CodecId) -> bool {
    matches!(codec, CodecId::Av1 | CodecId::H264)
}

/// What the muxer needs to know about the video track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackConfig {
    /// AV1 or H.264.
    pub codec: CodecId,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frame rate numerator.
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
    /// Decoder configuration: AV1 sequence header OBU; H.264 Annex-B SPS + PPS.
    pub config_record: Vec<u8>,
}

/// Totals of a finished (or running) file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MuxSummary {
    /// Samples written in synced fragments.
    pub samples: u64,
    /// Fragments written.
    pub fragments: u64,
    /// Bytes in the file.
    pub bytes: u64,
}
