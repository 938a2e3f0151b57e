//! `s6-edge perf-stats`: per-stage latency statistics and counters of one
//! recorded run (`record -x` writes `logs/runs/<timestamp>/metrics.json`),
//! or two runs side by side with the delta and the % change.
//!
//! Output: a table for people (default), `--markdown`, or `--json`; `-o FILE`
//! writes it to a file instead of stdout.

use super::histogram::LatencySummary;
use super::RunMetrics;
use crate::exit::usage;
use anyhow::{bail, Context};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Name of the metrics file in a run directory.
pub const METRICS_JSON: &str = "metrics.json";

/// Latency statistics shown per stage, in this order (all in ms but `count`).
pub const STAT_NAMES: [&str; 11] = [
    "count", "mean", "std", "min", "p5", "p25", "p50", "p75", "p95", "p99", "max",
];

/// One loaded run.
#[derive(Clone, Debug)]
pub struct Run {
    /// The `metrics.json` it came from.
    pub path: PathBuf,
    /// Its content.
    pub metrics: RunMetrics,
}

/// Values of [`STAT_NAMES`] for a summary.
pub fn stat_values(s: &LatencySummary) -> [f64; 11] {
    [
        s.count as f64,
        s.mean_ms,
        s.std_ms,
        s.min_ms,
        s.p5_ms,
        s.p25_ms,
        s.p50_ms,
        s.p75_ms,
        s.p95_ms,
        s.p99_ms,
        s.max_ms,
    ]
}

/// Per-camera counters shown, with how to read each from the metrics.
fn counters(m: &super::CameraMetrics) -> [(&'static str, f64); 9] {
    let backlog_max = m.backlog.iter().map(|&(_, n)| n).max().unwrap_or(0);
    [
        ("frames_captured", m.frames_captured as f64),
        ("frames_encoded", m.frames_encoded as f64),
        ("frames_spilled", m.frames_spilled as f64),
        ("frames_dropped", m.frames_dropped as f64),
        ("fps_achieved", m.fps_achieved),
        ("fps_nominal", m.fps_nominal),
        ("ring_high_water", m.ring_high_water as f64),
        ("backlog_max", backlog_max as f64),
        ("spill_backlog_max", m.spill_backlog_high_water as f64),
    ]
}

/// Run-wide figures.
fn run_figures(m: &RunMetrics) -> [(&'static str, f64); 4] {
    [
        ("duration_s", m.duration_s),
        ("cpu_time_s", m.cpu_time_s),
        ("max_rss_kib", m.max_rss_kib as f64),
        ("episodes", m.episodes.len() as f64),
    ]
}

/// Loads `path`: a run directory or a `metrics.json` file. Errors name the
/// file and say what is wrong with it.
pub fn load_run(path: &Path) -> anyhow::Result<Run> {
    let file = if path.is_dir() {
        path.join(METRICS_JSON)
    } else {
        path.to_path_buf()
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} does not exist{}",
            file.display(),
            if path.is_dir() {
                " (this run ended before writing its metrics, or is not a run directory)"
            } else {
                ""
            }
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let metrics: RunMetrics = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a valid metrics.json: {e} (line {}, column {})",
            file.display(),
            e.line(),
            e.column()
        )
    })?;
    Ok(Run {
        path: file,
        metrics,
    })
}

