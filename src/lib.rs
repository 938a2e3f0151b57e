//! s6-edge: a crash-safe multi-camera recorder for robots.
//!
//! Cameras (V4L2, GStreamer, a synthetic pattern) feed per-camera lock-free
//! rings; one encoder thread per camera encodes through a dynamically loaded
//! codec plugin into fragmented MP4 plus a postcard frame index, organised in
//! episodes. See `README.md` for the user guide.

pub mod capture;
pub mod cli;
pub mod commands;
pub mod convert;
pub mod ctl;
pub mod dataset;
pub mod decode;
pub mod exit;
pub mod frame;
pub mod metrics;
pub mod mjpeg;
pub mod mux;
pub mod plugin_host;
pub mod record;
pub mod replay;
pub mod rt_guard;
pub mod sd_notify;

use std::process::ExitCode;

/// Runs one parsed command line and maps its outcome to the process exit
/// code: 0 ok, 1 failure, 2 bad usage.
pub fn run(cli: cli::Cli) -> ExitCode {
    exit::init_logging(cli.verbose);
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    }
}
