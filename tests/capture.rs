//! Capture sources through the library API, against real peers: ffmpeg
//! (SVT-AV1, x264) for stamp robustness, gst-launch-1.0 as an RTP sender.

mod common;

use s6_edge::capture::{self, read_stamp, CaptureSource};
use s6_edge::convert::convert_to;
use s6_edge::exit::UsageError;
use s6_edge::frame::{PixelFormat, VideoFormat};
use std::io::Write;
use std::process::{Command, Stdio};

fn defaults() -> VideoFormat {
    VideoFormat {
        width: 640,
        height: 480,
        fps_num: 30,
        fps_den: 1,
        pixel_format: PixelFormat::I420,
    }
}

fn open(arg: &str) -> Box<dyn CaptureSource> {
    let spec = capture::parse_camera_arg(arg, &defaults(), 0).expect("spec parses");
    capture::open(&spec).unwrap_or_else(|e| panic!("open {arg}: {e:#}"))
}

fn is_usage(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|c| c.downcast_ref::<UsageError>().is_some())
}

/// Pulls every frame of a finite source.
fn drain(src: &mut dyn CaptureSource) -> Vec<(Vec<u8>, s6_edge::frame::FrameMeta)> {
    let mut buf = vec![0u8; src.format().frame_bytes()];
    let mut out = Vec::new();
    while let Some(meta) = src.next_frame(&mut buf).expect("next_frame") {
        out.push((buf.clone(), meta));
        assert!(out.len() < 10_000, "source did not end");
    }
    out
}

#[test]
fn synthetic_stamps_read_back_in_every_format_and_size() {
    for (w, h) in [(160u32, 120u32), (320, 240), (1920, 1080)] {
        for fmt in ["i420", "nv12", "yuyv", "rgb24"] {
            let arg =
                format!("synthetic#width={w},height={h},format={fmt},frames=6,realtime=false");
            let mut src = open(&arg);
            let f = src.format();
            assert_eq!((f.width, f.height), (w, h));
            let frames = drain(src.as_mut());
            assert_eq!(frames.len(), 6, "{arg}");
            let mut i420 = Vec::new();
            for (i, (pixels, meta)) in frames.iter().enumerate() {
                assert_eq!(meta.sequence, Some(i as u64));
                convert_to(f.pixel_format, pixels, w, h, PixelFormat::I420, &mut i420).unwrap();
                assert_eq!(
                    read_stamp(&i420, w, h, w as usize),
                    Some(i as u64),
                    "{arg} frame {i}"
                );
            }
        }
    }
}