/// The newest run directory under `log_dir/runs` that holds a `metrics.json`
/// (run directories are named by their start time, so the newest sorts last).
pub fn latest_run(log_dir: &Path) -> anyhow::Result<PathBuf> {
    let runs = log_dir.join("runs");
    let entries = std::fs::read_dir(&runs).with_context(|| {
        format!(
            "no runs under {}: record with -x (--output-log) to create one, or name a run",
            runs.display()
        )
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let newest = dirs.last().cloned();
    match dirs
        .into_iter()
        .rev()
        .find(|d| d.join(METRICS_JSON).is_file())
    {
        Some(d) => {
            if newest.as_ref() != Some(&d) {
                log::warn!(
                    "newest run {} has no {METRICS_JSON}; using {}",
                    newest.unwrap_or_default().display(),
                    d.display()
                );
            }
            Ok(d)
        }
        None => bail!(
            "no run with a {METRICS_JSON} under {}: record with -x (--output-log) to create one",
            runs.display()
        ),
    }
}

/// A simple text table.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Column titles.
    pub header: Vec<String>,
    /// Cells, row by row.
    pub rows: Vec<Vec<String>>,
    /// Columns that are left-aligned (the rest are numbers, right-aligned).
    pub text_columns: usize,
}

impl Table {
    /// Aligned columns separated by two spaces.
    pub fn render_text(&self) -> String {
        let cols = self.header.len();
        let mut width = vec![0usize; cols];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in row.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i < self.text_columns {
                        format!("{c:<w$}", w = width[i])
                    } else {
                        format!("{c:>w$}", w = width[i])
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
        out
    }

    /// GitHub-flavoured Markdown.
    pub fn render_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| {} |", self.header.join(" | "));
        let align: Vec<&str> = (0..self.header.len())
            .map(|i| {
                if i < self.text_columns {
                    ":---"
                } else {
                    "---:"
                }
            })
            .collect();
        let _ = writeln!(out, "| {} |", align.join(" | "));
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }
}

/// Formats a number for a table: integers as such, the rest with 3 decimals.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

/// Formats a signed delta.
fn signed(v: f64) -> String {
    let s = num(v);
    if v > 0.0 {
        format!("+{s}")
    } else {
        s
    }
}

/// % change from `a` to `b` (`None` when `a` is 0).
fn pct(a: f64, b: f64) -> Option<f64> {
    (a != 0.0).then(|| (b - a) / a.abs() * 100.0)
}

fn pct_text(a: f64, b: f64) -> String {
    if a == b {
        return "0.0%".into();
    }
    match pct(a, b) {
        Some(p) => format!("{p:+.1}%"),
        None if b == 0.0 => "0.0%".into(),
        None => "n/a".into(),
    }
}

/// Tables for one run: run figures, counters per camera, stages per camera.
pub fn single_tables(run: &Run) -> Vec<(String, Table)> {
    let m = &run.metrics;
    let mut figures = Table {
        header: vec!["figure".into(), "value".into()],
        text_columns: 1,
        ..Default::default()
    };
    figures.rows.push(vec!["backend".into(), m.backend.clone()]);
    for (k, v) in run_figures(m) {
        figures.rows.push(vec![k.into(), num(v)]);
    }
    let mut counters_t = Table {
        header: std::iter::once("camera".to_string())
            .chain(
                counters(&Default::default())
                    .iter()
                    .map(|(k, _)| k.to_string()),
            )
            .collect(),
        text_columns: 1,
        ..Default::default()
    };
    let mut stages = Table {
        header: ["camera", "stage"]
            .iter()
            .map(|s| s.to_string())
            .chain(STAT_NAMES.iter().map(|s| {
                if *s == "count" {
                    s.to_string()
                } else {
                    format!("{s} ms")
                }
            }))
            .collect(),
        text_columns: 2,
        ..Default::default()
    };
    for (cam, cm) in &m.cameras {
        counters_t.rows.push(
            std::iter::once(cam.clone())
                .chain(counters(cm).iter().map(|(_, v)| num(*v)))
                .collect(),
        );
        for (stage, s) in &cm.stages {
            stages.rows.push(
                [cam.clone(), stage.clone()]
                    .into_iter()
                    .chain(stat_values(s).iter().map(|v| num(*v)))
                    .collect(),
            );
        }
    }
    vec![
        (format!("run {}", run.path.display()), figures),
        ("counters".into(), counters_t),
        ("stage latency".into(), stages),
    ]
}

/// One compared value.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Comparison {
    /// `run`, `counter` or `stage`.
    pub section: String,
    /// Camera (empty for run figures).
    pub camera: String,
    /// Stage (empty unless `section` is `stage`).
    pub stage: String,
    /// What is compared (`p95`, `frames_dropped`, ...; latencies in ms).
    pub metric: String,
    /// Value in run A (`None`: absent there).
    pub a: Option<f64>,
    /// Value in run B.
    pub b: Option<f64>,
    /// B − A.
    pub delta: Option<f64>,
    /// (B − A) / A × 100.
    pub pct: Option<f64>,
}

