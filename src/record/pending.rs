//! `s6-edge encode-pending`: encodes the spill frames an interrupted
//! recording left behind (kill, power cut, second SIGINT, disk full) into
//! their episode's MP4, in order, after its last durable fragment.
//!
//! Library entry point for `recover` and the command:
//! [`encode_pending_episode`]`(dataset, episode, camera, options)`.
//!
//! Per camera: the MP4 is cut back to its last complete fragment; the index
//! keeps the rows of the samples in it (rows missing because the crash came
//! between a fragment's fsync and the index sync are rebuilt from the MP4
//! sample table and the spill files' metadata); spill files of frames
//! already in the MP4 are deleted; the others are encoded in frame order
//! with the dataset's backend and settings and appended as new fragments,
//! each with its index row (`spilled`). Frames missing between two
//! surviving frames (they were in the ring when the process died) get gap
//! rows (`dropped`). The new index is written beside the old one and
//! renamed over it once the MP4 is synced; only then are spill files
//! deleted, so running it again after another interruption is safe.

use super::spill::{
    list_spilled, read_spill, read_spill_meta, remove_spill_dir, spill_dir, spill_path,
};
use crate::cli::PluginDirArgs;
use crate::dataset::index::{read_index, IndexHeader, IndexRecord, IndexWriter};
use crate::dataset::layout::{episode_dir_name, sync_dir, Dataset};
use crate::frame::{parse_pixel_format, EncodedPacket, FrameMeta, PixelFormat, VideoFormat};
use crate::mux::{scan, Fmp4Writer, TrackConfig};
use crate::plugin_host::{self, EncoderSession, EncoderSettings, ProbeRequest};
use anyhow::{bail, Context};
use serde::Serialize;
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

