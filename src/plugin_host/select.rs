//! Choosing a backend: `--vcodec auto` (hardware first, then software AV1)
//! or an explicit backend name.

use super::report::{Availability, PluginReport};
use s6_codec_abi::BackendKind;

/// Hardware backends in the order `auto` prefers them.
pub const HARDWARE_PREFERENCE: &[&str] = &["v4l2m2m", "vaapi", "nvenc"];
/// Software backends in the order `auto` prefers them.
pub const SOFTWARE_PREFERENCE: &[&str] = &["svtav1"];

/// The outcome of a choice among probed plugins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// Index of the chosen report.
    pub index: usize,
    /// Why each better-ranked backend was passed over (`vaapi unavailable: ...`).
    pub skipped: Vec<String>,
}

/// Marks every report whose backend name was already provided by an
/// earlier report as unavailable ("shadowed"): the first one found wins.
pub fn mark_shadowed(reports: &mut [PluginReport]) {
    for i in 0..reports.len() {
        let Some(name) = reports[i].name.clone() else {
            continue;
        };
        if let Some(first) = reports[..i]
            .iter()
            .find(|r| r.name.as_deref() == Some(name.as_str()))
        {
            let reason = format!(
                "shadowed by {} (backend `{name}` found there first)",
                first.path.display()
            );
            log::info!("{}: {reason}", reports[i].path.display());
            reports[i].status = Availability::Unavailable(reason);
        }
    }
}

/// Rank of a report in `auto`'s preference order (lower is better).
fn auto_rank(r: &PluginReport) -> (u8, usize) {
    let name = r.name.as_deref().unwrap_or("");
    match r.kind {
        Some(BackendKind::Hardware) => match HARDWARE_PREFERENCE.iter().position(|n| *n == name) {
            Some(p) => (0, p),
            None => (1, 0),
        },
        Some(BackendKind::Software) => match SOFTWARE_PREFERENCE.iter().position(|n| *n == name) {
            Some(p) => (2, p),
            None => (3, 0),
        },
        None => (4, 0),
    }
}

/// A report's availability for recording: an available backend whose
/// (session) codec the MP4 muxer cannot carry is unavailable, with a reason
/// naming the coded format (vicodec codes FWHT; a Pi's bcm2835-codec H.264).
pub fn recordable(r: &PluginReport) -> Availability {
    match (&r.status, r.codec) {
        (Availability::Available, Some(codec)) if !crate::mux::can_carry(codec) => {
            Availability::Unavailable(format!(
                "the device codes {}, which MP4 cannot carry here (s6-edge muxes AV1 and H.264)",
                super::report::codec_str(codec).to_ascii_uppercase()
            ))
        }
        (status, _) => status.clone(),
    }
}

/// Whether a report is a shadowed duplicate (not a candidate at all).
fn is_shadowed(r: &PluginReport) -> bool {
    r.status
        .reason()
        .is_some_and(|reason| reason.starts_with("shadowed by "))
}

/// Picks among `reports` (discovery order; after [`mark_shadowed`]).
/// `vcodec` is `auto` or a backend name. Errors: an unknown name is a usage
/// error listing the names found; an unavailable named backend, or no
/// available backend for `auto`, is a plain error saying why.
pub fn choose(reports: &[PluginReport], vcodec: &str) -> anyhow::Result<Choice> {
    if vcodec.eq_ignore_ascii_case("auto") {
        return choose_auto(reports);
    }
    let found = reports
        .iter()
        .enumerate()
        .find(|(_, r)| r.name.as_deref() == Some(vcodec) && !is_shadowed(r));
    match found {
        Some((index, r)) => match &recordable(r) {
            Availability::Available => Ok(Choice {
                index,
                skipped: Vec::new(),
            }),
            Availability::Unavailable(reason) => Err(anyhow::anyhow!(
                "encoder backend `{vcodec}` ({}) is unavailable here: {reason}",
                r.path.display()
            )),
        },
        None => {
            let mut names: Vec<&str> = reports.iter().filter_map(|r| r.name.as_deref()).collect();
            names.dedup();
            let listed = if names.is_empty() {
                "none were found (see `s6-edge encoders`)".to_string()
            } else {
                names.join(", ")
            };
            Err(crate::exit::usage(format!(
                "unknown encoder backend `{vcodec}`: use `auto` or one of: {listed}"
            )))
        }
    }
}

