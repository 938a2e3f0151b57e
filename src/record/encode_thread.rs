//! The encoder thread of one camera: pops frames from the ring, converts them
//! to the backend's input layout, encodes them through the plugin, and writes
//! each episode's fragmented MP4 and frame index.
//!
//! Frames come from the ring, or — after a [`RingItem::SpillBegin`] marker —
//! from the camera's spill channel ([`super::spill`]) until its `Resume`, so
//! they are encoded strictly in capture order. A spilled frame's file is
//! deleted once its sample is in a durable fragment and the index is synced.

use super::control::Control;
use super::pool::{EncoderEnd, FilledFrame, RingItem, CAPTURE_EPISODE_CLOSED, CAPTURE_IN_SOURCE};
use super::spill::{SpillMsg, SpillStats};
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
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
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
    /// Frames that went through the spill path.
    pub spilled: u64,
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
    /// Spilled frames and control items while the camera spills.
    pub spill_rx: Receiver<SpillMsg>,
    /// Spill backlog figures shared with the capture thread.
    pub spill_stats: Arc<SpillStats>,
    /// `--streaming-encoding`: when false, frames of the episode being
    /// recorded wait on disk and are encoded once it has ended.
    pub streaming_encoding: bool,
}

/// Where a frame waiting for its packet came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// Through the ring.
    Ring,
    /// Read back from a spill file.
    Spill,
    /// Lost: ring full and spill failed; becomes a gap row.
    Dropped,
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
    /// Frames handed to the encoder whose packet has not come out yet (and
    /// lost frames, to write their gap rows in order).
    pending: VecDeque<(u64, FrameMeta, Instant, Origin)>,
    /// `<episode>/spill/<camera>`.
    spill_dir: PathBuf,
    /// Spilled frames muxed but maybe not durable yet: (sample number, frame index).
    spill_files: VecDeque<(u64, u64)>,
    /// Frames encoded from spill files.
    spilled: u64,
    /// Spilled frames left on disk (abort): the episode stays unfinished.
    left_in_spill: u64,
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
        yield_cpu_to_capture(&self.camera);
        let mut st = LoopState {
            stages: StageHistograms::default(),
            writer: None,
            // Conversion output, and a second buffer for two-step conversions
            // (MJPEG → I420 → NV12); both reused from frame to frame.
            converted: (Vec::new(), Vec::new()),
            packets: Vec::with_capacity(8),
            error: None,
            failed: None,
            spilling: false,
            held: None,
            left_behind: 0,
            closed_early: None,
        };
        loop {
            if !st.spilling {
                let Some(item) = self.ring.pop() else {
                    self.close_ended_episode(&mut st);
                    std::thread::park_timeout(Duration::from_millis(5));
                    continue;
                };
                match item {
                    RingItem::Frame(frame) => {
                        if self.control.get().aborting() || st.failed == Some(frame.episode) {
                            self.lost_in_ring(&frame, &st);
                            self.ring.recycle(frame.buf);
                            continue;
                        }
                        self.encode(&mut st, frame, Origin::Ring);
                    }
                    RingItem::SpillBegin => st.spilling = true,
                    RingItem::EndEpisode { episode } => self.end_episode(&mut st, episode),
                    RingItem::Closed { error } => {
                        self.close(&mut st, error);
                        break;
                    }
                }
                continue;
            }
            let msg = match st.held.take() {
                Some(m) => m,
                None => match self.spill_rx.try_recv() {
                    Ok(m) => m,
                    Err(TryRecvError::Empty) => {
                        std::thread::park_timeout(Duration::from_millis(5));
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => SpillMsg::Closed {
                        error: Some("the capture thread vanished".into()),
                    },
                },
            };
            match msg {
                SpillMsg::Frame {
                    episode,
                    index,
                    meta,
                } => {
                    let state = self.control.get();
                    if !self.streaming_encoding
                        && !state.aborting()
                        && state.recording() == Some(episode)
                    {
                        // Low-resource mode: encode once the episode has ended.
                        st.held = Some(SpillMsg::Frame {
                            episode,
                            index,
                            meta,
                        });
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    if state.aborting() || st.failed == Some(episode) {
                        // Left on disk for `encode-pending` / `recover`.
                        if let Some(w) = st.writer.as_mut().filter(|w| w.episode == episode) {
                            w.left_in_spill += 1;
                        } else {
                            st.left_behind += 1;
                        }
                    } else {
                        self.encode_spilled(&mut st, episode, index, meta);
                    }
                    self.spill_stats.on_done(true);
                }
                SpillMsg::Dropped {
                    episode,
                    index,
                    meta,
                    reason,
                } => {
                    log::debug!("camera {}: frame {index} lost: {reason}", self.camera);
                    self.gap(&mut st, episode, index, meta);
                    self.spill_stats.on_done(false);
                }
                SpillMsg::EndEpisode { episode } => {
                    self.end_episode(&mut st, episode);
                    self.spill_stats.on_done(false);
                }
                SpillMsg::Closed { error } => {
                    self.close(&mut st, error);
                    self.spill_stats.on_done(false);
                    break;
                }
                SpillMsg::Resume => st.spilling = false,
            }
        }
        EncoderReport {
            stages: st.stages,
            trace: self.trace,
            error: st.error,
        }
    }

    /// Counts a ring frame that will not be encoded (abort, failed episode).
    fn lost_in_ring(&self, frame: &FilledFrame, st: &LoopState) {
        if st.failed == Some(frame.episode) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Encodes one frame; a failure ends the episode's files as they are.
    fn encode(&mut self, st: &mut LoopState, frame: FilledFrame, origin: Origin) {
        let episode = frame.episode;
        let mut writer = st.writer.take();
        let result = self.encode_frame(
            &mut writer,
            frame,
            origin,
            &mut st.converted,
            &mut st.packets,
            &mut st.stages,
        );
        st.writer = writer;
        if let Err(e) = result {
            self.fail(st, episode, e);
        }
    }

    /// Reads a spilled frame back and encodes it; an unreadable file
    /// becomes a gap row (counted as dropped).
    fn encode_spilled(&mut self, st: &mut LoopState, episode: u32, index: u64, meta: FrameMeta) {
        let dir = super::spill::spill_dir(
            &self
                .episodes_dir
                .join(crate::dataset::layout::episode_dir_name(episode)),
            &self.camera,
        );
        let path = super::spill::spill_path(&dir, index);
        match super::spill::read_spill(&path) {
            Ok(f) => {
                let frame = FilledFrame {
                    episode,
                    index,
                    meta,
                    buf: f.data,
                };
                self.encode(st, frame, Origin::Spill);
            }
            Err(e) => {
                log::error!(
                    "camera {}: episode {episode}: frame {index} lost: {e:#}",
                    self.camera
                );
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                self.gap(st, episode, index, meta);
            }
        }
    }

    /// Records frame `index` as lost (a gap row in the index, in order).
    fn gap(&mut self, st: &mut LoopState, episode: u32, index: u64, meta: FrameMeta) {
        if st.failed == Some(episode) {
            return;
        }
        if st.writer.as_ref().is_none_or(|w| w.episode != episode) {
            if let Some(old) = st.writer.take() {
                self.finish(old, None);
            }
            match self.open_episode(episode) {
                Ok(w) => st.writer = Some(w),
                Err(e) => {
                    self.fail(st, episode, e);
                    return;
                }
            }
        }
        if let Some(w) = st.writer.as_mut() {
            w.dropped += 1;
            w.pending
                .push_back((index, meta, Instant::now(), Origin::Dropped));
        }
    }

    /// Ends `episode` after a failure: what was written stays, later frames
    /// of the episode are not encoded (their spill files stay on disk).
    fn fail(&mut self, st: &mut LoopState, episode: u32, e: anyhow::Error) {
        let msg = format!("camera {}: episode {episode}: {e:#}", self.camera);
        log::error!("{msg}");
        if is_disk_full(&e) {
            log::error!(
                "camera {}: the disk is full: stopping the recording; complete episodes are intact, \
                 free space and run `s6-edge encode-pending` / `s6-edge recover` for this one",
                self.camera
            );
            self.control.stop();
        }
        if let Some(w) = st.writer.take() {
            self.finish(w, Some(msg.clone()));
        } else {
            self.send_empty_done(episode, Some(msg.clone()));
        }
        st.failed = Some(episode);
        st.error = Some(msg);
    }

    /// Finishes the episode being written as soon as it has ended, rather
    /// than when the capture thread's end marker comes, which is only after
    /// the camera's next frame (up to a frame interval later: 66 ms at
    /// 15 fps). Safe when the ring is empty and the capture thread waits in
    /// the source: it pushed every frame captured before (the phase store
    /// releases them), and the frame it returns with is checked against the
    /// already-ended state (it reads our claim with acquire), so no frame of
    /// this episode can follow. Its end marker still comes and is ignored.
    fn close_ended_episode(&mut self, st: &mut LoopState) {
        let Some(episode) = st.writer.as_ref().map(|w| w.episode) else {
            return;
        };
        if st.spilling || self.control.get().recording() == Some(episode) {
            return;
        }
        let claimed = self.ring.stats().capture_phase.compare_exchange(
            CAPTURE_IN_SOURCE,
            CAPTURE_EPISODE_CLOSED,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if claimed.is_err() || !self.ring.is_empty() {
            // The capture thread is busy, or frames arrived meanwhile: its
            // end marker finishes the episode as usual.
            return;
        }
        if let Some(w) = st.writer.take() {
            self.finish(w, None);
            st.closed_early = Some(episode);
        }
    }

    fn end_episode(&mut self, st: &mut LoopState, episode: u32) {
        if st.closed_early == Some(episode) {
            // Finished by `close_ended_episode` already.
            st.closed_early = None;
            return;
        }
        if st.failed == Some(episode) {
            // Already reported when it failed.
            st.failed = None;
            return;
        }
        let left = std::mem::take(&mut st.left_behind);
        if let Some(w) = st.writer.take() {
            debug_assert_eq!(w.episode, episode);
            self.finish(w, None);
        } else {
            // No frame reached the encoder (or it failed): still answer.
            let error = (left > 0).then(|| {
                format!(
                    "camera {}: episode {episode}: spilled frames left on disk (aborted); run `s6-edge encode-pending`",
                    self.camera
                )
            });
            self.send_empty_done(episode, error);
        }
    }

    /// Reports `episode` as ended with no frame written.
    fn send_empty_done(&self, episode: u32, error: Option<String>) {
        let _ = self.done.send(EncoderEvent::EpisodeDone(EpisodeDone {
            camera: self.camera.clone(),
            episode,
            frames: 0,
            first_capture_ns: 0,
            last_capture_ns: 0,
            dropped: 0,
            spilled: 0,
            error,
        }));
    }

    fn close(&mut self, st: &mut LoopState, capture_error: Option<String>) {
        if let Some(w) = st.writer.take() {
            self.finish(w, capture_error.clone());
        }
        if st.error.is_none() {
            st.error = capture_error;
        }
        let _ = self.done.send(EncoderEvent::Closed {
            camera: self.camera.clone(),
            error: st.error.clone(),
        });
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
            spill_dir: super::spill::spill_dir(&dir, &self.camera),
            spill_files: VecDeque::new(),
            spilled: 0,
            left_in_spill: 0,
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
        origin: Origin,
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
        w.pending
            .push_back((frame.index, frame.meta, captured_at, origin));
        let index = frame.index;
        if origin == Origin::Ring {
            self.ring.recycle(frame.buf);
        }
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
            // Frames lost after the last encoded one.
            while let Some(&(idx, meta, _, Origin::Dropped)) = w.pending.front() {
                w.pending.pop_front();
                append_gap_row(&mut w.index, idx + w.rows_lost, &meta)?;
            }
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
            // Everything is durable: the spill files have served.
            delete_spill_files(&w.spill_dir, &mut w.spill_files, u64::MAX);
            if w.left_in_spill > 0 {
                anyhow::bail!(
                    "{} spilled frame(s) left in {} (aborted); run `s6-edge encode-pending`",
                    w.left_in_spill,
                    w.spill_dir.display()
                );
            }
            if let Some(ep_dir) = w.spill_dir.parent().and_then(|p| p.parent()) {
                super::spill::remove_spill_dir(ep_dir, &self.camera)?;
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
            spilled: w.spilled,
            error,
        }));
        // The episode is reported; now close its encoder session (SVT-AV1
        // frees tens of MiB spread over its ~50 threads' malloc arenas) and
        // hand the freed pages back, or every episode switch leaves some
        // resident: RSS crept up ~30 MiB over the first episodes.
        drop(w);
        release_freed_memory();
    }
}

