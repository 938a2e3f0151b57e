//! Codec plugin host: discovery, loading, ABI check, probing under a deadline,
//! backend selection (`--vcodec auto`), and a safe encoder session wrapper.

/// `s6-edge encoders`.
pub fn encoders_command(_args: crate::cli::EncodersArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`s6-edge encoders` is not built yet")
}

/// `s6-edge __probe-plugin` (runs in a child process).
pub fn probe_child_command(
    _args: crate::cli::ProbePluginArgs,
) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("probing is not built yet")
}