/// How to encode pending frames.
#[derive(Clone, Debug, Default)]
pub struct PendingOptions {
    /// Where to find the codec plugin (the dataset's backend is used).
    pub plugins: PluginDirArgs,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What [`encode_pending_episode`] did for one camera of one episode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PendingSummary {
    /// Episode number.
    pub episode: u32,
    /// Camera name.
    pub camera: String,
    /// Spill frames encoded and appended to the MP4.
    pub encoded: u64,
    /// Spill files whose frame was already in the MP4 (deleted).
    pub already_in_video: u64,
    /// Gap rows added: frames lost with the crash, or unreadable spill files.
    pub gaps: u64,
    /// Index rows rebuilt from the MP4 (the crash hit before the index sync).
    pub rows_rebuilt: u64,
    /// Samples in the MP4 afterwards.
    pub samples: u64,
}

/// Encodes the pending spill frames of `camera` in `episode` into its MP4
/// and index. Nothing to do (no spill folder) is a success with zero
/// counts. The backend is the one recorded in `dataset.json`
/// (`dataset.meta.backend`) with its encoder settings.
pub fn encode_pending_episode(
    dataset: &Dataset,
    episode: u32,
    camera: &str,
    options: &PendingOptions,
) -> anyhow::Result<PendingSummary> {
    let ep_dir = dataset.episodes_dir().join(episode_dir_name(episode));
    let mut summary = PendingSummary {
        episode,
        camera: camera.to_string(),
        ..Default::default()
    };
    let sdir = spill_dir(&ep_dir, camera);
    let files = list_spilled(&sdir)?;
    if files.is_empty() {
        remove_spill_dir(&ep_dir, camera)?;
        return Ok(summary);
    }
    let cam = dataset
        .meta
        .cameras
        .iter()
        .find(|c| c.name == camera)
        .with_context(|| format!("dataset.json has no camera {camera:?}"))?;
    let format = VideoFormat {
        width: cam.width,
        height: cam.height,
        fps_num: cam.fps_num,
        fps_den: cam.fps_den,
        pixel_format: parse_pixel_format(&cam.pixel_format)
            .with_context(|| format!("camera {camera}: pixel format {:?}", cam.pixel_format))?,
    };
    let interval = format.frame_interval_ns();
    let mp4_path = ep_dir.join(format!("{camera}.mp4"));
    let idx_path = ep_dir.join(format!("{camera}.idx"));

    // 1. What is durable: complete fragments, and the index rows for them.
    let mp4_scan = if mp4_path.exists() {
        match scan(&mp4_path) {
            Ok(s) => Some(s),
            Err(e) if std::fs::metadata(&mp4_path).map_or(0, |m| m.len()) == 0 => {
                log::debug!("{}: {e:#}; starting a new file", mp4_path.display());
                None
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("{}: unreadable video, not touched", mp4_path.display())
                })
            }
        }
    } else {
        None
    };
    // An index the crash left shorter than its header has no rows to keep;
    // rows of samples in the video are then rebuilt from it.
    let old_index = if idx_path.exists() {
        match read_index(&idx_path) {
            Ok(i) => Some(i),
            Err(e) => {
                log::warn!("{e:#}; rebuilding it");
                None
            }
        }
    } else {
        None
    };
    let samples = mp4_scan.as_ref().map_or(0, |s| s.samples.len());
    let mut rows: Vec<IndexRecord> = Vec::new();
    let mut in_video = 0usize;
    if let Some(idx) = &old_index {
        for r in &idx.records {
            if in_video == samples {
                break;
            }
            if !r.dropped {
                in_video += 1;
            }
            rows.push(*r);
        }
    }
    // Shift (in frames) between a packet's pts and the stored sample pts.
    let shift = match (&mp4_scan, rows.iter().find(|r| !r.dropped)) {
        (Some(s), Some(r)) if !s.samples.is_empty() => s.pts_frames(&s.samples[0]) - r.pts,
        (Some(s), None) if !s.samples.is_empty() => s.pts_frames(&s.samples[0]),
        _ => 0,
    };
    if in_video < samples {
        // Rows lost between a fragment's fsync and the index sync.
        let Some(s) = &mp4_scan else {
            unreachable!("samples > 0 needs a scan")
        };
        let rows_lost = slot_offset(&rows);
        for sample in &s.samples[in_video..] {
            let pts = s.pts_frames(sample) - shift;
            let spilled_file = spill_path(&sdir, pts.max(0) as u64);
            let (ts, spilled) = match read_spill_meta(&spilled_file) {
                Ok((_, _, meta)) => (meta.capture_ts_ns, true),
                Err(_) => (rows.last().map_or(0, |r| r.capture_ts_ns + interval), false),
            };
            rows.push(IndexRecord {
                frame_index: (pts + rows_lost).max(0) as u64,
                capture_ts_ns: ts,
                pts,
                size: sample.size,
                keyframe: sample.keyframe,
                spilled,
                dropped: false,
            });
            summary.rows_rebuilt += 1;
        }
    }
    let last_pts = rows.iter().rev().find(|r| !r.dropped).map(|r| r.pts);
    let rows_lost = slot_offset(&rows);

    // 2. Spill files of frames already in the video are done with.
    let todo: Vec<u64> = files
        .iter()
        .copied()
        .filter(|&i| last_pts.is_none_or(|p| i as i64 > p))
        .collect();
    let done_files: Vec<u64> = files
        .iter()
        .copied()
        .filter(|&i| last_pts.is_some_and(|p| i as i64 <= p))
        .collect();
    summary.already_in_video = done_files.len() as u64;

    // 3. The new index, beside the old one until everything is synced.
    let header = old_index.as_ref().map_or_else(
        || IndexHeader {
            camera: camera.to_string(),
            width: cam.width,
            height: cam.height,
            fps_num: cam.fps_num,
            fps_den: cam.fps_den,
            codec: dataset.meta.codec.clone(),
            created_unix_ns: super::encode_thread::now_unix_ns(),
        },
        |i| i.header.clone(),
    );
    let tmp_idx = idx_path.with_extension("idx.pending");
    let mut index = IndexWriter::create(&tmp_idx, &header)?;
    for r in &rows {
        index.append(r)?;
    }

    // 4. Encode the remaining spill files in order.
    if !todo.is_empty() {
        let request = ProbeRequest {
            width: cam.width,
            height: cam.height,
            fps_num: cam.fps_num,
            fps_den: cam.fps_den,
        };
        let (backend, _) =
            plugin_host::select_backend(&options.plugins, &dataset.meta.backend, &request)
                .with_context(|| {
                    format!(
                        "the dataset was recorded with backend {:?}",
                        dataset.meta.backend
                    )
                })?;
        let e = &dataset.meta.encoder;
        let settings = EncoderSettings {
            gop: e.gop,
            crf: e.crf,
            preset: e.preset,
            threads: e.threads,
            ..Default::default()
        };
        let mut session = backend
            .open(cam.width, cam.height, cam.fps_num, cam.fps_den, &settings)
            .with_context(|| format!("cannot open the {} encoder", backend.name()))?;
        let mut mp4 = match &mp4_scan {
            Some(s) if !s.samples.is_empty() => Some(Fmp4Writer::append(
                &mp4_path,
                s,
                cam.fps_num,
                cam.fps_den,
                shift,
            )?),
            _ => None,
        };
        let bar = if options.progress && std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(todo.len() as u64);
            if let Ok(style) = indicatif::ProgressStyle::default_bar()
                .template("episode {prefix} {msg}: {bar:30} {pos}/{len} spilled frames, eta {eta}")
            {
                bar.set_style(style);
            }
            bar.set_prefix(episode_dir_name(episode));
            bar.set_message(camera.to_string());
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        let mut out = Out {
            index: &mut index,
            pending: VecDeque::new(),
            early: Vec::new(),
            rows_lost,
            last_ts: rows.last().map_or(0, |r| r.capture_ts_ns),
            encoded: 0,
        };
        let want = backend.preferred_input();
        let mut converted = Vec::new();
        let mut packets: Vec<EncodedPacket> = Vec::new();
        let mut prev = last_pts;
        let mut first = true;
        for &i in &todo {
            let path = spill_path(&sdir, i);
            let expected = prev.map_or(0, |p| p + 1);
            match read_spill(&path) {
                Ok(f) => {
                    for missing in expected..i as i64 {
                        out.pending.push_back(Queued::Gap(missing as u64, None));
                        summary.gaps += 1;
                    }
                    if f.format != format {
                        bail!(
                            "{}: frame format {:?} differs from the camera's {:?}",
                            path.display(),
                            f.format,
                            format
                        );
                    }
                    let data: &[u8] = if want == format.pixel_format {
                        &f.data
                    } else {
                        to_input(&f.data, &format, want, &mut converted)?;
                        &converted
                    };
                    packets.clear();
                    session
                        .encode(data, i as i64, first, &mut packets)
                        .with_context(|| format!("encoding {}", path.display()))?;
                    first = false;
                    out.pending.push_back(Queued::Frame(i, f.meta));
                    out.write(&mut mp4, &mut session, &mut packets, &mp4_path, &format)?;
                }
                Err(e) => {
                    log::error!("camera {camera}: episode {episode}: frame {i} lost: {e:#}");
                    for missing in expected..=i as i64 {
                        out.pending.push_back(Queued::Gap(missing as u64, None));
                        summary.gaps += 1;
                    }
                }
            }
            prev = Some(i as i64);
            bar.inc(1);
        }
        packets.clear();
        session
            .flush(&mut packets)
            .context("encoder flush failed")?;
        out.write(&mut mp4, &mut session, &mut packets, &mp4_path, &format)?;
        out.flush_gaps(interval)?;
        if !out.pending.is_empty() {
            bail!(
                "{} frame(s) were never returned by the encoder",
                out.pending.len()
            );
        }
        summary.encoded = out.encoded;
        if let Some(mp4) = mp4 {
            summary.samples = mp4.finish()?.samples;
        }
        bar.finish_and_clear();
    } else {
        summary.samples = samples as u64;
    }

    // 5. Durable: truncate a torn video tail that nothing was appended to,
    //    swap in the index, then the spill files may go.
    if todo.is_empty() {
        if let Some(s) = &mp4_scan {
            if s.file_len > s.valid_len {
                let f = std::fs::OpenOptions::new().write(true).open(&mp4_path)?;
                f.set_len(s.valid_len)
                    .and_then(|()| f.sync_all())
                    .with_context(|| format!("cutting the torn tail of {}", mp4_path.display()))?;
            }
        }
    }
    index.finish()?;
    std::fs::rename(&tmp_idx, &idx_path)
        .with_context(|| format!("replacing {}", idx_path.display()))?;
    sync_dir(&ep_dir)?;
    remove_spill_dir(&ep_dir, camera)?;
    sync_dir(&ep_dir)?;
    log::info!(
        "episode {episode} camera {camera}: {} spilled frame(s) encoded, {} already in the video, {} gap(s), {} row(s) rebuilt; {} samples",
        summary.encoded,
        summary.already_in_video,
        summary.gaps,
        summary.rows_rebuilt,
        summary.samples
    );
    Ok(summary)
}

