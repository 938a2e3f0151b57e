//! Where things live in a dataset directory:
//!
//! ```text
//! DIR/dataset.json
//! DIR/episodes/000000/CAM.mp4
//! DIR/episodes/000000/CAM.idx
//! DIR/episodes/000000/episode.json   (written last, atomically)
//! ```

use super::meta::{DatasetMeta, EpisodeMeta};
use anyhow::{bail, Context};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the dataset sidecar.
pub const DATASET_JSON: &str = "dataset.json";
/// Directory holding the episodes.
pub const EPISODES_DIR: &str = "episodes";
/// Name of the episode sidecar.
pub const EPISODE_JSON: &str = "episode.json";

/// Directory name of episode `index` (`000042`).
pub fn episode_dir_name(index: u32) -> String {
    format!("{index:06}")
}

/// Parses an episode directory name (exactly six digits).
pub fn parse_episode_dir_name(name: &str) -> Option<u32> {
    (name.len() == 6 && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}

/// One episode directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpisodeDir {
    /// Episode number.
    pub index: u32,
    /// `DIR/episodes/NNNNNN`.
    pub dir: PathBuf,
}

impl EpisodeDir {
    /// `CAM.mp4` of `camera`.
    pub fn mp4_path(&self, camera: &str) -> PathBuf {
        self.dir.join(format!("{camera}.mp4"))
    }
    /// `CAM.idx` of `camera`.
    pub fn index_path(&self, camera: &str) -> PathBuf {
        self.dir.join(format!("{camera}.idx"))
    }
    /// `episode.json`.
    pub fn meta_path(&self) -> PathBuf {
        self.dir.join(EPISODE_JSON)
    }
}

/// An episode found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpisodeEntry {
    /// Episode number.
    pub index: u32,
    /// Its directory.
    pub dir: PathBuf,
    /// `episode.json`; `None` = unfinished (or unreadable, see `meta_error`).
    pub meta: Option<EpisodeMeta>,
    /// Why an existing `episode.json` could not be read.
    pub meta_error: Option<String>,
}

/// Name of the lock file in the dataset directory (see [`Dataset::lock`]).
pub const LOCK_FILE: &str = ".s6-edge.lock";

/// Holds a dataset's exclusive lock until dropped.
#[derive(Debug)]
pub struct DatasetLock {
    _lock: nix::fcntl::Flock<File>,
}

/// An opened dataset directory.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The dataset directory.
    pub dir: PathBuf,
    /// Its `dataset.json`.
    pub meta: DatasetMeta,
}

impl Dataset {
    /// Creates `dir` (and `episodes/`) with `meta` as `dataset.json`, or
    /// opens an existing dataset whose cameras match `meta`'s.
    pub fn create_or_open(dir: &Path, meta: &DatasetMeta) -> anyhow::Result<Dataset> {
        let episodes = dir.join(EPISODES_DIR);
        std::fs::create_dir_all(&episodes).with_context(|| {
            format!(
                "cannot create the dataset directory {}: check that it is writable or choose another -o",
                episodes.display()
            )
        })?;
        check_writable(dir)?;
        let json_path = dir.join(DATASET_JSON);
        if json_path.exists() {
            let existing = read_dataset_meta(&json_path)?;
            if let Some(diff) = existing.camera_mismatch(meta) {
                bail!(
                    "{} already holds a dataset recorded with other cameras ({diff}); \
                     record into a new directory with another -o",
                    dir.display()
                );
            }
            return Ok(Dataset {
                dir: dir.to_path_buf(),
                meta: existing,
            });
        }
        write_json_atomic(&json_path, meta)?;
        Ok(Dataset {
            dir: dir.to_path_buf(),
            meta: meta.clone(),
        })
    }

    /// Opens an existing dataset read-only.
    pub fn open(dir: &Path) -> anyhow::Result<Dataset> {
        let json_path = dir.join(DATASET_JSON);
        if !json_path.is_file() {
            bail!(
                "{} is not an s6-edge dataset (no {DATASET_JSON})",
                dir.display()
            );
        }
        Ok(Dataset {
            dir: dir.to_path_buf(),
            meta: read_dataset_meta(&json_path)?,
        })
    }

