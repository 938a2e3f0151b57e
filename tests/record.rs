//! `s6-edge record` end to end: real synthetic and GStreamer cameras, the
//! real SVT-AV1 plugin, files checked by ffprobe/ffmpeg and `verify`.

mod common;

use common::*;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Arguments recording one 1 s episode of camera `input` at 320x240@15
/// with SVT-AV1.
fn one_second_320x240<'a>(plugins: &'a Path, ds: &'a Path, input: &'a str) -> Vec<&'a str> {
    svtav1_record_args(
        plugins,
        ds,
        &[
            "-i",
            input,
            "--width",
            "320",
            "--height",
            "240",
            "--fps",
            "15",
            "--episodes",
            "1",
            "--episode-time",
            "1",
        ],
    )
}

#[test]
fn three_synthetic_cameras_two_episodes_verify_and_every_stamp_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = svtav1_dir(tmp.path());
    let ds = tmp.path().join("ds");
    let logs = tmp.path().join("logs");
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
                "-i",
                "synthetic#name=wrist",
                "--width",
                "320",
                "--height",
                "240",
                "--fps",
                "15",
                "--episodes",
                "2",
                "--episode-time",
                "2",
                "--reset-time",
                "0.5",
                "--task",
                "stack cubes",
                "-x",
                "--log-dir",
                logs.to_str().unwrap(),
            ],
        ),
    );

    let episodes = episode_dirs(&ds);
    assert_eq!(episodes.len(), 2, "two episodes: {episodes:?}");
    for ep in &episodes {
        let meta = json(&ep.join("episode.json"));
        assert_eq!(meta["task"], "stack cubes");
        for cam in ["left", "right", "wrist"] {
            let mp4 = ep.join(format!("{cam}.mp4"));
            let rows = index_rows(&ep.join(format!("{cam}.idx")));
            let n = rows.len() as u64;
            assert!(
                (20..=40).contains(&n),
                "{cam}: {n} frames in a 2 s episode at 15 fps"
            );
            assert_eq!(meta["cameras"][cam]["frames"].as_u64(), Some(n));
            assert_eq!(
                ffprobe_frames(&mp4),
                n,
                "{}: ffprobe decodes every frame",
                mp4.display()
            );
            let stamps = decoded_stamps(&mp4, 320, 240);
            assert_eq!(stamps.len() as u64, n);
            assert_consecutive_stamps(&stamps, &mp4.display().to_string());
            assert!(
                rows.windows(2)
                    .all(|w| w[0].capture_ts_ns < w[1].capture_ts_ns),
                "capture timestamps strictly increase"
            );
        }
    }
    s6_ok("verify", &["verify", ds.to_str().unwrap()]);

    // -x wrote metrics.json and a Chrome trace.
    let run = only_run(&logs);
    let metrics = json(&run.join("metrics.json"));
    for cam in ["left", "right", "wrist"] {
        let c = &metrics["cameras"][cam];
        assert_eq!(
            c["frames_captured"], c["frames_encoded"],
            "{cam}: every captured frame encoded"
        );
        assert_eq!(c["frames_dropped"], 0);
        assert!(c["stages"]["encode"]["p99_ms"].as_f64().unwrap() > 0.0);
    }
    let trace = json(&run.join("perf.log.json"));
    assert!(trace["traceEvents"].as_array().unwrap().len() > 100);
}

#[test]
fn gstreamer_rtp_sender_on_loopback_is_recorded_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = svtav1_dir(tmp.path());
    let ds = tmp.path().join("ds");
    let port = 20000 + (std::process::id() % 20000) as u16;
    let mut sender = spawn_rtp_jpeg_sender(port, 320, 240);
    let source = rtp_jpeg_source(port);
    let out = s6(&svtav1_record_args(
        &plugins,
        &ds,
        &["-i", &source, "--episodes", "1", "--episode-time", "2"],
    ));
    let _ = sender.kill();
    let _ = sender.wait();
    dump("record", &out);
    assert!(out.status.success());
    let ep = &episode_dirs(&ds)[0];
    let rows = index_rows(&ep.join("net.idx"));
    assert!(rows.len() >= 15, "frames arrived over RTP: {}", rows.len());
    assert_eq!(ffprobe_frames(&ep.join("net.mp4")), rows.len() as u64);
    s6_ok("verify", &["verify", ds.to_str().unwrap()]);
}