/// Difference between an index row's `frame_index` (timeline slot) and
/// its frame's capture number: the rows of frames the source skipped.
fn slot_offset(rows: &[IndexRecord]) -> i64 {
    rows.iter()
        .rev()
        .find(|r| !r.dropped)
        .map_or(rows.len() as i64, |r| r.frame_index as i64 - r.pts)
}

/// Converts a frame to the encoder's input layout (through I420 when there
/// is no direct conversion).
fn to_input(
    data: &[u8],
    format: &VideoFormat,
    want: PixelFormat,
    out: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let (w, h) = (format.width, format.height);
    if format.pixel_format == PixelFormat::I420 || want == PixelFormat::I420 {
        return crate::convert::convert_to(format.pixel_format, data, w, h, want, out);
    }
    let mut staged = Vec::new();
    crate::convert::convert_to(
        format.pixel_format,
        data,
        w,
        h,
        PixelFormat::I420,
        &mut staged,
    )?;
    crate::convert::convert_to(PixelFormat::I420, &staged, w, h, want, out)
}

/// A frame waiting for its packet, or a gap row waiting for its turn.
enum Queued {
    /// Spilled frame `index` with its metadata.
    Frame(u64, FrameMeta),
    /// Lost frame `index` (timestamp interpolated when `None`).
    Gap(u64, Option<u64>),
}

