//! `s6-edge verify`: checks every episode and camera of a dataset.
//!
//! Per camera: index rows vs MP4 samples vs decoded frames vs the count in
//! `episode.json`; rows vs nominal rate × capture span (±1 frame + 2 %);
//! capture timestamps strictly increasing; gaps, jitter and dropped rows
//! reported. An episode without `episode.json` is unfinished. Any defect
//! makes the command exit 1; damaged files give messages, never a crash.

use super::index::{read_index, IndexFile};
use super::layout::{Dataset, EpisodeEntry};
use super::meta::{CameraMeta, EpisodeStatus};
use super::timing::{rows_match_rate, timing_stats, TimingStats};
use crate::decode::{decode_file, DecodeOutcome};
use crate::mux::reader::scan;
use serde::Serialize;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

/// What to check.
#[derive(Clone, Copy, Debug)]
pub struct VerifyOptions {
    /// Decode the video (slow) instead of only counting MP4 samples.
    pub decode: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// Report of one camera in one episode.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CameraReport {
    /// Camera name.
    pub name: String,
    /// Intact index rows (dropped included).
    pub index_rows: Option<usize>,
    /// Rows marked dropped (frames lost, not in the video).
    pub dropped_rows: usize,
    /// Rows that went through the spill path.
    pub spilled_rows: usize,
    /// Bytes of a torn index tail.
    pub index_torn_bytes: u64,
    /// Samples in complete MP4 fragments.
    pub mp4_samples: Option<usize>,
    /// Why the MP4 scan stopped early (torn tail).
    pub mp4_torn: Option<String>,
    /// Frames the decoder produced (absent with `--no-decode`).
    pub decoded_frames: Option<u64>,
    /// Decoder used.
    pub decoder: Option<String>,
    /// Frames `episode.json` claims.
    pub meta_frames: Option<u64>,
    /// Capture timing.
    pub timing: Option<TimingStats>,
    /// Problems that make the dataset fail verification.
    pub defects: Vec<String>,
    /// Things worth knowing that are not failures.
    pub warnings: Vec<String>,
}

/// Report of one episode.
#[derive(Clone, Debug, Serialize)]
pub struct EpisodeReport {
    /// Episode number.
    pub index: u32,
    /// `complete`, `recovered`, `aborted` or `unfinished`.
    pub status: String,
    /// Per-camera reports.
    pub cameras: Vec<CameraReport>,
    /// Episode-level defects.
    pub defects: Vec<String>,
}

impl EpisodeReport {
    /// Defects of the episode and its cameras.
    pub fn defect_count(&self) -> usize {
        self.defects.len() + self.cameras.iter().map(|c| c.defects.len()).sum::<usize>()
    }
}

/// Report of a whole dataset.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// Dataset directory.
    pub dataset: String,
    /// Per-episode reports.
    pub episodes: Vec<EpisodeReport>,
    /// Total defects.
    pub defects: usize,
    /// No defects.
    pub ok: bool,
}

