//! End-to-end tests of the svtav1 plugin through its exported `PluginTable`,
//! with real SVT-AV1 and real ffprobe/ffmpeg decoding the result.

mod common;

use common::*;
use s6_codec_abi::{PixelFormat, STATUS_ERROR, STATUS_OK, STATUS_UNAVAILABLE};

const N: u32 = 30;

/// Encodes N moving-pattern frames; returns the packets and, per encode
/// call, how many packets that call delivered.
fn encode_sequence(w: u32, h: u32, gop: u32) -> (Vec<Pkt>, Vec<usize>) {
    let cfg = config(w, h, gop, 0, None);
    let mut enc = Enc::open(&cfg).expect("open");
    let mut packets = Vec::new();
    let mut per_call = Vec::new();
    for i in 0..N {
        let pic = Picture::pattern(w, h, i);
        let before = packets.len();
        enc.encode(&pic.frame(i64::from(i)), &mut packets)
            .expect("encode");
        per_call.push(packets.len() - before);
    }
    enc.flush(&mut packets).expect("flush");
    // A second flush is a no-op.
    enc.flush(&mut packets).expect("second flush");
    (packets, per_call)
}

fn check_stream(w: u32, h: u32, gop: u32) {
    let (packets, per_call) = encode_sequence(w, h, gop);
    eprintln!("{w}x{h} gop {gop}: packets per encode call {per_call:?}");
    assert_eq!(packets.len(), N as usize, "one packet per frame");
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.pts, i as i64, "packets in presentation order");
        assert_eq!(p.dts, p.pts, "low delay: decode order = presentation order");
        assert!(!p.data.is_empty());
        assert_ne!(first_obu_type(&p.data), 2, "temporal delimiter stripped");
        assert_eq!(
            p.keyframe,
            (i as u32).is_multiple_of(gop),
            "packet {i}: keyframe every {gop} frames"
        );
    }
    assert!(packets[0].keyframe, "first packet is a keyframe");
    let dir = tempfile::tempdir().unwrap();
    let ivf = dir.path().join(format!("{w}x{h}.ivf"));
    write_ivf(&ivf, w, h, &packets);
    assert_eq!(ffprobe_frames(&ivf), u64::from(N), "ffprobe -count_frames");
    assert_eq!(ffmpeg_decode_frames(&ivf), u64::from(N), "ffmpeg decode");
}

#[test]
fn encodes_320x240_gop2_decodable() {
    check_stream(320, 240, 2);
}

#[test]
fn encodes_640x480_gop2_decodable() {
    check_stream(640, 480, 2);
}

#[test]
fn encodes_640x480_gop5_keyframe_cadence() {
    check_stream(640, 480, 5);
}

#[test]
fn force_keyframe_is_honoured_with_random_access() {
    let cfg = config(320, 240, 10, 0, Some("pred-struct=random-access"));
    let mut enc = Enc::open(&cfg).unwrap();
    let mut packets = Vec::new();
    for i in 0..8 {
        let pic = Picture::pattern(320, 240, i);
        let mut frame = pic.frame(i64::from(i));
        frame.force_keyframe = u8::from(i == 3);
        enc.encode(&frame, &mut packets).unwrap();
    }
    enc.flush(&mut packets).unwrap();
    let keys: Vec<i64> = packets
        .iter()
        .filter(|p| p.keyframe)
        .map(|p| p.pts)
        .collect();
    assert_eq!(keys, vec![0, 3]);
}

#[test]
fn probe_succeeds_at_640x480() {
    let cfg = config(640, 480, 2, 0, None);
    let mut err = Err::new();
    let status = unsafe { (table().probe)(&cfg.raw, &mut err.buf) };
    assert_eq!(status, STATUS_OK, "probe failed: {}", err.message());
}

#[test]
fn probe_of_absurd_sizes_is_unavailable_with_reason() {
    for (w, h) in [(1, 1), (100_000, 100_000), (0, 0)] {
        let cfg = config(w, h, 2, 0, None);
        let mut err = Err::new();
        let status = unsafe { (table().probe)(&cfg.raw, &mut err.buf) };
        assert_eq!(status, STATUS_UNAVAILABLE, "{w}x{h}");
        let msg = err.message();
        assert!(msg.contains(&format!("{w}x{h}")), "{w}x{h}: {msg}");
    }
}

#[test]
fn probe_rejects_non_i420_config() {
    let mut cfg = config(640, 480, 2, 0, None);
    cfg.raw.pixel_format = PixelFormat::Rgb24 as u32;
    let mut err = Err::new();
    let status = unsafe { (table().probe)(&cfg.raw, &mut err.buf) };
    assert_eq!(status, STATUS_UNAVAILABLE);
    assert!(err.message().contains("I420"), "{}", err.message());
}

