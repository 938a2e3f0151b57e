//! Camera sources: synthetic test pattern, GStreamer (`gst:`), V4L2 (`v4l2:`).
//!
//! A source is opened from a [`CameraSpec`] and then pulled by its capture
//! thread with [`CaptureSource::next_frame`], which writes straight into a
//! preallocated pool slot (no allocation per frame).
//!
//! `-i` values are parsed by [`parse_camera_arg`] (see [`spec`] for the
//! grammar); [`open`] dispatches on the URI scheme.

pub mod cameras;
#[cfg(feature = "gst")]
pub mod gst;
pub mod replay;
pub mod spec;
pub mod stamp;
pub mod synthetic;
pub mod v4l2;

pub use spec::parse_camera_arg;
pub use stamp::{read_stamp, stamp_i420, stamp_luma};

use crate::frame::{FrameMeta, VideoFormat};

/// What the user asked for one camera (parsed from `-i` or the config file).
#[derive(Clone, Debug, PartialEq)]
pub struct CameraSpec {
    /// Camera name, used for file names (`<name>.mp4`). Unique per dataset.
    pub name: String,
    /// Source URI: `synthetic`, `v4l2:/dev/videoN`, `gst:<description>`,
    /// optionally followed by `#key=value,...` options (kept verbatim from
    /// `-i`; [`open`] reads the source options `frames`, `realtime`, `noise`
    /// and, for `gst:`, whether `width`/`height` were given). The fields
    /// below are authoritative for name and format.
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
    /// Whether the source can wait for the recorder without losing frames
    /// (a recording played back: `replay:`). The capture thread then pulls
    /// frames only while an episode records and waits for ring space instead
    /// of spilling when the encoder is behind.
    fn pausable(&self) -> bool {
        false
    }
}

/// Opens the source named by `spec.uri` and negotiates its format.
///
/// Blocks until the format is known (a GStreamer source waits up to 10 s for
/// its first frame). Bad URIs are usage errors (exit code 2).
pub fn open(spec: &CameraSpec) -> anyhow::Result<Box<dyn CaptureSource>> {
    use anyhow::Context;
    let split = spec::split_options(&spec.uri)?;
    let frames = match split.get("frames") {
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            crate::exit::usage(format!(
                "camera {:?}: frames={v:?} is not a number",
                spec.uri
            ))
        })?),
        None => None,
    };
    let source: Box<dyn CaptureSource> = match &split.kind {
        // The synthetic source handles `frames` itself.
        spec::SourceKind::Synthetic => {
            return Ok(Box::new(synthetic::SyntheticSource::from_spec(spec)?))
        }
        spec::SourceKind::V4l2(path) => Box::new(
            v4l2::V4l2Source::open(path, &spec.format)
                .with_context(|| format!("camera {}: {}", spec.name, spec.uri))?,
        ),
        spec::SourceKind::Gst(desc) => open_gst(spec, desc, &split)?,
        spec::SourceKind::Replay(path) => Box::new(replay::ReplaySource::open(spec, path)?),
    };
    Ok(match frames {
        Some(n) => Box::new(Limited {
            inner: source,
            left: n,
        }),
        None => source,
    })
}

#[cfg(feature = "gst")]
fn open_gst(
    spec: &CameraSpec,
    desc: &str,
    split: &spec::SplitUri,
) -> anyhow::Result<Box<dyn CaptureSource>> {
    use anyhow::Context;
    // Scale only when the user gave a size in the options; otherwise keep
    // what the pipeline produces.
    let size = match (split.get("width"), split.get("height")) {
        (None, None) => None,
        _ => Some((spec.format.width, spec.format.height)),
    };
    let src = gst::GstSource::open(desc, size, &spec.format)
        .with_context(|| format!("camera {}", spec.name))?;
    Ok(Box::new(src))
}

#[cfg(not(feature = "gst"))]
fn open_gst(
    spec: &CameraSpec,
    _desc: &str,
    _split: &spec::SplitUri,
) -> anyhow::Result<Box<dyn CaptureSource>> {
    Err(crate::exit::usage(format!(
        "camera {}: {:?} needs GStreamer, but this s6-edge was built without GStreamer support \
         (rebuild with `--features gst`)",
        spec.name, spec.uri
    )))
}

/// Ends any source after a fixed number of frames (`frames=N`).
struct Limited {
    inner: Box<dyn CaptureSource>,
    left: u64,
}

impl CaptureSource for Limited {
    fn format(&self) -> VideoFormat {
        self.inner.format()
    }
    fn pausable(&self) -> bool {
        self.inner.pausable()
    }
    fn next_frame(&mut self, buf: &mut [u8]) -> Result<Option<FrameMeta>, CaptureError> {
        if self.left == 0 {
            return Ok(None);
        }
        let meta = self.inner.next_frame(buf)?;
        if meta.is_some() {
            self.left -= 1;
        }
        Ok(meta)
    }
}

/// `s6-edge cameras`: lists V4L2 devices with their formats, sizes and rates.
pub fn cameras_command(args: crate::cli::CamerasArgs) -> anyhow::Result<std::process::ExitCode> {
    cameras::run(args.json)
}
