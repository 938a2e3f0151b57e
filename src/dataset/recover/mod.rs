//! `s6-edge recover`: finishes the episodes a crash left without
//! `episode.json`.
//!
//! Per unfinished episode and camera ([`camera`]): a torn trailing MP4
//! fragment is cut off after its complete samples were rescued
//! ([`salvage`]); a torn index tail is cut off; index rows and MP4 samples
//! are made to agree; pending spill frames are encoded. Then `episode.json`
//! is written last, with status `recovered` and a `recovery` section saying
//! what was kept, cut, rescued and synthesized.
//!
//! An episode holding no frame at all (no sample in any MP4, no index row,
//! no spill file) is removed, as `record` removes an episode that recorded
//! nothing; when it holds files recover does not know, it is left alone and
//! reported. Finished episodes are never touched, so a second run changes
//! nothing. Nothing that holds a readable frame is ever deleted.

pub mod camera;
pub mod salvage;

use super::layout::{write_episode_meta_atomic, Dataset, EpisodeEntry, EPISODE_JSON};
use super::meta::{EpisodeMeta, EpisodeRecovery, EpisodeStatus};
use crate::cli::PluginDirArgs;
use camera::CameraPlan;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// How to recover.
#[derive(Clone, Debug, Default)]
pub struct RecoverOptions {
    /// Report what would be done; change nothing.
    pub dry_run: bool,
    /// Plugin search options (to encode pending spill frames).
    pub plugins: PluginDirArgs,
}

/// What happened to one unfinished episode.
#[derive(Clone, Debug)]
pub enum EpisodeOutcome {
    /// `episode.json` written with status `recovered` (or would be, in a dry run).
    Recovered(EpisodeMeta),
    /// Nothing readable was in it: its directory was (or would be) removed.
    RemovedEmpty,
    /// It could not be recovered; files left as they were.
    Failed(String),
}

/// Report of one unfinished episode.
#[derive(Clone, Debug)]
pub struct EpisodeRecoverReport {
    /// Episode number.
    pub index: u32,
    /// The outcome.
    pub outcome: EpisodeOutcome,
    /// Human-readable summary lines (one per camera, plus notes).
    pub lines: Vec<String>,
}

/// Report of a whole dataset.
#[derive(Clone, Debug, Default)]
pub struct RecoverReport {
    /// Episodes that were already finished (untouched).
    pub finished: usize,
    /// Every unfinished episode, in order.
    pub episodes: Vec<EpisodeRecoverReport>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

impl RecoverReport {
    /// Episodes that could not be recovered.
    pub fn failures(&self) -> usize {
        self.episodes
            .iter()
            .filter(|e| matches!(e.outcome, EpisodeOutcome::Failed(_)))
            .count()
    }

