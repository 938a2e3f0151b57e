//! One camera of one episode: the MP4's samples decoded in order, each
//! matched to its index record, with pending spill frames merged in by
//! frame index.

use super::frame::{FrameOrigin, ReplayFrame};
use super::spill::{PendingFrame, SpillReader};
use crate::dataset::index::{read_index, IndexRecord};
use crate::decode::pictures::{self, PictureDecoder};
use crate::frame::{PixelFormat, VideoFormat};
use crate::mux::reader::{read_sample, scan};
use crate::mux::Mp4Scan;
use anyhow::Context;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// `Ok(None)` with a warning for an unreadable file of an unfinished
/// episode, the error otherwise.
fn skip_if_unfinished<T>(
    unfinished: bool,
    episode: u32,
    what: &Path,
    err: anyhow::Error,
) -> anyhow::Result<Option<T>> {
    if !unfinished {
        return Err(err);
    }
    log::warn!(
        "episode {episode} (unfinished): skipping unreadable {}: {err:#}",
        what.display()
    );
    Ok(None)
}

/// The video part of a stream.
struct VideoPart {
    file: File,
    scan: Mp4Scan,
    next_sample: usize,
    decoder: Box<dyn PictureDecoder>,
    finished: bool,
    /// Sample PTS (frames) in presentation order, for pictures whose
    /// decoder lost the timestamp.
    order: Vec<i64>,
    cursor: usize,
}

/// Frames of one camera in one episode, in frame-index order.
pub struct CameraStream {
    camera: Arc<str>,
    episode: u32,
    format: VideoFormat,
    video: Option<VideoPart>,
    /// Index records of frames in the video, by PTS.
    by_pts: HashMap<i64, IndexRecord>,
    /// Index records by frame index (for spilled frames' timestamps).
    by_index: HashMap<u64, IndexRecord>,
    spill: VecDeque<PendingFrame>,
    spill_reader: Arc<dyn SpillReader>,
    /// The next decoded frame, held back while spill frames come first.
    lookahead: Option<ReplayFrame>,
    /// (frame index, capture ts) of the last frame delivered.
    last: Option<(u64, u64)>,
}

