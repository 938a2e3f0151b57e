//! MJPEG capture frames decode to I420 like ffmpeg decodes them.
//!
//! vivid (the VM's capture driver) offers no MJPEG format, so the decoder
//! path of V4L2 MJPEG capture is tested here with JPEGs from a real peer:
//! ffmpeg encodes a test pattern to JPEG (as UVC cameras do, 4:2:2 and
//! 4:2:0), and its own decode of that JPEG, converted to limited-range
//! yuv420p, is the reference for s6-edge's decode (same path as the encoder
//! thread: `convert_to(Mjpeg → I420)` on a length-prefixed pool buffer).

use s6_edge::frame::{frame_bytes, PixelFormat};
use std::process::Command;

fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        99.0
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

fn check(size: &str, w: u32, h: u32, jpeg_pix_fmt: &str) {
    let src = format!("testsrc2=size={size}:rate=1");
    let jpeg = ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src,
        "-frames:v",
        "1",
        "-pix_fmt",
        jpeg_pix_fmt,
        "-q:v",
        "3",
        "-f",
        "mjpeg",
        "-",
    ]);
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "ffmpeg wrote a JPEG");
    // ffmpeg's decode of the same JPEG, as limited-range 4:2:0.
    let dir = tempfile::tempdir().unwrap();
    let jpath = dir.path().join("f.jpg");
    std::fs::write(&jpath, &jpeg).unwrap();
    let reference = ffmpeg(&[
        "-i",
        jpath.to_str().unwrap(),
        "-vf",
        "scale=in_range=full:out_range=limited,format=yuv420p",
        "-f",
        "rawvideo",
        "-",
    ]);
    assert_eq!(reference.len(), frame_bytes(PixelFormat::I420, w, h));

    // What the V4L2 source stores in a pool buffer, then the encoder thread's decode.
    let mut pool_buf = vec![0u8; frame_bytes(PixelFormat::Mjpeg, w, h)];
    s6_edge::mjpeg::pack(&jpeg, &mut pool_buf).unwrap();
    let mut i420 = Vec::new();
    s6_edge::convert::convert_to(
        PixelFormat::Mjpeg,
        &pool_buf,
        w,
        h,
        PixelFormat::I420,
        &mut i420,
    )
    .unwrap();
    let y = (w * h) as usize;
    let p_y = psnr(&i420[..y], &reference[..y]);
    let p_c = psnr(&i420[y..], &reference[y..]);
    eprintln!("{size} {jpeg_pix_fmt}: PSNR Y {p_y:.1} dB, chroma {p_c:.1} dB");
    assert!(p_y > 40.0, "luma PSNR {p_y:.1} dB vs ffmpeg");
    // zune-jpeg upsamples chroma to 4:4:4 (triangle filter) before s6-edge
    // averages it back 2x2, so chroma is a little softer than ffmpeg's native
    // 4:2:0 planes: ~31 dB on testsrc2's hard colour edges (4:2:0 JPEG),
    // higher for 4:2:2 and for camera content.
    assert!(p_c > 30.0, "chroma PSNR {p_c:.1} dB vs ffmpeg");

    // To NV12 (what the V4L2 M2M plugin wants) goes through I420 in two steps.
    let mut nv12 = Vec::new();
    s6_edge::convert::convert_to(PixelFormat::I420, &i420, w, h, PixelFormat::Nv12, &mut nv12)
        .unwrap();
    assert_eq!(nv12.len(), frame_bytes(PixelFormat::Nv12, w, h));
    assert!(!s6_edge::convert::is_supported(
        PixelFormat::Mjpeg,
        PixelFormat::Nv12
    ));
}

#[test]
fn mjpeg_422_like_uvc_cameras_decodes_like_ffmpeg() {
    check("320x240", 320, 240, "yuvj422p");
}

#[test]
fn mjpeg_420_odd_size_decodes_like_ffmpeg() {
    check("162x122", 162, 122, "yuvj420p");
}

#[test]
fn a_jpeg_of_the_wrong_size_is_refused() {
    let jpeg = ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=1",
        "-frames:v",
        "1",
        "-pix_fmt",
        "yuvj420p",
        "-f",
        "mjpeg",
        "-",
    ]);
    let mut pool_buf = vec![0u8; frame_bytes(PixelFormat::Mjpeg, 32, 32)];
    s6_edge::mjpeg::pack(&jpeg, &mut pool_buf).unwrap();
    let mut out = Vec::new();
    let err = s6_edge::convert::convert_to(
        PixelFormat::Mjpeg,
        &pool_buf,
        32,
        32,
        PixelFormat::I420,
        &mut out,
    )
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("64x48") || msg.contains("corrupt JPEG"),
        "{msg}"
    );
}
