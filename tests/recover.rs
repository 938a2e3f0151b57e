//! `s6-edge recover` on real recordings: `record` killed with SIGKILL at
//! several points, and hand-made torn files (MP4 cut inside a fragment,
//! garbage after the index, index rows missing). Afterwards `verify` passes,
//! the stamped frame numbers in every MP4 are consecutive, and a second
//! `recover` changes no byte of any file.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const W: u32 = 160;
const H: u32 = 120;

/// Starts `record` with synthetic cameras `names` at 160x120@15 in the background.
fn spawn_record(tmp: &Path, ds: &Path, names: &[&str], extra: &[&str]) -> Child {
    let plugins = svtav1_dir(tmp);
    let mut cmd = Command::new(bin());
    cmd.arg("record");
    for n in names {
        cmd.args(["-i", &format!("synthetic#name={n}")]);
    }
    if !extra.contains(&"--preset") {
        cmd.args(["--preset", STAMP_EXACT_PRESET]);
    }
    cmd.args(["--width", &W.to_string(), "--height", &H.to_string()])
        .args(["--fps", "15", "--vcodec", "svtav1", "--plugin-dir"])
        .arg(&plugins)
        .arg("-o")
        .arg(ds)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd.spawn().expect("start s6-edge record")
}

/// Records to completion (for the hand-made cases).
fn record(tmp: &Path, ds: &Path, names: &[&str], extra: &[&str]) {
    let child = spawn_record(tmp, ds, names, extra);
    let out = child.wait_with_output().unwrap();
    dump("record", &out);
    assert!(out.status.success(), "record failed");
}

/// SIGKILL, then reap.
fn kill9(mut child: Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "record was killed");
}

