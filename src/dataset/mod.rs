//! Dataset on disk: layout, JSON sidecars, postcard frame index, verify, recover.

pub mod index;
pub mod layout;
pub mod meta;
pub mod recover;
pub mod timing;
pub mod verify;

pub use layout::{episode_dir_name, write_episode_meta_atomic, Dataset, EpisodeDir, EpisodeEntry};
pub use meta::{
    CameraMeta, CameraRecovery, DatasetMeta, EncoderMeta, EpisodeCameraMeta, EpisodeMeta,
    EpisodeRecovery, EpisodeStatus,
};
