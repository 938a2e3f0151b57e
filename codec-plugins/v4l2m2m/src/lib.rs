//! s6-edge codec plugin: stateful V4L2 memory-to-memory hardware encoders.
//!
//! Finds an encoder node among `/dev/video*` (QUERYCAP: M2M or M2M_MPLANE;
//! raw OUTPUT formats, compressed CAPTURE formats), or uses the configured
//! `device`. Prefers H.264; the kernel's `vicodec` test codec (FWHT) is
//! accepted too so the plugin can be exercised in a VM. Options
//! (`EncoderConfig::options`): `codec=h264|fwht` restricts the choice.
//!
//! The table declares H.264 (one codec per table in ABI 1); the optional
//! `s6_codec_session_codec` symbol tells the host what an open session really
//! codes, so vicodec's FWHT is reported as FWHT (and not muxed) and HEVC-only
//! encoders are rejected instead of being muxed under the wrong codec.

pub mod annexb;
pub mod decoder;
pub mod encoder;
pub mod fwht;
pub mod layout;
pub mod m2m;
pub mod select;
pub mod sys;

use encoder::{Encoder, Packet, Settings};
use layout::SourceFrame;
use s6_codec_abi::helpers::{
    drop_session, emit, guard, opt_str, parse_options, session_mut, store_session, PluginError,
};

use s6_codec_abi::{
    BackendKind, CodecId, EncoderConfig, ErrorBuf, Frame, PacketFn, PixelFormat, PluginTable,
    Session, Status, ABI_VERSION,
};
use std::ffi::c_void;

/// The plugin's name, in its error messages.
const PLUGIN: &str = "v4l2m2m";

/// Reads the host's config into [`Settings`].
///
/// # Safety
/// `config` is null or a valid `EncoderConfig` whose string pointers are
/// null or NUL-terminated.
unsafe fn settings(config: *const EncoderConfig) -> Result<Settings, PluginError> {
    // SAFETY: caller guarantees validity.
    let c = unsafe { config.as_ref() }.ok_or_else(|| PluginError::error("null EncoderConfig"))?;
    // SAFETY: forwarded caller guarantee for the strings.
    let device = unsafe { opt_str(c.device) }
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    // SAFETY: as above.
    let options = parse_options(unsafe { opt_str(c.options) });
    let mut codec = None;
    for (k, v) in &options {
        if k == "codec" {
            codec = Some(match v.as_str() {
                "h264" => CodecId::H264,
                "fwht" => CodecId::Fwht,
                other => {
                    return Err(PluginError::error(format!(
                        "option codec={other}: use h264 or fwht"
                    )))
                }
            });
        }
    }
    Ok(Settings {
        width: c.width,
        height: c.height,
        fps: (c.fps_num, c.fps_den),
        gop: c.gop,
        bitrate_kbps: c.bitrate_kbps,
        device,
        codec,
    })
}

/// Wraps an ABI frame as a [`SourceFrame`] (I420 or NV12 only).
///
/// # Safety
/// The plane pointers of `f` are valid for `stride * rows` bytes.
unsafe fn source_frame(f: &Frame) -> Result<SourceFrame<'_>, PluginError> {
    let nv12 = match PixelFormat::from_raw(f.pixel_format) {
        Some(PixelFormat::Nv12) => true,
        Some(PixelFormat::I420) => false,
        other => {
            return Err(PluginError::error(format!(
                "v4l2m2m takes NV12 or I420 frames, got {other:?}"
            )))
        }
    };
    let (w, h) = (f.width as usize, f.height as usize);
    let ch = h.div_ceil(2);
    let rows: &[usize] = if nv12 { &[h, ch] } else { &[h, ch, ch] };
    if (f.plane_count as usize) < rows.len() {
        return Err(PluginError::error(format!(
            "frame has {} planes, needs {}",
            f.plane_count,
            rows.len()
        )));
    }
    let mut planes = Vec::with_capacity(rows.len());
    for (i, &r) in rows.iter().enumerate() {
        if f.planes[i].is_null() {
            return Err(PluginError::error(format!("frame plane {i} is null")));
        }
        let stride = f.strides[i] as usize;
        // SAFETY: the host guarantees each plane holds `stride * rows` bytes.
        planes.push((
            unsafe { std::slice::from_raw_parts(f.planes[i], stride * r) },
            stride,
        ));
    }
    Ok(SourceFrame {
        width: w,
        height: h,
        nv12,
        planes,
    })
}

