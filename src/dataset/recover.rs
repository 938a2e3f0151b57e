//! `s6-edge recover`.

/// Runs `s6-edge recover`.
pub fn run(_args: crate::cli::RecoverArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`s6-edge recover` is not built yet")
}
