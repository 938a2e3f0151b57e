//! `s6-edge encoders` and the plugin host, against real plugin files: the
//! broken fixtures (tests/fixtures/plugins), a text file named `bogus.so`,
//! the working `test-ok` fixture and the real SVT-AV1 plugin.
//!
//! Needs `cargo build --workspace` first (the plugins are cdylibs of the
//! workspace, found next to the test's `s6-edge` binary).

mod common;

use s6_edge::plugin_host::{self, Backend, EncoderSettings, ProbeRequest};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_s6-edge");

/// target/debug (or wherever the binary under test lives).
fn target_dir() -> PathBuf {
    Path::new(BIN)
        .parent()
        .expect("binary has a directory")
        .to_path_buf()
}

/// A workspace plugin `lib<stem>.so`; fails clearly when it was not built.
fn plugin(stem: &str) -> PathBuf {
    let p = target_dir().join(format!("lib{stem}.so"));
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace` before `cargo test`",
        p.display()
    );
    p
}

/// A workspace plugin if it was built (hardware plugins are optional here).
fn optional_plugin(stem: &str) -> Option<PathBuf> {
    let p = target_dir().join(format!("lib{stem}.so"));
    p.is_file().then_some(p)
}

fn copy_into(dir: &Path, file: &Path) -> PathBuf {
    let dest = dir.join(file.file_name().expect("file name"));
    std::fs::copy(file, &dest)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", file.display(), dest.display()));
    dest
}

/// A plugin directory with the four broken fixtures, `bogus.so` and svtav1.
fn broken_and_svtav1_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for stem in [
        "s6_fixture_wrong_abi",
        "s6_fixture_no_entry",
        "s6_fixture_panic_probe",
        "s6_fixture_hang_probe",
        "s6_codec_svtav1",
    ] {
        copy_into(dir.path(), &plugin(stem));
    }
    std::fs::write(
        dir.path().join("bogus.so"),
        "this is a text file, not ELF\n",
    )
    .unwrap();
    dir
}

/// Runs `s6-edge` with only the given plugin directory on the search path
/// (no `S6_EDGE_PLUGIN_PATH` from the caller's environment).
fn run(args: &[&str], envs: &[(&str, &str)]) -> (Output, Duration) {
    let mut cmd = common::our_command(BIN);
    cmd.args(args).env_remove("S6_EDGE_PLUGIN_PATH");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = cmd.output().expect("run s6-edge");
    (out, start.elapsed())
}

/// The table row of `file` in `encoders` output.
fn row<'a>(stdout: &'a str, file: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.contains(&format!("/{file} ")))
        .unwrap_or_else(|| panic!("no row for {file} in:\n{stdout}"))
}

#[test]
fn encoders_lists_each_broken_plugin_with_its_reason_and_svtav1_available() {
    let dir = broken_and_svtav1_dir();
    let d = dir.path().to_str().unwrap();
    let deadline = common::scaled_ms(2000);
    let (out, wall) = run(
        &[
            "encoders",
            "--plugin-dir",
            d,
            "--probe-timeout-ms",
            &deadline.to_string(),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}\nwall: {wall:?}");
    assert!(out.status.success(), "exit status {:?}", out.status);
    // The hang costs the 2 s deadline; everything else runs in parallel.
    assert!(
        wall < Duration::from_millis(deadline + common::scaled_ms(500)),
        "encoders took {wall:?} with a {deadline} ms probe deadline"
    );
    assert!(row(&stdout, "libs6_fixture_wrong_abi.so")
        .ends_with("unavailable: ABI version 999, this s6-edge speaks 1: rebuild the plugin"));
    assert!(row(&stdout, "libs6_fixture_no_entry.so")
        .ends_with("unavailable: not an s6-edge plugin: no symbol s6_codec_plugin_entry"));
    let panic = row(&stdout, "libs6_fixture_panic_probe.so");
    assert!(panic.starts_with("panic-probe "), "{panic}");
    assert!(
        panic.ends_with("unavailable: plugin panicked: panic-probe fixture: probe exploded"),
        "{panic}"
    );
    let hang = row(&stdout, "libs6_fixture_hang_probe.so");
    assert!(hang.starts_with("hang-probe "), "{hang}");
    assert!(
        hang.ends_with(&format!(
            "unavailable: probe did not finish within {deadline} ms: driver hung?"
        )),
        "{hang}"
    );
    // dlopen's own message names the file and says what is wrong with it.
    let bogus = row(&stdout, "bogus.so");
    assert!(
        bogus.contains("unavailable: ") && bogus.contains("bogus.so:"),
        "{bogus}"
    );
    let svt = row(&stdout, "libs6_codec_svtav1.so");
    assert!(svt.starts_with("svtav1 "), "{svt}");
    assert!(svt.contains(" av1 ") && svt.contains(" software "), "{svt}");
    assert!(svt.ends_with(" available"), "{svt}");
    assert!(
        stdout.contains("--vcodec auto would pick svtav1 (av1, software)"),
        "{stdout}"
    );
    // hang-probe says it is hardware, so auto explains why it skipped it.
    assert!(
        stdout.contains("skipped hang-probe unavailable: probe did not finish"),
        "{stdout}"
    );
}

#[test]
fn encoders_json_is_an_array_of_reports() {
    let dir = broken_and_svtav1_dir();
    let d = dir.path().to_str().unwrap();
    let deadline = common::scaled_ms(2000).to_string();
    let (out, _) = run(
        &[
            "encoders",
            "--json",
            "--plugin-dir",
            d,
            // 2 s, not less: probing SVT-AV1 for real takes about 1 s
            // when the suite runs under qemu-user (cross/build-aarch64.sh).
            "--probe-timeout-ms",
            &deadline,
            "--width",
            "320",
            "--height",
            "240",
        ],
        &[],
    );
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let items = v.as_array().expect("an array");
    let by_file = |file: &str| -> &Value {
        items
            .iter()
            .find(|o| o["path"].as_str().is_some_and(|p| p.ends_with(file)))
            .unwrap_or_else(|| panic!("{file} not in {v:#}"))
    };
    assert!(items.len() >= 6, "{v:#}");
    let svt = by_file("/libs6_codec_svtav1.so");
    assert_eq!(svt["name"], "svtav1");
    assert_eq!(svt["codec"], "av1");
    assert_eq!(svt["kind"], "software");
    assert_eq!(svt["abi_version"], 1);
    assert_eq!(svt["available"], true);
    assert!(svt["reason"].is_null());
    let wrong = by_file("/libs6_fixture_wrong_abi.so");
    assert_eq!(wrong["abi_version"], 999);
    assert!(
        wrong["name"].is_null(),
        "table not read after a version mismatch"
    );
    assert_eq!(wrong["available"], false);
    let hang = by_file("/libs6_fixture_hang_probe.so");
    assert_eq!(hang["name"], "hang-probe");
    assert_eq!(
        hang["reason"],
        format!("probe did not finish within {deadline} ms: driver hung?")
    );
    let no_entry = by_file("/libs6_fixture_no_entry.so");
    assert_eq!(
        no_entry["reason"],
        "not an s6-edge plugin: no symbol s6_codec_plugin_entry"
    );
    for o in items {
        assert!(o["probe_ms"].as_u64().is_some());
        assert_eq!(o["available"].as_bool(), Some(o["reason"].is_null()));
    }
}

#[test]
fn a_plugin_that_aborts_the_probe_child_is_reported_with_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    copy_into(dir.path(), &plugin("s6_fixture_panic_probe"));
    let d = dir.path().to_str().unwrap();
    // Unguarded panic in an `extern "C"` fn: the child process aborts.
    let deadline = common::scaled_ms(3000).to_string();
    let (out, _) = run(
        &[
            "encoders",
            "--json",
            "--plugin-dir",
            d,
            "--probe-timeout-ms",
            &deadline,
        ],
        &[("S6_FIXTURE_PANIC_UNGUARDED", "1")],
    );
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let r = &v[0];
    assert_eq!(r["name"], "panic-probe", "{v:#}");
    let reason = r["reason"].as_str().expect("a reason");
    assert!(
        reason.starts_with("probe crashed: killed by signal 6 (SIGABRT"),
        "{reason}"
    );
    assert!(reason.contains("stderr: "), "{reason}");
    // The panic message itself survives in the tail, not just backtrace frames.
    assert!(
        reason.contains("panic-probe fixture: unguarded panic in probe"),
        "{reason}"
    );
    assert!(reason.contains("aborting"), "{reason}");
}

#[test]
fn auto_picks_svtav1_and_says_why_each_hardware_backend_was_skipped() {
    let dir = tempfile::tempdir().unwrap();
    copy_into(dir.path(), &plugin("s6_codec_svtav1"));
    let hardware: Vec<PathBuf> = ["s6_codec_v4l2m2m", "s6_codec_vaapi", "s6_codec_nvenc"]
        .iter()
        .filter_map(|s| optional_plugin(s))
        .map(|p| copy_into(dir.path(), &p))
        .collect();
    let d = dir.path().to_str().unwrap();

    let (out, _) = run(&["encoders", "--json", "--plugin-dir", d], &[]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let reports = v.as_array().unwrap();
    let hw_reports: Vec<&Value> = reports.iter().filter(|r| r["kind"] == "hardware").collect();
    // On a machine with an encoder device auto rightly picks it: then this
    // test has nothing to say about the software fallback.
    if hw_reports.iter().any(|r| r["available"] == true) {
        eprintln!("a hardware encoder is available here; the fallback is not exercised");
        return;
    }

    let (out, _) = run(&["encoders", "--plugin-dir", d], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        stdout.contains("--vcodec auto would pick svtav1 (av1, software): no hardware backend"),
        "{stdout}"
    );
    for r in &hw_reports {
        let line = format!(
            "skipped {} unavailable: {}",
            r["name"].as_str().unwrap(),
            r["reason"].as_str().unwrap()
        );
        assert!(stdout.contains(&line), "missing {line:?} in:\n{stdout}");
    }
    eprintln!(
        "hardware plugins present: {:?}; loadable hardware backends: {}",
        hardware,
        hw_reports.len()
    );

    // The same through the library API the recorder uses.
    // Probe children run s6-edge; keep a wrapper the caller chose (the
    // aarch64 cross run points it at a script that re-enters qemu).
    if std::env::var_os(plugin_host::probe::PROBE_EXE_ENV).is_none() {
        std::env::set_var(plugin_host::probe::PROBE_EXE_ENV, BIN);
    }
    std::env::remove_var("S6_EDGE_PLUGIN_PATH");
    let dirs = s6_edge::cli::PluginDirArgs {
        plugin_dirs: vec![dir.path().to_path_buf()],
        probe_timeout_ms: common::scaled_ms(3000),
    };
    let req = ProbeRequest::default();
    let (backend, reports) = plugin_host::select_backend(&dirs, "auto", &req).expect("auto");
    assert_eq!(backend.name(), "svtav1");
    assert!(reports.iter().any(|r| r.name.as_deref() == Some("svtav1")));
    let (backend, _) = plugin_host::select_backend(&dirs, "svtav1", &req).expect("by name");
    assert_eq!(backend.name(), "svtav1");
    let err = plugin_host::select_backend(&dirs, "x265", &req).unwrap_err();
    assert!(err.downcast_ref::<s6_edge::exit::UsageError>().is_some());
    assert!(format!("{err}").contains("svtav1"), "{err}");
    if let Some(hw) = hw_reports.first() {
        let name = hw["name"].as_str().unwrap();
        let err = plugin_host::select_backend(&dirs, name, &req).unwrap_err();
        let reason = hw["reason"].as_str().unwrap();
        assert!(format!("{err}").contains(reason), "{err}");
    }
}

#[test]
fn backend_load_refuses_a_wrong_abi_and_a_missing_entry() {
    let err = Backend::load(&plugin("s6_fixture_wrong_abi")).unwrap_err();
    assert!(
        format!("{err:#}").contains("ABI version 999, this s6-edge speaks 1: rebuild the plugin"),
        "{err:#}"
    );
    let err = Backend::load(&plugin("s6_fixture_no_entry")).unwrap_err();
    assert!(
        format!("{err:#}").contains("not an s6-edge plugin: no symbol s6_codec_plugin_entry"),
        "{err:#}"
    );
}

/// A packed I420 frame whose every byte depends on its position and `seed`.
fn pattern(width: usize, height: usize, seed: u8) -> Vec<u8> {
    let len = width * height + 2 * width.div_ceil(2) * height.div_ceil(2);
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

#[test]
fn session_passes_planes_packets_flush_and_config_through_the_abi() {
    let backend = Backend::load(&plugin("s6_fixture_test_ok")).expect("load test-ok");
    assert_eq!(backend.name(), "test-ok");
    assert_eq!(backend.preferred_input(), s6_edge::frame::PixelFormat::I420);
    // Odd sizes exercise the rounded-up chroma planes.
    let (w, h) = (33usize, 17usize);
    let settings = EncoderSettings {
        gop: 2,
        ..EncoderSettings::default()
    };
    // Sessions are Send: open and use one on another thread.
    let packets = std::thread::spawn(move || {
        let mut session = backend
            .open(w as u32, h as u32, 30, 1, &settings)
            .expect("open");
        assert_eq!(
            session.codec_config().unwrap().as_deref(),
            Some(&b"test-ok-config"[..])
        );
        let mut out = Vec::new();
        for pts in 0..5 {
            session
                .encode(&pattern(w, h, pts as u8), pts, pts == 3, &mut out)
                .expect("encode");
        }
        assert_eq!(out.len(), 4, "output lags input by one frame");
        session.flush(&mut out).expect("flush");
        let err = session.encode(&[0u8; 10], 9, false, &mut out).unwrap_err();
        assert!(format!("{err:#}").contains("has 10 bytes"), "{err:#}");
        out
    })
    .join()
    .unwrap();
    assert_eq!(packets.len(), 5);
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.pts, i as i64);
        assert_eq!(p.data, pattern(w, h, i as u8), "frame {i} bytes round-trip");
    }
    let keys: Vec<bool> = packets.iter().map(|p| p.keyframe).collect();
    assert_eq!(keys, [true, false, true, true, true]);
}

#[test]
fn session_errors_carry_the_plugins_message() {
    let backend = Backend::load(&plugin("s6_fixture_test_ok")).expect("load test-ok");
    let settings = EncoderSettings {
        options: "fail_open=1".into(),
        ..EncoderSettings::default()
    };
    let err = backend
        .open(64, 64, 30, 1, &settings)
        .err()
        .expect("open fails");
    assert!(
        format!("{err:#}").contains("test-ok: open failed as asked (fail_open=1)"),
        "{err:#}"
    );
}

#[test]
fn svtav1_session_through_the_host_encodes_every_frame() {
    let backend = Backend::load(&plugin("s6_codec_svtav1")).expect("load svtav1");
    let (w, h) = (320usize, 240usize);
    let mut session = backend
        .open(w as u32, h as u32, 30, 1, &EncoderSettings::default())
        .expect("open svtav1");
    let mut out = Vec::new();
    for pts in 0..6 {
        session
            .encode(&pattern(w, h, pts as u8), pts, false, &mut out)
            .expect("encode");
    }
    session.flush(&mut out).expect("flush");
    assert_eq!(out.len(), 6, "one packet per frame");
    assert!(out[0].keyframe);
    assert!(out.iter().all(|p| !p.data.is_empty()));
    let config = session
        .codec_config()
        .expect("config")
        .expect("sequence header");
    // OBU header of a sequence header: type 1 in bits 6..3.
    assert_eq!((config[0] >> 3) & 0x0f, 1, "sequence header OBU");
}