/// Returns freed heap pages to the kernel: glibc keeps them in its arenas.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only walks glibc's own arenas
    // under their locks and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
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
        while let Some(&(idx, meta, captured_at, origin)) = w.pending.front() {
            if (idx as i64) > pkt.pts {
                break;
            }
            w.pending.pop_front();
            if origin == Origin::Dropped {
                // Ring full and spill failed: a gap row in its place.
                append_gap_row(&mut w.index, idx + w.rows_lost, &meta)?;
                continue;
            }
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
                w.index
                    .append(&IndexRecord::dropped(idx + w.rows_lost, ts))?;
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
                spilled: origin == Origin::Spill,
                dropped: false,
            })?;
            if origin == Origin::Spill {
                w.spill_files.push_back((w.frames, idx));
                w.spilled += 1;
            }
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
        delete_spill_files(&w.spill_dir, &mut w.spill_files, mp4.samples_durable());
    }
    Ok(())
}

/// Nice value of encoder threads: under overload, capture and spill writes
/// must get the CPU first (encoding can wait; a late capture loses frames).
const ENCODER_NICE: i32 = 5;

/// Lowers this thread's scheduling priority to [`ENCODER_NICE`]; the
/// encoder's own worker threads, started from this thread, inherit it.
fn yield_cpu_to_capture(camera: &str) {
    // SAFETY: plain syscalls on the calling thread's id; no memory involved.
    let (tid, rc) = unsafe {
        let tid = libc::gettid();
        let cur = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        (
            tid,
            libc::setpriority(
                libc::PRIO_PROCESS,
                tid as libc::id_t,
                cur.max(0) + ENCODER_NICE,
            ),
        )
    };
    if rc != 0 {
        log::debug!(
            "camera {camera}: cannot lower encoder thread {tid}'s priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Whether `e` comes from a full file system (ENOSPC, EDQUOT).
fn is_disk_full(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| matches!(io.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)))
}

/// Appends the row of a lost frame: no video sample (`pts` -1), its real
/// capture timestamp, `dropped`.
fn append_gap_row(
    index: &mut IndexWriter,
    frame_index: u64,
    meta: &FrameMeta,
) -> anyhow::Result<()> {
    index.append(&IndexRecord::dropped(frame_index, meta.capture_ts_ns))
}

/// Deletes the spill files of samples numbered below `durable` (their
/// fragment is synced, and so is the index).
fn delete_spill_files(dir: &std::path::Path, files: &mut VecDeque<(u64, u64)>, durable: u64) {
    while let Some(&(sample, frame)) = files.front() {
        if sample >= durable {
            break;
        }
        files.pop_front();
        let path = super::spill::spill_path(dir, frame);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::warn!("cannot delete {}: {e}", path.display());
            }
        }
    }
}

/// State of the encoder loop.
struct LoopState {
    stages: StageHistograms,
    writer: Option<EpisodeWriter>,
    converted: (Vec<u8>, Vec<u8>),
    packets: Vec<EncodedPacket>,
    /// Fatal error, reported when the thread ends.
    error: Option<String>,
    /// Episode whose files failed: its later frames are not encoded.
    failed: Option<u32>,
    /// Reading the spill channel (between `SpillBegin` and `Resume`).
    spilling: bool,
    /// A spilled frame waiting for its episode to end (`--streaming-encoding=false`).
    held: Option<SpillMsg>,
    /// Spilled frames left on disk while no writer was open (abort).
    left_behind: u64,
    /// Episode finished by `close_ended_episode`: its end marker is ignored.
    closed_early: Option<u32>,
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
