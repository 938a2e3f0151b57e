//! `replay:DIR[/CAM]`: a recorded dataset as a camera. Frames come out of
//! [`crate::replay`] decoded to I420 and carry their **original** capture
//! timestamps (and their frame index as sequence number) into the new
//! recording's index — the workstation use is re-encoding field recordings
//! (long GOP) into GOP 2 for training, frame-exact.
//!
//! Options (after `#`): `episode=N` or `episode=all` (default: the only
//! episode; a dataset with several must name one or `all`, which plays them
//! back to back), `realtime=true` paces frames at their recorded spacing.
//! The default is as fast as the encoder takes them: the source is
//! [pausable](super::CaptureSource::pausable), so the capture thread waits
//! for ring space instead of spilling, and nothing is ever dropped.
//! `CAM` may be left out when the dataset has one camera; the camera keeps
//! its recorded name unless `name=` says otherwise.

use super::{CameraSpec, CaptureError, CaptureSource};
use crate::exit::usage;
use crate::frame::{FrameMeta, PixelFormat, VideoFormat};
use crate::replay::{EpisodeSelection, Frames, Pacer, Replay, ReplayFrame};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// A dataset camera played back as a capture source.
pub struct ReplaySource {
    frames: Frames,
    format: VideoFormat,
    pacer: Option<Pacer>,
    /// The first frame, decoded by `open` to fail early on unreadable video.
    first: Option<ReplayFrame>,
    last: Option<(u32, u64)>,
}

/// `(dataset dir, camera)` named by `replay:PATH`: `PATH` itself when it
/// holds `dataset.json`, else its parent with the last component as camera.
pub fn resolve(path: &str) -> (PathBuf, Option<String>) {
    let p = Path::new(path);
    if !p.join(crate::dataset::layout::DATASET_JSON).is_file() {
        if let (Some(parent), Some(cam)) = (p.parent(), p.file_name().and_then(|n| n.to_str())) {
            if parent.join(crate::dataset::layout::DATASET_JSON).is_file() {
                return (parent.to_path_buf(), Some(cam.to_string()));
            }
        }
    }
    (p.to_path_buf(), None)
}

/// The camera a `replay:PATH` plays and its recorded format, when the
/// dataset can be read (used for the default camera name and size).
pub fn describe(path: &str) -> Option<(String, VideoFormat)> {
    let (dir, cam) = resolve(path);
    let replay = Replay::open(&dir).ok()?;
    let name = match cam {
        Some(c) => c,
        None => match replay.dataset().meta.cameras.as_slice() {
            [only] => only.name.clone(),
            _ => return None,
        },
    };
    let format = replay.camera_format(&name)?;
    Some((name, format))
}

impl ReplaySource {
    /// Opens `replay:PATH` as described by `spec`.
    pub fn open(spec: &CameraSpec, path: &str) -> anyhow::Result<Self> {
        let split = super::spec::split_options(&spec.uri)?;
        let (dir, cam) = resolve(path);
        let replay = Replay::open(&dir).with_context(|| format!("camera {}", spec.name))?;
        let cameras: Vec<String> = replay
            .dataset()
            .meta
            .cameras
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let camera = match cam {
            Some(c) => c,
            None if cameras.len() == 1 => cameras[0].clone(),
            None => {
                return Err(usage(format!(
                    "camera {:?}: dataset {} has cameras {}; name one per -i, e.g. replay:{}/{}",
                    spec.uri,
                    dir.display(),
                    cameras.join(", "),
                    dir.display(),
                    cameras[0]
                )))
            }
        };
        let plan = replay.plan()?;
        let episodes = match split.get("episode") {
            Some("all") => EpisodeSelection::all(),
            Some(n) => EpisodeSelection::parse(n)?,
            None if plan.len() <= 1 => EpisodeSelection::all(),
            None => {
                let list: Vec<String> = plan.iter().map(|e| e.index.to_string()).collect();
                return Err(usage(format!(
                    "camera {:?}: dataset {} has {} episodes ({}); pick one with \
                     #episode=N (one record run per episode keeps episodes frame-exact) \
                     or play them back to back with #episode=all",
                    spec.uri,
                    dir.display(),
                    plan.len(),
                    list.join(", ")
                )));
            }
        };
        let realtime = match split.get("realtime") {
            Some(v) => super::spec::parse_bool(&spec.uri, "realtime", v)?,
            None => false,
        };
        let replay = replay.episodes(episodes).cameras([camera.clone()]);
        let format = replay
            .camera_format(&camera)
            .with_context(|| format!("camera {camera:?} is not in {}", dir.display()))?;
        let mut frames = replay.frames()?;
        let first = frames
            .next()
            .transpose()
            .with_context(|| format!("camera {}: reading {}", spec.name, dir.display()))?;
        if first.is_none() {
            anyhow::bail!(
                "camera {}: {} holds no frame of camera {camera} in the selected episode(s)",
                spec.name,
                dir.display()
            );
        }
        Ok(Self {
            frames,
            format,
            pacer: realtime.then(Pacer::new),
            first,
            last: None,
        })
    }
}

impl CaptureSource for ReplaySource {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn pausable(&self) -> bool {
        true
    }

    fn next_frame(&mut self, buf: &mut [u8]) -> Result<Option<FrameMeta>, CaptureError> {
        let frame = match self.first.take() {
            Some(f) => f,
            None => match self.frames.next() {
                Some(Ok(f)) => f,
                Some(Err(e)) => return Err(CaptureError::Failed(format!("replay: {e:#}"))),
                None => return Ok(None),
            },
        };
        if frame.format.pixel_format != PixelFormat::I420 || frame.data.len() != buf.len() {
            return Err(CaptureError::Failed(format!(
                "replay: frame {} of episode {} is {} bytes, the camera's {}x{} I420 needs {}",
                frame.frame_index,
                frame.episode,
                frame.data.len(),
                self.format.width,
                self.format.height,
                buf.len()
            )));
        }
        if let Some(p) = self.pacer.as_mut() {
            if self.last.is_some_and(|(ep, _)| ep != frame.episode) {
                p.restart();
            }
            p.wait(frame.capture_ts_ns);
        }
        // Frames the original recording lost stay lost, and are counted.
        let lost_before = match self.last {
            Some((ep, idx)) if ep == frame.episode => frame.frame_index.saturating_sub(idx + 1),
            _ => 0,
        };
        self.last = Some((frame.episode, frame.frame_index));
        buf.copy_from_slice(&frame.data);
        Ok(Some(FrameMeta {
            capture_ts_ns: frame.capture_ts_ns,
            sequence: Some(frame.frame_index),
            lost_before,
        }))
    }
}
