//! Dispatches each subcommand to the module that implements it.

use crate::cli::{Cli, Command};
use std::process::ExitCode;

/// Runs the subcommand of `cli`.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Record(args) => crate::record::run(*args),
        Command::Encoders(args) => crate::plugin_host::encoders_command(args),
        Command::ProbePlugin(args) => crate::plugin_host::probe_child_command(args),
        Command::Verify(args) => crate::dataset::verify::run(args),
        Command::Recover(args) => crate::dataset::recover::run(args),
        Command::Cameras(args) => crate::capture::cameras_command(args),
        Command::EncodePending(args) => crate::record::pending::run(args),
        Command::PerfStats(args) => crate::metrics::perf_stats::run(args),
        Command::Replay(args) => crate::replay::run(args),
        Command::Ctl(args) => crate::ctl::run(args),
    }
}
