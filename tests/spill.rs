//! Overload: frames that do not fit the ring are spilled to disk and encoded
//! in order; nothing is dropped silently. Real synthetic cameras, the real
//! SVT-AV1 plugin, files checked with ffmpeg/ffprobe and `verify`.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const W: u32 = 160;
const H: u32 = 120;

fn record_args<'a>(plugins: &'a Path, ds: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--width", "160", "--height", "120"];
    all.extend_from_slice(extra);
    svtav1_record_args(plugins, ds, &all)
}

/// Every frame of `cam` in episode `ep` is in the MP4, in capture order
/// (stamps consecutive), matching the index; the spill folder is gone.
/// Returns (frames in the video, rows marked spilled).
fn check_camera(ep: &Path, cam: &str, (w, h): (u32, u32)) -> (u64, u64) {
    let mp4 = ep.join(format!("{cam}.mp4"));
    let rows = index_rows(&ep.join(format!("{cam}.idx")));
    let video_rows = rows.iter().filter(|r| !r.dropped).count() as u64;
    assert_eq!(
        rows.iter().filter(|r| r.dropped).count(),
        0,
        "{}: no frame dropped",
        mp4.display()
    );
    assert_eq!(ffprobe_frames(&mp4), video_rows, "{}", mp4.display());
    let stamps = decoded_stamps(&mp4, w, h);
    assert_eq!(stamps.len() as u64, video_rows);
    assert_consecutive_stamps(&stamps, &mp4.display().to_string());
    assert!(
        rows.windows(2)
            .all(|w| w[0].frame_index + 1 == w[1].frame_index),
        "{}: index rows are consecutive frames",
        mp4.display()
    );
    assert!(
        !ep.join("spill").join(cam).exists(),
        "{}: spill folder removed",
        ep.display()
    );
    (video_rows, rows.iter().filter(|r| r.spilled).count() as u64)
}

fn verify_ok(ds: &Path) {
    let verify = s6(&["verify", ds.to_str().unwrap()]);
    dump("verify", &verify);
    assert!(verify.status.success(), "verify passes");
}

#[test]
fn overload_spills_and_every_frame_reaches_the_mp4_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = svtav1_dir(tmp.path());
    let ds = tmp.path().join("ds");
    let logs = tmp.path().join("logs");
    // Three 320x240@30 cameras with a 2-frame ring: the encoders cannot
    // keep up frame by frame, so the cameras spill.
    let args = record_args(
        &plugins,
        &ds,
        &[
            "-i",
            "synthetic#name=a,width=320,height=240",
            "-i",
            "synthetic#name=b,width=320,height=240",
            "-i",
            "synthetic#name=c,width=320,height=240",
            "--fps",
            "30",
            "--ring-frames",
            "2",
            "--episodes",
            "2",
            "--episode-time",
            "1.5",
            "--reset-time",
            "0.3",
            "-x",
            "--log-dir",
            logs.to_str().unwrap(),
        ],
    );
    s6_ok("record", &args);
    let episodes = episode_dirs(&ds);
    assert_eq!(episodes.len(), 2);
    let mut spilled_rows = 0;
    for ep in &episodes {
        assert!(
            !ep.join("spill").exists(),
            "{}: no spill folder left",
            ep.display()
        );
        for cam in ["a", "b", "c"] {
            let (frames, spilled) = check_camera(ep, cam, (320, 240));
            assert!(frames >= 20, "{cam}: {frames} frames in 1.5 s at 30 fps");
            spilled_rows += spilled;
        }
    }
    verify_ok(&ds);
    let metrics = json(&only_run(&logs).join("metrics.json"));
    let mut spilled_total = 0;
    for cam in ["a", "b", "c"] {
        let c = &metrics["cameras"][cam];
        assert_eq!(c["frames_dropped"], 0, "{cam}: nothing dropped");
        assert_eq!(c["frames_captured"], c["frames_encoded"], "{cam}");
        spilled_total += c["frames_spilled"].as_u64().unwrap();
        assert!(
            c["backlog"].as_array().unwrap().len() >= 3,
            "{cam}: backlog sampled over time"
        );
    }
    assert!(spilled_total > 0, "the overload made cameras spill");
    assert_eq!(
        spilled_total, spilled_rows,
        "index rows marked spilled = metrics"
    );
}

