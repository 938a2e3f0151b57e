//! Decodes recorded MP4 files to count the frames a player would really get
//! (used by `s6-edge verify`).
//!
//! AV1 goes through libdav1d (cargo feature `dav1d`, Debian `libdav1d-dev`)
//! fed with the samples [`crate::mux::reader`] found. H.264, and AV1 when
//! dav1d is not built in, go through GStreamer (cargo feature `gst`):
//! `filesrc ! qtdemux ! decodebin ! fakesink`, which needs a decoder element
//! (`avdec_h264` from Debian `gstreamer1.0-libav`; for AV1 `av1dec` from
//! `gstreamer1.0-plugins-bad`).

#[cfg(feature = "dav1d")]
mod av1;
#[cfg(feature = "dav1d")]
pub mod av1_pictures;
#[cfg(feature = "gst")]
mod gst;
#[cfg(feature = "gst")]
pub mod gst_pictures;
pub mod pictures;

use crate::mux::Mp4Scan;
use std::path::Path;

/// Outcome of decoding one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeOutcome {
    /// Every sample was fed to a decoder; `frames` pictures came out.
    Decoded {
        /// Pictures the decoder produced.
        frames: u64,
        /// Decoder that was used.
        decoder: &'static str,
        /// Decoder errors (the count of frames is then what came out before/around them).
        errors: Vec<String>,
    },
    /// No decoder for this codec in this build or on this system.
    Unavailable(String),
}

/// Decodes the video of `path` (already scanned into `scan`).
pub fn decode_file(path: &Path, scan: &Mp4Scan) -> DecodeOutcome {
    let _ = (path, scan);
    match scan.track.codec {
        #[cfg(feature = "dav1d")]
        crate::frame::CodecId::Av1 => av1::decode(path, scan),
        #[cfg(feature = "gst")]
        crate::frame::CodecId::H264 => gst::decode(path, scan),
        #[cfg(all(feature = "gst", not(feature = "dav1d")))]
        crate::frame::CodecId::Av1 => gst::decode(path, scan),
        other => DecodeOutcome::Unavailable(format!(
            "this build has no {other:?} decoder (cargo features `dav1d` for AV1, `gst` for H.264)"
        )),
    }
}