/// Waits until `cond` holds while `child` runs (panics after `limit`, or
/// with its stderr when it exits first).
fn wait_for(child: &mut Child, what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !cond() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("record exited ({status}) before {what}:\n{err}");
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// blake3 of every file under `dir` (names relative to it).
fn hash_tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let data = std::fs::read(&p).unwrap();
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    blake3::hash(&data).to_hex().to_string(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// `recover DIR` must succeed; returns its stdout.
fn recover(ds: &Path) -> String {
    // Spill frames left by a loaded machine need the encoder: name the
    // plugin explicitly (the binary's own directory is not where the
    // plugins live for every runner, e.g. qemu-user).
    let base = ds.parent().unwrap().join("recover-plugins");
    let plugins = if base.join("plugins").exists() {
        base.join("plugins")
    } else {
        svtav1_dir(&base)
    };
    let out = s6(&[
        "recover",
        "--plugin-dir",
        plugins.to_str().unwrap(),
        ds.to_str().unwrap(),
    ]);
    dump("recover", &out);
    assert!(out.status.success(), "recover succeeds");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything a recovered dataset must satisfy: verify passes, every MP4's
/// stamps are consecutive and match its index, and a second recover changes
/// nothing. Returns the episode directories.
fn check_recovered(ds: &Path, cams: &[&str]) -> Vec<PathBuf> {
    let verify = s6(&["verify", ds.to_str().unwrap()]);
    dump("verify", &verify);
    assert!(verify.status.success(), "verify passes after recover");
    let episodes = episode_dirs(ds);
    for ep in &episodes {
        let meta = json(&ep.join("episode.json"));
        for cam in cams {
            let mp4 = ep.join(format!("{cam}.mp4"));
            let n = meta["cameras"][cam]["frames"].as_u64().unwrap();
            if n == 0 {
                continue;
            }
            let rows = index_rows(&ep.join(format!("{cam}.idx")));
            assert_eq!(rows.iter().filter(|r| !r.dropped).count() as u64, n);
            assert_eq!(ffprobe_frames(&mp4), n, "{}", mp4.display());
            let stamps = decoded_stamps(&mp4, W, H);
            assert_consecutive_stamps(&stamps, &mp4.display().to_string());
            assert!(
                rows.windows(2).all(|w| w[0].frame_index < w[1].frame_index
                    && w[0].capture_ts_ns < w[1].capture_ts_ns),
                "{}: rows ordered, timestamps increasing",
                mp4.display()
            );
        }
    }
    let before = hash_tree(ds);
    let again = recover(ds);
    assert!(again.contains("nothing to recover"), "{again}");
    assert_eq!(hash_tree(ds), before, "a second recover changes nothing");
    episodes
}

fn status_of(ep: &Path) -> String {
    json(&ep.join("episode.json"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn kill_mid_episode_then_recover() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    let mut child = spawn_record(
        tmp.path(),
        &ds,
        &["left", "right"],
        &["--episodes", "1", "--episode-time", "60"],
    );
    let mp4 = ds.join("episodes/000000/left.mp4");
    // Several fragments (≤ 1 s each) are durable: well inside the episode.
    wait_for(&mut child, "3 s of video", Duration::from_secs(30), || {
        file_len(&mp4) > 0 && s6_edge::mux::scan(&mp4).is_ok_and(|s| s.fragments.len() >= 3)
    });
    // While record runs, recover refuses to touch the dataset.
    let busy = s6(&["recover", ds.to_str().unwrap()]);
    assert_eq!(busy.status.code(), Some(1));
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(err.contains("in use by another s6-edge process"), "{err}");
    kill9(child);
    assert!(!ds.join("episodes/000000/episode.json").exists());

    // record refuses with a hint while the episode is unfinished.
    let refused = s6(&[
        "record",
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
        "1",
        "--plugin-dir",
        svtav1_dir(&tmp.path().join("p2")).to_str().unwrap(),
        "-o",
        ds.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("s6-edge recover") && err.contains("--recover"),
        "{err}"
    );

    // A dry run says what it would do and changes nothing.
    let before = hash_tree(&ds);
    let dry = s6_ok("dry run", &["recover", "--dry-run", ds.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        text.contains("would be recovered") && text.contains("dry run"),
        "{text}"
    );
    assert_eq!(hash_tree(&ds), before, "--dry-run changes nothing");

    let text = recover(&ds);
    assert!(text.contains("episode 000000: recovered"), "{text}");
    assert!(text.contains("left:") && text.contains("right:"), "{text}");
    let eps = check_recovered(&ds, &["left", "right"]);
    assert_eq!(eps.len(), 1);
    assert_eq!(status_of(&eps[0]), "recovered");
    let meta = json(&eps[0].join("episode.json"));
    for cam in ["left", "right"] {
        let frames = meta["cameras"][cam]["frames"].as_u64().unwrap();
        // At least the 3 durable fragments of ≥ 0.5 s each seen before the kill.
        assert!(frames >= 21, "{cam}: {frames} frames kept");
        assert_eq!(
            meta["recovery"]["cameras"][cam]["frames_kept"].as_u64(),
            Some(frames)
        );
    }
}

#[test]
fn kill_between_episodes_and_at_an_episode_start() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    // Killed during --reset-time: episode 0 is complete, nothing is torn.
    let mut child = spawn_record(
        tmp.path(),
        &ds,
        &["cam0"],
        &[
            "--episodes",
            "3",
            "--episode-time",
            "1.5",
            "--reset-time",
            "30",
        ],
    );
    wait_for(
        &mut child,
        "episode 0 to finish",
        Duration::from_secs(30),
        || ds.join("episodes/000000/episode.json").exists(),
    );
    std::thread::sleep(Duration::from_millis(300));
    kill9(child);
    let text = recover(&ds);
    assert!(text.contains("nothing to recover"), "{text}");
    check_recovered(&ds, &["cam0"]);

    // Killed as soon as the next episode's directory appears: at most a few
    // frames exist; the episode is either recovered or, holding no frame,
    // removed. Either way the dataset verifies and recording can continue.
    let mut child = spawn_record(
        &tmp.path().join("again"),
        &ds,
        &["cam0"],
        &["--episodes", "1", "--episode-time", "5"],
    );
    wait_for(
        &mut child,
        "episode 1 to start",
        Duration::from_secs(30),
        || ds.join("episodes/000001").is_dir(),
    );
    kill9(child);
    let text = recover(&ds);
    assert!(
        text.contains("episode 000001: recovered")
            || text.contains("episode 000001: empty (no frame): removed"),
        "{text}"
    );
    let eps = check_recovered(&ds, &["cam0"]);
    assert_eq!(status_of(&eps[0]), "complete");
}

#[test]
fn record_with_recover_flag_recovers_then_records() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    let mut child = spawn_record(
        tmp.path(),
        &ds,
        &["cam0"],
        &["--episodes", "1", "--episode-time", "60"],
    );
    let mp4 = ds.join("episodes/000000/cam0.mp4");
    wait_for(&mut child, "2 fragments", Duration::from_secs(30), || {
        file_len(&mp4) > 0 && s6_edge::mux::scan(&mp4).is_ok_and(|s| s.fragments.len() >= 2)
    });
    kill9(child);
    let child = spawn_record(
        &tmp.path().join("again"),
        &ds,
        &["cam0"],
        &["--episodes", "1", "--episode-time", "1.5", "--recover"],
    );
    let out = child.wait_with_output().unwrap();
    dump("record --recover", &out);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("recover: episode 000000: recovered"), "{err}");
    let eps = check_recovered(&ds, &["cam0"]);
    assert_eq!(eps.len(), 2);
    assert_eq!(status_of(&eps[0]), "recovered");
    assert_eq!(status_of(&eps[1]), "complete");
}

/// Byte offsets where each index record ends.
fn index_record_ends(data: &[u8]) -> Vec<usize> {
    let header_len = u32::from_le_bytes(data[8..12].try_into().unwrap()) as usize;
    let mut pos = 12 + header_len;
    let mut ends = Vec::new();
    while pos + 4 <= data.len() {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 4 + len + 4;
        ends.push(pos);
    }
    assert_eq!(pos, data.len());
    ends
}

#[test]
fn hand_made_torn_files() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    record(
        tmp.path(),
        &ds,
        &["a", "b"],
        &["--episodes", "1", "--episode-time", "3"],
    );
    let ep = ds.join("episodes/000000");
    let complete = json(&ep.join("episode.json"));
    std::fs::remove_file(ep.join("episode.json")).unwrap();

    // Both cameras: cut the MP4 inside the payload of its last fragment, so
    // that some of that fragment's frames are complete and one is not.
    let mut kept = BTreeMap::new();
    for cam in ["a", "b"] {
        let mp4 = ep.join(format!("{cam}.mp4"));
        let scan = s6_edge::mux::scan(&mp4).unwrap();
        assert!(scan.fragments.len() >= 3, "{cam}: {:?}", scan.fragments);
        let last = scan.fragments.last().unwrap();
        assert!(last.samples >= 3, "{cam}: last fragment {last:?}");
        let third = &scan.samples[last.first_sample + 2];
        // Cut in the middle of the third sample of the last fragment.
        let cut = third.offset + u64::from(third.size) / 2;
        let f = std::fs::OpenOptions::new().write(true).open(&mp4).unwrap();
        f.set_len(cut).unwrap();
        kept.insert(cam, (last.first_sample + 2) as u64);
    }
    // Camera a: index lost its last rows for frames that are in the video
    // (they must be synthesized), and ends in garbage (a torn record).
    let a_idx = ep.join("a.idx");
    let data = std::fs::read(&a_idx).unwrap();
    let ends = index_record_ends(&data);
    let keep_rows = kept["a"] as usize - 3;
    let mut cut = data[..ends[keep_rows - 1]].to_vec();
    cut.extend_from_slice(&[0x17, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0x01]);
    std::fs::write(&a_idx, &cut).unwrap();
    // Camera b: index intact but for garbage; its rows past the cut have no
    // frame any more and must go.
    let b_idx = ep.join("b.idx");
    let b_rows = index_rows(&b_idx).len() as u64;
    let mut data = std::fs::read(&b_idx).unwrap();
    data.extend_from_slice(b"\x05\x00\x00\x00garbage");
    std::fs::write(&b_idx, &data).unwrap();

    let verify = s6(&["verify", ds.to_str().unwrap()]);
    assert_eq!(
        verify.status.code(),
        Some(1),
        "damaged dataset fails verify"
    );

    let text = recover(&ds);
    assert!(text.contains("episode 000000: recovered"), "{text}");
    assert!(
        text.contains("after rescuing its 2 complete frame(s)"),
        "{text}"
    );
    assert!(text.contains("3 video frame(s) had no index row"), "{text}");
    check_recovered(&ds, &["a", "b"]);

    let meta = json(&ep.join("episode.json"));
    assert_eq!(meta["status"], "recovered");
    let rec = &meta["recovery"]["cameras"];
    for cam in ["a", "b"] {
        assert_eq!(meta["cameras"][cam]["frames"].as_u64(), Some(kept[cam]));
        assert_eq!(rec[cam]["samples_salvaged"].as_u64(), Some(2));
        assert!(rec[cam]["mp4_trimmed_bytes"].as_u64().unwrap() > 0);
        assert!(rec[cam]["index_trimmed_bytes"].as_u64().unwrap() > 0);
    }
    assert_eq!(rec["a"]["rows_synthesized"].as_u64(), Some(3));
    let k = kept["a"];
    assert_eq!(
        rec["a"]["synthesized_frames"],
        serde_json::json!([[k - 3, k - 1]])
    );
    assert_eq!(rec["b"]["rows_synthesized"].as_u64(), Some(0));
    assert_eq!(
        rec["b"]["rows_without_sample"].as_u64(),
        Some(b_rows - kept["b"])
    );
    // The synthesized capture times continue the recorded rhythm (15 fps).
    let rows = index_rows(&a_idx);
    let tail: Vec<u64> = rows[rows.len() - 4..]
        .windows(2)
        .map(|w| w[1].capture_ts_ns - w[0].capture_ts_ns)
        .collect();
    for dt in tail {
        assert!(
            (60_000_000..=75_000_000).contains(&dt),
            "estimated interval {dt} ns"
        );
    }
    assert!(complete["cameras"]["a"]["frames"].as_u64().unwrap() > kept["a"]);

    // Again, now cut inside the last fragment's moof: nothing of it can be
    // read, the whole fragment goes and its index rows with it.
    std::fs::remove_file(ep.join("episode.json")).unwrap();
    let mp4 = ep.join("a.mp4");
    let scan = s6_edge::mux::scan(&mp4).unwrap();
    let last = *scan.fragments.last().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&mp4)
        .unwrap()
        .set_len(last.offset + 20)
        .unwrap();
    let text = recover(&ds);
    assert!(
        text.contains(&format!("a: {} frames kept", last.first_sample)),
        "{text}"
    );
    check_recovered(&ds, &["a", "b"]);
    let meta = json(&ep.join("episode.json"));
    let rec = &meta["recovery"]["cameras"]["a"];
    assert_eq!(rec["samples_salvaged"].as_u64(), Some(0));
    assert_eq!(rec["mp4_trimmed_bytes"].as_u64(), Some(20));
    assert_eq!(
        rec["rows_without_sample"].as_u64(),
        Some(kept["a"] - last.first_sample as u64)
    );

    // And with an index that is not an index at all: rebuilt from the video,
    // every row synthesized (and said so).
    std::fs::remove_file(ep.join("episode.json")).unwrap();
    std::fs::write(ep.join("a.idx"), b"this is not an index").unwrap();
    let text = recover(&ds);
    assert!(
        text.contains("index unreadable, rebuilt from the video"),
        "{text}"
    );
    check_recovered(&ds, &["a", "b"]);
    let meta = json(&ep.join("episode.json"));
    let frames = meta["cameras"]["a"]["frames"].as_u64().unwrap();
    assert_eq!(frames, last.first_sample as u64);
    assert_eq!(
        meta["recovery"]["cameras"]["a"]["rows_synthesized"].as_u64(),
        Some(frames)
    );
}

#[test]
fn empty_unfinished_episode_is_removed_and_other_files_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    record(
        tmp.path(),
        &ds,
        &["cam0"],
        &["--episodes", "1", "--episode-time", "1"],
    );
    // Episode 1: what a kill right after creating the files leaves: an index
    // with only its header, an MP4 with none.
    let ep1 = ds.join("episodes/000001");
    std::fs::create_dir(&ep1).unwrap();
    let hdr = s6_edge::dataset::index::IndexHeader {
        camera: "cam0".into(),
        width: W,
        height: H,
        fps_num: 15,
        fps_den: 1,
        codec: "av1".into(),
        created_unix_ns: 1,
    };
    s6_edge::dataset::index::IndexWriter::create(&ep1.join("cam0.idx"), &hdr)
        .unwrap()
        .finish()
        .unwrap();
    std::fs::write(ep1.join("cam0.mp4"), b"").unwrap();
    // Episode 2: empty too, but holds a file recover does not know.
    let ep2 = ds.join("episodes/000002");
    std::fs::create_dir(&ep2).unwrap();
    std::fs::write(ep2.join("notes.txt"), b"mine").unwrap();

    let out = s6(&["recover", ds.to_str().unwrap()]);
    dump("recover", &out);
    assert_eq!(out.status.code(), Some(1), "episode 2 cannot be recovered");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("episode 000001: empty (no frame): removed"),
        "{text}"
    );
    assert!(
        text.contains("episode 000002: NOT recovered") && text.contains("notes.txt"),
        "{text}"
    );
    assert!(!ep1.exists());
    assert_eq!(std::fs::read(ep2.join("notes.txt")).unwrap(), b"mine");
    std::fs::remove_dir_all(&ep2).unwrap();
    check_recovered(&ds, &["cam0"]);
}