/// Packets → MP4 + index rows, in frame order.
struct Out<'a> {
    index: &'a mut IndexWriter,
    pending: VecDeque<Queued>,
    early: Vec<EncodedPacket>,
    rows_lost: i64,
    last_ts: u64,
    encoded: u64,
}

impl Out<'_> {
    fn write(
        &mut self,
        mp4: &mut Option<Fmp4Writer>,
        session: &mut EncoderSession,
        packets: &mut Vec<EncodedPacket>,
        path: &Path,
        format: &VideoFormat,
    ) -> anyhow::Result<()> {
        if packets.is_empty() {
            return Ok(());
        }
        if mp4.is_none() {
            match session.codec_config()? {
                Some(config_record) => {
                    *mp4 = Some(Fmp4Writer::create(
                        path,
                        TrackConfig {
                            codec: session.codec(),
                            width: format.width,
                            height: format.height,
                            fps_num: format.fps_num,
                            fps_den: format.fps_den,
                            config_record,
                        },
                    )?);
                }
                None => {
                    self.early.append(packets);
                    return Ok(());
                }
            }
        }
        let Some(w) = mp4.as_mut() else {
            return Ok(());
        };
        let interval = format.frame_interval_ns();
        let early = std::mem::take(&mut self.early);
        for pkt in early.into_iter().chain(packets.drain(..)) {
            w.write_packet(&pkt)?;
            loop {
                match self.pending.front() {
                    Some(&Queued::Gap(i, ts)) if (i as i64) < pkt.pts => {
                        self.pending.pop_front();
                        self.write_gap(i, ts, interval)?;
                    }
                    Some(&Queued::Frame(i, meta)) if i as i64 == pkt.pts => {
                        self.pending.pop_front();
                        self.last_ts = meta.capture_ts_ns;
                        self.index.append(&IndexRecord {
                            frame_index: (i as i64 + self.rows_lost).max(0) as u64,
                            capture_ts_ns: meta.capture_ts_ns,
                            pts: pkt.pts,
                            size: pkt.data.len() as u32,
                            keyframe: pkt.keyframe,
                            spilled: true,
                            dropped: false,
                        })?;
                        self.encoded += 1;
                        break;
                    }
                    Some(Queued::Frame(i, _)) => {
                        bail!("encoder returned pts {} while frame {i} was due", pkt.pts)
                    }
                    _ => bail!("encoder returned an unexpected packet (pts {})", pkt.pts),
                }
            }
        }
        Ok(())
    }

    /// Writes gap rows left after the last frame.
    fn flush_gaps(&mut self, interval: u64) -> anyhow::Result<()> {
        while let Some(&Queued::Gap(i, ts)) = self.pending.front() {
            self.pending.pop_front();
            self.write_gap(i, ts, interval)?;
        }
        Ok(())
    }

    /// Writes the dropped row of gap `i`: at its capture time when known,
    /// else one frame interval after the previous row.
    fn write_gap(&mut self, i: u64, ts: Option<u64>, interval: u64) -> anyhow::Result<()> {
        let ts = ts.unwrap_or(self.last_ts + interval);
        self.last_ts = ts;
        let frame_index = (i as i64 + self.rows_lost).max(0) as u64;
        self.index.append(&IndexRecord::dropped(frame_index, ts))
    }
}