#[test]
fn synthetic_realtime_timestamps_follow_the_rate() {
    let mut src = open("synthetic#width=160,height=120,fps=25,frames=10");
    let frames = drain(src.as_mut());
    let ts: Vec<u64> = frames.iter().map(|(_, m)| m.capture_ts_ns).collect();
    let span = ts[9] - ts[0];
    // 9 intervals of 40 ms.
    assert!((355_000_000..600_000_000).contains(&span), "span {span}");
    assert!(ts.windows(2).all(|w| w[1] > w[0]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(now - ts[9] < 5_000_000_000, "timestamps are wall-clock");
}

fn have_encoder(name: &str) -> bool {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(name))
        .unwrap_or(false)
}

/// Encodes `n` stamped synthetic frames with ffmpeg, decodes them to gray and
/// returns the stamps read back.
fn lossy_round_trip(w: u32, h: u32, n: usize, codec_args: &[&str]) -> Vec<Option<u64>> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    let mut src = open(&format!(
        "synthetic#width={w},height={h},frames={n},realtime=false,noise=6"
    ));
    let frames = drain(src.as_mut());
    let mut enc = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo"])
        .args([
            "-pix_fmt",
            "yuv420p",
            "-s",
            &format!("{w}x{h}"),
            "-r",
            "30",
            "-i",
            "-",
        ])
        .args(codec_args)
        .arg(&out)
        .stdin(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs");
    {
        let mut stdin = enc.stdin.take().unwrap();
        for (pixels, _) in &frames {
            stdin.write_all(pixels).unwrap();
        }
    }
    assert!(
        enc.wait().unwrap().success(),
        "ffmpeg encode {codec_args:?}"
    );
    let dec = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(&out)
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .expect("ffmpeg decodes");
    assert!(dec.status.success());
    let size = (w * h) as usize;
    assert_eq!(dec.stdout.len(), size * n, "decoded frame count");
    dec.stdout
        .chunks_exact(size)
        .map(|luma| read_stamp(luma, w, h, w as usize))
        .collect()
}

#[test]
fn stamps_survive_svtav1_crf50() {
    assert!(have_encoder("libsvtav1"), "Debian ffmpeg has libsvtav1");
    for (w, h, n) in [(320u32, 240u32, 30usize), (160, 120, 20)] {
        let args = [
            "-c:v",
            "libsvtav1",
            "-crf",
            "50",
            "-g",
            "2",
            "-preset",
            "10",
        ];
        let stamps = lossy_round_trip(w, h, n, &args);
        let want: Vec<Option<u64>> = (0..n as u64).map(Some).collect();
        assert_eq!(stamps, want, "{w}x{h}");
    }
}

#[test]
fn stamps_survive_x264_and_full_hd() {
    if !have_encoder("libx264") {
        eprintln!("skipping: ffmpeg has no libx264");
        return;
    }
    let args = ["-c:v", "libx264", "-crf", "45", "-preset", "ultrafast"];
    let stamps = lossy_round_trip(320, 240, 30, &args);
    assert_eq!(stamps, (0..30u64).map(Some).collect::<Vec<_>>());
    let stamps = lossy_round_trip(1920, 1080, 6, &args);
    assert_eq!(stamps, (0..6u64).map(Some).collect::<Vec<_>>());
}

#[test]
fn bad_camera_args_are_usage_errors() {
    for arg in [
        "webcam",
        "rtsp://10.0.0.1/stream",
        "synthetic#width=0",
        "synthetic#width=9000",
        "synthetic#width=321",
        "synthetic#name=bad name",
        "synthetic#bogus=1",
    ] {
        let err = capture::parse_camera_arg(arg, &defaults(), 0).unwrap_err();
        assert!(is_usage(&err), "{arg}: {err:#}");
    }
    let err = capture::parse_camera_arg("webcam", &defaults(), 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown camera source \"webcam\": expected synthetic, v4l2:/dev/videoN, gst:<pipeline> or replay:DIR[/CAM]"
    );
    assert_eq!(s6_edge::exit::report(&err), std::process::ExitCode::from(2));
}

#[test]
fn missing_v4l2_device_says_what_to_do() {
    let spec = capture::parse_camera_arg("v4l2:/dev/video-s6-none", &defaults(), 0).unwrap();
    let err = capture::open(&spec).err().expect("no such device");
    let text = format!("{err:#}");
    assert!(text.contains("no such device /dev/video-s6-none"), "{text}");
    assert!(text.contains("s6-edge cameras"), "{text}");
}

#[test]
fn cameras_json_lists_devices() {
    let out = common::s6_command()
        .args(["cameras", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert!(v.is_array());
}

#[cfg(feature = "gst")]
mod gst {
    use super::*;
    use std::io::Read;
    use std::net::UdpSocket;
    use std::time::Duration;

    #[test]
    fn videotestsrc_frames_and_eos() {
        let mut src = open(
            "gst:videotestsrc is-live=true num-buffers=15 ! \
             video/x-raw,width=320,height=240,framerate=30/1#name=cam1",
        );
        let f = src.format();
        assert_eq!((f.width, f.height, f.fps_num, f.fps_den), (320, 240, 30, 1));
        assert_eq!(f.pixel_format, PixelFormat::I420);
        let frames = drain(src.as_mut());
        assert_eq!(frames.len(), 15, "EOS after num-buffers");
        let ts: Vec<u64> = frames.iter().map(|(_, m)| m.capture_ts_ns).collect();
        // PTS spacing: exactly 1/30 s between frames.
        for w in ts.windows(2) {
            let d = w[1] - w[0];
            assert!((33_000_000..=34_000_000).contains(&d), "spacing {d}");
        }
        // videotestsrc's SMPTE bars: the frame is not flat.
        let (y, _) = frames[0].0.split_at(320 * 240);
        let (min, max) = (y.iter().min().unwrap(), y.iter().max().unwrap());
        assert!(max - min > 100, "luma {min}..{max}");
    }

    #[test]
    fn size_options_scale_and_frames_limit() {
        let mut src = open(
            "gst:videotestsrc ! video/x-raw,width=640,height=360#width=160,height=120,frames=4",
        );
        assert_eq!((src.format().width, src.format().height), (160, 120));
        assert_eq!(drain(src.as_mut()).len(), 4);
    }

    #[test]
    fn rtp_jpeg_from_a_gst_launch_sender() {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut sender = Command::new("gst-launch-1.0")
            .args(["-q", "videotestsrc", "is-live=true", "pattern=ball", "!"])
            .args([
                "video/x-raw,format=I420,width=320,height=240,framerate=15/1",
                "!",
                "jpegenc",
                "!",
            ])
            .args([
                "rtpjpegpay",
                "!",
                "udpsink",
                "host=127.0.0.1",
                &format!("port={port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gst-launch-1.0 runs");
        let arg = format!(
            "gst:udpsrc port={port} caps=\"application/x-rtp,media=video,encoding-name=JPEG,\
             payload=26,clock-rate=90000\" ! rtpjpegdepay ! jpegdec#name=rtp"
        );
        let result = std::panic::catch_unwind(|| {
            let mut src = open(&arg);
            let f = src.format();
            assert_eq!((f.width, f.height), (320, 240));
            let mut buf = vec![0u8; f.frame_bytes()];
            let mut ts = Vec::new();
            for _ in 0..12 {
                let meta = src.next_frame(&mut buf).expect("frame").expect("not EOS");
                ts.push(meta.capture_ts_ns);
            }
            let span = ts[11] - ts[1];
            // 10 intervals at 15 fps ≈ 667 ms (RTP timestamps drive the spacing).
            assert!((450_000_000..1_200_000_000).contains(&span), "span {span}");
        });
        let _ = sender.kill();
        let mut err = String::new();
        if let Some(mut e) = sender.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let _ = sender.wait();
        if let Err(p) = result {
            eprintln!("sender stderr: {err}");
            std::panic::resume_unwind(p);
        }
    }

    #[test]
    fn pipeline_errors_are_clear() {
        let spec =
            capture::parse_camera_arg("gst:nosuchelement ! fakesink2", &defaults(), 0).unwrap();
        let err = capture::open(&spec).err().expect("parse error");
        let text = format!("{err:#}");
        assert!(text.contains("cannot build GStreamer pipeline"), "{text}");
        assert!(text.contains("nosuchelement"), "{text}");
        assert!(is_usage(&err));
    }

    #[test]
    fn silent_sender_times_out_with_a_hint() {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let spec = capture::parse_camera_arg(
            &format!(
                "gst:udpsrc port={port} caps=\"application/x-rtp,media=video,encoding-name=JPEG,\
                 payload=26,clock-rate=90000\" ! rtpjpegdepay ! jpegdec"
            ),
            &defaults(),
            0,
        )
        .unwrap();
        let t0 = std::time::Instant::now();
        let err = capture::open(&spec).err().expect("times out");
        assert!(t0.elapsed() >= Duration::from_secs(9));
        let text = format!("{err:#}");
        assert!(
            text.contains("no video from gst source within 10 s: is the sender running?"),
            "{text}"
        );
    }
}

#[cfg(not(feature = "gst"))]
#[test]
fn gst_without_feature_is_a_clear_error() {
    let spec = capture::parse_camera_arg("gst:videotestsrc", &defaults(), 0).unwrap();
    let err = capture::open(&spec).err().expect("no gst");
    assert!(format!("{err:#}").contains("built without GStreamer support"));
}