/// Runs `s6-edge verify`.
pub fn run(args: crate::cli::VerifyArgs) -> anyhow::Result<ExitCode> {
    let options = VerifyOptions {
        decode: !args.no_decode,
        progress: !args.json && std::io::stderr().is_terminal(),
    };
    let report = verify_dataset(&args.dir, options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Verifies the dataset in `dir`. Fails only when `dir` is not a readable
/// dataset; every problem inside it lands in the report.
pub fn verify_dataset(dir: &Path, options: VerifyOptions) -> anyhow::Result<VerifyReport> {
    let dataset = Dataset::open(dir)?;
    let episodes = dataset.list_episodes()?;
    let bar = if options.progress && options.decode {
        let bar = indicatif::ProgressBar::new(episodes.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::default_bar()
            .template("verifying {bar:30} {pos}/{len} episodes {msg}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut reports = Vec::with_capacity(episodes.len());
    for entry in &episodes {
        bar.set_message(format!("{:06}", entry.index));
        reports.push(verify_episode(&dataset, entry, options));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let defects = reports.iter().map(EpisodeReport::defect_count).sum();
    Ok(VerifyReport {
        dataset: dir.display().to_string(),
        episodes: reports,
        defects,
        ok: defects == 0,
    })
}

fn verify_episode(
    dataset: &Dataset,
    entry: &EpisodeEntry,
    options: VerifyOptions,
) -> EpisodeReport {
    let mut defects = Vec::new();
    let status = match (&entry.meta, &entry.meta_error) {
        (Some(meta), _) => match meta.status {
            EpisodeStatus::Complete => "complete",
            EpisodeStatus::Recovered => "recovered",
            EpisodeStatus::Aborted => "aborted",
        },
        (None, Some(err)) => {
            defects.push(format!("episode.json is unreadable: {err}"));
            "corrupt"
        }
        (None, None) => {
            defects.push("unfinished (run `s6-edge recover`)".to_string());
            "unfinished"
        }
    };
    if let Some(meta) = &entry.meta {
        if meta.index != entry.index {
            defects.push(format!(
                "episode.json says index {} but the directory is {:06}",
                meta.index, entry.index
            ));
        }
    }
    let cameras = dataset
        .meta
        .cameras
        .iter()
        .map(|cam| {
            let meta_frames = entry
                .meta
                .as_ref()
                .and_then(|m| m.cameras.get(&cam.name))
                .map(|c| c.frames);
            let mut report = verify_camera(&entry.dir, cam, options);
            report.meta_frames = meta_frames;
            if meta_frames == Some(0) && !entry.dir.join(format!("{}.mp4", cam.name)).exists() {
                // The camera delivered no frame before a crash (`recover`
                // says so in episode.json): there is no video to check.
                report.defects.retain(|d| !d.starts_with("video:"));
                report
                    .warnings
                    .push("no video: episode.json records 0 frames for this camera".into());
            }
            if entry.meta.is_some() && meta_frames.is_none() {
                report
                    .defects
                    .push("episode.json has no entry for this camera".into());
            }
            if let (Some(claimed), Some(samples)) = (meta_frames, report.mp4_samples) {
                if claimed != samples as u64 {
                    report.defects.push(format!(
                        "episode.json claims {claimed} frames, the MP4 holds {samples}"
                    ));
                }
            }
            report
        })
        .collect();
    EpisodeReport {
        index: entry.index,
        status: status.to_string(),
        cameras,
        defects,
    }
}

fn verify_camera(dir: &Path, cam: &CameraMeta, options: VerifyOptions) -> CameraReport {
    let mut r = CameraReport {
        name: cam.name.clone(),
        ..Default::default()
    };
    let idx_path = dir.join(format!("{}.idx", cam.name));
    let mp4_path = dir.join(format!("{}.mp4", cam.name));

    let index: Option<IndexFile> = match read_index(&idx_path) {
        Ok(idx) => Some(idx),
        Err(err) => {
            r.defects.push(format!("index: {err:#}"));
            None
        }
    };
    if let Some(idx) = &index {
        check_index(&mut r, idx, cam);
    }

    let mp4 = match scan(&mp4_path) {
        Ok(s) => Some(s),
        Err(err) => {
            r.defects.push(format!("video: {err:#}"));
            None
        }
    };
    if let Some(s) = &mp4 {
        r.mp4_samples = Some(s.samples.len());
        if let Some(why) = &s.torn {
            r.mp4_torn = Some(why.clone());
            r.defects.push(format!(
                "video has {} damaged bytes after byte {} ({why}); run `s6-edge recover`",
                s.file_len - s.valid_len,
                s.valid_len
            ));
        }
        if (s.track.width, s.track.height) != (cam.width, cam.height) {
            r.defects.push(format!(
                "video is {}x{}, dataset.json says {}x{}",
                s.track.width, s.track.height, cam.width, cam.height
            ));
        }
        if let Some(idx) = &index {
            let rows = idx.records.iter().filter(|x| !x.dropped).count();
            if rows != s.samples.len() {
                r.defects.push(format!(
                    "index has {rows} frames, the MP4 holds {} samples",
                    s.samples.len()
                ));
            }
        }
        if options.decode {
            match decode_file(&mp4_path, s) {
                DecodeOutcome::Decoded {
                    frames,
                    decoder,
                    errors,
                } => {
                    r.decoded_frames = Some(frames);
                    r.decoder = Some(decoder.to_string());
                    if frames != s.samples.len() as u64 {
                        r.defects.push(format!(
                            "{decoder} decoded {frames} frames of {} samples",
                            s.samples.len()
                        ));
                    }
                    for e in errors.iter().take(5) {
                        r.defects.push(format!("decoding: {e}"));
                    }
                }
                DecodeOutcome::Unavailable(why) => {
                    r.warnings.push(format!("not decoded: {why}"));
                }
            }
        }
    }
    r
}

/// Index checks: torn tail, frame order, timestamps, rate, gaps, drops.
fn check_index(r: &mut CameraReport, idx: &IndexFile, cam: &CameraMeta) {
    let h = &idx.header;
    r.index_rows = Some(idx.records.len());
    r.index_torn_bytes = idx.torn_tail_bytes;
    r.dropped_rows = idx.records.iter().filter(|x| x.dropped).count();
    r.spilled_rows = idx.records.iter().filter(|x| x.spilled).count();
    if idx.torn_tail_bytes > 0 {
        r.defects.push(format!(
            "index has a torn tail of {} bytes; run `s6-edge recover`",
            idx.torn_tail_bytes
        ));
    }
    if h.camera != cam.name {
        r.warnings
            .push(format!("index header names camera {:?}", h.camera));
    }
    if (h.width, h.height, h.fps_num, h.fps_den)
        != (cam.width, cam.height, cam.fps_num, cam.fps_den)
    {
        r.defects.push(format!(
            "index header says {}x{}@{}/{}, dataset.json says {}",
            h.width,
            h.height,
            h.fps_num,
            h.fps_den,
            cam.describe()
        ));
    }
    if let Some(bad) = idx
        .records
        .windows(2)
        .find(|w| w[1].frame_index <= w[0].frame_index)
    {
        r.defects.push(format!(
            "frame indices do not increase: {} follows {}",
            bad[1].frame_index, bad[0].frame_index
        ));
    }
    if r.dropped_rows > 0 {
        r.warnings.push(format!(
            "{} frames were dropped (counted in the index, missing from the video)",
            r.dropped_rows
        ));
    }
    let fps = f64::from(cam.fps_num) / f64::from(cam.fps_den.max(1));
    let stats = timing_stats(&idx.records, fps);
    if let Some((frame, prev, cur)) = stats.non_monotonic {
        r.defects.push(format!(
            "capture timestamps not strictly increasing at {} rows, first at frame {frame} ({cur} ns after {prev} ns)",
            stats.non_monotonic_count
        ));
    }
    if idx.records.len() > 1 && !rows_match_rate(idx.records.len(), stats.expected_rows) {
        r.defects.push(format!(
            "{} rows over {:.3} s, expected {:.1} at {fps:.3} fps (±1 frame + 2 %)",
            idx.records.len(),
            stats.span_s,
            stats.expected_rows
        ));
    }
    if stats.gap_count > 0 {
        let list: Vec<String> = stats
            .gaps
            .iter()
            .map(|g| format!("{:.1} ms before frame {}", g.interval_ms, g.frame_index))
            .collect();
        r.warnings.push(format!(
            "{} gaps > 1.5 frame intervals: {}{}",
            stats.gap_count,
            list.join(", "),
            if stats.gap_count > list.len() {
                ", ..."
            } else {
                ""
            }
        ));
    }
    r.timing = Some(stats);
}

/// Human-readable report.
pub fn render(report: &VerifyReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "dataset {}: {} episodes",
        report.dataset,
        report.episodes.len()
    );
    for ep in &report.episodes {
        let verdict = if ep.defect_count() == 0 { "OK" } else { "FAIL" };
        let _ = writeln!(out, "episode {:06} [{}] {verdict}", ep.index, ep.status);
        for d in &ep.defects {
            let _ = writeln!(out, "  DEFECT: {d}");
        }
        for c in &ep.cameras {
            let mut line = format!("  {}:", c.name);
            if let Some(rows) = c.index_rows {
                let _ = write!(line, " {rows} index rows");
            }
            if let Some(n) = c.mp4_samples {
                let _ = write!(line, ", {n} MP4 samples");
            }
            if let Some(n) = c.decoded_frames {
                let _ = write!(
                    line,
                    ", {n} decoded ({})",
                    c.decoder.as_deref().unwrap_or("?")
                );
            }
            if let Some(t) = &c.timing {
                let _ = write!(
                    line,
                    ", {:.2} s, interval {:.2} ms (sd {:.2}, max {:.2}), {} gaps",
                    t.span_s, t.mean_interval_ms, t.jitter_std_ms, t.max_interval_ms, t.gap_count
                );
            }
            if c.dropped_rows > 0 {
                let _ = write!(line, ", {} dropped", c.dropped_rows);
            }
            if c.spilled_rows > 0 {
                let _ = write!(line, ", {} spilled", c.spilled_rows);
            }
            let _ = writeln!(out, "{line}");
            for d in &c.defects {
                let _ = writeln!(out, "    DEFECT: {d}");
            }
            for w in &c.warnings {
                let _ = writeln!(out, "    note: {w}");
            }
        }
    }
    let _ = writeln!(
        out,
        "{}: {} defects in {} episodes",
        if report.ok { "OK" } else { "FAILED" },
        report.defects,
        report.episodes.len()
    );
    out
}
