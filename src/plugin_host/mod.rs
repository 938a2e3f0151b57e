//! Codec plugin host: discovery, loading, ABI check, probing under a deadline,
//! backend selection (`--vcodec auto`), and a safe encoder session wrapper.
//!
//! * [`discovery`] — which directories, which files.
//! * [`library`] — `dlopen`, entry symbol, ABI version check.
//! * [`probe`] — one child process per plugin, in parallel, with a deadline.
//! * [`select`] — `auto` preference order and explicit names.
//! * [`session`] — [`Backend`] and [`EncoderSession`] for the recorder.
//! * [`report`] — [`PluginReport`] and its table/JSON forms.
//! * [`encoders`] — the `s6-edge encoders` command.

pub mod discovery;
pub mod encoders;
pub mod library;
pub mod planes;
pub mod probe;
pub mod report;
pub mod select;
pub mod session;

pub use encoders::encoders_command;
pub use probe::{probe_child_command, ProbeRequest};
pub use report::{Availability, PluginReport};
pub use session::{Backend, EncoderSession, EncoderSettings};

use crate::cli::PluginDirArgs;
use anyhow::Context;
use std::time::{Duration, Instant};

/// Finds every plugin in the search directories of `dirs` and probes each
/// (in parallel child processes, each under `dirs.probe_timeout_ms`).
/// Reports come in discovery order; a backend name found again later is
/// reported as shadowed.
pub fn discover_and_probe(dirs: &PluginDirArgs, req: &ProbeRequest) -> Vec<PluginReport> {
    for dir in &dirs.plugin_dirs {
        if !dir.is_dir() {
            log::warn!("--plugin-dir {}: no such directory", dir.display());
        }
    }
    let search = discovery::search_dirs(dirs);
    let files = discovery::plugin_files(&search);
    let start = Instant::now();
    let mut reports = probe::probe_all(
        &files,
        req,
        Duration::from_millis(dirs.probe_timeout_ms.max(1)),
    );
    log::debug!(
        "probed {} plugin(s) in {} ms",
        reports.len(),
        start.elapsed().as_millis()
    );
    select::mark_shadowed(&mut reports);
    reports
}

/// Picks the backend for `vcodec` (`auto` or a backend name) and loads it.
///
/// `auto` prefers hardware (v4l2m2m, vaapi, nvenc, then any other hardware
/// backend), then svtav1, then any other software backend, and logs why
/// each skipped hardware backend was skipped. An explicit name that is
/// unavailable is an error carrying the probe's reason; an unknown name is
/// a usage error listing the names found.
pub fn select_backend(
    dirs: &PluginDirArgs,
    vcodec: &str,
    req: &ProbeRequest,
) -> anyhow::Result<(Backend, Vec<PluginReport>)> {
    let reports = discover_and_probe(dirs, req);
    let choice = select::choose(&reports, vcodec)?;
    for line in &choice.skipped {
        log::info!("{line}");
    }
    let chosen = &reports[choice.index];
    let backend = Backend::load(&chosen.path)
        .with_context(|| format!("loading the chosen backend {}", chosen.display_name()))?;
    log::info!(
        "encoder backend: {} ({}, {}) from {}",
        backend.name(),
        report::codec_str(backend.codec()),
        report::kind_str(backend.kind()),
        backend.path().display()
    );
    Ok((backend, reports))
}
