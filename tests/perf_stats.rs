//! `s6-edge perf-stats` on two real `record -x` runs: the one-run table, the
//! latest-run default, the comparison with deltas, JSON and Markdown output,
//! and clear errors for malformed or missing metrics.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Records 2 s of two synthetic cameras at 160x120@15 with `-x` into `logs`.
fn record_run(tmp: &Path, logs: &Path, name: &str) {
    let plugins = svtav1_dir(&tmp.join(name));
    let ds = tmp.join(name).join("ds");
    s6_ok(
        "record",
        &svtav1_record_args(
            &plugins,
            &ds,
            &[
                "-i",
                "synthetic#name=left",
                "-i",
                "synthetic#name=right",
                "--width",
                "160",
                "--height",
                "120",
                "--fps",
                "15",
                "--episodes",
                "1",
                "--episode-time",
                "2",
                "-x",
                "--log-dir",
                logs.to_str().unwrap(),
            ],
        ),
    );
}

/// Runs perf-stats in `cwd`.
fn perf(cwd: &Path, args: &[&str]) -> Output {
    let out = Command::new(bin())
        .arg("perf-stats")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run s6-edge perf-stats");
    dump("perf-stats", &out);
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run directories under `logs/runs`, oldest first.
fn runs(logs: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(logs.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Cells of the table line that starts with `camera` then `stage`.
fn stage_row(table: &str, camera: &str, stage: &str) -> Vec<f64> {
    let line = table
        .lines()
        .find(|l| {
            let mut f = l.split_whitespace();
            f.next() == Some(camera) && f.next() == Some(stage)
        })
        .unwrap_or_else(|| panic!("no row for {camera}/{stage} in:\n{table}"));
    line.split_whitespace()
        .skip(2)
        .map(|c| {
            c.parse()
                .unwrap_or_else(|_| panic!("cell {c:?} in {line:?}"))
        })
        .collect()
}

#[test]
fn one_run_two_runs_json_markdown_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    record_run(tmp.path(), &logs, "a");
    record_run(tmp.path(), &logs, "b");
    let r = runs(&logs);
    assert_eq!(r.len(), 2, "{r:?}");
    let (a, b) = (r[0].to_str().unwrap(), r[1].to_str().unwrap());

    // No argument: the latest run under ./logs/runs.
    let out = perf(tmp.path(), &[]);
    assert!(out.status.success());
    let table = stdout(&out);
    assert!(
        table.contains(&format!(
            "logs/runs/{}/metrics.json",
            r[1].file_name().unwrap().to_string_lossy()
        )),
        "latest run is shown:\n{table}"
    );
    for head in [
        "camera", "stage", "count", "mean ms", "std ms", "min ms", "p5 ms", "p25 ms", "p50 ms",
        "p75 ms", "p95 ms", "p99 ms", "max ms",
    ] {
        assert!(table.contains(head), "column {head:?}:\n{table}");
    }
    for head in [
        "frames_captured",
        "frames_spilled",
        "frames_dropped",
        "fps_achieved",
    ] {
        assert!(table.contains(head), "counter {head:?}:\n{table}");
    }
    for cam in ["left", "right"] {
        for stage in ["capture", "encode", "mux", "total"] {
            let v = stage_row(&table, cam, stage);
            assert_eq!(v.len(), 11, "{cam}/{stage}: {v:?}");
            let (count, min, p5, p50, p95, p99, max) = (v[0], v[3], v[4], v[6], v[8], v[9], v[10]);
            assert!(
                count >= 20.0,
                "{cam}/{stage}: {count} samples in 2 s at 15 fps"
            );
            assert!(
                min <= p5 && p5 <= p50 && p50 <= p95 && p95 <= p99 && p99 <= max,
                "{cam}/{stage}: ordered quantiles {v:?}"
            );
        }
        // Counters row: camera, captured, encoded, spilled, dropped, fps, ...
        let row = table
            .lines()
            .find(|l| {
                let mut f = l.split_whitespace();
                f.next() == Some(cam) && f.next().is_some_and(|c| c.parse::<f64>().is_ok())
            })
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("counters row for {cam}:\n{table}"));
        let captured: f64 = row[1].parse().unwrap();
        let fps: f64 = row[5].parse().unwrap();
        assert!(captured >= 25.0, "{row:?}");
        assert!((fps - 15.0).abs() < 2.0, "achieved fps {fps}: {row:?}");
    }

    // Two runs side by side.
    let out = perf(tmp.path(), &[a, b]);
    assert!(out.status.success());
    let cmp = stdout(&out);
    assert!(cmp.contains(&format!("A: {a}/metrics.json")), "{cmp}");
    assert!(cmp.contains(&format!("B: {b}/metrics.json")), "{cmp}");
    let p50 = cmp
        .lines()
        .find(|l| l.starts_with("left") && l.contains(" encode ") && l.contains("p50 ms"))
        .unwrap_or_else(|| panic!("left encode p50 row:\n{cmp}"));
    let cells: Vec<&str> = p50.split_whitespace().collect();
    // camera stage metric(2 words) A B delta change
    let (va, vb, delta): (f64, f64, f64) = (
        cells[4].parse().unwrap(),
        cells[5].parse().unwrap(),
        cells[6].parse().unwrap(),
    );
    assert!(((vb - va) - delta).abs() < 0.002, "{p50}");
    assert!(cells[7].ends_with('%') || cells[7] == "n/a", "{p50}");
    assert!(
        cmp.contains("frames_dropped") && cmp.contains("cpu_time_s"),
        "{cmp}"
    );

    // JSON parses and carries the same comparison.
    let out = perf(tmp.path(), &["--json", a, b]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let rows = v["rows"].as_array().unwrap();
    let row = rows
        .iter()
        .find(|r| r["camera"] == "right" && r["stage"] == "encode" && r["metric"] == "p95")
        .expect("right/encode/p95 row");
    let (x, y) = (row["a"].as_f64().unwrap(), row["b"].as_f64().unwrap());
    assert!((row["delta"].as_f64().unwrap() - (y - x)).abs() < 1e-9);
    let one = perf(tmp.path(), &["--json", a]);
    let v: serde_json::Value = serde_json::from_slice(&one.stdout).expect("valid JSON");
    assert!(
        v["cameras"]["left"]["stages"]["encode"]["p99_ms"].is_f64(),
        "{v}"
    );

    // Markdown into a file.
    let md = tmp.path().join("cmp.md");
    let out = perf(
        tmp.path(),
        &["--markdown", "-o", md.to_str().unwrap(), a, b],
    );
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(
        text.contains("| camera | stage | metric | A | B | delta | change |"),
        "{text}"
    );

    // A malformed metrics.json: exit 1, the file and the problem named.
    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("metrics.json"), b"{\"cameras\": {\"left\": 7}}").unwrap();
    let out = perf(tmp.path(), &[a, bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&bad.join("metrics.json").display().to_string())
            && err.contains("not a valid metrics.json")
            && err.contains("line 1"),
        "{err}"
    );
    // A run directory without metrics.json.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = perf(tmp.path(), &[empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("metrics.json does not exist"), "{err}");
    // No runs at all.
    let out = perf(&empty, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("record with -x"));

    // Bad usage: exit 2.
    assert_eq!(perf(tmp.path(), &[a, b, a]).status.code(), Some(2));
    assert_eq!(
        perf(tmp.path(), &["--json", "--markdown", a]).status.code(),
        Some(2)
    );
}