/// Frame numbers of camera cam0's episode 0 that exist somewhere: the
/// first `in_video` are in the video, the rest as spill files.
fn durable_frames(ds: &Path, in_video: u64) -> BTreeSet<u64> {
    let mut exist: BTreeSet<u64> = (0..in_video).collect();
    for e in std::fs::read_dir(ds.join("episodes/000000/spill/cam0")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_suffix(".png").and_then(|n| n.parse().ok()) {
            exist.insert(n);
        }
    }
    exist
}

/// `recover --plugin-dir` (the SVT-AV1 plugin under `plugins`, to encode
/// pending spill frames) must succeed; returns its output.
fn recover_with_plugins(plugins: &Path, ds: &Path) -> Output {
    let plugins = svtav1_dir(plugins);
    s6_ok(
        "recover",
        &[
            "recover",
            "--plugin-dir",
            plugins.to_str().unwrap(),
            ds.to_str().unwrap(),
        ],
    )
}

/// Complete spill files of `cam` in episode 0.
fn spill_files(ds: &Path, cam: &str) -> usize {
    std::fs::read_dir(ds.join(format!("episodes/000000/spill/{cam}")))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".png"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn kill_while_spilling_then_recover_encodes_the_spill_files() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    // Every frame goes to a spill file; encoding would start after the episode.
    let mut child = spawn_record(
        tmp.path(),
        &ds,
        &["left", "right"],
        &[
            "--episodes",
            "1",
            "--episode-time",
            "60",
            "--streaming-encoding=false",
        ],
    );
    wait_for(
        &mut child,
        "20 spill files per camera",
        Duration::from_secs(30),
        || spill_files(&ds, "left") >= 20 && spill_files(&ds, "right") >= 20,
    );
    kill9(child);
    let pending: BTreeMap<&str, usize> = ["left", "right"]
        .into_iter()
        .map(|c| (c, spill_files(&ds, c)))
        .collect();

    let out = recover_with_plugins(&tmp.path().join("again"), &ds);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pending spill frame(s) encoded"), "{text}");
    assert!(
        !ds.join("episodes/000000/spill").exists(),
        "spill files gone"
    );
    let eps = check_recovered(&ds, &["left", "right"]);
    let meta = json(&eps[0].join("episode.json"));
    assert_eq!(meta["status"], "recovered");
    for cam in ["left", "right"] {
        let encoded = meta["recovery"]["cameras"][cam]["spill_frames_encoded"]
            .as_u64()
            .unwrap();
        // Every complete spill file became a frame (a write torn by the kill
        // leaves only a temporary file, which is not counted).
        assert_eq!(encoded as usize, pending[cam], "{cam}");
        assert_eq!(meta["cameras"][cam]["frames"].as_u64(), Some(encoded));
        assert_eq!(meta["cameras"][cam]["spilled"].as_u64(), Some(encoded));
    }
}

