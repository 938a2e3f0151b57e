//! `--sink`: the GStreamer output when built with the `gst` feature, a
//! clear usage error otherwise.

#[cfg(feature = "gst")]
pub use super::gst_sink::GstSink as Sink;

/// Stand-in for builds without GStreamer: refuses `--sink`.
#[cfg(not(feature = "gst"))]
pub struct Sink;

#[cfg(not(feature = "gst"))]
impl Sink {
    /// Always a usage error: this build has no GStreamer.
    pub fn new(_description: &str) -> anyhow::Result<Self> {
        Err(crate::exit::usage(
            "--sink needs GStreamer, but this s6-edge was built without it \
             (rebuild with `--features gst`); use --raw-out or --png-dir",
        ))
    }
    /// Unreachable (no instance exists).
    pub fn push(&mut self, _f: super::frame::ReplayFrame) -> anyhow::Result<()> {
        Ok(())
    }
    /// Unreachable (no instance exists).
    pub fn new_pass(&mut self) {}
    /// Unreachable (no instance exists).
    pub fn finish(self) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
        Ok(Default::default())
    }
}
