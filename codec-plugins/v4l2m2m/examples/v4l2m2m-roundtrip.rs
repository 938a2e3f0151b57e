//! Round trip through real V4L2 M2M devices: encode synthetic frames through
//! the plugin's C ABI table (as the s6-edge host does), decode the packets
//! with the matching stateful decoder (vicodec's in the test VM), compare
//! with PSNR. Prints `S6VM PASS:`/`S6VM FAIL:` and exits 0/1.
//!
//! Usage: v4l2m2m-roundtrip [--frames N] [--width W] [--height H] [--min-psnr DB]

use anyhow::{bail, Context, Result};
use s6_codec_abi::{
    CodecId, EncoderConfig, ErrorBuf, Frame, Packet, PixelFormat, PluginTable, STATUS_OK,
};
use s6_codec_v4l2m2m::decoder::{find_decoder, Decoder};
use s6_codec_v4l2m2m::sys;
use std::ffi::{c_void, CStr};
use std::process::ExitCode;

struct Args {
    frames: usize,
    width: usize,
    height: usize,
    min_psnr: f64,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        frames: 30,
        width: 320,
        height: 240,
        min_psnr: 30.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--frames" => a.frames = v.parse()?,
            "--width" => a.width = v.parse()?,
            "--height" => a.height = v.parse()?,
            "--min-psnr" => a.min_psnr = v.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

/// NV12 test frame `i`: gradients plus a moving square (I420 copy returned too).
fn test_frame(i: usize, w: usize, h: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut y = vec![0u8; w * h];
    for r in 0..h {
        for c in 0..w {
            let inside = (c + w - (i * 4) % w) % w < w / 5 && r > h / 3 && r < h / 3 + h / 5;
            y[r * w + c] = if inside {
                235
            } else {
                ((c * 160 / w) + (r * 60 / h) + 16) as u8
            };
        }
    }
    let (cw, ch) = (w / 2, h / 2);
    let mut uv = vec![0u8; cw * ch * 2];
    let mut i420 = y.clone();
    let mut u = vec![0u8; cw * ch];
    let mut v = vec![0u8; cw * ch];
    for r in 0..ch {
        for c in 0..cw {
            u[r * cw + c] = (64 + c * 128 / cw) as u8;
            v[r * cw + c] = (192 - r * 128 / ch) as u8;
            uv[(r * cw + c) * 2] = u[r * cw + c];
            uv[(r * cw + c) * 2 + 1] = v[r * cw + c];
        }
    }
    i420.extend_from_slice(&u);
    i420.extend_from_slice(&v);
    (y, uv, i420)
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
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

unsafe extern "C" fn collect(user: *mut c_void, p: *const Packet) {
    // SAFETY: `user` is the Vec we passed; `p` is valid for the callback.
    let (out, p) = unsafe { (&mut *user.cast::<Vec<(Vec<u8>, i64, bool)>>(), &*p) };
    let data = if p.len == 0 {
        Vec::new()
    } else {
        // SAFETY: the plugin guarantees `data` holds `len` bytes.
        unsafe { std::slice::from_raw_parts(p.data, p.len) }.to_vec()
    };
    out.push((data, p.pts, p.keyframe != 0));
}

fn check(status: i32, buf: &[std::ffi::c_char], what: &str) -> Result<()> {
    if status != STATUS_OK {
        // SAFETY: the plugin NUL-terminates its message in `buf`.
        let msg = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
        bail!("{what} failed (status {status}): {msg}");
    }
    Ok(())
}

fn run(a: &Args) -> Result<String> {
    // SAFETY: the entry symbol returns a pointer to the plugin's static table.
    let table: &PluginTable = unsafe { &*s6_codec_v4l2m2m::s6_codec_plugin_entry() };
    let mut ebuf = [0 as std::ffi::c_char; 1024];
    let mut err = ErrorBuf {
        ptr: ebuf.as_mut_ptr(),
        cap: ebuf.len(),
    };
    let cfg = EncoderConfig {
        struct_size: size_of::<EncoderConfig>() as u32,
        width: a.width as u32,
        height: a.height as u32,
        fps_num: 30,
        fps_den: 1,
        pixel_format: PixelFormat::Nv12 as u32,
        gop: 10,
        crf: -1,
        preset: -1,
        threads: 0,
        bitrate_kbps: 0,
        device: std::ptr::null(),
        options: std::ptr::null(),
    };
    // SAFETY: valid config and error buffer for every call below; the
    // session is used only between open and close.
    unsafe {
        check((table.probe)(&cfg, &mut err), &ebuf, "probe")?;
        let mut session = std::ptr::null_mut();
        check((table.open)(&cfg, &mut session, &mut err), &ebuf, "open")?;
        let mut packets: Vec<(Vec<u8>, i64, bool)> = Vec::new();
        let user = (&mut packets as *mut Vec<(Vec<u8>, i64, bool)>).cast::<c_void>();
        let mut originals = Vec::new();
        for i in 0..a.frames {
            let (y, uv, i420) = test_frame(i, a.width, a.height);
            originals.push(i420);
            let frame = Frame {
                pixel_format: PixelFormat::Nv12 as u32,
                width: a.width as u32,
                height: a.height as u32,
                plane_count: 2,
                planes: [y.as_ptr(), uv.as_ptr(), std::ptr::null(), std::ptr::null()],
                strides: [a.width as u32, a.width as u32, 0, 0],
                pts: i as i64,
                force_keyframe: u8::from(i == 0),
            };
            check(
                (table.encode)(session, &frame, collect, user, &mut err),
                &ebuf,
                "encode",
            )?;
        }
        check(
            (table.flush)(session, collect, user, &mut err),
            &ebuf,
            "flush",
        )?;
        let mut cfg_rec: Vec<(Vec<u8>, i64, bool)> = Vec::new();
        let cfg_user = (&mut cfg_rec as *mut Vec<(Vec<u8>, i64, bool)>).cast::<c_void>();
        let cfg_status = (table.codec_config)(session, collect, cfg_user, &mut err);
        (table.close)(session);
        check(cfg_status, &ebuf, "codec_config")?;

        if packets.len() != a.frames {
            bail!("{} frames in, {} packets out", a.frames, packets.len());
        }
        let pts: Vec<i64> = packets.iter().map(|p| p.1).collect();
        if pts != (0..a.frames as i64).collect::<Vec<_>>() {
            bail!("packet pts out of order: {pts:?}");
        }
        let keys: Vec<usize> = packets
            .iter()
            .enumerate()
            .filter(|p| p.1 .2)
            .map(|p| p.0)
            .collect();
        if keys.first() != Some(&0) || keys.len() < a.frames / 10 {
            bail!("keyframes at {keys:?}, expected one every 10 frames from 0");
        }
        let coded = match CodecId::from_raw(table.codec) {
            _ if cfg_rec.first().is_some_and(|c| c.0.is_empty()) => sys::PIX_FMT_FWHT,
            Some(CodecId::H264) => sys::PIX_FMT_H264,
            other => bail!("unexpected codec {other:?}"),
        };
        let (dec_path, mplane) = find_decoder(coded)?;
        let mut dec = Decoder::open(&dec_path, mplane, coded, a.width as u32, a.height as u32)?;
        let mut decoded = Vec::new();
        for (data, pts, _) in &packets {
            dec.decode(data, *pts, &mut decoded)?;
        }
        dec.flush(&mut decoded)?;
        if decoded.len() != a.frames {
            bail!("{} packets decoded to {} frames", a.frames, decoded.len());
        }
        let mut min = f64::MAX;
        let mut sum = 0.0;
        for (ts, frame) in &decoded {
            let orig = originals
                .get(*ts as usize)
                .with_context(|| format!("decoded frame with unknown pts {ts}"))?;
            let p = psnr(orig, frame);
            min = min.min(p);
            sum += p;
        }
        let bytes: usize = packets.iter().map(|p| p.0.len()).sum();
        let summary = format!(
            "{} frames {}x{} via {} ({} bytes, keyframes {:?}), decoded by {dec_path}: PSNR min {min:.2} dB avg {:.2} dB",
            a.frames,
            a.width,
            a.height,
            sys::fourcc_str(coded),
            bytes,
            keys,
            sum / decoded.len() as f64
        );
        if min < a.min_psnr {
            bail!("{summary} (below {} dB)", a.min_psnr);
        }
        Ok(summary)
    }
}

fn main() -> ExitCode {
    let result = parse_args().and_then(|a| run(&a));
    match result {
        Ok(summary) => {
            println!("S6VM PASS: v4l2m2m roundtrip: {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("S6VM FAIL: v4l2m2m roundtrip: {e:#}");
            ExitCode::FAILURE
        }
    }
}
