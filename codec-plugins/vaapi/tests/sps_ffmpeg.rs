//! Checks the SPS/PPS this plugin writes with a real decoder: the headers
//! are followed by an IDR slice of I_PCM macroblocks (CAVLC, written here
//! by hand; every sample 128 luma / 100 Cb / 150 Cr) and the stream is
//! decoded by `ffmpeg`. The decoded size must equal the cropped size and
//! every sample must come back exactly; `ffprobe` must read profile, level
//! and the VUI frame rate.

use s6_codec_vaapi::bits::{nal_unit, BitWriter};
use s6_codec_vaapi::headers::{choose_level, H264Params, Profile};
use std::process::Command;

fn params(width: u32, height: u32, profile: Profile) -> H264Params {
    H264Params {
        width,
        height,
        fps_num: 25,
        fps_den: 1,
        profile,
        level_idc: choose_level(
            width.div_ceil(16),
            height.div_ceil(16),
            25,
            1,
            None,
            profile,
        ),
        idr_period: 10,
        bitrate_bps: None,
        qp: 30,
        cabac: false, // the hand-written slice below is CAVLC
        transform_8x8: profile == Profile::High,
        log2_max_frame_num_minus4: 4,
    }
}

/// An IDR slice whose macroblocks are all I_PCM.
fn ipcm_idr(p: &H264Params) -> Vec<u8> {
    let mut w = BitWriter::new();
    w.ue(0); // first_mb_in_slice
    w.ue(7); // slice_type: I (all slices)
    w.ue(0); // pic_parameter_set_id
    w.u(u32::from(p.log2_max_frame_num_minus4) + 4, 0); // frame_num
    w.ue(0); // idr_pic_id
    w.flag(false); // no_output_of_prior_pics_flag
    w.flag(false); // long_term_reference_flag
    w.se(0); // slice_qp_delta
    w.ue(1); // disable_deblocking_filter_idc
    for _ in 0..p.width_mbs() * p.height_mbs() {
        w.ue(25); // mb_type I_PCM
        w.align_zero(); // pcm_alignment_zero_bit
        w.bytes(&[128; 256]);
        w.bytes(&[100; 64]);
        w.bytes(&[150; 64]);
    }
    w.trailing_bits();
    nal_unit(3, 5, &w.into_bytes())
}

fn check(width: u32, height: u32, profile: Profile, want_profile: &str) {
    let p = params(width, height, profile);
    let mut stream = p.codec_config();
    stream.extend_from_slice(&ipcm_idr(&p));
    let dir = std::env::temp_dir().join(format!(
        "s6-vaapi-sps-{}-{width}x{height}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("ipcm.h264");
    std::fs::write(&file, &stream).expect("write stream");

    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height,profile,level,r_frame_rate",
            "-of",
            "default=nw=1",
        ])
        .arg(&file)
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&probe.stdout);
    assert!(
        probe.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert!(text.contains(&format!("width={width}\n")), "{text}");
    assert!(text.contains(&format!("height={height}\n")), "{text}");
    assert!(
        text.contains(&format!("profile={want_profile}\n")),
        "{text}"
    );
    assert!(text.contains(&format!("level={}\n", p.level_idc)), "{text}");
    assert!(text.contains("r_frame_rate=25/1"), "{text}");

    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "h264", "-i"])
        .arg(&file)
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        decode.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&decode.stderr)
    );
    assert!(
        decode.stderr.is_empty(),
        "decoder complained: {}",
        String::from_utf8_lossy(&decode.stderr)
    );
    let (w, h) = (width as usize, height as usize);
    let frame = decode.stdout;
    assert_eq!(frame.len(), w * h * 3 / 2, "one {width}x{height} frame");
    assert!(frame[..w * h].iter().all(|&v| v == 128), "luma");
    assert!(frame[w * h..w * h * 5 / 4].iter().all(|&v| v == 100), "Cb");
    assert!(frame[w * h * 5 / 4..].iter().all(|&v| v == 150), "Cr");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn high_profile_headers_with_cropping_decode() {
    check(200, 120, Profile::High, "High");
}

#[test]
fn constrained_baseline_headers_decode() {
    check(64, 48, Profile::ConstrainedBaseline, "Constrained Baseline");
}

#[test]
fn main_profile_headers_decode() {
    check(96, 66, Profile::Main, "Main");
}