fn emit_all(sink: PacketFn, user: *mut c_void, packets: &[Packet]) {
    for p in packets {
        // SAFETY: `sink`/`user` are the pair the host passed in.
        unsafe { emit(sink, user, &p.data, p.pts, p.pts, p.keyframe) };
    }
}

fn err(e: anyhow::Error) -> PluginError {
    PluginError::error(format!("{e:#}"))
}

/// Encodes one mid-grey test frame and drains: the probe.
pub fn probe_settings(s: &Settings) -> Result<(), PluginError> {
    encoder::find_device(s).map_err(PluginError::unavailable)?;
    let mut enc = Encoder::open(s).map_err(|e| PluginError::unavailable(format!("{e:#}")))?;
    let (w, h) = (s.width as usize, s.height as usize);
    let y = vec![128u8; w * h];
    let c = vec![128u8; w.div_ceil(2) * h.div_ceil(2) * 2];
    let frame = SourceFrame {
        width: w,
        height: h,
        nv12: true,
        planes: vec![(&y, w), (&c, w.div_ceil(2) * 2)],
    };
    let mut out = Vec::new();
    enc.encode(&frame, 0, true, &mut out)
        .map_err(|e| PluginError::unavailable(format!("{e:#}")))?;
    enc.flush(&mut out)
        .map_err(|e| PluginError::unavailable(format!("{e:#}")))?;
    if out.is_empty() {
        return Err(PluginError::unavailable(format!(
            "{}: the test frame produced no packet",
            enc.choice.path
        )));
    }
    Ok(())
}

unsafe extern "C" fn probe(config: *const EncoderConfig, e: *mut ErrorBuf) -> Status {
    // SAFETY: the host passes a valid config and error buffer.
    unsafe { guard(e, || probe_settings(&settings(config)?)) }
}

unsafe extern "C" fn open(
    config: *const EncoderConfig,
    out: *mut *mut Session,
    e: *mut ErrorBuf,
) -> Status {
    // SAFETY: the host passes valid pointers.
    unsafe {
        guard(e, || {
            let s = settings(config)?;
            encoder::find_device(&s).map_err(PluginError::unavailable)?;
            let enc = Encoder::open(&s).map_err(err)?;
            store_session(out, Box::new(enc), PLUGIN)
        })
    }
}

unsafe extern "C" fn encode(
    s: *mut Session,
    frame: *const Frame,
    sink: PacketFn,
    user: *mut c_void,
    e: *mut ErrorBuf,
) -> Status {
    // SAFETY: the host passes a live session and a frame valid for the call.
    unsafe {
        guard(e, || {
            let enc = session_mut::<Encoder>(s, PLUGIN)?;
            let f = frame
                .as_ref()
                .ok_or_else(|| PluginError::error("null frame"))?;
            let src = source_frame(f)?;
            let mut out = Vec::new();
            enc.encode(&src, f.pts, f.force_keyframe != 0, &mut out)
                .map_err(err)?;
            emit_all(sink, user, &out);
            Ok(())
        })
    }
}

unsafe extern "C" fn flush(
    s: *mut Session,
    sink: PacketFn,
    user: *mut c_void,
    e: *mut ErrorBuf,
) -> Status {
    // SAFETY: the host passes a live session.
    unsafe {
        guard(e, || {
            let enc = session_mut::<Encoder>(s, PLUGIN)?;
            let mut out = Vec::new();
            enc.flush(&mut out).map_err(err)?;
            emit_all(sink, user, &out);
            Ok(())
        })
    }
}

