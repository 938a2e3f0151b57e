//! `s6-edge verify` on datasets built through the real APIs with real AV1
//! (SVT-AV1 via ffmpeg), decoded for real; broken variants must fail with a
//! clear message and exit code 1, never a crash.

mod common;

use s6_edge::dataset::index::{IndexHeader, IndexRecord, IndexWriter};
use s6_edge::dataset::verify::{verify_dataset, VerifyOptions};
use s6_edge::dataset::{
    write_episode_meta_atomic, CameraMeta, Dataset, DatasetMeta, EncoderMeta, EpisodeCameraMeta,
    EpisodeMeta, EpisodeStatus,
};
use s6_edge::frame::{CodecId, EncodedPacket};
use s6_edge::mux::{av1, Fmp4Writer, TrackConfig};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

const FPS: u32 = 15;
const FRAMES: usize = 30;
const T0: u64 = 1_700_000_000_000_000_000;
const INTERVAL: u64 = 1_000_000_000 / FPS as u64;

/// 30 real AV1 packets and the sequence header, encoded once.
fn av1_stream() -> &'static (Vec<EncodedPacket>, Vec<u8>) {
    static STREAM: OnceLock<(Vec<EncodedPacket>, Vec<u8>)> = OnceLock::new();
    STREAM.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("in.obu");
        let data = common::ffmpeg_testsrc2(
            &["-c:v", "libsvtav1", "-g", "2", "-preset", "12", "-f", "obu"],
            FRAMES as u32,
            &out,
        );
        let units = av1::split_temporal_units(&data).unwrap();
        let packets = units
            .iter()
            .enumerate()
            .map(|(i, tu)| EncodedPacket {
                data: tu.to_vec(),
                pts: i as i64,
                dts: i as i64,
                keyframe: av1::temporal_unit_is_keyframe(tu).unwrap(),
            })
            .collect();
        (packets, av1::find_sequence_header(units[0]).unwrap())
    })
}

fn dataset_meta() -> DatasetMeta {
    DatasetMeta {
        format_version: 1,
        s6_edge_version: env!("CARGO_PKG_VERSION").into(),
        created: "2024-01-01T00:00:00Z".into(),
        cameras: vec![CameraMeta {
            name: "cam0".into(),
            source: "synthetic".into(),
            width: 320,
            height: 240,
            fps_num: FPS,
            fps_den: 1,
            pixel_format: "i420".into(),
        }],
        codec: "av1".into(),
        backend: "svtav1".into(),
        encoder: EncoderMeta {
            gop: 2,
            crf: Some(30),
            preset: Some(12),
            threads: 0,
        },
    }
}

/// Writes one episode the way the recorder does: MP4 + index, then
/// episode.json last (unless `finish` is false). `timestamps` overrides the
/// capture times; `extra_rows` appends index rows with no video.
fn write_episode(ds: &Dataset, timestamps: Option<Vec<u64>>, extra_rows: usize, finish: bool) {
    let (packets, seq) = av1_stream();
    let ep = ds.new_episode().unwrap();
    let ts = timestamps.unwrap_or_else(|| (0..FRAMES as u64).map(|i| T0 + i * INTERVAL).collect());
    let mut mp4 = Fmp4Writer::create(
        &ep.mp4_path("cam0"),
        TrackConfig {
            codec: CodecId::Av1,
            width: 320,
            height: 240,
            fps_num: FPS,
            fps_den: 1,
            config_record: seq.clone(),
        },
    )
    .unwrap();
    let mut idx = IndexWriter::create(
        &ep.index_path("cam0"),
        &IndexHeader {
            camera: "cam0".into(),
            width: 320,
            height: 240,
            fps_num: FPS,
            fps_den: 1,
            codec: "av1".into(),
            created_unix_ns: T0,
        },
    )
    .unwrap();
    for (i, p) in packets.iter().enumerate() {
        mp4.write_packet(p).unwrap();
        idx.append(&IndexRecord {
            frame_index: i as u64,
            capture_ts_ns: ts[i],
            pts: p.pts,
            size: p.data.len() as u32,
            keyframe: p.keyframe,
            spilled: false,
            dropped: false,
        })
        .unwrap();
    }
    for k in 0..extra_rows {
        let i = FRAMES + k;
        idx.append(&IndexRecord {
            frame_index: i as u64,
            capture_ts_ns: T0 + i as u64 * INTERVAL,
            pts: i as i64,
            ..Default::default()
        })
        .unwrap();
    }
    let summary = mp4.finish().unwrap();
    idx.finish().unwrap();
    if finish {
        let mut cameras = BTreeMap::new();
        cameras.insert(
            "cam0".to_string(),
            EpisodeCameraMeta {
                frames: summary.samples,
                spilled: 0,
                dropped: 0,
                first_capture_ns: ts[0],
                last_capture_ns: ts[FRAMES - 1],
            },
        );
        write_episode_meta_atomic(
            &ep.dir,
            &EpisodeMeta {
                index: ep.index,
                status: EpisodeStatus::Complete,
                task: Some("test".into()),
                started_unix_ns: ts[0],
                ended_unix_ns: ts[FRAMES - 1],
                cameras,
                recovery: None,
            },
        )
        .unwrap();
    }
}

