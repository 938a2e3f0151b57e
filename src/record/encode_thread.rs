//! The encoder thread of one camera: pops frames from the ring, converts them
//! to the backend's input layout, encodes them through the plugin, and writes
//! each episode's fragmented MP4 and frame index.

use super::control::Control;
use super::pool::{EncoderEnd, FilledFrame, RingItem};
use crate::dataset::index::{IndexHeader, IndexRecord, IndexWriter};
use crate::frame::{EncodedPacket, FrameMeta, VideoFormat};
use crate::metrics::trace::TraceBuffer;
use crate::metrics::{CameraCounters, StageHistograms};
use crate::mux::{Fmp4Writer, TrackConfig};
use crate::plugin_host::{Backend, EncoderSession, EncoderSettings};
use anyhow::Context;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What encoder threads tell the controller.
#[derive(Debug)]
pub enum EncoderEvent {
    /// A camera has finished an episode: its MP4 and index are complete.
    EpisodeDone(EpisodeDone),
    /// A camera's threads are gone (stop, end of source, or a fault).
    Closed {
        /// Camera name.
        camera: String,
        /// Why, when it failed.
        error: Option<String>,
    },
}

/// A camera's result for one episode.
#[derive(Debug)]
pub struct EpisodeDone {
    /// Camera name.
    pub camera: String,
    /// Episode number.
    pub episode: u32,
    /// Frames written to the MP4 (and index).
    pub frames: u64,
    /// Capture timestamp of the first frame.
    pub first_capture_ns: u64,
    /// Capture timestamp of the last frame.
    pub last_capture_ns: u64,
    /// Frames the source lost during the episode.
    pub dropped: u64,
    /// Set when the episode could not be written completely.
    pub error: Option<String>,
}

/// What an encoder thread hands back when it ends.
pub struct EncoderReport {
    /// Stage latencies.
    pub stages: StageHistograms,
    /// Trace events.
    pub trace: TraceBuffer,
    /// Fatal error, if any.
    pub error: Option<String>,
}

/// Everything the encoder loop needs.
pub struct EncodeThread {
    /// Camera name (file stem).
    pub camera: String,
    /// Raw format the capture thread delivers.
    pub format: VideoFormat,
    /// Encoder backend.
    pub backend: Backend,
    /// Encoder settings.
    pub settings: EncoderSettings,
    /// Ring ends.
    pub ring: EncoderEnd,
    /// Shared state.
    pub control: Arc<Control>,
    /// Shared counters.
    pub counters: Arc<CameraCounters>,
    /// `<dataset>/episodes`.
    pub episodes_dir: PathBuf,
    /// Completion reports go here.
    pub done: Sender<EncoderEvent>,
    /// Trace buffer.
    pub trace: TraceBuffer,
}

/// One episode being written by one camera.
struct EpisodeWriter {
    episode: u32,
    mp4_path: PathBuf,
    codec: crate::frame::CodecId,
    format: VideoFormat,
    session: EncoderSession,
    mp4: Option<Fmp4Writer>,
    index: IndexWriter,
    /// Frames handed to the encoder whose packet has not come out yet.
    pending: VecDeque<(u64, FrameMeta, Instant)>,
    /// Packets produced before the MP4 could be created (no config record yet).
    early: Vec<EncodedPacket>,
    frames: u64,
    dropped: u64,
    /// Dropped rows written to the index so far (timeline slot offset).
    rows_lost: u64,
    /// Source sequence numbers of the first and last captured frame.
    first_sequence: Option<u64>,
    last_sequence: Option<u64>,
    first_capture_ns: u64,
    last_capture_ns: u64,
}