/// Encodes pending spill frames of every unfinished episode of the dataset
/// in `dir` (complete episodes never have any).
pub fn encode_pending_dataset(
    dir: &Path,
    options: &PendingOptions,
) -> anyhow::Result<Vec<PendingSummary>> {
    let dataset = Dataset::open(dir)?;
    let mut out = Vec::new();
    for entry in dataset.list_episodes()? {
        for cam in &dataset.meta.cameras {
            let sdir = spill_dir(&entry.dir, &cam.name);
            if !sdir.exists() {
                continue;
            }
            if entry.meta.is_some() {
                log::warn!(
                    "episode {}: complete, yet {} exists; leaving it alone",
                    entry.index,
                    sdir.display()
                );
                continue;
            }
            out.push(
                encode_pending_episode(&dataset, entry.index, &cam.name, options)
                    .with_context(|| format!("episode {} camera {}", entry.index, cam.name))?,
            );
        }
    }
    Ok(out)
}

/// Runs `s6-edge encode-pending DIR`.
pub fn run(args: crate::cli::EncodePendingArgs) -> anyhow::Result<ExitCode> {
    let options = PendingOptions {
        plugins: args.plugins,
        progress: true,
    };
    let done = encode_pending_dataset(&args.dir, &options)?;
    if done.is_empty() {
        println!("{}: no pending spill frames", args.dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    for s in &done {
        println!(
            "episode {:06} {}: {} encoded, {} already in the video, {} gap(s), {} samples",
            s.episode, s.camera, s.encoded, s.already_in_video, s.gaps, s.samples
        );
    }
    println!(
        "pending frames encoded; run `s6-edge recover {}` to close the unfinished episodes",
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