    /// Takes the dataset's exclusive lock (`DIR/.s6-edge.lock`, an advisory
    /// `flock`), so that `record` and `recover` never work on the same
    /// dataset at once. Fails at once when another process holds it. The
    /// lock lasts as long as the returned guard.
    pub fn lock(&self) -> anyhow::Result<DatasetLock> {
        let path = self.dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        // A process killed a moment ago may still hold it while the kernel
        // tears it down: retry for up to 2 s before calling it busy.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut file = file;
        loop {
            match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(DatasetLock { _lock: lock }),
                Err((f, nix::errno::Errno::EWOULDBLOCK))
                    if std::time::Instant::now() < deadline =>
                {
                    file = f;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => bail!(
                    "dataset {} is in use by another s6-edge process (record or recover); wait for it to finish",
                    self.dir.display()
                ),
                Err((_, err)) => {
                    return Err(err).with_context(|| format!("locking {}", path.display()))
                }
            }
        }
    }

    /// `DIR/episodes`.
    pub fn episodes_dir(&self) -> PathBuf {
        self.dir.join(EPISODES_DIR)
    }

    /// The episode directory of number `index` (not created).
    pub fn episode(&self, index: u32) -> EpisodeDir {
        EpisodeDir {
            index,
            dir: self.episodes_dir().join(episode_dir_name(index)),
        }
    }

    /// Every episode directory, sorted by number, with its `episode.json`.
    pub fn list_episodes(&self) -> anyhow::Result<Vec<EpisodeEntry>> {
        let dir = self.episodes_dir();
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let Some(index) = entry.file_name().to_str().and_then(parse_episode_dir_name) else {
                continue;
            };
            if !entry.path().is_dir() {
                continue;
            }
            let (meta, meta_error) = match read_episode_meta(&entry.path()) {
                Ok(meta) => (meta, None),
                Err(err) => (None, Some(format!("{err:#}"))),
            };
            out.push(EpisodeEntry {
                index,
                dir: entry.path(),
                meta,
                meta_error,
            });
        }
        out.sort_by_key(|e| e.index);
        Ok(out)
    }

    /// Creates the next episode directory (one past the highest number).
    pub fn new_episode(&self) -> anyhow::Result<EpisodeDir> {
        let mut next = self
            .list_episodes()?
            .last()
            .map_or(0, |e| e.index.saturating_add(1));
        loop {
            let ep = self.episode(next);
            match std::fs::create_dir(&ep.dir) {
                Ok(()) => {
                    sync_dir(&self.episodes_dir())?;
                    return Ok(ep);
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    next = next.checked_add(1).context("episode numbers exhausted")?;
                }
                Err(err) => {
                    return Err(err)
                        .with_context(|| format!("creating episode {}", ep.dir.display()))
                }
            }
        }
    }
}

/// Reads and parses `dataset.json`.
pub fn read_dataset_meta(path: &Path) -> anyhow::Result<DatasetMeta> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

/// Reads `episode.json` in `dir`; `Ok(None)` when it does not exist.
pub fn read_episode_meta(dir: &Path) -> anyhow::Result<Option<EpisodeMeta>> {
    let path = dir.join(EPISODE_JSON);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{} is not valid", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes `episode.json` into `dir` atomically; call it after every other
/// file of the episode is durable: its presence marks the episode finished.
pub fn write_episode_meta_atomic(dir: &Path, meta: &EpisodeMeta) -> anyhow::Result<()> {
    write_json_atomic(&dir.join(EPISODE_JSON), meta)
}

/// Writes `value` as pretty JSON to `path` atomically: temporary file,
/// fsync, rename, fsync of the directory.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("JSON path has no file name")?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut text = serde_json::to_vec_pretty(value).context("encoding JSON")?;
    text.push(b'\n');
    let mut file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    sync_dir(dir)
}

/// Fsyncs a directory so that entries created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