fn new_dataset(dir: &Path) -> Dataset {
    Dataset::create_or_open(dir, &dataset_meta()).unwrap()
}

/// Runs the real binary; returns (exit code, stdout + stderr).
fn verify_cli(dir: &Path, extra: &[&str]) -> (i32, String) {
    let out = common::s6_command()
        .arg("verify")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

const DECODE: VerifyOptions = VerifyOptions {
    decode: true,
    progress: false,
};

#[test]
fn good_dataset_passes_with_every_frame_decoded() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = new_dataset(tmp.path());
    write_episode(&ds, None, 0, true);
    write_episode(&ds, None, 0, true);
    let report = verify_dataset(tmp.path(), DECODE).unwrap();
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.episodes.len(), 2);
    let cam = &report.episodes[0].cameras[0];
    assert_eq!(cam.index_rows, Some(FRAMES));
    assert_eq!(cam.mp4_samples, Some(FRAMES));
    if cfg!(feature = "dav1d") {
        assert_eq!(cam.decoded_frames, Some(FRAMES as u64));
        assert_eq!(cam.decoder.as_deref(), Some("dav1d"));
    }
    let timing = cam.timing.as_ref().unwrap();
    assert_eq!(timing.gap_count, 0);
    assert!(timing.jitter_std_ms < 0.01);

    let (code, text) = verify_cli(tmp.path(), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("episode 000001 [complete] OK"), "{text}");
    let (code, json) = verify_cli(tmp.path(), &["--json", "--no-decode"]);
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["episodes"][1]["cameras"][0]["mp4_samples"], FRAMES);
    assert!(v["episodes"][1]["cameras"][0]["decoded_frames"].is_null());
}

#[test]
fn index_and_video_count_mismatch_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = new_dataset(tmp.path());
    write_episode(&ds, None, 2, true);
    let (code, text) = verify_cli(tmp.path(), &["--no-decode"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("index has 32 frames, the MP4 holds 30 samples"),
        "{text}"
    );
}

#[test]
fn non_monotonic_timestamps_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = new_dataset(tmp.path());
    let mut ts: Vec<u64> = (0..FRAMES as u64).map(|i| T0 + i * INTERVAL).collect();
    ts.swap(10, 11);
    write_episode(&ds, Some(ts), 0, true);
    let (code, text) = verify_cli(tmp.path(), &["--no-decode"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not strictly increasing"), "{text}");
    assert!(text.contains("frame 11"), "{text}");
}

#[test]
fn gaps_and_rate_mismatch_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = new_dataset(tmp.path());
    // A 0.5 s stall after frame 19: a gap, and 30 rows no longer fit 15 fps.
    let ts: Vec<u64> = (0..FRAMES as u64)
        .map(|i| T0 + i * INTERVAL + if i >= 20 { 500_000_000 } else { 0 })
        .collect();
    write_episode(&ds, Some(ts), 0, true);
    let report = verify_dataset(
        tmp.path(),
        VerifyOptions {
            decode: false,
            progress: false,
        },
    )
    .unwrap();
    assert!(!report.ok);
    let cam = &report.episodes[0].cameras[0];
    let timing = cam.timing.as_ref().unwrap();
    assert_eq!(timing.gap_count, 1);
    assert_eq!(timing.gaps[0].frame_index, 20);
    assert!(timing.max_interval_ms > 550.0);
    assert!(
        cam.warnings.iter().any(|w| w.contains("1 gaps")),
        "{cam:#?}"
    );
    assert!(
        cam.defects.iter().any(|d| d.contains("expected")),
        "{cam:#?}"
    );
}

#[test]
fn unfinished_episode_fails_and_names_recover() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = new_dataset(tmp.path());
    write_episode(&ds, None, 0, true);
    write_episode(&ds, None, 0, false);
    let (code, text) = verify_cli(tmp.path(), &["--no-decode"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("unfinished (run `s6-edge recover`)"),
        "{text}"
    );
    assert!(text.contains("episode 000000 [complete] OK"), "{text}");
}

#[test]
fn damaged_files_give_messages_not_crashes() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = new_dataset(tmp.path());
    write_episode(&ds, None, 0, true);
    write_episode(&ds, None, 0, true);
    // Episode 0: MP4 torn mid-fragment. Episode 1: garbage index and MP4.
    let mp4 = ds.episode(0).mp4_path("cam0");
    let len = std::fs::metadata(&mp4).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&mp4).unwrap();
    f.set_len(len - 100).unwrap();
    std::fs::write(ds.episode(1).mp4_path("cam0"), b"garbage").unwrap();
    std::fs::write(ds.episode(1).index_path("cam0"), b"garbage").unwrap();

    let (code, text) = verify_cli(tmp.path(), &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("damaged bytes") && text.contains("recover"),
        "{text}"
    );
    assert!(text.contains("not an s6-edge index"), "{text}");
    assert!(text.contains("no complete MP4 header"), "{text}");
    assert!(!text.contains("panicked"), "{text}");

    let (code, text) = verify_cli(&tmp.path().join("nope"), &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not an s6-edge dataset"), "{text}");
}