unsafe extern "C" fn codec_config(
    s: *mut Session,
    sink: PacketFn,
    user: *mut c_void,
    e: *mut ErrorBuf,
) -> Status {
    // SAFETY: the host passes a live session.
    unsafe {
        guard(e, || {
            let enc = session_mut::<Encoder>(s, PLUGIN)?;
            match (enc.codec(), enc.codec_config()) {
                // FWHT has no configuration record: an empty one.
                (CodecId::Fwht, _) => emit(sink, user, &[], 0, 0, false),
                (_, Some(cfg)) => emit(sink, user, cfg, 0, 0, false),
                (_, None) => {
                    return Err(PluginError::unavailable(
                        "SPS/PPS are known after the first keyframe",
                    ));
                }
            }
            Ok(())
        })
    }
}

unsafe extern "C" fn close(s: *mut Session) {
    // SAFETY: the host passes a session from `open` exactly once (or null).
    unsafe { drop_session::<Encoder>(s) }
}

static TABLE: PluginTable = PluginTable {
    abi_version: ABI_VERSION,
    struct_size: size_of::<PluginTable>() as u32,
    name: c"v4l2m2m".as_ptr(),
    description: c"V4L2 memory-to-memory hardware encoder (H.264; vicodec FWHT in tests)".as_ptr(),
    codec: CodecId::H264 as u32,
    kind: BackendKind::Hardware as u32,
    preferred_input: PixelFormat::Nv12 as u32,
    probe,
    open,
    encode,
    flush,
    codec_config,
    close,
};

s6_codec_abi::export_plugin!(&TABLE);

/// The optional [`s6_codec_abi::SESSION_CODEC_SYMBOL`]: what the device this
/// session opened really codes (H.264 on a Pi, FWHT on vicodec), so the host
/// never muxes FWHT under the table's H.264.
///
/// # Safety
/// `s` is null or a live session from `open`, not used concurrently.
#[no_mangle]
pub unsafe extern "C" fn s6_codec_session_codec(s: *mut Session) -> u32 {
    std::panic::catch_unwind(|| {
        // SAFETY: the caller's guarantee; a null session answers 0.
        unsafe { s.cast::<Encoder>().as_ref() }.map_or(0, |enc| enc.codec() as u32)
    })
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_explains_why_it_is_unavailable_here() {
        let s = Settings {
            width: 64,
            height: 64,
            fps: (30, 1),
            device: Some("/dev/video-does-not-exist".into()),
            ..Default::default()
        };
        let e = probe_settings(&s).unwrap_err();
        assert_eq!(e.status, s6_codec_abi::STATUS_UNAVAILABLE);
        assert!(
            e.message.starts_with(
                "no V4L2 M2M encoder device found (scanned /dev/video-does-not-exist: cannot open"
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn probe_through_the_abi_writes_the_reason() {
        let mut buf = [0 as std::ffi::c_char; 512];
        let mut eb = ErrorBuf {
            ptr: buf.as_mut_ptr(),
            cap: buf.len(),
        };
        let cfg = EncoderConfig {
            struct_size: size_of::<EncoderConfig>() as u32,
            width: 64,
            height: 64,
            fps_num: 30,
            fps_den: 1,
            pixel_format: PixelFormat::Nv12 as u32,
            gop: 2,
            crf: -1,
            preset: -1,
            threads: 0,
            bitrate_kbps: 0,
            device: std::ptr::null(),
            options: std::ptr::null(),
        };
        // SAFETY: valid config and error buffer.
        let st = unsafe { probe(&cfg, &mut eb) };
        // SAFETY: the plugin NUL-terminated the message.
        let msg = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        if st != s6_codec_abi::STATUS_OK {
            assert_eq!(st, s6_codec_abi::STATUS_UNAVAILABLE, "{msg}");
            assert!(
                msg.starts_with("no V4L2 M2M encoder device found (scanned "),
                "{msg}"
            );
        }
        eprintln!("probe here: status {st}: {msg}");
    }
}
