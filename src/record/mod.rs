//! `s6-edge record`: orchestration of cameras, rings, encoders and episodes.

/// Runs `s6-edge record`.
pub fn run(_args: crate::cli::RecordArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`s6-edge record` is not built yet")
}
