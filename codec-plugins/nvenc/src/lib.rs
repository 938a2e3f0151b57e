//! s6-edge codec plugin: H.264 through NVIDIA NVENC.
//!
//! `libcuda.so.1` and `libnvidia-encode.so.1` are opened at run time, so the
//! plugin builds and loads without the NVIDIA driver and probes
//! "unavailable: <why>" there. With a driver it creates a CUDA context,
//! opens an NVENC session (API 12.0), checks for H.264, initialises from a
//! P1..P7 preset with low-latency tuning (I/P only, IDR every `gop`,
//! CQP or VBR) and encodes synchronously through NVENC input and bitstream
//! buffers. The codec configuration record comes from
//! `nvEncGetSequenceParams`.

pub mod encoder;
pub mod ffi;
pub mod settings;

use encoder::{Encoder, Nv12};
use s6_codec_abi::helpers::{
    drop_session, emit, guard, opt_str, parse_options, session_mut, store_session, PluginError,
};

use s6_codec_abi::{
    BackendKind, CodecId, EncoderConfig, ErrorBuf, Frame, PacketFn, PixelFormat, PluginTable,
    Session, Status, ABI_VERSION,
};
use settings::{parse_device, Settings};
use std::ffi::c_void;

/// The plugin's name, in its error messages.
const PLUGIN: &str = "nvenc";

/// Reads the host's config into [`Settings`].
///
/// # Safety
/// `config` is null or a valid [`EncoderConfig`] with null or NUL-terminated strings.
pub unsafe fn settings_from(config: *const EncoderConfig) -> Result<Settings, PluginError> {
    // SAFETY: caller guarantee.
    let c = unsafe { config.as_ref() }.ok_or_else(|| PluginError::error("nvenc: null config"))?;
    if PixelFormat::from_raw(c.pixel_format) != Some(PixelFormat::Nv12) {
        return Err(PluginError::unavailable(format!(
            "nvenc takes NV12 input, not pixel format {}",
            c.pixel_format
        )));
    }
    // SAFETY: caller guarantee on the strings.
    let device = unsafe { opt_str(c.device) };
    // SAFETY: caller guarantee on the strings.
    let options = parse_options(unsafe { opt_str(c.options) });
    let mut s = Settings {
        width: c.width,
        height: c.height,
        fps_num: c.fps_num,
        fps_den: c.fps_den,
        gop: c.gop,
        crf: c.crf,
        preset: c.preset,
        bitrate_kbps: c.bitrate_kbps,
        cuda_device: parse_device(device).map_err(PluginError::error)?,
    };
    for (k, v) in options {
        match k.as_str() {
            "preset" => {
                let n = v
                    .trim_start_matches(['p', 'P'])
                    .parse::<i32>()
                    .ok()
                    .filter(|n| (1..=7).contains(n));
                s.preset =
                    n.ok_or_else(|| PluginError::error(format!("nvenc: preset '{v}' (p1..p7)")))?;
            }
            other => {
                return Err(PluginError::error(format!(
                    "nvenc: unknown option '{other}' (preset)"
                )))
            }
        }
    }
    Ok(s)
}

/// Opens a session, encodes one mid-grey IDR and closes it again.
pub fn probe_settings(s: &Settings) -> Result<(), PluginError> {
    let mut enc = Encoder::open(s)?;
    let (w, h) = (s.width as usize, s.height as usize);
    let y = vec![128u8; w * h];
    let uv = vec![128u8; w * h / 2];
    let out = enc
        .encode(
            &Nv12 {
                y: &y,
                y_stride: w,
                uv: &uv,
                uv_stride: w,
            },
            0,
            true,
        )
        .map_err(|e| PluginError::unavailable(format!("test encode failed: {e}")))?;
    match out {
        Some(f) if f.keyframe && !f.data.is_empty() => Ok(()),
        _ => Err(PluginError::unavailable(
            "test encode produced no IDR picture",
        )),
    }
}

unsafe extern "C" fn probe(config: *const EncoderConfig, err: *mut ErrorBuf) -> Status {
    // SAFETY: the host passes a valid config and error buffer.
    unsafe { guard(err, || probe_settings(&settings_from(config)?)) }
}

unsafe extern "C" fn open(
    config: *const EncoderConfig,
    out: *mut *mut Session,
    err: *mut ErrorBuf,
) -> Status {
    // SAFETY: the host passes a valid config, out-pointer and error buffer.
    unsafe {
        guard(err, || {
            let enc = Encoder::open(&settings_from(config)?)?;
            store_session(out, Box::new(enc), PLUGIN)
        })
    }
}

unsafe extern "C" fn encode(
    session: *mut Session,
    frame: *const Frame,
    sink: PacketFn,
    user: *mut c_void,
    err: *mut ErrorBuf,
) -> Status {
    // SAFETY: the host passes a live session, a valid frame and its sink.
    unsafe {
        guard(err, || {
            let enc = session_mut::<Encoder>(session, PLUGIN)?;
            let f = frame
                .as_ref()
                .ok_or_else(|| PluginError::error("nvenc: null frame"))?;
            if PixelFormat::from_raw(f.pixel_format) != Some(PixelFormat::Nv12) || f.plane_count < 2
            {
                return Err(PluginError::error(
                    "nvenc: frames must be NV12 with 2 planes",
                ));
            }
            let (w, h) = (f.width as usize, f.height as usize);
            let (ys, uvs) = (f.strides[0] as usize, f.strides[1] as usize);
            if f.planes[0].is_null() || f.planes[1].is_null() || ys < w || uvs < w || h < 2 {
                return Err(PluginError::error(
                    "nvenc: missing plane or stride smaller than width",
                ));
            }
            // SAFETY: the host guarantees stride × rows readable bytes per plane.
            let y = std::slice::from_raw_parts(f.planes[0], ys * (h - 1) + w);
            // SAFETY: as above, h/2 chroma rows.
            let uv = std::slice::from_raw_parts(f.planes[1], uvs * (h / 2 - 1) + w);
            let nv12 = Nv12 {
                y,
                y_stride: ys,
                uv,
                uv_stride: uvs,
            };
            if let Some(out) = enc.encode(&nv12, f.pts, f.force_keyframe != 0)? {
                emit(sink, user, &out.data, out.pts, out.pts, out.keyframe);
            }
            Ok(())
        })
    }
}

unsafe extern "C" fn flush(
    session: *mut Session,
    _sink: PacketFn,
    _user: *mut c_void,
    err: *mut ErrorBuf,
) -> Status {
    // SAFETY: the host passes a live session.
    unsafe { guard(err, || session_mut::<Encoder>(session, PLUGIN)?.flush()) }
}

unsafe extern "C" fn codec_config(
    session: *mut Session,
    sink: PacketFn,
    user: *mut c_void,
    err: *mut ErrorBuf,
) -> Status {
    // SAFETY: the host passes a live session and its sink.
    unsafe {
        guard(err, || {
            let cfg = session_mut::<Encoder>(session, PLUGIN)?.codec_config()?;
            emit(sink, user, &cfg, 0, 0, true);
            Ok(())
        })
    }
}

unsafe extern "C" fn close(session: *mut Session) {
    // SAFETY: the host passes a session from `open` exactly once (or null).
    unsafe { drop_session::<Encoder>(session) }
}

static TABLE: PluginTable = PluginTable {
    abi_version: ABI_VERSION,
    struct_size: std::mem::size_of::<PluginTable>() as u32,
    name: c"nvenc".as_ptr(),
    description: c"H.264 via NVIDIA NVENC (driver loaded at run time)".as_ptr(),
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