#[test]
fn codec_config_is_a_sequence_header_obu() {
    let cfg = config(640, 480, 2, 0, None);
    let mut enc = Enc::open(&cfg).unwrap();
    let sh = enc.codec_config().unwrap();
    assert_eq!(
        first_obu_type(&sh),
        1,
        "OBU_SEQUENCE_HEADER first: {sh:02x?}"
    );
    assert!(sh[0] & 0x02 != 0, "has size field");
    // leb128 size covers the rest exactly: one OBU only.
    assert_eq!(usize::from(sh[1]) + 2, sh.len(), "{sh:02x?}");
    // seq_profile 0 (main) in the top 3 bits of the first payload byte.
    assert_eq!(sh[2] >> 5, 0);
    // The keyframe packets repeat the same sequence header.
    let mut packets = Vec::new();
    let pic = Picture::pattern(640, 480, 0);
    enc.encode(&pic.frame(0), &mut packets).unwrap();
    enc.flush(&mut packets).unwrap();
    assert!(
        packets[0].data.starts_with(&sh),
        "keyframe carries the same SH"
    );
    assert_eq!(enc.codec_config().unwrap(), sh, "stable after encoding");
}

#[test]
fn codec_config_after_first_keyframe_is_the_in_band_header() {
    for opts in [None, Some("pred-struct=random-access")] {
        let cfg = config(320, 240, 2, 0, opts);
        let mut enc = Enc::open(&cfg).unwrap();
        let mut packets = Vec::new();
        for i in 0..6 {
            let pic = Picture::pattern(320, 240, i);
            enc.encode(&pic.frame(i64::from(i)), &mut packets).unwrap();
        }
        enc.flush(&mut packets).unwrap();
        let sh = enc.codec_config().unwrap();
        assert_eq!(first_obu_type(&sh), 1);
        for p in packets.iter().filter(|p| p.keyframe) {
            assert!(
                p.data.starts_with(&sh),
                "{opts:?}: every keyframe starts with the SH"
            );
        }
    }
}

#[test]
fn non_i420_frames_and_wrong_sizes_are_clear_errors() {
    let cfg = config(320, 240, 2, 0, None);
    let mut enc = Enc::open(&cfg).unwrap();
    let pic = Picture::pattern(320, 240, 0);
    let mut packets = Vec::new();

    let mut nv12 = pic.frame(0);
    nv12.pixel_format = PixelFormat::Nv12 as u32;
    let (status, msg) = enc.encode(&nv12, &mut packets).unwrap_err();
    assert_eq!(status, STATUS_ERROR);
    assert!(msg.contains("I420"), "{msg}");

    let mut small = pic.frame(0);
    small.width = 160;
    let (_, msg) = enc.encode(&small, &mut packets).unwrap_err();
    assert!(msg.contains("160x240"), "{msg}");

    let mut null_plane = pic.frame(0);
    null_plane.planes[1] = std::ptr::null();
    assert!(enc.encode(&null_plane, &mut packets).is_err());

    // The session still works after rejected frames.
    enc.encode(&pic.frame(0), &mut packets).unwrap();
    enc.flush(&mut packets).unwrap();
    assert_eq!(packets.len(), 1);

    // Encoding after flush is an error, not a crash.
    let (status, msg) = enc.encode(&pic.frame(1), &mut packets).unwrap_err();
    assert_eq!(status, STATUS_ERROR);
    assert!(msg.contains("flushed"), "{msg}");
}

#[test]
fn table_metadata() {
    let t = table();
    let name = unsafe { std::ffi::CStr::from_ptr(t.name) };
    assert_eq!(name.to_str().unwrap(), "svtav1");
    assert_eq!(t.codec, s6_codec_abi::CodecId::Av1 as u32);
    assert_eq!(t.kind, s6_codec_abi::BackendKind::Software as u32);
    assert_eq!(t.preferred_input, PixelFormat::I420 as u32);
}

#[test]
fn concurrent_sessions_on_separate_threads() {
    let handles: Vec<_> = (0..3u32)
        .map(|t| {
            std::thread::spawn(move || {
                for round in 0..2 {
                    let (w, h) = if t % 2 == 0 { (320, 240) } else { (256, 144) };
                    let cfg = config(w, h, 2, 1, None);
                    let mut enc = Enc::open(&cfg).unwrap();
                    let mut packets = Vec::new();
                    for i in 0..6 {
                        let pic = Picture::pattern(w, h, i + round);
                        enc.encode(&pic.frame(i64::from(i)), &mut packets).unwrap();
                    }
                    enc.flush(&mut packets).unwrap();
                    assert_eq!(packets.len(), 6);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("session thread");
    }
}

#[test]
fn close_without_flush_does_not_hang() {
    // Never used: SVT 1.4 would block forever in deinit without a frame.
    let enc = Enc::open(&config(320, 240, 2, 1, None)).unwrap();
    drop(enc);
    // Used but not flushed.
    let mut enc = Enc::open(&config(320, 240, 2, 1, None)).unwrap();
    let mut packets = Vec::new();
    for i in 0..3 {
        let pic = Picture::pattern(320, 240, i);
        enc.encode(&pic.frame(i64::from(i)), &mut packets).unwrap();
    }
    drop(enc);
}
