//! `s6-edge record`: orchestration of cameras, rings, encoders and episodes.
//!
//! One capture thread and one encoder thread per camera, joined by a
//! lock-free frame ring ([`pool`]); the controller ([`recorder`]) runs the
//! episode schedule, handles signals, writes `episode.json` and metrics.

pub mod capture_thread;
pub mod config;
pub mod control;
pub mod control_socket;
pub mod disk_guard;
pub mod drain;
pub mod encode_thread;
pub mod liveness;
pub mod monitor;
pub mod output_path;
pub mod pending;
pub mod pool;
pub mod recorder;
pub mod signals;
pub mod spill;
pub mod status;

/// Runs `s6-edge record`.
pub fn run(args: crate::cli::RecordArgs) -> anyhow::Result<std::process::ExitCode> {
    let config = config::resolve(&args)?;
    recorder::record(config)
}