fn choose_auto(reports: &[PluginReport]) -> anyhow::Result<Choice> {
    let mut order: Vec<usize> = (0..reports.len())
        .filter(|&i| reports[i].name.is_some() && !is_shadowed(&reports[i]))
        .collect();
    // Stable: equal ranks keep discovery order.
    order.sort_by_key(|&i| auto_rank(&reports[i]));
    let mut skipped = Vec::new();
    for i in order {
        let r = &reports[i];
        match &recordable(r) {
            Availability::Available => return Ok(Choice { index: i, skipped }),
            Availability::Unavailable(reason) => {
                let line = format!("{} unavailable: {reason}", r.display_name());
                if r.kind == Some(BackendKind::Hardware) {
                    skipped.push(line);
                } else {
                    log::debug!("{line}");
                }
            }
        }
    }
    let mut why: Vec<String> = reports
        .iter()
        .map(|r| format!("{}: {}", r.display_name(), recordable(r)))
        .collect();
    if why.is_empty() {
        why.push("no plugin files were found".into());
    }
    anyhow::bail!(
        "no usable encoder backend: {}. Install the s6-edge codec plugins (e.g. svtav1) or point \
         --plugin-dir / S6_EDGE_PLUGIN_PATH at them; `s6-edge encoders` lists what was found",
        why.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use s6_codec_abi::CodecId;

    fn report(name: &str, kind: BackendKind, status: Availability) -> PluginReport {
        PluginReport {
            path: format!("/p/lib{name}.so").into(),
            name: Some(name.into()),
            codec: Some(CodecId::Av1),
            kind: Some(kind),
            abi_version: Some(1),
            description: None,
            status,
            probe_ms: 1,
        }
    }

    fn unavailable(why: &str) -> Availability {
        Availability::Unavailable(why.into())
    }

    #[test]
    fn auto_prefers_hardware_in_order_then_svtav1() {
        let reports = vec![
            report("other-sw", BackendKind::Software, Availability::Available),
            report("svtav1", BackendKind::Software, Availability::Available),
            report("nvenc", BackendKind::Hardware, Availability::Available),
            report("vaapi", BackendKind::Hardware, unavailable("no /dev/dri")),
            report(
                "v4l2m2m",
                BackendKind::Hardware,
                unavailable("no m2m device"),
            ),
        ];
        let c = choose(&reports, "auto").unwrap();
        assert_eq!(reports[c.index].name.as_deref(), Some("nvenc"));
        assert_eq!(
            c.skipped,
            vec![
                "v4l2m2m unavailable: no m2m device".to_string(),
                "vaapi unavailable: no /dev/dri".to_string()
            ]
        );
        let only_sw: Vec<_> = reports
            .into_iter()
            .filter(|r| r.name.as_deref() != Some("nvenc"))
            .collect();
        let c = choose(&only_sw, "AUTO").unwrap();
        assert_eq!(only_sw[c.index].name.as_deref(), Some("svtav1"));
        assert_eq!(c.skipped.len(), 2);
    }

    #[test]
    fn a_backend_coding_what_mp4_cannot_carry_is_passed_over() {
        // vicodec: the v4l2m2m plugin works, but its session codes FWHT.
        let mut m2m = report("v4l2m2m", BackendKind::Hardware, Availability::Available);
        m2m.codec = Some(CodecId::Fwht);
        let reports = vec![
            report("svtav1", BackendKind::Software, Availability::Available),
            m2m,
        ];
        let why = "the device codes FWHT, which MP4 cannot carry here";
        let c = choose(&reports, "auto").unwrap();
        assert_eq!(reports[c.index].name.as_deref(), Some("svtav1"));
        assert_eq!(c.skipped.len(), 1);
        assert!(c.skipped[0].starts_with(&format!("v4l2m2m unavailable: {why}")));
        let err = choose(&reports, "v4l2m2m").unwrap_err();
        assert!(format!("{err}").contains(why), "{err}");
        // A Pi's bcm2835-codec codes H.264: it goes through.
        let mut pi = reports.clone();
        pi[1].codec = Some(CodecId::H264);
        let c = choose(&pi, "auto").unwrap();
        assert_eq!(pi[c.index].name.as_deref(), Some("v4l2m2m"));
    }

    #[test]
    fn explicit_names_fail_loudly() {
        let reports = vec![
            report("svtav1", BackendKind::Software, Availability::Available),
            report("vaapi", BackendKind::Hardware, unavailable("no /dev/dri")),
        ];
        assert_eq!(choose(&reports, "svtav1").unwrap().index, 0);
        let err = choose(&reports, "vaapi").unwrap_err();
        assert!(format!("{err}").contains("no /dev/dri"), "{err}");
        assert!(err.downcast_ref::<crate::exit::UsageError>().is_none());
        let err = choose(&reports, "x264").unwrap_err();
        assert!(err.downcast_ref::<crate::exit::UsageError>().is_some());
        assert!(format!("{err}").contains("svtav1, vaapi"), "{err}");
    }

    #[test]
    fn first_of_two_same_names_wins() {
        let mut reports = vec![
            report(
                "svtav1",
                BackendKind::Software,
                unavailable("old build broken"),
            ),
            report("svtav1", BackendKind::Software, Availability::Available),
        ];
        reports[1].path = "/q/libsvtav1.so".into();
        mark_shadowed(&mut reports);
        assert!(reports[1]
            .status
            .reason()
            .unwrap()
            .starts_with("shadowed by /p/libsvtav1.so"));
        let err = choose(&reports, "svtav1").unwrap_err();
        assert!(format!("{err}").contains("old build broken"));
        assert!(choose(&reports, "auto").is_err());
    }
}
