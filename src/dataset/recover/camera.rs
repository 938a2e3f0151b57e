//! Recovery of one camera of an unfinished episode: look at its MP4 and
//! index ([`inspect`]), decide what the durable truth is, then make the files
//! say it ([`apply`]).
//!
//! Rules (see README, "recover"):
//! - the MP4's complete fragments are the durable truth about which frames
//!   exist; a torn trailing fragment is cut off, but its complete samples are
//!   rescued and written back as a complete fragment first;
//! - an index row whose frame is not in the MP4 is removed (the frame was
//!   lost with the crash), unless its frame is still pending as a spill file;
//! - an MP4 sample without an index row is kept (it is a readable frame) and
//!   gets a row whose capture timestamp is *estimated* from neighbouring
//!   rows at the nominal rate; these rows are counted and listed in
//!   `episode.json` (`recovery.cameras.CAM.synthesized_frames`);
//! - rows marked `dropped` are kept (they are the record of a lost frame).

use super::salvage;
use crate::dataset::index::{read_index, IndexFile, IndexHeader, IndexRecord, IndexWriter};
use crate::dataset::layout::sync_dir;
use crate::dataset::meta::{CameraMeta, CameraRecovery, EpisodeCameraMeta};
use crate::mux::reader::{scan, torn_fragment_samples, Mp4Scan, SampleInfo};
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What was found for one camera, and the index it should end up with.
pub struct CameraPlan {
    /// Camera name.
    pub name: String,
    /// `CAM.mp4`.
    pub mp4_path: PathBuf,
    /// `CAM.idx`.
    pub idx_path: PathBuf,
    /// The MP4 scan, when the file exists and its header is readable.
    pub mp4: Option<Mp4Scan>,
    /// Why the MP4 could not be used (missing, header torn).
    pub mp4_problem: Option<String>,
    /// Complete samples of a torn trailing fragment that will be kept.
    pub rescued: Vec<SampleInfo>,
    /// The index header to keep (from the file, or rebuilt from `dataset.json`).
    pub header: IndexHeader,
    /// The index file as read (`None`: missing or header unreadable).
    pub index: Option<IndexFile>,
    /// Rows the index will hold afterwards, ordered by frame index.
    pub rows: Vec<IndexRecord>,
    /// Whether the index file must be rewritten.
    pub rewrite_index: bool,
    /// Counts for `episode.json` and the summary.
    pub counts: CameraRecovery,
}

impl CameraPlan {
    /// Frames the video will hold afterwards.
    pub fn frames(&self) -> u64 {
        self.mp4.as_ref().map_or(0, |s| s.samples.len() as u64) + self.rescued.len() as u64
    }

    /// Nothing readable at all: no frame in the MP4 and no row in the index.
    pub fn is_empty(&self) -> bool {
        self.frames() == 0 && self.rows.is_empty()
    }

    /// Whether [`apply`] would change any file.
    pub fn changes_files(&self) -> bool {
        self.rewrite_index || self.mp4.as_ref().is_some_and(|s| s.torn.is_some())
    }

    /// The camera's entry in `episode.json`.
    pub fn episode_camera_meta(&self) -> EpisodeCameraMeta {
        let mut frames = self.rows.iter().filter(|r| !r.dropped);
        let first = frames.next().map_or(0, |r| r.capture_ts_ns);
        let last = self
            .rows
            .iter()
            .rev()
            .find(|r| !r.dropped)
            .map_or(first, |r| r.capture_ts_ns);
        EpisodeCameraMeta {
            frames: self.frames(),
            spilled: self.rows.iter().filter(|r| r.spilled).count() as u64,
            dropped: self.rows.iter().filter(|r| r.dropped).count() as u64,
            first_capture_ns: first,
            last_capture_ns: last,
        }
    }
}

