//! JSON sidecars for people: `dataset.json` and `episode.json`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Current `dataset.json` format version.
pub const FORMAT_VERSION: u32 = 1;

/// `DIR/dataset.json`: what the whole dataset holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetMeta {
    /// Format version of the dataset layout.
    pub format_version: u32,
    /// Version of the s6-edge that created the dataset.
    pub s6_edge_version: String,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Cameras, each recorded into `CAM.mp4` + `CAM.idx` per episode.
    pub cameras: Vec<CameraMeta>,
    /// Codec name: `av1` or `h264`.
    pub codec: String,
    /// Encoder backend (plugin name), e.g. `svtav1`.
    pub backend: String,
    /// Encoder settings.
    pub encoder: EncoderMeta,
}

/// One camera of a dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraMeta {
    /// Camera name (file stem of its files).
    pub name: String,
    /// Source description (`synthetic`, `v4l2:/dev/video0`, `gst:...`).
    pub source: String,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frame rate numerator.
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
    /// Captured pixel format (`yuyv`, `i420`, ...).
    pub pixel_format: String,
}

impl CameraMeta {
    /// The fields that must match for episodes to share a dataset.
    fn shape(&self) -> (&str, u32, u32, u32, u32) {
        (
            &self.name,
            self.width,
            self.height,
            self.fps_num,
            self.fps_den,
        )
    }

    /// `name WxH@num/den`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} {}x{}@{}/{}",
            self.name, self.width, self.height, self.fps_num, self.fps_den
        )
    }
}

/// Encoder settings recorded with the dataset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderMeta {
    /// Keyframe interval in frames.
    pub gop: u32,
    /// Constant-quality factor, when the backend has one.
    pub crf: Option<i32>,
    /// Speed preset, when the backend has one.
    pub preset: Option<i32>,
    /// Encoder threads (0 = backend default).
    pub threads: u32,
}

impl DatasetMeta {
    /// Describes how the camera set of `other` differs from this one, or
    /// `None` when names, sizes and rates all match (order does not matter).
    pub fn camera_mismatch(&self, other: &DatasetMeta) -> Option<String> {
        let mut mine: Vec<_> = self.cameras.iter().map(CameraMeta::shape).collect();
        let mut theirs: Vec<_> = other.cameras.iter().map(CameraMeta::shape).collect();
        mine.sort_unstable();
        theirs.sort_unstable();
        if mine == theirs {
            return None;
        }
        let list = |m: &DatasetMeta| {
            m.cameras
                .iter()
                .map(CameraMeta::describe)
                .collect::<Vec<_>>()
                .join(", ")
        };
        Some(format!("[{}] vs [{}]", list(self), list(other)))
    }
}

/// How an episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EpisodeStatus {
    /// Recorded and closed normally.
    Complete,
    /// Closed by `s6-edge recover` after a crash.
    Recovered,
    /// Stopped early (error or user abort) but closed cleanly.
    Aborted,
}

/// Per-camera totals of one episode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpisodeCameraMeta {
    /// Frames in the video.
    pub frames: u64,
    /// Frames that went through the PNG spill path.
    pub spilled: u64,
    /// Frames lost (counted in the index, not in the video).
    pub dropped: u64,
    /// Capture timestamp of the first frame, ns since the Unix epoch.
    pub first_capture_ns: u64,
    /// Capture timestamp of the last frame, ns since the Unix epoch.
    pub last_capture_ns: u64,
}

/// `episodes/NNNNNN/episode.json`, written last: its presence marks the episode finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpisodeMeta {
    /// Episode number (the directory name).
    pub index: u32,
    /// How the episode ended.
    pub status: EpisodeStatus,
    /// Task description.
    pub task: Option<String>,
    /// Start, ns since the Unix epoch.
    pub started_unix_ns: u64,
    /// End, ns since the Unix epoch.
    pub ended_unix_ns: u64,
    /// Per-camera totals.
    pub cameras: BTreeMap<String, EpisodeCameraMeta>,
    /// What `s6-edge recover` found and did (only on recovered episodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<EpisodeRecovery>,
}

/// What `s6-edge recover` did to one episode; stored in `episode.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpisodeRecovery {
    /// Version of the s6-edge that recovered the episode.
    pub s6_edge_version: String,
    /// When, RFC 3339.
    pub recovered_at: String,
    /// Per camera.
    pub cameras: BTreeMap<String, CameraRecovery>,
}

/// What `s6-edge recover` found and did for one camera of an episode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraRecovery {
    /// Frames in the video afterwards (same as the camera's `frames`).
    pub frames_kept: u64,
    /// Bytes of a torn MP4 tail that were cut off.
    pub mp4_trimmed_bytes: u64,
    /// Complete samples rescued from a torn trailing fragment (rewritten as
    /// a complete fragment instead of being cut off).
    pub samples_salvaged: u64,
    /// Bytes of a torn or corrupt index tail that were cut off.
    pub index_trimmed_bytes: u64,
    /// Index rows whose frame never became durable in the MP4 (and had no
    /// spill file): removed from the index. These frames were lost by the crash.
    pub rows_without_sample: u64,
    /// MP4 samples that had no index row (nor spill file): kept, and given a
    /// row whose capture timestamp is estimated from neighbouring measured
    /// times at the nominal rate.
    pub rows_synthesized: u64,
    /// MP4 samples that had no index row but still had their spill file:
    /// their rows were rebuilt with the capture time the spill file records.
    #[serde(default)]
    pub rows_from_spill_files: u64,
    /// Frame numbers of the synthesized rows, as ranges `[first, last]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub synthesized_frames: Vec<[u64; 2]>,
    /// Pending spill frames encoded into the MP4.
    pub spill_frames_encoded: u64,
    /// Notes for people (why something could not be done).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam(name: &str, w: u32) -> CameraMeta {
        CameraMeta {
            name: name.into(),
            source: "synthetic".into(),
            width: w,
            height: 240,
            fps_num: 30,
            fps_den: 1,
            pixel_format: "i420".into(),
        }
    }

    fn meta(cameras: Vec<CameraMeta>) -> DatasetMeta {
        DatasetMeta {
            format_version: FORMAT_VERSION,
            s6_edge_version: "0.1.0".into(),
            created: "2024-01-01T00:00:00Z".into(),
            cameras,
            codec: "av1".into(),
            backend: "svtav1".into(),
            encoder: EncoderMeta {
                gop: 2,
                crf: Some(30),
                preset: Some(10),
                threads: 0,
            },
        }
    }

    #[test]
    fn camera_sets_compare_by_shape_not_order_or_source() {
        let a = meta(vec![cam("left", 320), cam("right", 320)]);
        let mut b = meta(vec![cam("right", 320), cam("left", 320)]);
        b.cameras[0].source = "v4l2:/dev/video0".into();
        assert_eq!(a.camera_mismatch(&b), None);
        let c = meta(vec![cam("left", 640), cam("right", 320)]);
        let msg = a.camera_mismatch(&c).unwrap();
        assert!(msg.contains("left 640x240@30/1"), "{msg}");
    }

    #[test]
    fn status_is_lowercase_json() {
        let ep = EpisodeMeta {
            index: 3,
            status: EpisodeStatus::Recovered,
            task: None,
            started_unix_ns: 1,
            ended_unix_ns: 2,
            cameras: BTreeMap::new(),
            recovery: None,
        };
        let json = serde_json::to_string(&ep).unwrap();
        assert!(json.contains("\"status\":\"recovered\""), "{json}");
        assert_eq!(serde_json::from_str::<EpisodeMeta>(&json).unwrap(), ep);
    }
}
