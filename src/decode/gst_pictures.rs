//! H.264 (and AV1 without dav1d) pictures through GStreamer:
//! `appsrc ! decodebin ! videoconvert ! video/x-raw,format=I420 ! appsink`.
//!
//! Samples are pushed as Annex-B access units (H.264, SPS/PPS before every
//! keyframe) or OBU temporal units (AV1, sequence header first), each with
//! its presentation time, which decoders carry through to the pictures.

use super::pictures::{pack_i420, Picture, PictureDecoder};
use crate::frame::CodecId;
use crate::mux::reader::TrackInfo;
use anyhow::{anyhow, bail, Context};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use std::time::Duration;

/// Pictures allowed in flight before `push` waits for the decoder.
const MAX_IN_FLIGHT: u64 = 32;
/// How long a blocking pull waits for one picture.
const PULL_TIMEOUT: Duration = Duration::from_secs(20);
/// Nominal spacing of the timestamps given to buffers.
const TICK_NS: u64 = 1_000_000;

/// A GStreamer decoding pipeline fed through appsrc.
pub struct GstPictures {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    codec: CodecId,
    config: Vec<u8>,
    sent_config: bool,
    pushed: u64,
    pulled: u64,
    finished: bool,
    eos: bool,
    name: String,
}

impl GstPictures {
    /// Builds and starts the pipeline for `track`.
    pub fn new(track: &TrackInfo) -> anyhow::Result<Self> {
        gst::init().context("initialising GStreamer")?;
        let caps = match track.codec {
            CodecId::H264 => "video/x-h264,stream-format=byte-stream,alignment=au",
            CodecId::Av1 => "video/x-av1,stream-format=obu-stream,alignment=tu",
            other => bail!("GStreamer decoding of {other:?} is not supported"),
        };
        let desc = format!(
            "appsrc name=src is-live=false format=time caps=\"{caps},width={},height={}\" \
             ! decodebin ! videoconvert ! video/x-raw,format=I420 \
             ! appsink name=sink sync=false",
            track.width, track.height
        );
        let pipeline = gst::parse::launch(&desc)
            .map_err(|e| anyhow!("cannot build the decoding pipeline {desc:?}: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| anyhow!("the decoding pipeline is not a pipeline"))?;
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .context("no appsrc in the decoding pipeline")?;
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .context("no appsink in the decoding pipeline")?;
        pipeline
            .set_state(gst::State::Playing)
            .context("starting the GStreamer decoding pipeline")?;
        let name = match track.codec {
            CodecId::H264 => "gstreamer (H.264)",
            _ => "gstreamer (AV1)",
        }
        .to_string();
        Ok(Self {
            pipeline,
            src,
            sink,
            codec: track.codec,
            config: track.config_record.clone(),
            sent_config: false,
            pushed: 0,
            pulled: 0,
            finished: false,
            eos: false,
            name,
        })
    }

    /// An error from the bus, if the pipeline failed.
    fn bus_error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = msg.view() {
                return Some(format!("{} ({:?})", e.error(), e.debug()));
            }
        }
        None
    }

    /// Converts one sample to what the appsrc caps promise.
    fn stream_bytes(&mut self, data: Vec<u8>, keyframe: bool) -> anyhow::Result<Vec<u8>> {
        match self.codec {
            CodecId::H264 => {
                let mut out = Vec::with_capacity(data.len() + self.config.len() + 16);
                if keyframe || !self.sent_config {
                    out.extend_from_slice(&self.config);
                    self.sent_config = true;
                }
                length_prefixed_to_annex_b(&data, &mut out)?;
                Ok(out)
            }
            _ => {
                if self.sent_config {
                    return Ok(data);
                }
                self.sent_config = true;
                let mut out = self.config.clone();
                out.extend_from_slice(&data);
                Ok(out)
            }
        }
    }

