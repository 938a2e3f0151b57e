//! GStreamer sources (`gst:<description>`).
//!
//! The user's description is completed into
//! `<description> ! videoconvert ! videoscale ! video/x-raw,format=I420[,width=W,height=H]
//!  ! appsink name=s6sink sync=false max-buffers=4 drop=false`
//! so any raw or decoded video (test sources, RTP over UDP, files) arrives as
//! I420. `open` waits up to [`FIRST_FRAME_TIMEOUT`] for the first frame, so
//! the negotiated size and rate are known before recording starts.
//!
//! Capture timestamps follow the buffers' PTS: wall-clock time of the first
//! frame plus the PTS distance from it, so the spacing is the source's, not
//! the scheduling jitter of this thread. Buffers without PTS get the wall
//! clock at pull time.

use super::{CaptureError, CaptureSource};
use crate::convert::copy_plane;
use crate::frame::{FrameMeta, PixelFormat, VideoFormat};
use anyhow::{anyhow, bail, Context};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use std::time::{Duration, Instant};

/// How long `open` waits for the first frame.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `next_frame` waits for a frame before reporting the source gone.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Name of the appsink s6-edge appends.
pub const SINK_NAME: &str = "s6sink";
const POLL: Duration = Duration::from_millis(100);

/// A running GStreamer pipeline feeding an appsink.
pub struct GstSource {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    description: String,
    format: VideoFormat,
    info: gst_video::VideoInfo,
    /// The first sample, pulled by `open` to learn the format.
    pending: Option<gst::Sample>,
    /// (wall-clock ns, PTS) of the first frame.
    origin: Option<(u64, gst::ClockTime)>,
    sequence: u64,
}

/// The full pipeline text for a user description.
pub fn full_description(description: &str, size: Option<(u32, u32)>) -> String {
    let size_caps = size
        .map(|(w, h)| format!(",width={w},height={h}"))
        .unwrap_or_default();
    format!(
        "{description} ! videoconvert ! videoscale ! video/x-raw,format=I420{size_caps} \
         ! appsink name={SINK_NAME} sync=false max-buffers=4 drop=false"
    )
}

