//! `s6-edge encoders`: list codec plugins, probe each, and say what
//! `--vcodec auto` would pick and why. Exits 0 even when some are broken.

use super::report::{codec_str, kind_str, render_table, ReportJson};
use super::{discover_and_probe, discovery, select, PluginReport, ProbeRequest};
use crate::cli::EncodersArgs;
use std::process::ExitCode;
use std::time::Instant;

/// One paragraph explaining `auto`'s choice among `reports`.
pub fn explain_auto(reports: &[PluginReport]) -> String {
    match select::choose(reports, "auto") {
        Ok(choice) => {
            let r = &reports[choice.index];
            let what = format!(
                "{} ({}, {})",
                r.display_name(),
                r.codec.map_or("?", codec_str),
                r.kind.map_or("?", kind_str)
            );
            let why = if r.kind == Some(s6_codec_abi::BackendKind::Hardware) {
                "the first available hardware backend".to_string()
            } else if choice.skipped.is_empty() {
                "no hardware backend was found".to_string()
            } else {
                "no hardware backend is available".to_string()
            };
            let mut out = format!("--vcodec auto would pick {what}: {why}");
            for line in &choice.skipped {
                out.push_str(&format!("\n  skipped {line}"));
            }
            out
        }
        Err(e) => format!("--vcodec auto would fail: {e}"),
    }
}

/// Runs `s6-edge encoders`.
pub fn encoders_command(args: EncodersArgs) -> anyhow::Result<ExitCode> {
    let req = ProbeRequest {
        width: args.width,
        height: args.height,
        ..ProbeRequest::default()
    };
    let start = Instant::now();
    let reports = discover_and_probe(&args.plugins, &req);
    let total_ms = start.elapsed().as_millis();
    let explanation = explain_auto(&reports);
    if args.json {
        let json: Vec<ReportJson> = reports.iter().map(ReportJson::from).collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
        for line in explanation.lines() {
            log::info!("{}", line.trim_start());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let searched: Vec<String> = discovery::search_dirs(&args.plugins)
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    if reports.is_empty() {
        println!("no codec plugins found");
    } else {
        print!("{}", render_table(&reports));
        println!();
        println!(
            "probed {} plugin(s) at {}x{} in {total_ms} ms",
            reports.len(),
            req.width,
            req.height
        );
    }
    println!("searched: {}", searched.join(", "));
    println!("{explanation}");
    Ok(ExitCode::SUCCESS)
}