    fn convert(&mut self, sample: &gst::Sample) -> anyhow::Result<Picture> {
        let caps = sample.caps().context("decoded sample without caps")?;
        let info = gst_video::VideoInfo::from_caps(caps).context("decoded caps")?;
        let buffer = sample.buffer().context("decoded sample without buffer")?;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
            .map_err(|e| anyhow!("cannot map a decoded frame: {e}"))?;
        let strides = frame.plane_stride();
        let plane = |i: u32| {
            frame
                .plane_data(i)
                .map_err(|e| anyhow!("decoded plane {i}: {e}"))
        };
        let stride = |i: usize| usize::try_from(strides[i]).context("negative stride");
        let data = pack_i420(
            [
                (plane(0)?, stride(0)?),
                (plane(1)?, stride(1)?),
                (plane(2)?, stride(2)?),
            ],
            info.width() as usize,
            info.height() as usize,
        )?;
        let pts = buffer
            .pts()
            .map(|t| (t.nseconds().saturating_add(TICK_NS / 2) / TICK_NS) as i64);
        self.pulled += 1;
        Ok(Picture { pts, data })
    }

    fn pull_within(&mut self, timeout: Duration) -> anyhow::Result<Option<Picture>> {
        if self.eos {
            return Ok(None);
        }
        let wait = gst::ClockTime::from_nseconds(timeout.as_nanos() as u64);
        match self.sink.try_pull_sample(wait) {
            Some(sample) => self.convert(&sample).map(Some),
            None => {
                if let Some(err) = self.bus_error() {
                    bail!("GStreamer decoding failed: {err}");
                }
                if self.sink.is_eos() {
                    self.eos = true;
                }
                Ok(None)
            }
        }
    }
}

impl PictureDecoder for GstPictures {
    fn push(&mut self, data: Vec<u8>, pts: i64, keyframe: bool) -> anyhow::Result<()> {
        let bytes = self.stream_bytes(data, keyframe)?;
        let mut buffer = gst::Buffer::from_mut_slice(bytes);
        {
            let b = buffer.get_mut().context("fresh buffer is not writable")?;
            let t = gst::ClockTime::from_nseconds(pts.max(0) as u64 * TICK_NS);
            b.set_pts(t);
            b.set_dts(gst::ClockTime::NONE);
            b.set_duration(gst::ClockTime::from_nseconds(TICK_NS));
            if !keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        self.src
            .push_buffer(buffer)
            .map_err(|e| anyhow!("the decoder refused a sample: {e:?}"))?;
        self.pushed += 1;
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        if !self.finished {
            self.finished = true;
            self.src
                .end_of_stream()
                .map_err(|e| anyhow!("cannot end the decoding stream: {e:?}"))?;
        }
        Ok(())
    }

    fn pull(&mut self) -> anyhow::Result<Option<Picture>> {
        if self.finished {
            // Block: every picture still in flight comes out, then EOS.
            let picture = self.pull_within(PULL_TIMEOUT)?;
            if picture.is_none() && !self.eos {
                bail!(
                    "GStreamer decoder stalled: no picture or end of stream within {} s",
                    PULL_TIMEOUT.as_secs()
                );
            }
            return Ok(picture);
        }
        let in_flight = self.pushed.saturating_sub(self.pulled);
        let wait = if in_flight >= MAX_IN_FLIGHT {
            PULL_TIMEOUT
        } else {
            Duration::ZERO
        };
        self.pull_within(wait)
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for GstPictures {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Converts an MP4 sample (4-byte big-endian NAL lengths) to Annex-B.
pub fn length_prefixed_to_annex_b(sample: &[u8], out: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut pos = 0usize;
    while pos < sample.len() {
        let len_bytes = sample
            .get(pos..pos + 4)
            .context("truncated NAL length in an H.264 sample")?;
        let len =
            u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        let nal = sample
            .get(pos + 4..pos + 4 + len)
            .context("NAL length runs past the end of an H.264 sample")?;
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        pos += 4 + len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_conversion() {
        let mut out = Vec::new();
        length_prefixed_to_annex_b(&[0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x41], &mut out).unwrap();
        assert_eq!(out, vec![0, 0, 0, 1, 0x65, 1, 0, 0, 0, 1, 0x41]);
        assert!(length_prefixed_to_annex_b(&[0, 0, 0, 9, 1], &mut Vec::new()).is_err());
    }
}
