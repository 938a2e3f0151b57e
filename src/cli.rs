//! Command-line interface (clap derive). Every subcommand has `--help`.
//!
//! Record flags are `Option`s so that a `--config` file can supply them and
//! flags given on the command line override the file.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// s6-edge: record robot camera data to crash-safe fragmented MP4 episodes,
/// verify, recover and replay it.
#[derive(Debug, Parser)]
#[command(name = "s6-edge", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record cameras into a dataset of episodes.
    Record(Box<RecordArgs>),
    /// List codec plugins and probe whether each really works here.
    Encoders(EncodersArgs),
    /// Check a dataset: index vs video, frame counts, timestamps, gaps.
    Verify(VerifyArgs),
    /// Finish what a crash left: trim torn tails, encode pending frames, close episodes.
    Recover(RecoverArgs),
    /// Encode spill frames an interrupted recording left behind into their MP4s.
    EncodePending(EncodePendingArgs),
    /// List V4L2 capture devices with their formats, sizes and rates.
    Cameras(CamerasArgs),
    /// Per-stage latency statistics of a run (`record -x`), or two runs compared.
    PerfStats(PerfStatsArgs),
    /// Play recorded episodes as decoded frames (sink, raw file, PNGs, digests).
    Replay(ReplayArgs),
    /// Drive a running `record --control SOCKET`: start/stop/discard episodes, status.
    Ctl(CtlArgs),
    /// Internal: probe one plugin in a child process and print the result as JSON.
    #[command(hide = true, name = "__probe-plugin")]
    ProbePlugin(ProbePluginArgs),
}

/// Where to look for codec plugins, shared by every command that encodes.
#[derive(Debug, Args, Clone, Default)]
pub struct PluginDirArgs {
    /// Extra plugin directory, searched first (repeatable). Also
    /// `S6_EDGE_PLUGIN_PATH` (colon-separated), `<exe dir>/plugins`,
    /// `<exe dir>/../lib/s6-edge/plugins` and `/usr/lib/s6-edge/plugins`.
    #[arg(long = "plugin-dir", value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
    /// Deadline for each plugin probe, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    pub probe_timeout_ms: u64,
}

/// `s6-edge encoders`.
#[derive(Debug, Args)]
pub struct EncodersArgs {
    #[command(flatten)]
    pub plugins: PluginDirArgs,
    /// Probe at this width.
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    /// Probe at this height.
    #[arg(long, default_value_t = 480)]
    pub height: u32,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// `s6-edge record`.
#[derive(Debug, Args, Clone, Default)]
pub struct RecordArgs {
    /// TOML config file mirroring these flags; flags given here override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Camera source (repeatable): `synthetic`, `v4l2:/dev/videoN`,
    /// `gst:<gst-launch source description>`. Per-camera options may follow
    /// after `#`: `synthetic#name=left,width=320,height=240,fps=15`.
    #[arg(short = 'i', long = "input", value_name = "SOURCE")]
    pub inputs: Vec<String>,
    /// Output dataset directory; placeholders `{date}`, `{time}`, `{host}`.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<String>,
    /// Default frame width for cameras that do not set their own.
    #[arg(long)]
    pub width: Option<u32>,
    /// Default frame height.
    #[arg(long)]
    pub height: Option<u32>,
    /// Default frame rate.
    #[arg(long)]
    pub fps: Option<u32>,
    /// Encoder backend: `auto` (hardware first, then svtav1) or a plugin name.
    #[arg(long)]
    pub vcodec: Option<String>,
    /// Keyframe interval in frames.
    #[arg(long)]
    pub gop: Option<u32>,
    /// Constant-quality factor.
    #[arg(long)]
    pub crf: Option<i32>,
    /// Encoder speed preset.
    #[arg(long)]
    pub preset: Option<i32>,
    /// Encoder worker threads per camera (0 = encoder default).
    #[arg(long)]
    pub encoder_threads: Option<u32>,
    /// Number of episodes to record (default: until stopped).
    #[arg(long)]
    pub episodes: Option<u32>,
    /// Length of one episode in seconds (default: until stopped).
    #[arg(long, value_name = "SECONDS")]
    pub episode_time: Option<f64>,
    /// Pause between episodes in seconds (the encoder drains meanwhile).
    #[arg(long, value_name = "SECONDS")]
    pub reset_time: Option<f64>,
    /// Task description stored in each episode.
    #[arg(long)]
    pub task: Option<String>,
    /// Ring depth in frames per camera (the preallocated pool holds this many + 2).
    #[arg(long)]
    pub ring_frames: Option<u32>,
    /// Encode while recording (default). `--streaming-encoding=false`: every
    /// frame is written to a spill file and encoded between episodes (the
    /// low-resource mode); `record` exits once every frame is encoded.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub streaming_encoding: Option<bool>,
    /// Listen on this Unix socket for episode commands (`s6-edge ctl`, or
    /// one line per command: start [TASK] | stop | discard | status | quit).
    /// Without --episodes/--episode-time, episodes then start only on `start`.
    #[arg(long, value_name = "SOCKET")]
    pub control: Option<PathBuf>,
    /// Keep at least this much free space on the dataset's filesystem
    /// (e.g. 500M, 2G): below it the current episode is finished and
    /// recording pauses until space returns. Episodes are never deleted.
    #[arg(long, value_name = "SIZE")]
    pub min_free: Option<String>,
    /// On a dataset with unfinished episodes (a crash), run `s6-edge
    /// recover` on it first instead of refusing to record.
    #[arg(long)]
    pub recover: bool,
    /// Write metrics.json and a Chrome trace under `logs/runs/<timestamp>/`.
    #[arg(short = 'x', long)]
    pub output_log: bool,
    /// Directory that receives `runs/<timestamp>/` when `-x` is given.
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    #[command(flatten)]
    pub plugins: PluginDirArgs,
}

/// `s6-edge verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Dataset directory.
    pub dir: PathBuf,
    /// Skip decoding the video (only count samples in the MP4).
    #[arg(long)]
    pub no_decode: bool,
    /// Machine-readable report.
    #[arg(long)]
    pub json: bool,
}