#[test]
fn streaming_encoding_false_spills_everything_and_encodes_between_episodes() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = svtav1_dir(tmp.path());
    let ds = tmp.path().join("ds");
    let logs = tmp.path().join("logs");
    let args = record_args(
        &plugins,
        &ds,
        &[
            "-i",
            "synthetic#name=a",
            "-i",
            "synthetic#name=b",
            "--fps",
            "15",
            "--streaming-encoding=false",
            "--episodes",
            "2",
            "--episode-time",
            "1.5",
            "--reset-time",
            "0.3",
            "-x",
            "--log-dir",
            logs.to_str().unwrap(),
        ],
    );
    s6_ok("record", &args);
    let episodes = episode_dirs(&ds);
    assert_eq!(episodes.len(), 2);
    for ep in &episodes {
        let meta = json(&ep.join("episode.json"));
        for cam in ["a", "b"] {
            let (frames, spilled) = check_camera(ep, cam, (W, H));
            assert!(frames >= 15, "{cam}: {frames} frames");
            assert_eq!(
                spilled, frames,
                "{cam}: every frame went through the spill path"
            );
            assert_eq!(meta["cameras"][cam]["spilled"].as_u64(), Some(frames));
        }
    }
    verify_ok(&ds);
    let metrics = json(&only_run(&logs).join("metrics.json"));
    for cam in ["a", "b"] {
        let c = &metrics["cameras"][cam];
        assert_eq!(c["frames_dropped"], 0);
        assert_eq!(c["frames_spilled"], c["frames_captured"]);
        assert_eq!(c["frames_encoded"], c["frames_captured"]);
        assert!(c["spill_backlog_high_water"].as_u64().unwrap() >= 15);
    }
}

/// A small tmpfs, unmounted on drop.
/// A tmpfs of `size` on `dir`, or `None` (test skipped) where mounting
/// is not allowed.
fn small_disk(dir: &Path, size: &str) -> Option<Tmpfs> {
    Tmpfs::mount(dir, size)
        .map_err(|e| {
            eprintln!("SKIPPED: cannot mount a tmpfs here ({e}); the disk-full test needs root")
        })
        .ok()
}

/// Copies a directory tree (the dataset out of the full tmpfs).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

#[test]
fn disk_full_while_spilling_stops_cleanly_and_keeps_what_reached_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = svtav1_dir(tmp.path());
    let Some(fs) = small_disk(&tmp.path().join("small"), "3m") else {
        return;
    };
    let ds = fs.0.join("ds");
    // 1. A complete episode first.
    s6_ok(
        "first record",
        &record_args(
            &plugins,
            &ds,
            &[
                "-i",
                "synthetic#name=a",
                "--fps",
                "30",
                "--episodes",
                "1",
                "--episode-time",
                "1",
            ],
        ),
    );
    let ep0 = episode_dirs(&ds)[0].clone();
    let ep0_files: Vec<(PathBuf, Vec<u8>)> = ["a.mp4", "a.idx", "episode.json"]
        .iter()
        .map(|f| (ep0.join(f), std::fs::read(ep0.join(f)).unwrap()))
        .collect();

    // 2. Fill the disk to ~400 KB free, then spill noisy frames (~29 KB
    //    each, nearly incompressible) until it is full.
    fs.fill_leaving(400 * 1024);
    let second = s6(&record_args(
        &plugins,
        &ds,
        &[
            "-i",
            "synthetic#name=a,noise=60",
            "--fps",
            "30",
            "--streaming-encoding=false",
            "--episodes",
            "1",
            "--episode-time",
            "3",
        ],
    ));
    dump("second record", &second);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "a full disk is a failure");
    assert!(stderr.contains("disk full"), "says the disk is full");
    assert!(
        stderr.contains("encode-pending"),
        "says how to finish the frames on disk"
    );
    // The complete episode is untouched.
    for (path, bytes) in &ep0_files {
        assert_eq!(
            &std::fs::read(path).unwrap(),
            bytes,
            "{} unchanged",
            path.display()
        );
    }
    // The interrupted episode has its frames as spill files (and maybe a
    // partial video): all recoverable once there is space again.
    let episodes = episode_dirs(&ds);
    assert_eq!(episodes.len(), 2);
    let ep1 = &episodes[1];
    assert!(
        !ep1.join("episode.json").exists(),
        "interrupted episode is unfinished"
    );
    let spilled = s6_edge::record::spill::list_spilled(&ep1.join("spill/a")).unwrap();
    assert!(
        spilled.len() >= 5,
        "frames reached disk as spill files: {spilled:?}"
    );

    // 3. With space back (a copy on the big disk), encode-pending finishes them.
    let big = tmp.path().join("big");
    copy_tree(&ds, &big);
    drop(fs);
    s6_ok(
        "encode-pending",
        &[
            "encode-pending",
            big.to_str().unwrap(),
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
    );
    let ep1 = &episode_dirs(&big)[1];
    let mp4 = ep1.join("a.mp4");
    let stamps = decoded_stamps(&mp4, W, H);
    assert!(
        stamps.len() >= spilled.len(),
        "every spilled frame is in the video ({} < {})",
        stamps.len(),
        spilled.len()
    );
    assert_consecutive_stamps(&stamps, "interrupted episode after encode-pending");
    assert!(!ep1.join("spill").exists(), "spill folder gone");
}