/// Reads the camera's files and plans the recovery; changes nothing.
/// `spill` maps the video pts of every frame still available as a spill
/// file to the capture time its metadata records (`None`: unreadable).
pub fn inspect(
    dir: &Path,
    cam: &CameraMeta,
    codec: &str,
    spill: &BTreeMap<u64, Option<u64>>,
) -> anyhow::Result<CameraPlan> {
    let mp4_path = dir.join(format!("{}.mp4", cam.name));
    let idx_path = dir.join(format!("{}.idx", cam.name));
    let mut counts = CameraRecovery::default();

    let (mp4, mp4_problem) = if mp4_path.exists() {
        match scan(&mp4_path) {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        }
    } else {
        (None, Some(format!("{} does not exist", mp4_path.display())))
    };
    let mut rescued = Vec::new();
    if let Some(s) = &mp4 {
        if s.torn.is_some() {
            rescued = torn_fragment_samples(&mp4_path, s)?;
            counts.mp4_trimmed_bytes = s.file_len - s.valid_len;
            counts.samples_salvaged = rescued.len() as u64;
        }
    }
    match &mp4_problem {
        // Spill-only recording: the video is made from the spill files.
        Some(_) if !mp4_path.exists() && !spill.is_empty() => {}
        Some(p) => counts.notes.push(format!("video not usable: {p}")),
        None => {}
    }

    let index = if idx_path.exists() {
        match read_index(&idx_path) {
            Ok(i) => Some(i),
            Err(e) => {
                counts
                    .notes
                    .push(format!("index unreadable, rebuilt from the video: {e:#}"));
                None
            }
        }
    } else {
        None
    };
    let header = index.as_ref().map_or_else(
        || IndexHeader {
            camera: cam.name.clone(),
            width: cam.width,
            height: cam.height,
            fps_num: cam.fps_num,
            fps_den: cam.fps_den,
            codec: codec.to_string(),
            // The video was last written when its last frame arrived: the
            // episode began about one frame interval per frame earlier.
            created_unix_ns: file_mtime_ns(&mp4_path).map_or(0, |end| {
                let frames = mp4.as_ref().map_or(0, |s| s.samples.len() + rescued.len());
                let span = frames as f64 * 1e9 * f64::from(cam.fps_den.max(1))
                    / f64::from(cam.fps_num.max(1));
                end.saturating_sub(span as u64)
            }),
        },
        |i| i.header.clone(),
    );
    if let Some(i) = &index {
        counts.index_trimmed_bytes = i.torn_tail_bytes;
    }

    // Frames in the video, keyed by presentation time in frame units.
    let mut samples: BTreeMap<i64, SampleInfo> = BTreeMap::new();
    if let Some(s) = &mp4 {
        for sample in s.samples.iter().chain(&rescued) {
            samples.insert(s.pts_frames(sample), *sample);
        }
    }
    let old_rows: &[IndexRecord] = index.as_ref().map_or(&[], |i| &i.records);
    let mut by_frame: BTreeMap<u64, IndexRecord> = BTreeMap::new();
    for row in old_rows {
        if by_frame.contains_key(&row.frame_index) {
            counts.notes.push(format!(
                "duplicate index row for frame {} removed",
                row.frame_index
            ));
            continue;
        }
        let keep = row.dropped
            || samples.contains_key(&row.pts)
            || u64::try_from(row.pts).is_ok_and(|p| spill.contains_key(&p));
        if keep {
            by_frame.insert(row.frame_index, *row);
        } else {
            counts.rows_without_sample += 1;
        }
    }

    // Samples lacking a row: keep them. Their capture time comes from their
    // spill file when one is left (exact), else it is estimated.
    let have_row: std::collections::BTreeSet<i64> = by_frame
        .values()
        .filter(|r| !r.dropped)
        .map(|r| r.pts)
        .collect();
    let interval_ns = 1e9 * f64::from(cam.fps_den.max(1)) / f64::from(cam.fps_num.max(1));
    // Measured capture times by video pts: index rows, then spill files.
    let mut anchors: BTreeMap<u64, u64> = by_frame
        .values()
        .filter(|r| !r.dropped && r.pts >= 0)
        .map(|r| (r.pts as u64, r.capture_ts_ns))
        .collect();
    for (&pts, ts) in spill {
        if let Some(ts) = ts {
            anchors.entry(pts).or_insert(*ts);
        }
    }
    let known: Vec<(u64, u64)> = anchors.into_iter().collect();
    // Frame numbers run ahead of video pts by the dropped rows before them.
    let slots: Vec<(i64, i64)> = by_frame
        .values()
        .filter(|r| !r.dropped)
        .map(|r| (r.pts, r.frame_index as i64 - r.pts))
        .collect();
    let mut synthesized = Vec::new();
    for (&pts, sample) in &samples {
        if have_row.contains(&pts) {
            continue;
        }
        let before = slots.partition_point(|&(p, _)| p < pts);
        let offset = before.checked_sub(1).map_or(0, |i| slots[i].1);
        let frame =
            u64::try_from(pts + offset).context("negative presentation time in the video")?;
        let upts = pts as u64;
        let from_spill = spill.get(&upts).copied().flatten();
        let row = IndexRecord {
            frame_index: frame,
            capture_ts_ns: from_spill.unwrap_or_else(|| {
                estimate_capture_ns(&known, upts, interval_ns, header.created_unix_ns)
            }),
            pts,
            size: sample.size,
            keyframe: sample.keyframe,
            spilled: from_spill.is_some(),
            dropped: false,
        };
        if let Some(old) = by_frame.insert(frame, row) {
            // A dropped row for a frame that is in the video after all.
            counts.notes.push(format!(
                "frame {} was marked dropped but is in the video; row replaced",
                old.frame_index
            ));
        }
        if from_spill.is_some() {
            counts.rows_from_spill_files += 1;
        } else {
            synthesized.push(frame);
        }
    }
    counts.rows_synthesized = synthesized.len() as u64;
    counts.synthesized_frames = ranges(&synthesized);

    let rows: Vec<IndexRecord> = by_frame.into_values().collect();
    let rewrite_index = match &index {
        None => true,
        Some(i) => i.torn_tail_bytes > 0 || i.records != rows,
    };
    counts.frames_kept = mp4.as_ref().map_or(0, |s| s.samples.len() as u64) + rescued.len() as u64;
    Ok(CameraPlan {
        name: cam.name.clone(),
        mp4_path,
        idx_path,
        mp4,
        mp4_problem,
        rescued,
        header,
        index,
        rows,
        rewrite_index,
        counts,
    })
}

