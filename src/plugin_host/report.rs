//! What probing found out about one plugin, and how it is shown.

use s6_codec_abi::{BackendKind, CodecId};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Whether a backend works here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    /// It opened a session at the requested size and encoded a test frame.
    Available,
    /// It cannot be used here, and why.
    Unavailable(String),
}

impl Availability {
    /// `true` for [`Availability::Available`].
    pub fn is_available(&self) -> bool {
        matches!(self, Availability::Available)
    }
    /// The reason it is unavailable, if it is.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Availability::Available => None,
            Availability::Unavailable(r) => Some(r),
        }
    }
}

impl std::fmt::Display for Availability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Availability::Available => f.write_str("available"),
            Availability::Unavailable(r) => write!(f, "unavailable: {r}"),
        }
    }
}

/// Everything known about one discovered plugin file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginReport {
    /// The file, as found in its directory.
    pub path: PathBuf,
    /// Backend name, when the table could be read.
    pub name: Option<String>,
    /// Codec it produces.
    pub codec: Option<CodecId>,
    /// Hardware or software.
    pub kind: Option<BackendKind>,
    /// ABI version its table claims (also set on a version mismatch).
    pub abi_version: Option<u32>,
    /// One-line description.
    pub description: Option<String>,
    /// Whether it works here.
    pub status: Availability,
    /// Wall time of its probe (child process start to exit), in ms.
    pub probe_ms: u64,
}

impl PluginReport {
    /// A report for a file about which nothing but a failure is known.
    pub fn failed(path: PathBuf, reason: impl Into<String>, probe_ms: u64) -> Self {
        Self {
            path,
            name: None,
            codec: None,
            kind: None,
            abi_version: None,
            description: None,
            status: Availability::Unavailable(reason.into()),
            probe_ms,
        }
    }

    /// The name, or the file name when the table could not be read.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "?".into())
        })
    }
}

/// Lower-case codec name (`av1`, `h264`, `hevc`, `fwht`).
pub fn codec_str(codec: CodecId) -> &'static str {
    match codec {
        CodecId::Av1 => "av1",
        CodecId::H264 => "h264",
        CodecId::Hevc => "hevc",
        CodecId::Fwht => "fwht",
    }
}

/// Parses [`codec_str`]'s output.
pub fn parse_codec(s: &str) -> Option<CodecId> {
    [CodecId::Av1, CodecId::H264, CodecId::Hevc, CodecId::Fwht]
        .into_iter()
        .find(|c| codec_str(*c) == s)
}

/// `hardware` or `software`.
pub fn kind_str(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Hardware => "hardware",
        BackendKind::Software => "software",
    }
}

/// Parses [`kind_str`]'s output.
pub fn parse_kind(s: &str) -> Option<BackendKind> {
    match s {
        "hardware" => Some(BackendKind::Hardware),
        "software" => Some(BackendKind::Software),
        _ => None,
    }
}

/// The JSON form of a [`PluginReport`]: printed by the probe child (one
/// line) and by `s6-edge encoders --json` (an array of these).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReportJson {
    /// Plugin file.
    pub path: PathBuf,
    /// Backend name.
    pub name: Option<String>,
    /// `av1`, `h264`, ...
    pub codec: Option<String>,
    /// `hardware` or `software`.
    pub kind: Option<String>,
    /// ABI version of the table.
    pub abi_version: Option<u32>,
    /// One-line description.
    pub description: Option<String>,
    /// Whether the probe succeeded.
    pub available: bool,
    /// Why not, when not.
    pub reason: Option<String>,
    /// Probe wall time in ms.
    pub probe_ms: u64,
}

impl From<&PluginReport> for ReportJson {
    fn from(r: &PluginReport) -> Self {
        Self {
            path: r.path.clone(),
            name: r.name.clone(),
            codec: r.codec.map(|c| codec_str(c).to_string()),
            kind: r.kind.map(|k| kind_str(k).to_string()),
            abi_version: r.abi_version,
            description: r.description.clone(),
            available: r.status.is_available(),
            reason: r.status.reason().map(str::to_owned),
            probe_ms: r.probe_ms,
        }
    }
}

impl From<ReportJson> for PluginReport {
    fn from(j: ReportJson) -> Self {
        let status = if j.available {
            Availability::Available
        } else {
            Availability::Unavailable(j.reason.unwrap_or_else(|| "(no reason given)".into()))
        };
        Self {
            path: j.path,
            name: j.name,
            codec: j.codec.as_deref().and_then(parse_codec),
            kind: j.kind.as_deref().and_then(parse_kind),
            abi_version: j.abi_version,
            description: j.description,
            status,
            probe_ms: j.probe_ms,
        }
    }
}

/// Renders reports as an aligned text table (name, codec, kind, ABI
/// version, probe time, path, status).
pub fn render_table(reports: &[PluginReport]) -> String {
    let header = ["NAME", "CODEC", "KIND", "ABI", "PROBE", "PATH", "STATUS"];
    let rows: Vec<[String; 7]> = reports
        .iter()
        .map(|r| {
            [
                r.display_name(),
                r.codec.map_or("-", codec_str).to_string(),
                r.kind.map_or("-", kind_str).to_string(),
                r.abi_version.map_or("-".into(), |v| v.to_string()),
                format!("{} ms", r.probe_ms),
                r.path.display().to_string(),
                r.status.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: &[String]| {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push('\n');
    };
    push_row(&header.map(str::to_owned));
    for row in &rows {
        push_row(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_everything() {
        let r = PluginReport {
            path: "/p/libx.so".into(),
            name: Some("x".into()),
            codec: Some(CodecId::H264),
            kind: Some(BackendKind::Hardware),
            abi_version: Some(1),
            description: Some("d".into()),
            status: Availability::Unavailable("no device".into()),
            probe_ms: 12,
        };
        let j = serde_json::to_string(&ReportJson::from(&r)).unwrap();
        let back: ReportJson = serde_json::from_str(&j).unwrap();
        assert_eq!(PluginReport::from(back), r);
    }

    #[test]
    fn table_lists_status_and_placeholders() {
        let t = render_table(&[PluginReport::failed("/p/bogus.so".into(), "bad ELF", 3)]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NAME"));
        assert!(lines[1].starts_with("bogus.so"));
        assert!(lines[1].ends_with("unavailable: bad ELF"));
    }
}
