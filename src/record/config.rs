//! Resolves the record settings from `--config FILE` and the command line
//! (flags override the file) into one validated [`RecordConfig`].

use crate::capture::CameraSpec;
use crate::cli::{PluginDirArgs, RecordArgs};
use crate::exit::usage;
use crate::frame::{PixelFormat, VideoFormat};
use crate::plugin_host::EncoderSettings;
use anyhow::Context;
use serde::Deserialize;
use std::path::PathBuf;

/// Defaults applied when neither the file nor the flags say otherwise.
pub const DEFAULT_WIDTH: u32 = 640;
/// Default frame height.
pub const DEFAULT_HEIGHT: u32 = 480;
/// Default frame rate.
pub const DEFAULT_FPS: u32 = 30;
/// Default ring depth in frames.
pub const DEFAULT_RING_FRAMES: u32 = 64;
/// Default keyframe interval (training loaders seek per frame pair).
pub const DEFAULT_GOP: u32 = 2;

/// The `--config` TOML file: the same names as the flags (with `_`), plus an
/// optional `[[camera]]` list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordFile {
    /// Output dataset directory (placeholders allowed).
    pub output: Option<String>,
    /// Default width.
    pub width: Option<u32>,
    /// Default height.
    pub height: Option<u32>,
    /// Default frame rate.
    pub fps: Option<u32>,
    /// Encoder backend.
    pub vcodec: Option<String>,
    /// Keyframe interval.
    pub gop: Option<u32>,
    /// Quality.
    pub crf: Option<i32>,
    /// Speed preset.
    pub preset: Option<i32>,
    /// Encoder threads.
    pub encoder_threads: Option<u32>,
    /// Episodes to record.
    pub episodes: Option<u32>,
    /// Episode length in seconds.
    pub episode_time: Option<f64>,
    /// Pause between episodes in seconds.
    pub reset_time: Option<f64>,
    /// Task text.
    pub task: Option<String>,
    /// Ring depth.
    pub ring_frames: Option<u32>,
    /// Encode while recording (false: spill everything, encode between episodes).
    pub streaming_encoding: Option<bool>,
    /// Write metrics and trace.
    pub output_log: Option<bool>,
    /// Recover unfinished episodes before recording.
    pub recover: Option<bool>,
    /// Where runs/ goes.
    pub log_dir: Option<PathBuf>,
    /// Extra plugin directories.
    pub plugin_dirs: Option<Vec<PathBuf>>,
    /// Episode control socket.
    pub control: Option<PathBuf>,
    /// Free space to keep on the dataset filesystem (`500M`, `2G`).
    pub min_free: Option<String>,
    /// Cameras (used when no `-i` is given).
    #[serde(default, rename = "camera")]
    pub cameras: Vec<CameraEntry>,
}

/// One `[[camera]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraEntry {
    /// Source URI (`synthetic`, `v4l2:/dev/video0`, `gst:...`).
    pub source: String,
    /// Camera name.
    pub name: Option<String>,
    /// Width.
    pub width: Option<u32>,
    /// Height.
    pub height: Option<u32>,
    /// Frame rate.
    pub fps: Option<u32>,
    /// Pixel format name.
    pub format: Option<String>,
}

/// Fully resolved settings of one `record` run.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// Cameras, in order.
    pub cameras: Vec<CameraSpec>,
    /// Output directory with placeholders expanded.
    pub output: PathBuf,
    /// Encoder backend request (`auto` or a name).
    pub vcodec: String,
    /// Encoder settings.
    pub encoder: EncoderSettings,
    /// Episodes to record; `None` = until stopped.
    pub episodes: Option<u32>,
    /// Episode length; `None` = until stopped.
    pub episode_time: Option<f64>,
    /// Pause between episodes.
    pub reset_time: f64,
    /// Task text.
    pub task: Option<String>,
    /// Ring depth per camera.
    pub ring_frames: u32,
    /// Encode while recording; false: every frame spills and is encoded
    /// between episodes.
    pub streaming_encoding: bool,
    /// Metrics/trace directory when `-x` is on.
    pub log_dir: Option<PathBuf>,
    /// Run `recover` on unfinished episodes instead of refusing.
    pub recover: bool,
    /// Plugin search options.
    pub plugins: PluginDirArgs,
    /// Episode control socket (`--control`): episodes start on command.
    pub control: Option<PathBuf>,
    /// Free bytes to keep on the dataset filesystem (`--min-free`).
    pub min_free: Option<u64>,
}

fn positive_seconds(name: &str, v: Option<f64>) -> anyhow::Result<Option<f64>> {
    match v {
        Some(s) if !(s.is_finite() && s > 0.0) => Err(usage(format!(
            "--{name} must be a positive number of seconds, got {s}"
        ))),
        other => Ok(other),
    }
}