/// Makes the files match `plan`: the MP4 cut back (rescued samples written
/// back), then the index rewritten atomically. Both are synced.
pub fn apply(plan: &CameraPlan) -> anyhow::Result<()> {
    if plan.mp4.is_none() && std::fs::metadata(&plan.mp4_path).is_ok_and(|m| m.len() == 0) {
        // Created, killed before its header was written: holds nothing.
        std::fs::remove_file(&plan.mp4_path)
            .with_context(|| format!("removing the empty {}", plan.mp4_path.display()))?;
    }
    if let Some(s) = plan.mp4.as_ref().filter(|s| s.torn.is_some()) {
        let rescued = salvage::read_rescued(&plan.mp4_path, &plan.rescued)?;
        salvage::trim_and_append(&plan.mp4_path, s, &rescued)?;
    }
    if plan.rewrite_index {
        write_index_atomic(&plan.idx_path, &plan.header, &plan.rows)?;
    }
    Ok(())
}

/// Writes a whole index to a temporary file, syncs it and renames it over `path`.
pub fn write_index_atomic(
    path: &Path,
    header: &IndexHeader,
    rows: &[IndexRecord],
) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("index path has no file name")?;
    let tmp = dir.join(format!(".{name}.recover.tmp"));
    let mut w = IndexWriter::create(&tmp, header)?;
    for r in rows {
        w.append(r)?;
    }
    w.finish()?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    sync_dir(dir)
}

/// Estimated capture time of `frame` (video pts) from the measured times
/// around it (`known`: (pts, ns), sorted): linear between neighbours, else one
/// nominal interval per frame from the nearest row, else from `origin_ns`.
fn estimate_capture_ns(known: &[(u64, u64)], frame: u64, interval_ns: f64, origin_ns: u64) -> u64 {
    let after = known.partition_point(|&(f, _)| f < frame);
    let prev = after.checked_sub(1).map(|i| known[i]);
    let next = known.get(after).copied();
    let offset = |from: u64, frames: f64| (from as f64 + frames * interval_ns).max(0.0) as u64;
    match (prev, next) {
        (Some((pf, pt)), Some((nf, nt))) if nf > pf && nt > pt => {
            pt + ((nt - pt) as f64 * (frame - pf) as f64 / (nf - pf) as f64) as u64
        }
        (Some((pf, pt)), _) => offset(pt, (frame - pf) as f64),
        (None, Some((nf, nt))) => offset(nt, -((nf - frame) as f64)),
        (None, None) => offset(origin_ns, frame as f64),
    }
}

/// Consecutive runs of sorted numbers as `[first, last]` pairs.
fn ranges(sorted: &[u64]) -> Vec<[u64; 2]> {
    let mut out: Vec<[u64; 2]> = Vec::new();
    for &n in sorted {
        match out.last_mut() {
            Some(r) if r[1] + 1 == n => r[1] = n,
            _ => out.push([n, n]),
        }
    }
    out
}

/// Modification time of `path` in ns since the Unix epoch.
fn file_mtime_ns(path: &Path) -> Option<u64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_interpolate_and_extrapolate() {
        let known = [(2, 2_000), (6, 6_400)];
        assert_eq!(estimate_capture_ns(&known, 4, 1000.0, 0), 4_200);
        assert_eq!(estimate_capture_ns(&known, 8, 1000.0, 0), 8_400);
        assert_eq!(estimate_capture_ns(&known, 0, 1000.0, 0), 0);
        assert_eq!(estimate_capture_ns(&[], 3, 1000.0, 10), 3_010);
    }

    #[test]
    fn ranges_group_runs() {
        assert_eq!(ranges(&[1, 2, 3, 7, 9, 10]), vec![[1, 3], [7, 7], [9, 10]]);
        assert!(ranges(&[]).is_empty());
    }
}