/// Every value of both runs, matched by camera/stage/metric (a camera or
/// stage present in only one run shows with the other side empty).
pub fn compare(a: &RunMetrics, b: &RunMetrics) -> Vec<Comparison> {
    let mut out = Vec::new();
    let mut push =
        |section: &str, camera: &str, stage: &str, metric: &str, x: Option<f64>, y: Option<f64>| {
            let (delta, pct) = match (x, y) {
                (Some(x), Some(y)) => (Some(y - x), pct(x, y)),
                _ => (None, None),
            };
            out.push(Comparison {
                section: section.into(),
                camera: camera.into(),
                stage: stage.into(),
                metric: metric.into(),
                a: x,
                b: y,
                delta,
                pct,
            });
        };
    for ((k, x), (_, y)) in run_figures(a).iter().zip(run_figures(b).iter()) {
        push("run", "", "", k, Some(*x), Some(*y));
    }
    let cams: std::collections::BTreeSet<&String> =
        a.cameras.keys().chain(b.cameras.keys()).collect();
    for cam in &cams {
        let (ca, cb) = (a.cameras.get(*cam), b.cameras.get(*cam));
        let default = super::CameraMetrics::default();
        let names = counters(&default);
        for (i, (k, _)) in names.iter().enumerate() {
            let x = ca.map(|c| counters(c)[i].1);
            let y = cb.map(|c| counters(c)[i].1);
            push("counter", cam, "", k, x, y);
        }
        let stages: std::collections::BTreeSet<&String> = ca
            .map(|c| c.stages.keys().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(
                cb.map(|c| c.stages.keys().collect::<Vec<_>>())
                    .unwrap_or_default(),
            )
            .collect();
        for stage in stages {
            let sa = ca.and_then(|c| c.stages.get(stage)).map(stat_values);
            let sb = cb.and_then(|c| c.stages.get(stage)).map(stat_values);
            for (i, name) in STAT_NAMES.iter().enumerate() {
                push(
                    "stage",
                    cam,
                    stage,
                    name,
                    sa.map(|v| v[i]),
                    sb.map(|v| v[i]),
                );
            }
        }
    }
    out
}

/// The comparison as a table.
pub fn comparison_table(rows: &[Comparison]) -> Table {
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), num);
    Table {
        header: ["camera", "stage", "metric", "A", "B", "delta", "change"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        rows: rows
            .iter()
            .map(|r| {
                let metric = if r.section == "stage" && r.metric != "count" {
                    format!("{} ms", r.metric)
                } else {
                    r.metric.clone()
                };
                vec![
                    if r.camera.is_empty() {
                        "(run)".into()
                    } else {
                        r.camera.clone()
                    },
                    if r.stage.is_empty() {
                        "-".into()
                    } else {
                        r.stage.clone()
                    },
                    metric,
                    opt(r.a),
                    opt(r.b),
                    r.delta.map_or_else(|| "-".into(), signed),
                    match (r.a, r.b) {
                        (Some(a), Some(b)) => pct_text(a, b),
                        _ => "-".into(),
                    },
                ]
            })
            .collect(),
        text_columns: 3,
    }
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned text.
    Text,
    /// Markdown tables.
    Markdown,
    /// JSON.
    Json,
}

/// JSON of one run.
#[derive(Serialize)]
struct SingleJson<'a> {
    run: String,
    #[serde(flatten)]
    metrics: &'a RunMetrics,
}

/// JSON of a comparison.
#[derive(Serialize)]
struct CompareJson<'a> {
    a: String,
    b: String,
    rows: &'a [Comparison],
}

/// Renders one run.
pub fn render_single(run: &Run, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json => {
            serde_json::to_string_pretty(&SingleJson {
                run: run.path.display().to_string(),
                metrics: &run.metrics,
            })? + "\n"
        }
        Format::Text | Format::Markdown => {
            let mut out = String::new();
            for (title, t) in single_tables(run) {
                if format == Format::Markdown {
                    let _ = writeln!(out, "### {title}\n\n{}", t.render_markdown());
                } else {
                    let _ = writeln!(out, "{title}\n{}", t.render_text());
                }
            }
            out
        }
    })
}