/// `s6-edge recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Dataset directory.
    pub dir: PathBuf,
    /// Say what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub plugins: PluginDirArgs,
}

/// `s6-edge ctl`.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Control socket of a running `s6-edge record --control SOCKET`.
    pub socket: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: CtlCommand,
    /// Seconds to wait for the reply (`stop` replies once episode.json is written).
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0, global = true)]
    pub timeout: f64,
}

/// Commands of `s6-edge ctl`.
#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Begin an episode.
    Start {
        /// Task text for this episode (default: the recorder's --task).
        #[arg(long)]
        task: Option<String>,
    },
    /// Finish the current episode cleanly (writes episode.json).
    Stop,
    /// End the current episode and delete it entirely.
    Discard,
    /// Print the recorder's state as JSON.
    Status,
    /// Finish the current episode and end the recorder.
    Quit,
}

/// `s6-edge replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Dataset directory.
    pub dir: PathBuf,
    /// Episodes to play: numbers and inclusive ranges, e.g. `3,5-7` (default: all).
    #[arg(long, value_name = "LIST")]
    pub episodes: Option<String>,
    /// Cameras to play, comma-separated (default: all).
    #[arg(long, value_name = "NAMES")]
    pub cameras: Option<String>,
    /// Play the selection again and again: `--repeat` loops until stopped,
    /// `--repeat N` plays it N times in all.
    #[arg(long, value_name = "N", num_args = 0..=1)]
    pub repeat: Option<Option<u64>>,
    /// Deliver frames at the spacing of their recorded capture timestamps
    /// (default: as fast as decoding allows).
    #[arg(long)]
    pub realtime_playback: bool,
    /// Push frames into this GStreamer pipeline through appsrc (one per
    /// camera; `{camera}` is replaced by the camera name), e.g. `fakesink`,
    /// `videoconvert ! autovideosink`, `filesink location=/tmp/{camera}.yuv`.
    #[arg(long, value_name = "GST-DESCRIPTION")]
    pub sink: Option<String>,
    /// Write raw I420 frames, each after a small header (see README), to
    /// this file (`-` = standard output).
    #[arg(long, value_name = "PATH")]
    pub raw_out: Option<PathBuf>,
    /// Write every frame as `DIR/<episode>/<camera>/<frame>.png`.
    #[arg(long, value_name = "DIR")]
    pub png_dir: Option<PathBuf>,
    /// Print one BLAKE3 digest per camera over frame data and metadata.
    #[arg(long)]
    pub hash: bool,
    /// Write metrics.json (frames, fps, decode/deliver/lateness latencies)
    /// under `<log-dir>/runs/<timestamp>/`, for `s6-edge perf-stats`.
    #[arg(short = 'x', long)]
    pub output_log: bool,
    /// Directory that receives `runs/<timestamp>/` when `-x` is given.
    #[arg(long, value_name = "DIR", default_value = "logs")]
    pub log_dir: PathBuf,
}

/// `s6-edge perf-stats`.
#[derive(Debug, Args)]
pub struct PerfStatsArgs {
    /// Run directory (`logs/runs/<timestamp>`) or its `metrics.json`; none:
    /// the latest run under `--log-dir`; two: compared side by side (B vs A).
    #[arg(value_name = "RUN", num_args = 0..=2)]
    pub runs: Vec<PathBuf>,
    /// Where `runs/` is looked for when no RUN is given.
    #[arg(long, value_name = "DIR", default_value = "logs")]
    pub log_dir: PathBuf,
    /// JSON instead of a table.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Markdown tables.
    #[arg(long)]
    pub markdown: bool,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `s6-edge encode-pending`.
#[derive(Debug, Args)]
pub struct EncodePendingArgs {
    /// Dataset directory.
    pub dir: PathBuf,
    #[command(flatten)]
    pub plugins: PluginDirArgs,
}

/// `s6-edge cameras`.
#[derive(Debug, Args)]
pub struct CamerasArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// `s6-edge __probe-plugin` (internal).
#[derive(Debug, Args)]
pub struct ProbePluginArgs {
    /// Plugin shared library.
    pub path: PathBuf,
    /// Probe width.
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    /// Probe height.
    #[arg(long, default_value_t = 480)]
    pub height: u32,
}