impl CameraStream {
    /// Opens `camera` in `episode_dir`; `Ok(None)` when the episode has
    /// neither video, index nor spill for it. `fallback` gives size and rate
    /// when the index is missing. In an `unfinished` episode (a crash) a
    /// video or index whose header never reached the disk is skipped with a
    /// warning, so its pending spill frames still play; in a finished one it
    /// is an error.
    pub fn open(
        episode: u32,
        episode_dir: &Path,
        camera: &str,
        fallback: VideoFormat,
        unfinished: bool,
        spill_reader: Arc<dyn SpillReader>,
    ) -> anyhow::Result<Option<Self>> {
        let mp4_path = episode_dir.join(format!("{camera}.mp4"));
        let idx_path = episode_dir.join(format!("{camera}.idx"));
        let spill: VecDeque<_> = spill_reader.pending(episode_dir, camera)?.into();
        if !mp4_path.exists() && !idx_path.exists() && spill.is_empty() {
            return Ok(None);
        }
        let mut format = VideoFormat {
            pixel_format: PixelFormat::I420,
            ..fallback
        };
        let mut records = Vec::new();
        let idx = match idx_path.exists().then(|| read_index(&idx_path)) {
            Some(Ok(idx)) => Some(idx),
            Some(Err(e)) => skip_if_unfinished(unfinished, episode, &idx_path, e)?,
            None => None,
        };
        if let Some(idx) = idx {
            if idx.torn_tail_bytes > 0 {
                log::warn!(
                    "{}: {} torn byte(s) at the end of the index are ignored (run `s6-edge recover`)",
                    idx_path.display(),
                    idx.torn_tail_bytes
                );
            }
            format.width = idx.header.width;
            format.height = idx.header.height;
            format.fps_num = idx.header.fps_num;
            format.fps_den = idx.header.fps_den;
            records = idx.records;
        }
        let scanned = match mp4_path.exists().then(|| scan(&mp4_path)) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => skip_if_unfinished(unfinished, episode, &mp4_path, e)?,
            None => None,
        };
        let video = if let Some(scan) = scanned {
            if let Some(why) = &scan.torn {
                log::warn!(
                    "{}: torn tail ignored, replaying the {} complete fragment(s): {why}",
                    mp4_path.display(),
                    scan.fragments.len()
                );
            }
            format.width = scan.track.width;
            format.height = scan.track.height;
            let decoder = pictures::open(&scan.track)
                .with_context(|| format!("decoding {}", mp4_path.display()))?;
            let mut order: Vec<i64> = scan.samples.iter().map(|s| scan.pts_frames(s)).collect();
            order.sort_unstable();
            let file =
                File::open(&mp4_path).with_context(|| format!("opening {}", mp4_path.display()))?;
            Some(VideoPart {
                file,
                scan,
                next_sample: 0,
                decoder,
                finished: false,
                order,
                cursor: 0,
            })
        } else {
            None
        };
        let by_pts = records
            .iter()
            .filter(|r| !r.dropped)
            .map(|r| (r.pts, *r))
            .collect();
        let by_index = records.iter().map(|r| (r.frame_index, *r)).collect();
        Ok(Some(Self {
            camera: Arc::from(camera),
            episode,
            format,
            video,
            by_pts,
            by_index,
            spill,
            spill_reader,
            lookahead: None,
            last: None,
        }))
    }

    /// Camera name.
    pub fn camera(&self) -> &Arc<str> {
        &self.camera
    }

    /// Format of the frames this stream delivers.
    pub fn format(&self) -> VideoFormat {
        self.format
    }

    /// The next frame in frame-index order, `Ok(None)` at the end.
    pub fn next_frame(&mut self) -> anyhow::Result<Option<ReplayFrame>> {
        if self.lookahead.is_none() {
            self.lookahead = self.decode_next()?;
        }
        let spill_first = match (&self.lookahead, self.spill.front()) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(v), Some(s)) => s.frame_index < v.frame_index,
        };
        let frame = if spill_first {
            let pending = self.spill.pop_front().context("spill queue empty")?;
            if self
                .lookahead
                .as_ref()
                .is_some_and(|v| v.frame_index == pending.frame_index)
            {
                // Already encoded: the video copy wins.
                return self.next_frame();
            }
            Some(self.load_spill(&pending)?)
        } else {
            let frame = self.lookahead.take();
            if let Some(f) = &frame {
                // Spill files of frames the video already holds are stale.
                while self
                    .spill
                    .front()
                    .is_some_and(|s| s.frame_index == f.frame_index)
                {
                    self.spill.pop_front();
                }
            }
            frame
        };
        if let Some(f) = &frame {
            self.last = Some((f.frame_index, f.capture_ts_ns));
        }
        Ok(frame)
    }

    /// Capture timestamp for a frame the index does not know: the last one
    /// plus the nominal interval per frame in between.
    fn extrapolate(&self, frame_index: u64) -> u64 {
        let interval = self.format.frame_interval_ns();
        match self.last {
            Some((i, ts)) => ts + frame_index.saturating_sub(i).max(1) * interval,
            None => frame_index * interval,
        }
    }

    fn load_spill(&mut self, pending: &PendingFrame) -> anyhow::Result<ReplayFrame> {
        let loaded = self
            .spill_reader
            .load(pending, &self.format)
            .with_context(|| format!("camera {}: pending spill frame", self.camera))?;
        let record = self.by_index.get(&pending.frame_index).copied();
        let (capture_ts_ns, indexed) = match (record, loaded.capture_ts_ns) {
            (Some(r), _) => (r.capture_ts_ns, true),
            (None, Some(ts)) => (ts, true),
            (None, None) => (self.extrapolate(pending.frame_index), false),
        };
        Ok(ReplayFrame {
            camera: self.camera.clone(),
            episode: self.episode,
            frame_index: pending.frame_index,
            capture_ts_ns,
            pts: record.map_or(pending.frame_index as i64, |r| r.pts),
            keyframe: false,
            origin: FrameOrigin::Spill,
            indexed,
            format: self.format,
            data: loaded.data,
        })
    }

    /// Decodes the next picture of the video and matches its index record.
    fn decode_next(&mut self) -> anyhow::Result<Option<ReplayFrame>> {
        let Some(v) = self.video.as_mut() else {
            return Ok(None);
        };
        let picture = loop {
            if let Some(p) = v.decoder.pull()? {
                break p;
            }
            if v.next_sample < v.scan.samples.len() {
                let sample = v.scan.samples[v.next_sample];
                let data = read_sample(&mut v.file, &sample)?;
                let pts = v.scan.pts_frames(&sample);
                v.decoder.push(data, pts, sample.keyframe)?;
                v.next_sample += 1;
            } else if !v.finished {
                v.decoder.finish()?;
                v.finished = true;
            } else {
                return Ok(None);
            }
        };
        let pts = match picture.pts {
            Some(p) => p,
            None => v.order.get(v.cursor).copied().unwrap_or(v.cursor as i64),
        };
        v.cursor = v.order.partition_point(|&p| p <= pts);
        if picture.data.len() != self.format.frame_bytes() {
            anyhow::bail!(
                "camera {}: decoded picture has {} bytes, {}x{} I420 needs {}",
                self.camera,
                picture.data.len(),
                self.format.width,
                self.format.height,
                self.format.frame_bytes()
            );
        }
        let record = self.by_pts.get(&pts).copied();
        let frame_index = record.map_or(pts.max(0) as u64, |r| r.frame_index);
        let (capture_ts_ns, indexed) = match record {
            Some(r) => (r.capture_ts_ns, true),
            None => (self.extrapolate(frame_index), false),
        };
        if !indexed {
            log::warn!(
                "camera {} episode {}: frame {frame_index} is in the video but not in the index; \
                 its capture timestamp is extrapolated",
                self.camera,
                self.episode
            );
        }
        Ok(Some(ReplayFrame {
            camera: self.camera.clone(),
            episode: self.episode,
            frame_index,
            capture_ts_ns,
            pts,
            keyframe: record.is_some_and(|r| r.keyframe),
            origin: FrameOrigin::Video,
            indexed,
            format: self.format,
            data: picture.data,
        }))
    }
}