/// Renders a comparison of `a` and `b`.
pub fn render_compare(a: &Run, b: &Run, format: Format) -> anyhow::Result<String> {
    let rows = compare(&a.metrics, &b.metrics);
    Ok(match format {
        Format::Json => {
            serde_json::to_string_pretty(&CompareJson {
                a: a.path.display().to_string(),
                b: b.path.display().to_string(),
                rows: &rows,
            })? + "\n"
        }
        Format::Text => format!(
            "A: {}\nB: {}\n\n{}",
            a.path.display(),
            b.path.display(),
            comparison_table(&rows).render_text()
        ),
        Format::Markdown => format!(
            "A: `{}`  \nB: `{}`\n\n{}",
            a.path.display(),
            b.path.display(),
            comparison_table(&rows).render_markdown()
        ),
    })
}

/// Runs `s6-edge perf-stats`.
pub fn run(args: crate::cli::PerfStatsArgs) -> anyhow::Result<ExitCode> {
    let format = match (args.json, args.markdown) {
        (true, true) => return Err(usage("--json and --markdown exclude each other")),
        (true, false) => Format::Json,
        (false, true) => Format::Markdown,
        (false, false) => Format::Text,
    };
    let text = match args.runs.as_slice() {
        [] => render_single(&load_run(&latest_run(&args.log_dir)?)?, format)?,
        [one] => render_single(&load_run(one)?, format)?,
        [a, b] => render_compare(&load_run(a)?, &load_run(b)?, format)?,
        more => {
            return Err(usage(format!(
                "perf-stats takes at most two runs, got {}",
                more.len()
            )))
        }
    };
    match &args.output {
        Some(path) => std::fs::write(path, &text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(base: f64) -> LatencySummary {
        LatencySummary {
            count: 10,
            mean_ms: base,
            std_ms: 0.5,
            min_ms: base - 1.0,
            p5_ms: base - 0.9,
            p25_ms: base - 0.5,
            p50_ms: base,
            p75_ms: base + 0.5,
            p95_ms: base + 0.9,
            p99_ms: base + 1.0,
            max_ms: base + 2.0,
        }
    }

    fn metrics(encode: f64) -> RunMetrics {
        let mut cam = super::super::CameraMetrics {
            frames_captured: 30,
            frames_encoded: 30,
            fps_achieved: 15.0,
            fps_nominal: 15.0,
            ..Default::default()
        };
        cam.stages.insert("encode".into(), summary(encode));
        let mut m = RunMetrics {
            backend: "svtav1".into(),
            ..Default::default()
        };
        m.cameras.insert("left".into(), cam);
        m
    }

    #[test]
    fn comparison_has_delta_and_percent() {
        let rows = compare(&metrics(10.0), &metrics(12.0));
        let p50 = rows
            .iter()
            .find(|r| r.stage == "encode" && r.metric == "p50")
            .unwrap();
        assert_eq!(
            (p50.a, p50.b, p50.delta),
            (Some(10.0), Some(12.0), Some(2.0))
        );
        assert!((p50.pct.unwrap() - 20.0).abs() < 1e-9);
        let table = comparison_table(&rows).render_text();
        assert!(table.contains("+20.0%"), "{table}");
        let md = comparison_table(&rows).render_markdown();
        assert!(md.starts_with("| camera | stage | metric |"), "{md}");
    }

    #[test]
    fn percent_of_zero_is_not_a_number() {
        assert_eq!(pct_text(0.0, 0.0), "0.0%");
        assert_eq!(pct_text(0.0, 3.0), "n/a");
        assert_eq!(pct_text(4.0, 3.0), "-25.0%");
    }

    #[test]
    fn malformed_file_names_file_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(METRICS_JSON);
        std::fs::write(&f, b"{\"cameras\": 3").unwrap();
        let err = format!("{:#}", load_run(dir.path()).unwrap_err());
        assert!(
            err.contains(&f.display().to_string()) && err.contains("not a valid"),
            "{err}"
        );
        let err = format!("{:#}", load_run(&dir.path().join("nope")).unwrap_err());
        assert!(err.contains("does not exist"), "{err}");
    }
}
