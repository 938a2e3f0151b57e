//! Camera sources: synthetic test pattern, GStreamer (`gst:`), V4L2 (`v4l2:`).
//!
//! A source is opened from a [`CameraSpec`] and then pulled by its capture
//! thread with [`CaptureSource::next_frame`], which writes straight into a
//! preallocated pool slot (no allocation per frame).

use crate::frame::{FrameMeta, VideoFormat};

/// What the user asked for one camera (parsed from `-i` or the config file).
#[derive(Clone, Debug, PartialEq)]
pub struct CameraSpec {
    /// Camera name, used for file names (`<name>.mp4`). Unique per dataset.
    pub name: String,
    /// Source URI: `synthetic`, `v4l2:/dev/videoN`, `gst:<description>`.
    pub uri: String,
    /// Requested format (the source may only honour some fields; the
    /// negotiated one is [`CaptureSource::format`]).
    pub format: VideoFormat,
}

/// Why capturing failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The device or pipeline is gone (unplugged, EOS on a live source, ...).
    #[error("camera disconnected: {0}")]
    Disconnected(String),
    /// Any other failure, with a message saying what to do.
    #[error("{0}")]
    Failed(String),
}

/// A camera the capture thread pulls frames from.
pub trait CaptureSource: Send {
    /// The negotiated format of the frames `next_frame` writes.
    fn format(&self) -> VideoFormat;
    /// Blocks until the next frame, copies it tightly packed into `buf`
    /// (exactly `format().frame_bytes()` long) and returns its metadata.
    /// `Ok(None)` means a finite source reached its end.
    fn next_frame(&mut self, buf: &mut [u8]) -> Result<Option<FrameMeta>, CaptureError>;
}

/// Opens the source named by `spec.uri`.
pub fn open(spec: &CameraSpec) -> anyhow::Result<Box<dyn CaptureSource>> {
    anyhow::bail!("camera source {:?}: capture is not built yet", spec.uri)
}

/// `s6-edge cameras`.
pub fn cameras_command(_args: crate::cli::CamerasArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`s6-edge cameras` is not built yet")
}
