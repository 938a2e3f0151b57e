//! The fragmented MP4 muxer against real peers: real AV1 (SVT-AV1 through
//! ffmpeg) and H.264 (libx264 through ffmpeg) packets are muxed, then
//! `ffprobe`/`ffmpeg` must count and decode every frame, also after the file
//! is cut in the middle of a fragment, and the reader must agree.

mod common;

use common::{ffmpeg_testsrc2, ffprobe_frames};
use s6_edge::frame::{CodecId, EncodedPacket};
use s6_edge::mux::{av1, h264, reader, Fmp4Writer, FragmentPolicy, TrackConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const FPS: u32 = 15;

/// Real AV1 packets (one per temporal unit) and the sequence header.
fn av1_packets(dir: &Path, frames: u32) -> (Vec<EncodedPacket>, Vec<u8>) {
    let stream = ffmpeg_testsrc2(
        &["-c:v", "libsvtav1", "-g", "2", "-preset", "12", "-f", "obu"],
        frames,
        &dir.join("in.obu"),
    );
    let units = av1::split_temporal_units(&stream).unwrap();
    let packets: Vec<EncodedPacket> = units
        .iter()
        .enumerate()
        .map(|(i, tu)| EncodedPacket {
            data: tu.to_vec(),
            pts: i as i64,
            dts: i as i64,
            keyframe: av1::temporal_unit_is_keyframe(tu).unwrap(),
        })
        .collect();
    let seq = av1::find_sequence_header(units[0]).unwrap();
    (packets, seq)
}

/// Real H.264 packets (one per access unit, split at AUDs) and SPS + PPS.
fn h264_packets(dir: &Path, frames: u32) -> (Vec<EncodedPacket>, Vec<u8>) {
    let stream = ffmpeg_testsrc2(
        &[
            "-c:v",
            "libx264",
            "-g",
            "4",
            "-bf",
            "0",
            "-x264-params",
            "aud=1",
            "-f",
            "h264",
        ],
        frames,
        &dir.join("in.h264"),
    );
    let nals = h264::split_annex_b(&stream);
    let mut units: Vec<Vec<&[u8]>> = Vec::new();
    for nal in nals {
        if h264::nal_type(nal) == h264::NAL_AUD || units.is_empty() {
            units.push(Vec::new());
        }
        units.last_mut().unwrap().push(nal);
    }
    let mut config = Vec::new();
    for nal in units[0]
        .iter()
        .filter(|n| matches!(h264::nal_type(n), 7 | 8))
    {
        config.extend_from_slice(&[0, 0, 0, 1]);
        config.extend_from_slice(nal);
    }
    let packets = units
        .iter()
        .enumerate()
        .map(|(i, unit)| {
            let mut data = Vec::new();
            for nal in unit {
                data.extend_from_slice(&[0, 0, 0, 1]);
                data.extend_from_slice(nal);
            }
            EncodedPacket {
                data,
                pts: i as i64,
                dts: i as i64,
                keyframe: unit.iter().any(|n| h264::nal_type(n) == 5),
            }
        })
        .collect();
    (packets, config)
}

fn mux(
    path: &Path,
    codec: CodecId,
    packets: &[EncodedPacket],
    config: Vec<u8>,
    policy: FragmentPolicy,
) -> s6_edge::mux::MuxSummary {
    let track = TrackConfig {
        codec,
        width: 320,
        height: 240,
        fps_num: FPS,
        fps_den: 1,
        config_record: config,
    };
    let mut w = Fmp4Writer::create_with_policy(path, track, policy).unwrap();
    assert!(std::fs::metadata(path).unwrap().len() > 0, "header first");
    for p in packets {
        w.write_packet(p).unwrap();
    }
    w.finish().unwrap()
}

/// Decodes with ffmpeg; returns (success, stderr).
fn ffmpeg_decode(path: &Path) -> (bool, String) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn small_fragments() -> FragmentPolicy {
    FragmentPolicy {
        min_fragment: Duration::from_millis(250),
        max_fragment: Duration::from_millis(500),
    }
}

/// Full check of one muxed file plus truncation at several points.
fn check_file(
    path: &Path,
    codec: CodecId,
    packets: &[EncodedPacket],
    expect_sample: fn(&[u8]) -> Vec<u8>,
) {
    let n = packets.len() as u64;
    assert_eq!(ffprobe_frames(path), n);
    let (ok, err) = ffmpeg_decode(path);
    assert!(ok && err.trim().is_empty(), "ffmpeg decode errors: {err}");

    let scan = reader::scan(path).unwrap();
    assert_eq!(scan.track.codec, codec);
    assert_eq!((scan.track.width, scan.track.height), (320, 240));
    assert_eq!(scan.torn, None);
    assert_eq!(scan.valid_len, scan.file_len);
    assert_eq!(scan.samples.len(), packets.len());
    assert!(
        scan.fragments.len() >= 3,
        "{} fragments",
        scan.fragments.len()
    );
    let mut file = std::fs::File::open(path).unwrap();
    for (i, (s, p)) in scan.samples.iter().zip(packets).enumerate() {
        assert_eq!(scan.pts_frames(s), p.pts, "pts of sample {i}");
        assert_eq!(s.keyframe, p.keyframe, "keyframe flag of sample {i}");
        assert_eq!(
            reader::read_sample(&mut file, s).unwrap(),
            expect_sample(&p.data),
            "bytes of sample {i}"
        );
    }
    // Fragments begin with keyframes when the GOP allows it.
    for f in &scan.fragments {
        assert!(
            scan.samples[f.first_sample].keyframe,
            "fragment at {} starts with a keyframe",
            f.offset
        );
    }

    // Cut inside the moof and inside the mdat of fragments 1 and the last one.
    let full = std::fs::read(path).unwrap();
    let last = scan.fragments.len() - 1;
    for &k in &[1, last] {
        let frag = scan.fragments[k];
        for cut in [
            frag.offset + 3,
            frag.offset + 20,
            frag.offset + frag.len - 5,
        ] {
            let cut_path = path.with_extension(format!("cut{cut}.mp4"));
            std::fs::write(&cut_path, &full[..cut as usize]).unwrap();
            let cut_scan = reader::scan(&cut_path).unwrap();
            assert_eq!(
                cut_scan.valid_len, frag.offset,
                "valid length after cut at {cut}"
            );
            assert_eq!(cut_scan.samples.len(), frag.first_sample);
            assert!(cut_scan.torn.is_some());
            assert_eq!(cut_scan.samples[..], scan.samples[..frag.first_sample]);
            // ffmpeg reads every complete fragment's frames from the torn file.
            let probed = ffprobe_frames(&cut_path);
            assert!(
                probed >= frag.first_sample as u64 && probed <= n,
                "ffprobe counted {probed} frames after cut at {cut} (complete: {})",
                frag.first_sample
            );
            // Trimmed to the valid length (what recover does), it decodes cleanly.
            std::fs::write(&cut_path, &full[..cut_scan.valid_len as usize]).unwrap();
            assert_eq!(ffprobe_frames(&cut_path), frag.first_sample as u64);
            let (ok, err) = ffmpeg_decode(&cut_path);
            assert!(ok && err.trim().is_empty(), "decode after trim: {err}");
        }
    }
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    (dir, p)
}

#[test]
fn av1_fragments_play_and_survive_truncation() {
    let (_guard, dir) = tmp();
    let (packets, seq) = av1_packets(&dir, 30);
    assert_eq!(packets.len(), 30);
    assert!(packets[0].keyframe);
    assert!(
        packets.iter().filter(|p| p.keyframe).count() >= 10,
        "GOP 2 has many keyframes"
    );
    let path = dir.join("cam0.mp4");
    let summary = mux(&path, CodecId::Av1, &packets, seq, small_fragments());
    assert_eq!(summary.samples, 30);
    assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
    check_file(&path, CodecId::Av1, &packets, |d| {
        av1::packet_to_sample(d).unwrap()
    });
}

#[test]
fn h264_fragments_play_and_survive_truncation() {
    let (_guard, dir) = tmp();
    let (packets, config) = h264_packets(&dir, 30);
    assert_eq!(packets.len(), 30);
    assert!(packets[0].keyframe);
    let path = dir.join("cam0.mp4");
    let summary = mux(&path, CodecId::H264, &packets, config, small_fragments());
    assert_eq!(summary.samples, 30);
    check_file(&path, CodecId::H264, &packets, |d| {
        h264::packet_to_sample(d).unwrap()
    });
    // verify's decoder (GStreamer qtdemux + decodebin) gets every frame.
    let scan = reader::scan(&path).unwrap();
    match s6_edge::decode::decode_file(&path, &scan) {
        s6_edge::decode::DecodeOutcome::Decoded { frames, errors, .. } => {
            assert_eq!(frames, 30, "{errors:?}");
            assert!(errors.is_empty(), "{errors:?}");
        }
        s6_edge::decode::DecodeOutcome::Unavailable(why) => {
            if cfg!(feature = "gst") {
                panic!("GStreamer build cannot decode H.264: {why}");
            }
        }
    }
}

#[test]
fn default_policy_cuts_at_most_every_second_and_counts_durable_samples() {
    let (_guard, dir) = tmp();
    let (packets, seq) = av1_packets(&dir, 45);
    let path = dir.join("cam0.mp4");
    let track = TrackConfig {
        codec: CodecId::Av1,
        width: 320,
        height: 240,
        fps_num: FPS,
        fps_den: 1,
        config_record: seq,
    };
    let mut w = Fmp4Writer::create(&path, track).unwrap();
    let mut durable = Vec::new();
    for p in &packets {
        w.write_packet(p).unwrap();
        durable.push(w.samples_durable());
        // Nothing is held back for more than a second of video.
        assert!(w.samples_pending() as u32 <= FPS);
    }
    assert!(durable.windows(2).all(|d| d[0] <= d[1]));
    assert!(
        durable[14] > 0,
        "a fragment is durable within the first second"
    );
    // Simulate a kill: the writer vanishes without finish() or Drop, and
    // the file still plays every sample that was durable.
    let before = w.samples_durable();
    std::mem::forget(w);
    let scan = reader::scan(&path).unwrap();
    assert_eq!(scan.samples.len() as u64, before);
    assert_eq!(ffprobe_frames(&path), before);
    for f in &scan.fragments {
        assert!(
            f.samples as u32 <= FPS,
            "fragment of {} samples exceeds 1 s",
            f.samples
        );
    }
}

#[test]
fn composition_offsets_and_timestamp_gaps_round_trip() {
    let (_guard, dir) = tmp();
    let (packets, seq) = av1_packets(&dir, 12);
    // Frame 5 missing (a gap) and pts one frame after dts (a reorder delay).
    let shifted: Vec<EncodedPacket> = packets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 5)
        .map(|(i, p)| EncodedPacket {
            dts: i as i64,
            pts: i as i64 + 1,
            ..p.clone()
        })
        .collect();
    let path = dir.join("cam0.mp4");
    mux(&path, CodecId::Av1, &shifted, seq, small_fragments());
    let scan = reader::scan(&path).unwrap();
    let pts: Vec<i64> = scan.samples.iter().map(|s| scan.pts_frames(s)).collect();
    let want: Vec<i64> = shifted.iter().map(|p| p.pts).collect();
    assert_eq!(pts, want);
    let fd = i64::from(scan.track.frame_duration);
    assert_eq!(
        scan.samples[4].duration as i64,
        2 * fd,
        "the gap widens the previous sample"
    );
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let (_guard, dir) = tmp();
    let track = TrackConfig {
        codec: CodecId::Av1,
        width: 320,
        height: 240,
        fps_num: FPS,
        fps_den: 1,
        config_record: vec![0x12, 0x00],
    };
    let err = Fmp4Writer::create(&dir.join("x.mp4"), track).err().unwrap();
    assert!(format!("{err:#}").contains("sequence header"), "{err:#}");

    std::fs::write(dir.join("junk.mp4"), b"this is not an mp4 file at all").unwrap();
    assert!(reader::scan(&dir.join("junk.mp4")).is_err());
    std::fs::write(dir.join("empty.mp4"), b"").unwrap();
    let err = reader::scan(&dir.join("empty.mp4")).unwrap_err();
    assert!(
        format!("{err:#}").contains("no complete MP4 header"),
        "{err:#}"
    );

    // Non-increasing dts is refused.
    let (packets, seq) = av1_packets(&dir, 3);
    let track = TrackConfig {
        codec: CodecId::Av1,
        width: 320,
        height: 240,
        fps_num: FPS,
        fps_den: 1,
        config_record: seq,
    };
    let mut w = Fmp4Writer::create(&dir.join("y.mp4"), track).unwrap();
    w.write_packet(&packets[0]).unwrap();
    assert!(w.write_packet(&packets[0]).is_err());
}