#[test]
fn kill_while_the_spill_backlog_drains_then_recover() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    // 10 s at 30 fps spilled, then encoded during the reset time: kill
    // while part of the backlog is in the MP4 and part still in spill files.
    let mut child = spawn_record(
        tmp.path(),
        &ds,
        &["cam0,fps=30"],
        &[
            "--episodes",
            "2",
            "--episode-time",
            "10",
            "--reset-time",
            "30",
            "--streaming-encoding=false",
        ],
    );
    let mp4 = ds.join("episodes/000000/cam0.mp4");
    wait_for(
        &mut child,
        "the backlog half encoded",
        Duration::from_secs(60),
        || {
            spill_files(&ds, "cam0") > 0
                && file_len(&mp4) > 0
                && s6_edge::mux::scan(&mp4).is_ok_and(|s| s.samples.len() >= 16)
        },
    );
    kill9(child);
    let in_video = s6_edge::mux::scan(&mp4).unwrap().samples.len();
    let left = spill_files(&ds, "cam0");
    assert!(left > 0, "spill files remain");
    // Frames that exist somewhere: in the video, or as a spill file (those
    // already encoded are deleted only after the episode's fragments are
    // durable, so the two sets may overlap).
    let exist = durable_frames(&ds, in_video as u64);

    recover_with_plugins(&tmp.path().join("again"), &ds);
    let eps = check_recovered(&ds, &["cam0"]);
    let meta = json(&eps[0].join("episode.json"));
    let frames = meta["cameras"]["cam0"]["frames"].as_u64().unwrap() as usize;
    assert_eq!(
        frames,
        exist.len(),
        "every frame that was durable (in the video or as a spill file) is in the video: \
         {in_video} were in the video, {left} spill files pending"
    );
    assert!(frames > 250, "{frames} of 300 frames");
}