impl EncodeThread {
    /// Runs until the capture side closes.
    pub fn run(mut self) -> EncoderReport {
        let mut stages = StageHistograms::default();
        let mut writer: Option<EpisodeWriter> = None;
        // Conversion output, and a second buffer for two-step conversions
        // (MJPEG → I420 → NV12); both reused from frame to frame.
        let mut converted: (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
        let mut packets: Vec<EncodedPacket> = Vec::with_capacity(8);
        let mut error = None;
        loop {
            let Some(item) = self.ring.pop() else {
                std::thread::park_timeout(Duration::from_millis(5));
                continue;
            };
            match item {
                RingItem::Frame(frame) => {
                    if self.control.get().aborting() {
                        self.ring.recycle(frame.buf);
                        continue;
                    }
                    let episode = frame.episode;
                    let result = self.encode_frame(
                        &mut writer,
                        frame,
                        &mut converted,
                        &mut packets,
                        &mut stages,
                    );
                    if let Err(e) = result {
                        let msg = format!("camera {}: episode {episode}: {e:#}", self.camera);
                        log::error!("{msg}");
                        if let Some(w) = writer.take() {
                            self.finish(w, Some(msg.clone()));
                        }
                        error = Some(msg);
                    }
                }
                RingItem::EndEpisode { episode } => {
                    if let Some(w) = writer.take() {
                        debug_assert_eq!(w.episode, episode);
                        self.finish(w, None);
                    } else {
                        // No frame reached the encoder (or it failed): still answer.
                        let _ = self.done.send(EncoderEvent::EpisodeDone(EpisodeDone {
                            camera: self.camera.clone(),
                            episode,
                            frames: 0,
                            first_capture_ns: 0,
                            last_capture_ns: 0,
                            dropped: 0,
                            error: error.clone(),
                        }));
                    }
                }
                RingItem::Closed {
                    error: capture_error,
                } => {
                    if let Some(w) = writer.take() {
                        self.finish(w, capture_error.clone());
                    }
                    if error.is_none() {
                        error = capture_error;
                    }
                    let _ = self.done.send(EncoderEvent::Closed {
                        camera: self.camera.clone(),
                        error: error.clone(),
                    });
                    break;
                }
            }
        }
        EncoderReport {
            stages,
            trace: self.trace,
            error,
        }
    }

    fn open_episode(&self, episode: u32) -> anyhow::Result<EpisodeWriter> {
        let dir = self
            .episodes_dir
            .join(crate::dataset::layout::episode_dir_name(episode));
        let f = &self.format;
        let mut session = self
            .backend
            .open(f.width, f.height, f.fps_num, f.fps_den, &self.settings)
            .with_context(|| format!("cannot open the {} encoder", self.backend.name()))?;
        // What this session really codes (a V4L2 M2M device may code FWHT
        // although the plugin's table says H.264): never mux it as anything else.
        let codec = session.codec();
        if !crate::mux::can_carry(codec) {
            anyhow::bail!(
                "{}: the device codes {}, which MP4 cannot carry here",
                self.backend.name(),
                crate::plugin_host::report::codec_str(codec).to_ascii_uppercase()
            );
        }
        let header = IndexHeader {
            camera: self.camera.clone(),
            width: f.width,
            height: f.height,
            fps_num: f.fps_num,
            fps_den: f.fps_den,
            codec: crate::plugin_host::report::codec_str(codec).to_string(),
            created_unix_ns: now_unix_ns(),
        };
        let index = IndexWriter::create(&dir.join(format!("{}.idx", self.camera)), &header)?;
        Ok(EpisodeWriter {
            episode,
            mp4_path: dir.join(format!("{}.mp4", self.camera)),
            codec,
            format: self.format,
            session,
            mp4: None,
            index,
            pending: VecDeque::with_capacity(64),
            early: Vec::new(),
            frames: 0,
            dropped: 0,
            rows_lost: 0,
            first_sequence: None,
            last_sequence: None,
            first_capture_ns: 0,
            last_capture_ns: 0,
        })
    }

    fn encode_frame(
        &mut self,
        writer: &mut Option<EpisodeWriter>,
        frame: FilledFrame,
        converted: &mut (Vec<u8>, Vec<u8>),
        packets: &mut Vec<EncodedPacket>,
        stages: &mut StageHistograms,
    ) -> anyhow::Result<()> {
        let dequeued = Instant::now();
        if writer.as_ref().is_none_or(|w| w.episode != frame.episode) {
            if let Some(old) = writer.take() {
                self.finish(old, None);
            }
            *writer = Some(self.open_episode(frame.episode)?);
        }
        let Some(w) = writer.as_mut() else {
            unreachable!("writer opened above")
        };
        let captured_at = instant_from_unix_ns(frame.meta.capture_ts_ns, dequeued);
        stages
            .queue
            .record_us(dequeued.saturating_duration_since(captured_at).as_micros() as u64);
        w.dropped += frame.meta.lost_before;

        let want = self.backend.preferred_input();
        let (fw, fh) = (self.format.width, self.format.height);
        let data: &[u8] = if want == self.format.pixel_format {
            &frame.buf
        } else if crate::convert::is_supported(self.format.pixel_format, want) {
            let t = Instant::now();
            crate::convert::convert_to(
                self.format.pixel_format,
                &frame.buf,
                fw,
                fh,
                want,
                &mut converted.0,
            )?;
            stages.convert.record_us(t.elapsed().as_micros() as u64);
            &converted.0
        } else {
            // Two steps through I420 (e.g. MJPEG decoded, then NV12 for V4L2 M2M).
            let t = Instant::now();
            let (staged, out) = converted;
            crate::convert::convert_to(
                self.format.pixel_format,
                &frame.buf,
                fw,
                fh,
                crate::frame::PixelFormat::I420,
                staged,
            )?;
            crate::convert::convert_to(crate::frame::PixelFormat::I420, staged, fw, fh, want, out)?;
            stages.convert.record_us(t.elapsed().as_micros() as u64);
            &converted.1
        };
        let t_enc = Instant::now();
        packets.clear();
        let encode_result = w
            .session
            .encode(data, frame.index as i64, frame.index == 0, packets);
        let t_enc_end = Instant::now();
        stages
            .encode
            .record_us(t_enc_end.duration_since(t_enc).as_micros() as u64);
        self.trace
            .span("encode", t_enc, t_enc_end, frame.episode, frame.index);
        w.pending.push_back((frame.index, frame.meta, captured_at));
        let index = frame.index;
        self.ring.recycle(frame.buf);
        encode_result?;
        let t_mux = Instant::now();
        write_packets(w, packets, stages, &self.counters)?;
        stages.mux.record_us(t_mux.elapsed().as_micros() as u64);
        self.trace
            .span("mux", t_mux, Instant::now(), w.episode, index);
        Ok(())
    }

    /// Drains the encoder, completes the MP4 and index, and reports to the controller.
    fn finish(&self, mut w: EpisodeWriter, mut error: Option<String>) {
        let mut packets = Vec::new();
        let mut stages = StageHistograms::default();
        let result = (|| -> anyhow::Result<()> {
            w.session
                .flush(&mut packets)
                .context("encoder flush failed")?;
            write_packets(&mut w, &mut packets, &mut stages, &self.counters)?;
            if w.mp4.is_none() && w.frames == 0 && !w.early.is_empty() {
                anyhow::bail!("the encoder produced packets but no codec configuration");
            }
            if let Some(mp4) = w.mp4.take() {
                mp4.finish()?;
            }
            w.index.sync()?;
            if !w.pending.is_empty() {
                anyhow::bail!(
                    "{} frame(s) were never returned by the encoder",
                    w.pending.len()
                );
            }
            Ok(())
        })();
        if let Err(e) = result {
            let msg = format!("camera {}: episode {}: {e:#}", self.camera, w.episode);
            log::error!("{msg}");
            error.get_or_insert(msg);
        }
        // The kernel's own count next to ours (the VM test compares them).
        if let (Some(first), Some(last)) = (w.first_sequence, w.last_sequence) {
            log::info!(
                "camera {}: episode {}: {} frames, {} dropped, source sequence {first}..={last} ({} numbers)",
                self.camera,
                w.episode,
                w.frames,
                w.rows_lost,
                last.wrapping_sub(first) + 1
            );
        }
        let _ = self.done.send(EncoderEvent::EpisodeDone(EpisodeDone {
            camera: self.camera.clone(),
            episode: w.episode,
            frames: w.frames,
            first_capture_ns: w.first_capture_ns,
            last_capture_ns: w.last_capture_ns,
            dropped: w.dropped,
            error,
        }));
    }
}

/// Muxes `packets` and appends the matching index records; syncs the index
/// whenever the MP4 made another fragment durable.
fn write_packets(
    w: &mut EpisodeWriter,
    packets: &mut Vec<EncodedPacket>,
    stages: &mut StageHistograms,
    counters: &CameraCounters,
) -> anyhow::Result<()> {
    if packets.is_empty() {
        return Ok(());
    }
    if w.mp4.is_none() {
        match w.session.codec_config()? {
            Some(config_record) => {
                let f = w.format;
                let track = TrackConfig {
                    codec: w.codec,
                    width: f.width,
                    height: f.height,
                    fps_num: f.fps_num,
                    fps_den: f.fps_den,
                    config_record,
                };
                w.mp4 = Some(Fmp4Writer::create(&w.mp4_path, track)?);
            }
            None => {
                w.early.append(packets);
                return Ok(());
            }
        }
    }
    let Some(mp4) = w.mp4.as_mut() else {
        return Ok(());
    };
    let durable_before = mp4.samples_durable();
    for pkt in w.early.drain(..).chain(packets.drain(..)) {
        mp4.write_packet(&pkt)?;
        // Packets come out in frame order for the low-delay configurations we
        // use; match each to its frame's capture metadata by pts.
        while let Some(&(idx, meta, captured_at)) = w.pending.front() {
            if (idx as i64) > pkt.pts {
                break;
            }
            w.pending.pop_front();
            if idx as i64 != pkt.pts {
                anyhow::bail!("encoder skipped frame {idx} (got pts {})", pkt.pts);
            }
            // Frames the source skipped (V4L2 sequence gaps) get rows marked
            // dropped, so row k of the index is source sequence number
            // `first_sequence + k`: the index counts exactly what the
            // kernel counted. Their timestamps are spread evenly between the
            // neighbouring captured frames; their pts is -1 (not in the video).
            let lost = meta.lost_before;
            for k in 0..lost {
                let (prev, cur) = (w.last_capture_ns, meta.capture_ts_ns);
                let ts = prev + cur.saturating_sub(prev) * (k + 1) / (lost + 1);
                w.index.append(&IndexRecord {
                    frame_index: idx + w.rows_lost,
                    capture_ts_ns: ts,
                    pts: -1,
                    size: 0,
                    keyframe: false,
                    spilled: false,
                    dropped: true,
                })?;
                w.rows_lost += 1;
            }
            if w.first_sequence.is_none() {
                w.first_sequence = meta.sequence;
            }
            if meta.sequence.is_some() {
                w.last_sequence = meta.sequence;
            }
            w.index.append(&IndexRecord {
                frame_index: idx + w.rows_lost,
                capture_ts_ns: meta.capture_ts_ns,
                pts: pkt.pts,
                size: pkt.data.len() as u32,
                keyframe: pkt.keyframe,
                spilled: false,
                dropped: false,
            })?;
            if w.frames == 0 {
                w.first_capture_ns = meta.capture_ts_ns;
            }
            w.last_capture_ns = meta.capture_ts_ns;
            w.frames += 1;
            counters.encoded.fetch_add(1, Ordering::Relaxed);
            stages
                .total
                .record_us(captured_at.elapsed().as_micros() as u64);
        }
    }
    if mp4.samples_durable() != durable_before {
        w.index.sync()?;
    }
    Ok(())
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Maps a realtime capture timestamp onto the monotonic clock, given that
/// `now` corresponds to the current realtime clock.
fn instant_from_unix_ns(capture_ns: u64, now: Instant) -> Instant {
    let age = now_unix_ns().saturating_sub(capture_ns);
    now.checked_sub(Duration::from_nanos(age)).unwrap_or(now)
}
