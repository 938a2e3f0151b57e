//! `--sink "GST-DESCRIPTION"`: frames pushed through `appsrc` into a
//! GStreamer pipeline, one pipeline per camera:
//! `appsrc name=s6src format=time caps=video/x-raw,format=I420,width=W,height=H,framerate=N/D
//!  ! <DESCRIPTION>`. `{camera}` in the description is replaced by the
//! camera name (e.g. `filesink location=/tmp/{camera}.yuv`).
//!
//! Buffer timestamps follow the recorded capture spacing (continuous across
//! episodes and repeats). The appsrc blocks when its queue is full, so a
//! slow sink slows the replay down instead of growing memory; at the end
//! the pipeline gets EOS and replay waits for it to drain (so a `filesink`
//! has written everything).

use super::frame::ReplayFrame;
use anyhow::{anyhow, Context};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long `finish` waits for a pipeline to drain.
const EOS_TIMEOUT: Duration = Duration::from_secs(30);

struct CameraPipeline {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    /// Next buffer's PTS base and the capture timestamp it maps to.
    segment: Option<(u64, u64)>,
    /// PTS + duration of the last buffer pushed.
    end_ns: u64,
    episode: Option<u32>,
    frames: u64,
}

/// One pipeline per camera, created on the camera's first frame.
pub struct GstSink {
    description: String,
    cameras: BTreeMap<String, CameraPipeline>,
}

impl GstSink {
    /// Checks that GStreamer starts; pipelines are built per camera later.
    pub fn new(description: &str) -> anyhow::Result<Self> {
        gst::init().context("initialising GStreamer")?;
        if description.trim().is_empty() {
            return Err(crate::exit::usage(
                "--sink needs a GStreamer description, e.g. --sink fakesink",
            ));
        }
        Ok(Self {
            description: description.to_string(),
            cameras: BTreeMap::new(),
        })
    }

    fn open(&self, f: &ReplayFrame) -> anyhow::Result<CameraPipeline> {
        let user = self.description.replace("{camera}", &f.camera);
        let desc = format!(
            "appsrc name=s6src format=time is-live=false block=true max-bytes={} \
             caps=video/x-raw,format=I420,width={},height={},framerate={}/{} ! {user}",
            4 * f.data.len().max(1),
            f.format.width,
            f.format.height,
            f.format.fps_num,
            f.format.fps_den.max(1)
        );
        let pipeline = gst::parse::launch(&desc)
            .map_err(|e| {
                crate::exit::usage(format!(
                    "cannot build the --sink pipeline: {}\n  pipeline: {desc}",
                    e.message()
                ))
            })?
            .downcast::<gst::Pipeline>()
            .map_err(|_| anyhow!("--sink did not parse into a pipeline"))?;
        let src = pipeline
            .by_name("s6src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .context("no appsrc in the --sink pipeline")?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| anyhow!("the --sink pipeline failed to start ({e}): {desc}"))?;
        Ok(CameraPipeline {
            pipeline,
            src,
            segment: None,
            end_ns: 0,
            episode: None,
            frames: 0,
        })
    }

    /// Pushes one frame into its camera's pipeline (the pixels move into
    /// the GStreamer buffer without a copy).
    pub fn push(&mut self, f: ReplayFrame) -> anyhow::Result<()> {
        if !self.cameras.contains_key(&*f.camera) {
            let p = self.open(&f)?;
            self.cameras.insert(f.camera.to_string(), p);
        }
        let p = self
            .cameras
            .get_mut(&*f.camera)
            .context("camera pipeline vanished")?;
        if let Some(err) = bus_error(&p.pipeline) {
            anyhow::bail!("--sink pipeline of camera {} failed: {err}", f.camera);
        }
        if p.episode != Some(f.episode) {
            // A new segment starts one frame after the previous one ended.
            p.segment = Some((p.end_ns, f.capture_ts_ns));
            p.episode = Some(f.episode);
        }
        let (base_pts, base_ts) = p.segment.unwrap_or((0, f.capture_ts_ns));
        let pts = base_pts + f.capture_ts_ns.saturating_sub(base_ts);
        let duration = f.format.frame_interval_ns();
        let mut buffer = gst::Buffer::from_mut_slice(f.data);
        {
            let b = buffer.get_mut().context("fresh buffer is not writable")?;
            b.set_pts(gst::ClockTime::from_nseconds(pts));
            b.set_duration(gst::ClockTime::from_nseconds(duration));
            b.set_offset(f.frame_index);
        }
        p.end_ns = p.end_ns.max(pts + duration);
        p.src.push_buffer(buffer).map_err(|e| {
            let why = bus_error(&p.pipeline).unwrap_or_else(|| format!("{e:?}"));
            anyhow!(
                "--sink pipeline of camera {} refused a frame: {why}",
                f.camera
            )
        })?;
        p.frames += 1;
        Ok(())
    }

    /// Repeats restart the timeline segment-wise like a new episode.
    pub fn new_pass(&mut self) {
        for p in self.cameras.values_mut() {
            p.episode = None;
        }
    }

    /// Sends EOS to every pipeline and waits until each has drained.
    /// Returns frames pushed per camera.
    pub fn finish(self) -> anyhow::Result<BTreeMap<String, u64>> {
        let mut counts = BTreeMap::new();
        let mut first_err = None;
        for (camera, p) in self.cameras {
            let _ = p.src.end_of_stream();
            let result = wait_eos(&p.pipeline);
            let _ = p.pipeline.set_state(gst::State::Null);
            if let Err(e) = result {
                first_err.get_or_insert(anyhow!("--sink pipeline of camera {camera}: {e:#}"));
            }
            counts.insert(camera, p.frames);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(counts),
        }
    }
}

fn bus_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = msg.view() {
            return Some(format!("{} ({:?})", e.error(), e.debug()));
        }
    }
    None
}

fn wait_eos(pipeline: &gst::Pipeline) -> anyhow::Result<()> {
    let bus = pipeline.bus().context("pipeline without bus")?;
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(EOS_TIMEOUT.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(e)) => {
            anyhow::bail!("{} ({:?})", e.error(), e.debug())
        }
        _ => anyhow::bail!(
            "did not drain within {} s after end of stream",
            EOS_TIMEOUT.as_secs()
        ),
    }
}