impl GstSource {
    /// Builds and starts the pipeline, then waits for the first frame.
    /// `size` forces scaling to that size; `requested` supplies the frame
    /// rate when the stream does not state one.
    pub fn open(
        description: &str,
        size: Option<(u32, u32)>,
        requested: &VideoFormat,
    ) -> anyhow::Result<Self> {
        gst::init().context("initialising GStreamer")?;
        let full = full_description(description, size);
        let element = gst::parse::launch(&full).map_err(|e| {
            crate::exit::usage(format!(
                "cannot build GStreamer pipeline: {}\n  pipeline: {full}",
                e.message()
            ))
        })?;
        let pipeline = element
            .downcast::<gst::Pipeline>()
            .map_err(|_| anyhow!("pipeline {full:?} did not parse into a pipeline"))?;
        let sink = pipeline
            .by_name(SINK_NAME)
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| anyhow!("pipeline {full:?} has no appsink {SINK_NAME}"))?;
        let mut src = Self {
            pipeline,
            sink,
            description: description.to_string(),
            format: *requested,
            info: gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 2, 2)
                .build()
                .context("building a placeholder video info")?,
            pending: None,
            origin: None,
            sequence: 0,
        };
        src.pipeline.set_state(gst::State::Playing).map_err(|_| {
            let why = src
                .bus_error()
                .unwrap_or_else(|| "state change failed".into());
            anyhow!("cannot start GStreamer pipeline: {why}\n  pipeline: {full}")
        })?;
        let deadline = Instant::now() + FIRST_FRAME_TIMEOUT;
        let sample = loop {
            if let Some(err) = src.bus_error() {
                bail!("GStreamer source failed: {err}\n  pipeline: {full}");
            }
            if let Some(s) = src.sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
                break s;
            }
            if src.sink.is_eos() {
                bail!("GStreamer source ended before its first frame\n  pipeline: {full}");
            }
            if Instant::now() >= deadline {
                bail!(
                    "no video from gst source within {} s: is the sender running? pipeline: {full}",
                    FIRST_FRAME_TIMEOUT.as_secs()
                );
            }
        };
        src.adopt_caps(&sample, requested)?;
        src.pending = Some(sample);
        log::info!(
            "gst source {:?}: {}x{} I420 at {}/{} fps",
            src.description,
            src.format.width,
            src.format.height,
            src.format.fps_num,
            src.format.fps_den
        );
        Ok(src)
    }

    /// Reads width/height/rate from the sample's caps.
    fn adopt_caps(&mut self, sample: &gst::Sample, requested: &VideoFormat) -> anyhow::Result<()> {
        let caps = sample
            .caps()
            .context("first GStreamer sample carries no caps")?;
        let info = gst_video::VideoInfo::from_caps(caps)
            .with_context(|| format!("unreadable video caps {caps}"))?;
        if info.format() != gst_video::VideoFormat::I420 {
            bail!("appsink delivered {:?}, expected I420", info.format());
        }
        let fps = info.fps();
        let (fps_num, fps_den) = if fps.numer() > 0 && fps.denom() > 0 {
            (fps.numer() as u32, fps.denom() as u32)
        } else {
            log::warn!(
                "gst source has no frame rate in its caps (typical for RTP); assuming {}/{} fps: set #fps=N on the camera if that is wrong",
                requested.fps_num,
                requested.fps_den
            );
            (requested.fps_num, requested.fps_den)
        };
        self.format = VideoFormat {
            width: info.width(),
            height: info.height(),
            fps_num,
            fps_den,
            pixel_format: PixelFormat::I420,
        };
        self.info = info;
        Ok(())
    }

    /// The first error message waiting on the bus, with the element's name.
    fn bus_error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(err) = msg.view() {
                let element = err
                    .src()
                    .map(|s| s.name().to_string())
                    .unwrap_or_else(|| "pipeline".into());
                let debug = err.debug().map(|d| format!(" ({d})")).unwrap_or_default();
                return Some(format!("{element}: {}{debug}", err.error()));
            }
        }
        None
    }

    fn timestamp(&mut self, pts: Option<gst::ClockTime>) -> u64 {
        let now = super::synthetic::realtime_now_ns();
        let Some(pts) = pts else { return now };
        match self.origin {
            None => {
                self.origin = Some((now, pts));
                now
            }
            Some((wall0, pts0)) => {
                let delta = pts.nseconds() as i128 - pts0.nseconds() as i128;
                (wall0 as i128 + delta).max(0) as u64
            }
        }
    }

    fn copy_sample(&self, sample: &gst::Sample, buf: &mut [u8]) -> Result<(), CaptureError> {
        let failed = |m: String| CaptureError::Failed(format!("gst source: {m}"));
        if let Some(caps) = sample.caps() {
            if let Ok(info) = gst_video::VideoInfo::from_caps(caps) {
                if (info.width(), info.height()) != (self.format.width, self.format.height) {
                    return Err(failed(format!(
                        "the stream changed size from {}x{} to {}x{} mid-recording; \
                         add #width=..,height=.. to the camera to scale it",
                        self.format.width,
                        self.format.height,
                        info.width(),
                        info.height()
                    )));
                }
            }
        }
        let buffer = sample
            .buffer()
            .ok_or_else(|| failed("sample without buffer".into()))?;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &self.info)
            .map_err(|e| failed(format!("cannot map frame: {e}")))?;
        let (w, h) = (self.format.width as usize, self.format.height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (y, rest) = buf.split_at_mut(w * h);
        let (u, v) = rest.split_at_mut(cw * ch);
        let strides = frame.plane_stride();
        for (plane, (dst, width, rows)) in [(y, w, h), (u, cw, ch), (v, cw, ch)]
            .into_iter()
            .enumerate()
        {
            let data = frame
                .plane_data(plane as u32)
                .map_err(|e| failed(format!("plane {plane}: {e}")))?;
            let stride = usize::try_from(strides[plane])
                .map_err(|_| failed(format!("negative stride on plane {plane}")))?;
            copy_plane(data, stride, width, rows, dst).map_err(|e| failed(format!("{e:#}")))?;
        }
        Ok(())
    }
}

impl CaptureSource for GstSource {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn next_frame(&mut self, buf: &mut [u8]) -> Result<Option<FrameMeta>, CaptureError> {
        if buf.len() != self.format.frame_bytes() {
            return Err(CaptureError::Failed(format!(
                "gst source: frame buffer is {} bytes, expected {}",
                buf.len(),
                self.format.frame_bytes()
            )));
        }
        let sample = match self.pending.take() {
            Some(s) => s,
            None => {
                let deadline = Instant::now() + STALL_TIMEOUT;
                loop {
                    if let Some(err) = self.bus_error() {
                        return Err(CaptureError::Failed(format!(
                            "GStreamer source failed: {err}"
                        )));
                    }
                    if let Some(s) = self
                        .sink
                        .try_pull_sample(gst::ClockTime::from_nseconds(POLL.as_nanos() as u64))
                    {
                        break s;
                    }
                    if self.sink.is_eos() {
                        return Ok(None);
                    }
                    if Instant::now() >= deadline {
                        return Err(CaptureError::Disconnected(format!(
                            "no video from gst source for {} s (pipeline: {})",
                            STALL_TIMEOUT.as_secs(),
                            self.description
                        )));
                    }
                }
            }
        };
        self.copy_sample(&sample, buf)?;
        let pts = sample.buffer().and_then(|b| b.pts());
        let capture_ts_ns = self.timestamp(pts);
        let sequence = self.sequence;
        self.sequence += 1;
        Ok(Some(FrameMeta {
            capture_ts_ns,
            sequence: Some(sequence),
            lost_before: 0,
        }))
    }
}

impl Drop for GstSource {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_gets_converter_and_sink() {
        let d = full_description("videotestsrc", Some((320, 240)));
        assert_eq!(
            d,
            "videotestsrc ! videoconvert ! videoscale ! video/x-raw,format=I420,width=320,height=240 \
             ! appsink name=s6sink sync=false max-buffers=4 drop=false"
        );
        assert!(!full_description("videotestsrc", None).contains("width"));
    }
}
