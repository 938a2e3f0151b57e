//! SVT-AV1 on its own, without the recorder: synthetic frames (with their
//! frame-number stamps) go straight from one thread into a plugin session,
//! the packets are decoded with dav1d, and every decoded frame must carry
//! its own stamp. No capture thread, no ring, no buffer recycling: a wrong
//! frame here is the encoder's, not the recorder's.
//!
//! Why this file exists: recordings made under qemu-user showed, in 2 of
//! ~60 episodes, one frame whose stamp band was stale (stamp 97 where 101
//! belonged; an unreadable stamp in both cameras at frame 20 of another
//! episode). The same frames encoded here, natively on x86-64, give exactly
//! the same wrong frames: SVT-AV1 1.4.1 at presets 10-12 (the plugin
//! default is 12) sometimes codes part of a 64x64 superblock row as a copy
//! of the reference frame 4 frames back, dropping the change (here: stamp
//! blocks flipping black/white). It depends only on the content and the
//! frame's place in the GOP, so whether a test meets it depends on which
//! stamp an episode happens to start at (qemu's slower start shifts that).
//! Measured over 260 episode starts (30 frames, 160x120, GOP 30, CRF 30,
//! low delay): preset 12: 9 bad, 11: 13, 10: 2, 9: 0, 8: 0; preset 12 with
//! random access: 24; preset 12 at CRF 20: 131; preset 8 at CRF 20: 0 of 100.
//! Tests that check stamps of SVT-AV1 recordings therefore use preset 8.

mod common;

use common::*;
use s6_edge::capture::stamp::read_stamp;
use s6_edge::capture::synthetic::draw_i420;
use s6_edge::plugin_host::session::{Backend, EncoderSettings};

const W: u32 = 160;
const H: u32 = 120;

/// Encodes frames `first..first + n` in one fresh session (as one episode
/// is), decodes them and returns the stamps read from the decoded pictures
/// in presentation order.
fn round_trip(backend: &Backend, preset: Option<i32>, first: u64, n: u64) -> Vec<Option<u64>> {
    let env = |k: &str| std::env::var(k).ok();
    let settings = EncoderSettings {
        gop: 30,
        preset: env("S6_SVT_PRESET").and_then(|s| s.parse().ok()).or(preset),
        crf: env("S6_SVT_CRF").and_then(|s| s.parse().ok()),
        options: env("S6_SVT_OPTIONS").unwrap_or_default(),
        ..EncoderSettings::default()
    };
    let mut session = backend.open(W, H, 15, 1, &settings).expect("open svtav1");
    let mut packets = Vec::new();
    let mut frame = vec![0u8; (W * H * 3 / 2) as usize];
    for k in 0..n {
        draw_i420(&mut frame, W, H, first + k, 0);
        session
            .encode(&frame, k as i64, k == 0, &mut packets)
            .expect("encode");
        // What the recorder does next: the buffer is reused at once.
        frame.fill(0);
    }
    session.flush(&mut packets).expect("flush");
    let config = session.codec_config().expect("config").unwrap_or_default();
    assert_eq!(packets.len() as u64, n, "one packet per frame");

    let track = s6_edge::mux::reader::TrackInfo {
        codec: s6_edge::frame::CodecId::Av1,
        width: W,
        height: H,
        timescale: 15,
        frame_duration: 1,
        track_id: 1,
        config_record: config,
    };
    let mut decoder = s6_edge::decode::pictures::open(&track).expect("dav1d");
    let mut stamps = Vec::new();
    for p in &packets {
        decoder
            .push(p.data.clone(), p.pts, p.keyframe)
            .expect("push");
        while let Some(pic) = decoder.pull().expect("pull") {
            stamps.push(read_stamp(&pic.data[..(W * H) as usize], W, H, W as usize));
        }
    }
    decoder.finish().expect("finish");
    while let Some(pic) = decoder.pull().expect("pull") {
        stamps.push(read_stamp(&pic.data[..(W * H) as usize], W, H, W as usize));
    }
    stamps
}

/// Exploration aid (ignored): `S6_SVT_STARTS=A-B` encodes an episode from
/// every start stamp in A..B and prints the starts whose decode is wrong
/// (`S6_SVT_PRESET`, `S6_SVT_CRF`, `S6_SVT_OPTIONS` change the settings;
/// default: the plugin's, preset 12), e.g.
/// `S6_SVT_STARTS=0-260 cargo test --test svtav1_stamps scan -- --ignored --nocapture`.
#[test]
#[ignore]
fn scan_episode_starts() {
    let (_tmp, backend) = svtav1();
    let spec = std::env::var("S6_SVT_STARTS").unwrap_or_else(|_| "0-60".into());
    let (a, b) = spec.split_once('-').expect("A-B");
    let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
    let mut bad = 0;
    for first in a..b {
        let stamps = round_trip(&backend, None, first, 30);
        let wrong: Vec<(usize, Option<u64>)> = stamps
            .iter()
            .enumerate()
            .filter(|(k, s)| **s != Some(first + *k as u64))
            .map(|(k, s)| (k, *s))
            .collect();
        if !wrong.is_empty() {
            bad += 1;
            println!("start {first}: wrong (position, stamp) {wrong:?}");
        }
    }
    println!("{bad} of {} episode starts decode wrong", b - a);
}

/// Episode starts whose 30 frames SVT-AV1 1.4.1 at its default preset 12
/// decodes with one stale stamp band (the qemu failures were 89, 166, 167).
const BAD_AT_PRESET_12: [u64; 5] = [89, 166, 167, 17, 174];

fn svtav1() -> (tempfile::TempDir, Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = svtav1_dir(tmp.path());
    let backend = Backend::load(&dir.join("libs6_codec_svtav1.so")).expect("load svtav1");
    (tmp, backend)
}

/// Preset 8, what stamp-checking recordings use: every frame of the
/// episodes that go wrong at preset 12 decodes with its own stamp.
#[test]
fn preset_8_keeps_every_stamp_where_preset_12_does_not() {
    let (_tmp, backend) = svtav1();
    for first in BAD_AT_PRESET_12 {
        let stamps = round_trip(&backend, Some(8), first, 30);
        let want: Vec<Option<u64>> = (first..first + 30).map(Some).collect();
        assert_eq!(stamps, want, "preset 8, episode from stamp {first}");
    }
}

/// The defect itself, reproducible without qemu (ignored: it asserts the
/// encoder's misbehaviour, and a fixed SVT-AV1 should not fail the suite).
/// If it fails, the system SVT-AV1 no longer drops these changes: revisit
/// the preset-8 rule of the stamp tests and the default preset.
#[test]
#[ignore]
fn preset_12_codes_a_stale_stamp_band() {
    let (_tmp, backend) = svtav1();
    let stamps = round_trip(&backend, Some(12), 89, 30);
    assert_eq!(stamps[12], Some(97), "frame 101 decodes with stamp 97");
    assert_eq!(stamps[11], Some(100));
    assert_eq!(stamps[13], Some(102));
    for first in [166, 167] {
        let stamps = round_trip(&backend, Some(12), first, 30);
        assert_eq!(
            stamps[20], None,
            "from {first}: frame 20's stamp band is torn"
        );
    }
}