#[test]
fn kill_while_an_overloaded_encoder_spills_then_recover() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    // Noisy 320x240@30 at the slowest low-delay preset (SVT-AV1 forces
    // low delay to preset >= 8) on one encoder thread, through a 2-frame
    // ring: the encoder falls behind even on an idle machine, so frames
    // spill while earlier ones stream.
    let mut child = spawn_record(
        tmp.path(),
        &ds,
        &["cam0,fps=30,width=320,height=240,noise=40"],
        &[
            "--episodes",
            "1",
            "--episode-time",
            "60",
            "--ring-frames",
            "2",
            "--preset",
            "8",
            "--encoder-threads",
            "1",
        ],
    );
    let mp4 = ds.join("episodes/000000/cam0.mp4");
    wait_for(
        &mut child,
        "streamed and spilled frames",
        Duration::from_secs(40),
        || {
            spill_files(&ds, "cam0") >= 10
                && file_len(&mp4) > 0
                && s6_edge::mux::scan(&mp4).is_ok_and(|s| s.samples.len() >= 16)
        },
    );
    kill9(child);
    let in_video = s6_edge::mux::scan(&mp4).unwrap().samples.len() as u64;
    let exist = durable_frames(&ds, in_video);

    let out = recover_with_plugins(&tmp.path().join("again"), &ds);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pending spill frame(s) encoded"), "{text}");
    s6_ok("verify", &["verify", ds.to_str().unwrap()]);
    // Frames that were still in the ring when the process died were never
    // durable: they are gap rows (`dropped`), and the video skips their
    // numbers. Every durable frame is in the video, in order: the stamps,
    // relative to the first, are exactly the durable frame numbers.
    let stamps: Vec<u64> = decoded_stamps_passthrough(&mp4, 320, 240)
        .into_iter()
        .map(|s| s.expect("readable stamp"))
        .collect();
    let first = stamps[0];
    let numbers: Vec<u64> = stamps.iter().map(|s| s - first).collect();
    assert_eq!(
        numbers,
        exist.iter().copied().collect::<Vec<_>>(),
        "every durable frame (video or spill file) is in the video, in order"
    );
    let meta = json(&ds.join("episodes/000000/episode.json"));
    let frames = meta["cameras"]["cam0"]["frames"].as_u64().unwrap();
    assert_eq!(frames as usize, stamps.len());
    let rows = index_rows(&ds.join("episodes/000000/cam0.idx"));
    let lost = numbers.last().unwrap() + 1 - frames;
    assert_eq!(
        rows.iter().filter(|r| r.dropped).count() as u64,
        lost,
        "each frame lost in the ring is a dropped row"
    );
    assert!(meta["cameras"]["cam0"]["spilled"].as_u64().unwrap() >= 10);
    let before = hash_tree(&ds);
    assert!(recover(&ds).contains("nothing to recover"));
    assert_eq!(hash_tree(&ds), before, "a second recover changes nothing");
}
