//! The library entry point: [`Replay`] opens a dataset and plans what to
//! read; [`Frames`] iterates decoded frames in capture order.

use super::frame::ReplayFrame;
use super::select::EpisodeSelection;
use super::spill::{RecordSpill, SpillReader};
use super::stream::CameraStream;
use crate::dataset::layout::Dataset;
use crate::frame::{PixelFormat, VideoFormat};
use anyhow::Context;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A dataset opened for replay, with its episode and camera filters.
#[derive(Clone)]
pub struct Replay {
    dataset: Dataset,
    episodes: EpisodeSelection,
    cameras: Option<Vec<String>>,
    spill: Arc<dyn SpillReader>,
}

/// One episode a replay will read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEpisode {
    /// Episode number.
    pub index: u32,
    /// Its directory.
    pub dir: PathBuf,
    /// Whether `episode.json` is missing (a crash left it unfinished).
    pub unfinished: bool,
}

impl Replay {
    /// Opens the dataset in `dir` (every episode and camera selected).
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        if !dir.exists() {
            anyhow::bail!(
                "dataset directory {} does not exist: give the -o directory of a recording",
                dir.display()
            );
        }
        Ok(Self {
            dataset: Dataset::open(dir)?,
            episodes: EpisodeSelection::all(),
            cameras: None,
            spill: Arc::new(RecordSpill),
        })
    }

    /// Restricts the replay to `episodes`.
    pub fn episodes(mut self, episodes: EpisodeSelection) -> Self {
        self.episodes = episodes;
        self
    }

    /// Restricts the replay to the named cameras (checked by [`Replay::plan`]).
    pub fn cameras<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.cameras = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Replaces the reader of pending spill frames (see [`super::spill`]).
    pub fn spill_reader(mut self, reader: Arc<dyn SpillReader>) -> Self {
        self.spill = reader;
        self
    }

    /// The dataset.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// Selected camera names, in `dataset.json` order. Unknown names are
    /// usage errors.
    pub fn camera_names(&self) -> anyhow::Result<Vec<String>> {
        let all: Vec<String> = self
            .dataset
            .meta
            .cameras
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let Some(wanted) = &self.cameras else {
            return Ok(all);
        };
        for name in wanted {
            if !all.contains(name) {
                return Err(crate::exit::usage(format!(
                    "camera {name:?} is not in dataset {} (it has: {})",
                    self.dataset.dir.display(),
                    all.join(", ")
                )));
            }
        }
        Ok(all.into_iter().filter(|n| wanted.contains(n)).collect())
    }

    /// The nominal format of camera `name` from `dataset.json` (decoded
    /// frames are I420 of this size).
    pub fn camera_format(&self, name: &str) -> Option<VideoFormat> {
        self.dataset
            .meta
            .cameras
            .iter()
            .find(|c| c.name == name)
            .map(|c| VideoFormat {
                width: c.width,
                height: c.height,
                fps_num: c.fps_num,
                fps_den: c.fps_den,
                pixel_format: PixelFormat::I420,
            })
    }

    /// The episodes to read, in order. Explicitly selected episodes that do
    /// not exist are an error.
    pub fn plan(&self) -> anyhow::Result<Vec<PlannedEpisode>> {
        let listed = self.dataset.list_episodes()?;
        if let Some(wanted) = self.episodes.explicit() {
            let missing: Vec<u32> = wanted
                .iter()
                .copied()
                .filter(|w| !listed.iter().any(|e| e.index == *w))
                .collect();
            if !missing.is_empty() {
                let have: Vec<String> = listed.iter().map(|e| e.index.to_string()).collect();
                anyhow::bail!(
                    "episode(s) {missing:?} are not in dataset {} (it has: {})",
                    self.dataset.dir.display(),
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                );
            }
        }
        Ok(listed
            .into_iter()
            .filter(|e| self.episodes.contains(e.index))
            .map(|e| PlannedEpisode {
                index: e.index,
                unfinished: e.meta.is_none(),
                dir: e.dir,
            })
            .collect())
    }

    /// Starts a pass over the selected frames.
    pub fn frames(&self) -> anyhow::Result<Frames> {
        let cameras = self.camera_names()?;
        let plan = self.plan()?;
        for ep in plan.iter().filter(|e| e.unfinished) {
            log::warn!(
                "episode {} is unfinished (no episode.json); replaying its readable frames \
                 (run `s6-edge recover {}` to close it)",
                ep.index,
                self.dataset.dir.display()
            );
        }
        let formats = cameras
            .iter()
            .map(|c| {
                self.camera_format(c)
                    .context("camera vanished from dataset.json")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Frames {
            plan: plan.into(),
            cameras,
            formats,
            spill: self.spill.clone(),
            open: Vec::new(),
            failed: false,
        })
    }
}

/// An iterator of decoded frames: episodes in order; within an episode,
/// the cameras' frames merged by capture timestamp (ties: `dataset.json`
/// camera order); within a camera, frame-index order.
pub struct Frames {
    plan: VecDeque<PlannedEpisode>,
    cameras: Vec<String>,
    formats: Vec<VideoFormat>,
    spill: Arc<dyn SpillReader>,
    /// Streams of the current episode with their next frame.
    open: Vec<(CameraStream, Option<ReplayFrame>)>,
    failed: bool,
}

impl Frames {
    /// Opens the cameras of the next episode with anything to replay;
    /// `false` when no episode is left.
    fn open_next_episode(&mut self) -> anyhow::Result<bool> {
        while let Some(ep) = self.plan.pop_front() {
            let mut open = Vec::new();
            for (name, format) in self.cameras.iter().zip(&self.formats) {
                let stream = CameraStream::open(
                    ep.index,
                    &ep.dir,
                    name,
                    *format,
                    ep.unfinished,
                    self.spill.clone(),
                )
                .with_context(|| format!("episode {} camera {name}", ep.index))?;
                if let Some(mut s) = stream {
                    let first = s.next_frame()?;
                    if first.is_some() {
                        open.push((s, first));
                    }
                }
            }
            if !open.is_empty() {
                self.open = open;
                return Ok(true);
            }
            log::info!("episode {}: no frame of the selected cameras", ep.index);
        }
        Ok(false)
    }

    fn next_frame(&mut self) -> anyhow::Result<Option<ReplayFrame>> {
        loop {
            let pick = self
                .open
                .iter()
                .enumerate()
                .filter_map(|(i, (_, f))| f.as_ref().map(|f| (f.capture_ts_ns, i)))
                .min();
            if let Some((_, i)) = pick {
                let (stream, slot) = &mut self.open[i];
                let next = stream.next_frame()?;
                return Ok(std::mem::replace(slot, next));
            }
            self.open.clear();
            if !self.open_next_episode()? {
                return Ok(None);
            }
        }
    }
}

impl Iterator for Frames {
    type Item = anyhow::Result<ReplayFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_frame() {
            Ok(f) => f.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
