//! `s6-edge record` under a second stop signal: the recording aborts fast
//! (queued frames are skipped), yet the dataset stays consistent: completed
//! episodes verify, the aborted one is marked `aborted` in its `episode.json`,
//! and every file written decodes with ffprobe with exactly its index rows.
//!
//! The encoder is made deliberately slower than the camera (a noisy 320x240
//! picture at 30 fps, SVT-AV1 at its slowest low-delay preset on one thread:
//! about 8 fps) so a backlog builds up in the ring: a graceful finish would
//! have to encode all of it, an abort must not.

mod common;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Upper bound from the second signal to the process exit.
const ABORT_LIMIT: Duration = Duration::from_secs(3);
const W: u32 = 320;
const H: u32 = 240;

fn start(plugins: &Path, ds: &Path, logs: &Path) -> Child {
    Command::new(bin())
        .args(svtav1_record_args(
            plugins,
            ds,
            &[
                "-i",
                &format!("synthetic#width={W},height={H},fps=30,noise=40"),
                "--preset",
                "8",
                "--encoder-threads",
                "1",
                "--ring-frames",
                "120",
                "--episode-time",
                "1",
                "-x",
                "--log-dir",
                logs.to_str().unwrap(),
            ],
        ))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start s6-edge record")
}

/// Waits until `path` exists (or panics after `limit`).
fn wait_for(path: &Path, limit: Duration) {
    let until = Instant::now() + limit;
    while !path.exists() {
        assert!(Instant::now() < until, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Records episode 0 to completion, then sends `first` and SIGINT during
/// episode 1 and checks the abort and the dataset left behind.
fn second_signal_aborts_fast(first: Signal) {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = svtav1_dir(tmp.path());
    let ds = tmp.path().join("ds");
    let logs = tmp.path().join("logs");
    let mut child = start(&plugins, &ds, &logs);
    let pid = Pid::from_raw(child.id() as i32);

    // Episode 0 finishes gracefully (its backlog is encoded); episode 1 runs
    // long enough to queue frames the slow encoder has not reached yet.
    wait_for(
        &ds.join("episodes/000000/episode.json"),
        Duration::from_secs(60),
    );
    wait_for(&ds.join("episodes/000001"), Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(700));
    kill(pid, first).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    kill(pid, Signal::SIGINT).unwrap();
    let aborted_at = Instant::now();
    let exited = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if aborted_at.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("record did not exit within 30 s of the second signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let abort_time = aborted_at.elapsed();
    let out = child.wait_with_output().unwrap();
    dump("record", &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("aborting"), "the abort is announced");
    assert!(
        exited.success(),
        "an abort still closes everything cleanly: {exited:?}"
    );
    assert!(
        abort_time < ABORT_LIMIT,
        "second signal to exit took {abort_time:?} (limit {ABORT_LIMIT:?})"
    );

    // The dataset: earlier episodes complete, the last one closed and marked
    // aborted (episode 1, or a later one when a loaded machine made episode 1
    // end on schedule before the signals came).
    let eps = episode_dirs(&ds);
    assert!(eps.len() >= 2, "episodes {eps:?}");
    let metrics = json(&only_run(&logs).join("metrics.json"));
    let captured = metrics["cameras"]["cam0"]["frames_captured"]
        .as_u64()
        .unwrap();
    let mut written = 0;
    for (i, ep) in eps.iter().enumerate() {
        let meta = json(&ep.join("episode.json"));
        let want = if i + 1 < eps.len() {
            "complete"
        } else {
            "aborted"
        };
        assert_eq!(meta["status"], want, "{}", ep.display());
        let rows = index_rows(&ep.join("cam0.idx")).len() as u64;
        assert!(rows > 0, "{}: no rows", ep.display());
        assert_eq!(meta["cameras"]["cam0"]["frames"].as_u64(), Some(rows));
        let mp4 = ep.join("cam0.mp4");
        assert_eq!(
            ffprobe_frames(&mp4),
            rows,
            "{}: decoded frames",
            ep.display()
        );
        let stamps = decoded_stamps(&mp4, W, H);
        assert_eq!(stamps.len() as u64, rows);
        assert_consecutive_stamps(&stamps, &format!("{}/cam0.mp4", ep.display()));
        written += rows;
    }
    assert!(
        written < captured,
        "the abort skipped the frames still queued for the slow encoder"
    );
    eprintln!(
        "abort after {first:?}: exited {abort_time:?} after the second signal; \
         {captured} frames captured, {written} written, {} queued frames skipped",
        captured - written
    );

    let verify = s6(&["verify", ds.to_str().unwrap()]);
    dump("verify", &verify);
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "verify passes: episode 0 complete, episode 1 aborted but consistent"
    );
    assert!(text.contains("aborted"), "verify names the aborted episode");
}

#[test]
fn second_sigint_aborts_fast_and_leaves_a_consistent_dataset() {
    second_signal_aborts_fast(Signal::SIGINT);
}

#[test]
fn sigterm_then_sigint_aborts_fast_and_leaves_a_consistent_dataset() {
    second_signal_aborts_fast(Signal::SIGTERM);
}