#[test]
fn kill_9_mid_episode_keeps_every_written_fragment_and_verify_names_the_episode() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = svtav1_dir(tmp.path());
    let ds = tmp.path().join("ds");
    let d = ds.to_str().unwrap();
    let mut child = s6_command()
        .args(svtav1_record_args(
            &plugins,
            &ds,
            &[
                "-i",
                "synthetic",
                "--width",
                "320",
                "--height",
                "240",
                "--fps",
                "15",
            ],
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let ep = &episode_dirs(&ds)[0];
    assert!(!ep.join("episode.json").exists());
    let mp4 = ep.join("cam0.mp4");
    let decoded = ffprobe_frames(&mp4);
    assert!(
        decoded >= 15,
        "fragments written before the kill decode: {decoded} frames"
    );
    assert_consecutive_stamps(&decoded_stamps(&mp4, 320, 240), "cam0.mp4 after kill -9");
    let verify = s6(&["verify", d]);
    dump("verify", &verify);
    assert_eq!(verify.status.code(), Some(1));
    let text = String::from_utf8_lossy(&verify.stdout).to_string()
        + &String::from_utf8_lossy(&verify.stderr);
    assert!(
        text.contains("000000") && text.contains("unfinished"),
        "verify names the unfinished episode"
    );
    // A new recording refuses until the dataset is recovered.
    let again = s6(&one_second_320x240(&plugins, &ds, "synthetic"));
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("s6-edge recover"));
}

#[test]
fn sigterm_mid_episode_finishes_it_with_no_frame_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = svtav1_dir(tmp.path());
    let ds = tmp.path().join("ds");
    let logs = tmp.path().join("logs");
    let child = s6_command()
        .args(svtav1_record_args(
            &plugins,
            &ds,
            &[
                "-i",
                "synthetic",
                "-i",
                "synthetic",
                "--width",
                "320",
                "--height",
                "240",
                "--fps",
                "15",
                "-x",
                "--log-dir",
                logs.to_str().unwrap(),
            ],
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    dump("record", &out);
    assert!(out.status.success(), "SIGTERM finishes cleanly with exit 0");
    let ep = &episode_dirs(&ds)[0];
    assert!(ep.join("episode.json").exists());
    let metrics = json(&only_run(&logs).join("metrics.json"));
    for cam in ["cam0", "cam1"] {
        let rows = index_rows(&ep.join(format!("{cam}.idx"))).len() as u64;
        assert!(rows > 0);
        assert_eq!(
            metrics["cameras"][cam]["frames_captured"].as_u64(),
            Some(rows),
            "{cam}: index rows == frames captured"
        );
        assert_eq!(ffprobe_frames(&ep.join(format!("{cam}.mp4"))), rows);
    }
    assert!(s6(&["verify", ds.to_str().unwrap()]).status.success());
}

#[test]
fn bad_input_gives_clear_errors_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = svtav1_dir(tmp.path());
    let p = plugins.to_str().unwrap();
    let ds = tmp.path().join("ds");
    let d = ds.to_str().unwrap();

    let out = s6(&["record", "-i", "webcam:0", "--plugin-dir", p, "-o", d]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "unknown source is a usage error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown camera source"));
    assert!(!ds.exists(), "nothing created");

    let out = s6(&[
        "record",
        "-i",
        "synthetic#width=321,height=240",
        "--plugin-dir",
        p,
        "-o",
        d,
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "odd width for 4:2:0 is a usage error"
    );
    assert!(!ds.exists());

    let out = s6(&[
        "record",
        "-i",
        "synthetic",
        "--episodes",
        "1",
        "--episode-time",
        "1",
        "--vcodec",
        "svtav1",
        "--plugin-dir",
        p,
        "-o",
        "/proc/s6-edge-cannot-write-here",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/proc/s6-edge-cannot-write-here"));

    // A dataset recorded with one camera set refuses another.
    s6_ok("record ok", &one_second_320x240(&plugins, &ds, "synthetic"));
    let before = std::fs::read(ds.join("dataset.json")).unwrap();
    let out = s6(&one_second_320x240(&plugins, &ds, "synthetic#name=other"));
    dump("record other", &out);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("camera"),
        "says the camera set differs"
    );
    assert_eq!(
        std::fs::read(ds.join("dataset.json")).unwrap(),
        before,
        "dataset untouched"
    );
    assert_eq!(episode_dirs(&ds).len(), 1);

    let out = s6(&[
        "record",
        "-i",
        "synthetic",
        "--vcodec",
        "nosuchcodec",
        "--plugin-dir",
        p,
        "-o",
        tmp.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}
