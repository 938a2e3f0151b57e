//! `s6-edge verify`.

/// Runs `s6-edge verify`.
pub fn run(_args: crate::cli::VerifyArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`s6-edge verify` is not built yet")
}