#[test]
fn kill_9_with_a_backlog_then_encode_pending_puts_every_durable_frame_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = svtav1_dir(tmp.path());
    let ds = tmp.path().join("ds");
    let args = record_args(
        &plugins,
        &ds,
        &[
            "-i",
            "synthetic#name=a",
            "-i",
            "synthetic#name=b",
            "--fps",
            "30",
            "--streaming-encoding=false",
            "--episodes",
            "1",
            "--episode-time",
            "2",
            "--preset",
            "6",
        ],
    );
    let mut child = s6_command()
        .args(&args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once encoding between episodes is under way: camera a's video
    // has a durable fragment while its spill files are still waiting.
    let ep = ds.join("episodes/000000");
    let until = Instant::now() + Duration::from_secs(30);
    let mut killed = false;
    while Instant::now() < until {
        let durable = s6_edge::mux::scan(&ep.join("a.mp4")).is_ok_and(|s| !s.samples.is_empty());
        let waiting = !s6_edge::record::spill::list_spilled(&ep.join("spill/a"))
            .unwrap_or_default()
            .is_empty();
        if durable && waiting {
            child.kill().unwrap(); // SIGKILL
            killed = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.wait();
    assert!(killed, "the recorder was killed while a backlog existed");
    assert!(!ep.join("episode.json").exists());
    // Everything durable: frames in complete fragments, and spill files.
    let a_in_video = s6_edge::mux::scan(&ep.join("a.mp4")).unwrap().samples.len();
    assert!(a_in_video > 0);
    let mut expect = Vec::new();
    for cam in ["a", "b"] {
        let spilled = s6_edge::record::spill::list_spilled(&ep.join("spill").join(cam)).unwrap();
        let in_video = s6_edge::mux::scan(&ep.join(format!("{cam}.mp4")))
            .map(|s| s.samples.len() as u64)
            .unwrap_or(0);
        let last = spilled.last().copied().map_or(in_video, |l| l + 1);
        expect.push((cam, last));
    }
    let pending = s6_ok(
        "encode-pending",
        &[
            "encode-pending",
            ds.to_str().unwrap(),
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
    );
    let report = String::from_utf8_lossy(&pending.stdout);
    assert!(
        report.contains(" a: ") && !report.contains(&format!(" a: {} encoded", expect[0].1)),
        "camera a appended after its durable fragments: {report}"
    );
    for (cam, frames) in expect {
        let mp4 = ep.join(format!("{cam}.mp4"));
        let stamps = decoded_stamps(&mp4, W, H);
        assert_eq!(
            stamps.len() as u64,
            frames,
            "{cam}: every durable frame is in the video"
        );
        assert_consecutive_stamps(&stamps, &mp4.display().to_string());
        let rows = index_rows(&ep.join(format!("{cam}.idx")));
        assert_eq!(rows.len() as u64, frames, "{cam}: one index row per frame");
        assert!(rows.iter().all(|r| r.spilled && !r.dropped));
        assert!(!ep.join("spill").join(cam).exists());
    }
    // Running it again finds nothing to do.
    let again = s6(&[
        "encode-pending",
        ds.to_str().unwrap(),
        "--plugin-dir",
        plugins.to_str().unwrap(),
    ]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("no pending spill frames"));
    // `recover` closes the episode; the dataset then verifies.
    s6_ok(
        "recover",
        &[
            "recover",
            ds.to_str().unwrap(),
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
    );
    assert!(ep.join("episode.json").exists());
    verify_ok(&ds);
}

#[test]
fn disk_full_while_streaming_stops_the_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = svtav1_dir(tmp.path());
    let Some(fs) = small_disk(&tmp.path().join("small"), "2m") else {
        return;
    };
    let ds = fs.0.join("ds");
    fs.fill_leaving(120 * 1024);
    let started = Instant::now();
    let out = s6(&record_args(
        &plugins,
        &ds,
        &[
            "-i",
            "synthetic#name=a,noise=40",
            "--fps",
            "15",
            "--episodes",
            "1",
            "--episode-time",
            "20",
        ],
    ));
    dump("record", &out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped when the disk filled, not at the end of the episode"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("disk is full"), "says the disk is full");
}

#[test]
fn a_failed_spill_write_is_a_counted_gap_row_and_verify_reports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = svtav1_dir(tmp.path());
    let ds = tmp.path().join("ds");
    let logs = tmp.path().join("logs");
    let args = record_args(
        &plugins,
        &ds,
        &[
            "-i",
            "synthetic#name=a",
            "--fps",
            "15",
            "--streaming-encoding=false",
            "--episodes",
            "1",
            "--episode-time",
            "2",
            "-x",
            "--log-dir",
            logs.to_str().unwrap(),
        ],
    );
    let child = s6_command()
        .args(&args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // As soon as the episode exists, block the spill files of frames 10..15:
    // a directory where the temporary file should go makes the write fail
    // (not a full disk: recording goes on).
    let spill = ds.join("episodes/000000/spill/a");
    let until = Instant::now() + Duration::from_secs(10);
    while !ds.join("episodes/000000").exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 10..15 {
        std::fs::create_dir_all(spill.join(format!("{i}.png.tmp"))).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    dump("record", &out);
    assert!(out.status.success());
    let ep = &episode_dirs(&ds)[0];
    let rows = index_rows(&ep.join("a.idx"));
    let dropped: Vec<u64> = rows
        .iter()
        .filter(|r| r.dropped)
        .map(|r| r.frame_index)
        .collect();
    assert_eq!(dropped, (10..15).collect::<Vec<_>>(), "gap rows in place");
    assert!(rows
        .iter()
        .filter(|r| r.dropped)
        .all(|r| r.pts == -1 && r.capture_ts_ns > 0));
    assert!(rows
        .windows(2)
        .all(|w| w[0].frame_index + 1 == w[1].frame_index));
    assert!(rows
        .windows(2)
        .all(|w| w[0].capture_ts_ns < w[1].capture_ts_ns));
    let mp4 = ep.join("a.mp4");
    assert_eq!(
        ffprobe_frames(&mp4),
        rows.len() as u64 - 5,
        "no sample for a lost frame"
    );
    let stamps = decoded_stamps_passthrough(&mp4, W, H);
    assert_eq!(
        stamps.len(),
        rows.len() - 5,
        "the video skips the lost frames"
    );
    let first = assert_consecutive_stamps(&stamps[..10], "before the gap");
    assert_eq!(stamps[10], Some(first + 15), "after the gap: frame 15");
    assert_consecutive_stamps(&stamps[10..], "after the gap");
    assert!(!ep.join("spill").exists());
    let meta = json(&ep.join("episode.json"));
    assert_eq!(meta["cameras"]["a"]["dropped"], 5);
    let metrics = json(&only_run(&logs).join("metrics.json"));
    assert_eq!(metrics["cameras"]["a"]["frames_dropped"], 5);
    let verify = s6_ok("verify", &["verify", ds.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(text.contains("5 dropped"), "verify reports the drops");
}

#[test]
fn second_sigint_during_the_drain_leaves_spill_files_for_encode_pending() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = svtav1_dir(tmp.path());
    let ds = tmp.path().join("ds");
    let args = record_args(
        &plugins,
        &ds,
        &[
            "-i",
            // Noisy frames on one encoder thread: the drain takes seconds
            // even on an idle machine, so the second SIGINT lands inside it.
            "synthetic#name=a,width=320,height=240,noise=40",
            "--fps",
            "30",
            "--streaming-encoding=false",
            "--encoder-threads",
            "1",
            "--episodes",
            "1",
            "--episode-time",
            "2",
        ],
    );
    let child = s6_command()
        .args(&args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let ep = ds.join("episodes/000000");
    let until = Instant::now() + Duration::from_secs(30);
    let mut signalled = false;
    while Instant::now() < until {
        let encoding = ep.join("a.mp4").exists();
        let waiting = s6_edge::record::spill::list_spilled(&ep.join("spill/a"))
            .unwrap_or_default()
            .len()
            > 10;
        if encoding && waiting {
            for _ in 0..2 {
                nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
            signalled = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().unwrap();
    dump("record", &out);
    assert!(signalled, "signalled while the backlog was being encoded");
    assert!(
        !ep.join("episode.json").exists(),
        "the episode stays unfinished"
    );
    let left = s6_edge::record::spill::list_spilled(&ep.join("spill/a")).unwrap();
    assert!(!left.is_empty(), "spill files are left for later");
    s6_ok(
        "encode-pending",
        &[
            "encode-pending",
            ds.to_str().unwrap(),
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
    );
    let mp4 = ep.join("a.mp4");
    let stamps = decoded_stamps(&mp4, 320, 240);
    assert_eq!(
        stamps.len() as u64,
        left.last().unwrap() + 1,
        "every frame in the video"
    );
    assert_consecutive_stamps(&stamps, "after encode-pending");
    assert!(!ep.join("spill").exists());
}