/// Merges `args` over the file named by `args.config` (if any) and validates.
pub fn resolve(args: &RecordArgs) -> anyhow::Result<RecordConfig> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            toml::from_str::<RecordFile>(&text)
                .map_err(|e| usage(format!("config file {}: {e}", path.display())))?
        }
        None => RecordFile::default(),
    };
    let width = args.width.or(file.width).unwrap_or(DEFAULT_WIDTH);
    let height = args.height.or(file.height).unwrap_or(DEFAULT_HEIGHT);
    let fps = args.fps.or(file.fps).unwrap_or(DEFAULT_FPS);
    if fps == 0 || fps > 1000 {
        return Err(usage(format!(
            "--fps must be between 1 and 1000, got {fps}"
        )));
    }
    let defaults = VideoFormat {
        width,
        height,
        fps_num: fps,
        fps_den: 1,
        pixel_format: PixelFormat::I420,
    };

    let mut cameras = Vec::new();
    if !args.inputs.is_empty() {
        for (i, arg) in args.inputs.iter().enumerate() {
            cameras.push(crate::capture::parse_camera_arg(arg, &defaults, i)?);
        }
    } else {
        for (i, cam) in file.cameras.iter().enumerate() {
            let mut opts = Vec::new();
            if let Some(n) = &cam.name {
                opts.push(format!("name={n}"));
            }
            if let Some(w) = cam.width {
                opts.push(format!("width={w}"));
            }
            if let Some(h) = cam.height {
                opts.push(format!("height={h}"));
            }
            if let Some(f) = cam.fps {
                opts.push(format!("fps={f}"));
            }
            if let Some(f) = &cam.format {
                opts.push(format!("format={f}"));
            }
            let arg = if opts.is_empty() {
                cam.source.clone()
            } else {
                format!("{}#{}", cam.source, opts.join(","))
            };
            cameras.push(crate::capture::parse_camera_arg(&arg, &defaults, i)?);
        }
    }
    if cameras.is_empty() {
        return Err(usage("no camera given: add `-i synthetic`, `-i v4l2:/dev/video0` or `-i gst:...` (or [[camera]] in --config)"));
    }
    for (i, a) in cameras.iter().enumerate() {
        if cameras[..i].iter().any(|b| b.name == a.name) {
            return Err(usage(format!(
                "two cameras are named {:?}: give each a unique name with #name=...",
                a.name
            )));
        }
    }

    let output_template = args.output.clone().or(file.output).ok_or_else(|| {
        usage("no output directory: give -o DIR (placeholders {date}, {time}, {host})")
    })?;
    let output = super::output_path::expand(&output_template)?;

    let gop = args.gop.or(file.gop).unwrap_or(DEFAULT_GOP);
    if gop == 0 {
        return Err(usage("--gop must be at least 1"));
    }
    let ring_frames = args
        .ring_frames
        .or(file.ring_frames)
        .unwrap_or(DEFAULT_RING_FRAMES);
    if !(2..=4096).contains(&ring_frames) {
        return Err(usage(format!(
            "--ring-frames must be between 2 and 4096, got {ring_frames}"
        )));
    }
    let episodes = args.episodes.or(file.episodes);
    if episodes == Some(0) {
        return Err(usage("--episodes must be at least 1"));
    }
    let encoder = EncoderSettings {
        gop,
        crf: args.crf.or(file.crf),
        preset: args.preset.or(file.preset),
        threads: args.encoder_threads.or(file.encoder_threads).unwrap_or(0),
        bitrate_kbps: 0,
        device: None,
        options: String::new(),
    };
    let output_log = args.output_log || file.output_log.unwrap_or(false);
    let log_dir = output_log.then(|| {
        args.log_dir
            .clone()
            .or(file.log_dir)
            .unwrap_or_else(|| PathBuf::from("logs"))
    });
    let min_free = match args.min_free.as_deref().or(file.min_free.as_deref()) {
        Some(text) => Some(
            super::disk_guard::parse_size(text).map_err(|e| usage(format!("--min-free: {e}")))?,
        ),
        None => None,
    };
    let mut plugins = args.plugins.clone();
    if plugins.plugin_dirs.is_empty() {
        plugins.plugin_dirs = file.plugin_dirs.unwrap_or_default();
    }
    Ok(RecordConfig {
        cameras,
        output,
        vcodec: args
            .vcodec
            .clone()
            .or(file.vcodec)
            .unwrap_or_else(|| "auto".to_string()),
        encoder,
        episodes,
        episode_time: positive_seconds("episode-time", args.episode_time.or(file.episode_time))?,
        reset_time: positive_seconds("reset-time", args.reset_time.or(file.reset_time))?
            .unwrap_or(0.0),
        task: args.task.clone().or(file.task),
        ring_frames,
        streaming_encoding: args
            .streaming_encoding
            .or(file.streaming_encoding)
            .unwrap_or(true),
        log_dir,
        recover: args.recover || file.recover.unwrap_or(false),
        plugins,
        control: args.control.clone().or(file.control),
        min_free,
    })
}
