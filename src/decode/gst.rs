//! Decoding through GStreamer: `filesrc ! qtdemux ! decodebin ! fakesink`,
//! counting the decoded buffers that reach the sink.

use super::DecodeOutcome;
use crate::mux::Mp4Scan;
use gstreamer as gst;
use gstreamer::prelude::*;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Decodes `path` and counts the frames.
pub fn decode(path: &Path, scan: &Mp4Scan) -> DecodeOutcome {
    match run(path, scan) {
        Ok(outcome) => outcome,
        Err(err) => DecodeOutcome::Unavailable(format!("GStreamer decoding unavailable: {err:#}")),
    }
}

fn run(path: &Path, scan: &Mp4Scan) -> anyhow::Result<DecodeOutcome> {
    gst::init()?;
    if gst::ElementFactory::find("qtdemux").is_none() {
        anyhow::bail!("the qtdemux element is missing (Debian: gstreamer1.0-plugins-good)");
    }
    let caps_name = match scan.track.codec {
        crate::frame::CodecId::H264 => "video/x-h264",
        _ => "video/x-av1",
    };
    let has_decoder = gst::ElementFactory::factories_with_type(
        gst::ElementFactoryType::DECODER | gst::ElementFactoryType::MEDIA_VIDEO,
        gst::Rank::MARGINAL,
    )
    .iter()
    .any(|f| {
        f.static_pad_templates().iter().any(|t| {
            t.direction() == gst::PadDirection::Sink
                && t.caps().iter().any(|s| s.name() == caps_name)
        })
    });
    if !has_decoder {
        anyhow::bail!(
            "no GStreamer decoder for {caps_name} (Debian: gstreamer1.0-libav for H.264, gstreamer1.0-plugins-bad for AV1)"
        );
    }

    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_string_lossy().as_ref())
        .build()?;
    let demux = gst::ElementFactory::make("qtdemux").build()?;
    let decodebin = gst::ElementFactory::make("decodebin").build()?;
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .build()?;
    pipeline.add_many([&src, &demux, &decodebin, &sink])?;
    src.link(&demux)?;

    let dec_sink = decodebin
        .static_pad("sink")
        .ok_or_else(|| anyhow::anyhow!("decodebin has no sink pad"))?;
    demux.connect_pad_added(move |_, pad| {
        if pad.name().starts_with("video") && !dec_sink.is_linked() {
            let _ = pad.link(&dec_sink);
        }
    });
    let sink_weak = sink.downgrade();
    decodebin.connect_pad_added(move |_, pad| {
        let Some(sink) = sink_weak.upgrade() else {
            return;
        };
        if let Some(sink_pad) = sink.static_pad("sink") {
            if !sink_pad.is_linked() {
                let _ = pad.link(&sink_pad);
            }
        }
    });

    let frames = Arc::new(AtomicU64::new(0));
    let counter = frames.clone();
    sink.static_pad("sink")
        .ok_or_else(|| anyhow::anyhow!("fakesink has no sink pad"))?
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counter.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });

    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| anyhow::anyhow!("pipeline without bus"))?;
    let mut errors = Vec::new();
    // Generous: decoding runs much faster than real time.
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(1),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) else {
            if std::time::Instant::now() > deadline {
                errors.push("GStreamer decoding timed out".to_string());
                break;
            }
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(err) => {
                errors.push(format!("{} ({:?})", err.error(), err.debug()));
                break;
            }
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    Ok(DecodeOutcome::Decoded {
        frames: frames.load(Ordering::Relaxed),
        decoder: "gstreamer",
        errors,
    })
}