    /// Human-readable report.
    pub fn render(&self, dataset: &Path) -> String {
        let mut out = String::new();
        let verb = if self.dry_run { "would be " } else { "" };
        for ep in &self.episodes {
            let head = match &ep.outcome {
                EpisodeOutcome::Recovered(meta) => format!(
                    "{verb}recovered: {} frames",
                    meta.cameras.values().map(|c| c.frames).sum::<u64>()
                ),
                EpisodeOutcome::RemovedEmpty => format!("empty (no frame): {verb}removed"),
                EpisodeOutcome::Failed(why) => format!("NOT recovered: {why}"),
            };
            let _ = writeln!(out, "episode {:06}: {head}", ep.index);
            for line in &ep.lines {
                let _ = writeln!(out, "  {line}");
            }
        }
        let _ = writeln!(
            out,
            "{}: {} unfinished episode(s){}, {} already finished{}",
            dataset.display(),
            self.episodes.len(),
            if self.episodes.is_empty() {
                " (nothing to recover)".to_string()
            } else {
                format!(" ({} failed)", self.failures())
            },
            self.finished,
            if self.dry_run {
                "; dry run, nothing changed"
            } else {
                ""
            }
        );
        out
    }
}

/// Runs `s6-edge recover`.
pub fn run(args: crate::cli::RecoverArgs) -> anyhow::Result<ExitCode> {
    let dataset = Dataset::open(&args.dir)?;
    let options = RecoverOptions {
        dry_run: args.dry_run,
        plugins: args.plugins.clone(),
    };
    let _lock = if options.dry_run {
        None
    } else {
        Some(dataset.lock()?)
    };
    let report = recover_dataset(&dataset, &options)?;
    print!("{}", report.render(&args.dir));
    Ok(if report.failures() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Recovers every unfinished episode of `dataset`. The caller holds the
/// dataset lock (see [`Dataset::lock`]) unless this is a dry run. Fails only
/// when the dataset cannot be listed; per-episode problems land in the report.
pub fn recover_dataset(
    dataset: &Dataset,
    options: &RecoverOptions,
) -> anyhow::Result<RecoverReport> {
    let mut report = RecoverReport {
        dry_run: options.dry_run,
        ..Default::default()
    };
    for entry in dataset.list_episodes()? {
        if entry.meta.is_some() {
            report.finished += 1;
            continue;
        }
        let ep = match &entry.meta_error {
            Some(err) => EpisodeRecoverReport {
                index: entry.index,
                outcome: EpisodeOutcome::Failed(format!(
                    "its {EPISODE_JSON} exists but is unreadable ({err}); move it aside to let recover rebuild it"
                )),
                lines: Vec::new(),
            },
            None => recover_episode(dataset, &entry, options),
        };
        match &ep.outcome {
            EpisodeOutcome::Failed(why) => {
                log::error!("episode {:06}: not recovered: {why}", ep.index)
            }
            _ => log::debug!("episode {:06}: {:?}", ep.index, ep.outcome),
        }
        report.episodes.push(ep);
    }
    Ok(report)
}

/// Recovers one unfinished episode.
fn recover_episode(
    dataset: &Dataset,
    entry: &EpisodeEntry,
    options: &RecoverOptions,
) -> EpisodeRecoverReport {
    let mut lines = Vec::new();
    let outcome = match try_recover_episode(dataset, entry, options, &mut lines) {
        Ok(outcome) => outcome,
        Err(err) => EpisodeOutcome::Failed(format!("{err:#}")),
    };
    EpisodeRecoverReport {
        index: entry.index,
        outcome,
        lines,
    }
}

fn try_recover_episode(
    dataset: &Dataset,
    entry: &EpisodeEntry,
    options: &RecoverOptions,
    lines: &mut Vec<String>,
) -> anyhow::Result<EpisodeOutcome> {
    let dir = &entry.dir;
    let codec = dataset.meta.codec.as_str();
    let plan_all = || -> anyhow::Result<Vec<CameraPlan>> {
        dataset
            .meta
            .cameras
            .iter()
            .map(|cam| camera::inspect(dir, cam, codec, &pending_spill_frames(dir, &cam.name)))
            .collect()
    };
    let plans = plan_all()?;

    // A video whose header cannot be read may still hold frames another tool
    // can read: never touch such an episode.
    for p in &plans {
        if let (None, Some(problem)) = (&p.mp4, &p.mp4_problem) {
            let len = std::fs::metadata(&p.mp4_path).map_or(0, |m| m.len());
            if len > 0 {
                anyhow::bail!(
                    "camera {}: {problem}; the file is left as is: inspect it, or move the episode directory out of the dataset",
                    p.name
                );
            }
        }
    }

    let spill_pending: usize = dataset
        .meta
        .cameras
        .iter()
        .map(|c| pending_spill_frames(dir, &c.name).len())
        .sum();
    if spill_pending == 0 && !options.dry_run {
        // Spill folders without a complete spill file hold only temporary
        // files of interrupted writes: no frame.
        for cam in &dataset.meta.cameras {
            crate::record::spill::remove_spill_dir(dir, &cam.name)?;
        }
    }
    if plans.iter().all(CameraPlan::is_empty) && spill_pending == 0 {
        return remove_empty_episode(dataset, dir, options.dry_run, lines);
    }

    for p in &plans {
        lines.push(describe_plan(p, options.dry_run));
    }
    if options.dry_run {
        if spill_pending > 0 {
            lines.push(format!(
                "{spill_pending} pending spill frame(s) would be encoded"
            ));
        }
        return Ok(EpisodeOutcome::Recovered(episode_meta(entry.index, &plans)));
    }

    for p in &plans {
        camera::apply(p).map_err(|e| anyhow::anyhow!("camera {}: {e:#}", p.name))?;
    }
    let encoded = encode_pending_spill(dataset, entry.index, dir, options, lines)?;

    // Read everything back: what is on disk now is what episode.json says.
    let mut fin = plan_all()?;
    for (f, first) in fin.iter_mut().zip(&plans) {
        if f.changes_files() {
            anyhow::bail!(
                "camera {}: files still inconsistent after recovery (video torn: {}, index rewrite needed: {})",
                f.name,
                f.mp4.as_ref().is_some_and(|s| s.torn.is_some()),
                f.rewrite_index
            );
        }
        // Keep the counts of the first pass; the final pass is clean.
        f.counts = first.counts.clone();
        f.counts.frames_kept = f.frames();
        f.counts.spill_frames_encoded = encoded.get(&f.name).copied().unwrap_or(0);
    }
    let meta = episode_meta(entry.index, &fin);
    write_episode_meta_atomic(dir, &meta)?;
    Ok(EpisodeOutcome::Recovered(meta))
}

/// `episode.json` for the recovered episode.
fn episode_meta(index: u32, plans: &[CameraPlan]) -> EpisodeMeta {
    let cameras: BTreeMap<_, _> = plans
        .iter()
        .map(|p| (p.name.clone(), p.episode_camera_meta()))
        .collect();
    let started = plans
        .iter()
        .map(|p| p.header.created_unix_ns)
        .chain(
            cameras
                .values()
                .filter(|c| c.frames > 0)
                .map(|c| c.first_capture_ns),
        )
        .filter(|&t| t > 0)
        .min()
        .unwrap_or(0);
    let ended = cameras
        .values()
        .map(|c| c.last_capture_ns)
        .max()
        .unwrap_or(started)
        .max(started);
    EpisodeMeta {
        index,
        status: EpisodeStatus::Recovered,
        task: None,
        started_unix_ns: started,
        ended_unix_ns: ended,
        cameras,
        recovery: Some(EpisodeRecovery {
            s6_edge_version: env!("CARGO_PKG_VERSION").to_string(),
            recovered_at: chrono::Local::now().to_rfc3339(),
            cameras: plans
                .iter()
                .map(|p| (p.name.clone(), p.counts.clone()))
                .collect(),
        }),
    }
}

/// One summary line for a camera.
fn describe_plan(p: &CameraPlan, dry_run: bool) -> String {
    let c = &p.counts;
    let mut s = format!("{}: {} frames kept", p.name, p.frames());
    if c.mp4_trimmed_bytes > 0 {
        let _ = write!(
            s,
            "; video: torn tail of {} bytes {}",
            c.mp4_trimmed_bytes,
            if dry_run { "to cut" } else { "cut" }
        );
        if c.samples_salvaged > 0 {
            let _ = write!(
                s,
                " after rescuing its {} complete frame(s)",
                c.samples_salvaged
            );
        }
    }
    if c.index_trimmed_bytes > 0 {
        let _ = write!(
            s,
            "; index: torn tail of {} bytes cut",
            c.index_trimmed_bytes
        );
    }
    if c.rows_without_sample > 0 {
        let _ = write!(
            s,
            "; {} index row(s) removed (frame never reached the video: lost in the crash)",
            c.rows_without_sample
        );
    }
    if c.rows_from_spill_files > 0 {
        let _ = write!(
            s,
            "; {} video frame(s) had no index row: rebuilt from their spill files",
            c.rows_from_spill_files
        );
    }
    if c.rows_synthesized > 0 {
        let list: Vec<String> = c
            .synthesized_frames
            .iter()
            .map(|[a, b]| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        let _ = write!(
            s,
            "; {} video frame(s) had no index row: kept, with estimated capture times (frames {})",
            c.rows_synthesized,
            list.join(",")
        );
    }
    if !p.changes_files() {
        s.push_str("; files already consistent");
    }
    for n in &c.notes {
        let _ = write!(s, "; note: {n}");
    }
    s
}

/// Removes an episode that holds no frame, when every file in it is one
/// recover knows (the cameras' MP4 and index, temporary files).
fn remove_empty_episode(
    dataset: &Dataset,
    dir: &Path,
    dry_run: bool,
    lines: &mut Vec<String>,
) -> anyhow::Result<EpisodeOutcome> {
    let mut known = std::collections::BTreeSet::new();
    for cam in &dataset.meta.cameras {
        known.insert(format!("{}.mp4", cam.name));
        known.insert(format!("{}.idx", cam.name));
        known.insert(format!(".{}.idx.recover.tmp", cam.name));
        known.insert(format!("{}.idx.pending", cam.name));
    }
    known.insert(format!(".{EPISODE_JSON}.tmp"));
    let mut files = Vec::new();
    let mut unknown = Vec::new();
    for e in
        std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("listing {}: {e}", dir.display()))?
    {
        let e = e.map_err(|e| anyhow::anyhow!("listing {}: {e}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let spill_leftover = name == crate::record::spill::SPILL_DIR && e.path().is_dir();
        if (known.contains(&name) && e.path().is_file()) || spill_leftover {
            files.push(e.path());
        } else {
            unknown.push(name);
        }
    }
    if !unknown.is_empty() {
        anyhow::bail!(
            "it holds no frame but also files recover does not know ({}); left as is: inspect it, or move it out of the dataset",
            unknown.join(", ")
        );
    }
    lines.push(format!(
        "no frame in any camera; {} file(s) holding only headers{}",
        files.len(),
        if dry_run {
            " would be removed"
        } else {
            " removed"
        }
    ));
    if !dry_run {
        for cam in &dataset.meta.cameras {
            crate::record::spill::remove_spill_dir(dir, &cam.name)?;
        }
        for f in files.iter().filter(|f| f.is_file()) {
            std::fs::remove_file(f)
                .map_err(|e| anyhow::anyhow!("removing {}: {e}", f.display()))?;
        }
        std::fs::remove_dir(dir).map_err(|e| anyhow::anyhow!("removing {}: {e}", dir.display()))?;
        super::layout::sync_dir(&dataset.episodes_dir())?;
    }
    Ok(EpisodeOutcome::RemovedEmpty)
}

/// Spill files of `camera` in episode `dir` (see [`crate::record::spill`]):
/// video pts → the capture time recorded in the file (`None`: unreadable).
fn pending_spill_frames(dir: &Path, camera: &str) -> BTreeMap<u64, Option<u64>> {
    use crate::record::spill::{list_spilled, read_spill_meta, spill_dir, spill_path};
    let sdir = spill_dir(dir, camera);
    let frames = list_spilled(&sdir).unwrap_or_else(|e| {
        log::warn!("{}: {e:#}", sdir.display());
        Vec::new()
    });
    frames
        .into_iter()
        .map(|i| {
            let ts = read_spill_meta(&spill_path(&sdir, i))
                .map(|(_, _, meta)| meta.capture_ts_ns)
                .map_err(|e| log::warn!("{e:#}"))
                .ok();
            (i, ts)
        })
        .collect()
}

/// Encodes the pending spill frames of every camera into its MP4 and index
/// (through `encode-pending`'s library function, after the files were made
/// consistent); returns the frames encoded per camera.
fn encode_pending_spill(
    dataset: &Dataset,
    index: u32,
    dir: &Path,
    options: &RecoverOptions,
    lines: &mut Vec<String>,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    let pending = crate::record::spill::PendingOptions {
        plugins: options.plugins.clone(),
        progress: true,
    };
    for cam in &dataset.meta.cameras {
        if !crate::record::spill::spill_dir(dir, &cam.name).exists() {
            continue;
        }
        let s = crate::record::spill::encode_pending_episode(dataset, index, &cam.name, &pending)
            .map_err(|e| {
            anyhow::anyhow!("camera {}: encoding spill frames: {e:#}", cam.name)
        })?;
        if s.encoded + s.already_in_video + s.gaps > 0 {
            lines.push(format!(
                "{}: {} pending spill frame(s) encoded, {} spill file(s) already in the video, {} frame(s) lost (gap rows)",
                cam.name, s.encoded, s.already_in_video, s.gaps
            ));
        }
        out.insert(cam.name.clone(), s.encoded);
    }
    Ok(out)
}