/// Fails with a clear message when files cannot be created in `dir`.
fn check_writable(dir: &Path) -> anyhow::Result<()> {
    let probe = dir.join(format!(".s6-edge-write-test.{}", std::process::id()));
    File::create(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .with_context(|| {
            format!(
                "the dataset directory {} is not writable: fix its permissions or choose another -o",
                dir.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::super::meta::*;
    use super::*;
    use std::collections::BTreeMap;

    fn meta(width: u32) -> DatasetMeta {
        DatasetMeta {
            format_version: FORMAT_VERSION,
            s6_edge_version: env!("CARGO_PKG_VERSION").into(),
            created: "2024-01-01T00:00:00Z".into(),
            cameras: vec![CameraMeta {
                name: "cam0".into(),
                source: "synthetic".into(),
                width,
                height: 240,
                fps_num: 15,
                fps_den: 1,
                pixel_format: "i420".into(),
            }],
            codec: "av1".into(),
            backend: "svtav1".into(),
            encoder: EncoderMeta::default(),
        }
    }

    #[test]
    fn episode_names() {
        assert_eq!(episode_dir_name(0), "000000");
        assert_eq!(episode_dir_name(42), "000042");
        assert_eq!(parse_episode_dir_name("000042"), Some(42));
        assert_eq!(parse_episode_dir_name("42"), None);
        assert_eq!(parse_episode_dir_name("00004x"), None);
    }

    #[test]
    fn create_reopen_and_number_episodes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ds");
        let ds = Dataset::create_or_open(&dir, &meta(320)).unwrap();
        assert!(dir.join(DATASET_JSON).is_file());
        let e0 = ds.new_episode().unwrap();
        let e1 = ds.new_episode().unwrap();
        assert_eq!((e0.index, e1.index), (0, 1));
        assert!(dir.join("episodes/000001").is_dir());
        assert_eq!(e1.mp4_path("cam0"), dir.join("episodes/000001/cam0.mp4"));

        let ep = EpisodeMeta {
            index: 0,
            status: EpisodeStatus::Complete,
            task: Some("pick".into()),
            started_unix_ns: 1,
            ended_unix_ns: 2,
            cameras: BTreeMap::new(),
            recovery: None,
        };
        write_episode_meta_atomic(&e0.dir, &ep).unwrap();
        let list = Dataset::open(&dir).unwrap().list_episodes().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].meta.as_ref(), Some(&ep));
        assert_eq!(list[1].meta, None);
        assert!(!e0.dir.join(".episode.json.tmp").exists());

        // Same cameras: reopens; other cameras: a clear error.
        let again = Dataset::create_or_open(&dir, &meta(320)).unwrap();
        assert_eq!(again.new_episode().unwrap().index, 2);
        let err = format!(
            "{:#}",
            Dataset::create_or_open(&dir, &meta(640)).unwrap_err()
        );
        assert!(err.contains("other cameras") && err.contains("-o"), "{err}");
    }

    #[test]
    fn corrupt_episode_json_is_reported_not_fatal() {
        let tmp = tempfile::tempdir().unwrap();
        let ds = Dataset::create_or_open(tmp.path(), &meta(320)).unwrap();
        let ep = ds.new_episode().unwrap();
        std::fs::write(ep.meta_path(), b"{ not json").unwrap();
        let list = ds.list_episodes().unwrap();
        assert!(list[0].meta.is_none());
        assert!(list[0].meta_error.as_deref().unwrap().contains("not valid"));
    }

    #[test]
    fn open_of_a_plain_directory_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let err = Dataset::open(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("not an s6-edge dataset"), "{err}");
    }

    #[test]
    fn unwritable_directory_names_the_path() {
        if nix::unistd::geteuid().is_root() {
            // root ignores permission bits; /proc is unwritable for everyone.
            let err = format!(
                "{:#}",
                Dataset::create_or_open(Path::new("/proc/s6-edge-test"), &meta(320)).unwrap_err()
            );
            assert!(err.contains("/proc/s6-edge-test"), "{err}");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        let dir = tmp.path().join("ds");
        let err = format!(
            "{:#}",
            Dataset::create_or_open(&dir, &meta(320)).unwrap_err()
        );
        assert!(err.contains(&dir.display().to_string()), "{err}");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
