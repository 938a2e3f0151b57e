//! s6-edge codec plugin: H.264 through VA-API.
//!
//! libva (`libva.so.2`, `libva-drm.so.2`) is opened at run time, so the
//! plugin builds and loads on machines without it and probes
//! "unavailable: <why>" there. With a driver present it opens a DRM render
//! node, checks for an H.264 encode entry point and encodes for real: I/P
//! pictures with one reference, CQP (no bit rate) or VBR, SPS/PPS written by
//! this plugin ([`headers`]) and packed into the stream.

pub mod bits;
pub mod device;
pub mod encoder;
pub mod ffi;
pub mod headers;
pub mod params;

use encoder::{Encoder, Planes};
use params::Settings;
use s6_codec_abi::helpers::{
    drop_session, emit, guard, opt_str, parse_options, session_mut, store_session, PluginError,
};

use s6_codec_abi::{
    BackendKind, CodecId, EncoderConfig, ErrorBuf, Frame, PacketFn, PixelFormat, PluginTable,
    Session, Status, ABI_VERSION, STATUS_UNAVAILABLE,
};
use std::ffi::c_void;

/// The plugin's name, in its error messages.
const PLUGIN: &str = "vaapi";

/// Reads the host's config into [`Settings`].
///
/// # Safety
/// `config` is null or points to a valid [`EncoderConfig`] whose strings are
/// null or NUL-terminated.
pub unsafe fn settings_from(config: *const EncoderConfig) -> Result<Settings, PluginError> {
    // SAFETY: caller guarantee.
    let c = unsafe { config.as_ref() }.ok_or_else(|| PluginError::error("vaapi: null config"))?;
    let input = PixelFormat::from_raw(c.pixel_format);
    if !matches!(input, Some(PixelFormat::Nv12 | PixelFormat::I420)) {
        return Err(PluginError::unavailable(format!(
            "vaapi takes NV12 or I420 input, not pixel format {}",
            c.pixel_format
        )));
    }
    let mut s = Settings {
        width: c.width,
        height: c.height,
        fps_num: c.fps_num,
        fps_den: c.fps_den,
        gop: c.gop,
        crf: c.crf,
        bitrate_kbps: c.bitrate_kbps,
        // SAFETY: caller guarantee on the strings.
        device: unsafe { opt_str(c.device) }.map(str::to_string),
        ..Default::default()
    };
    // SAFETY: caller guarantee on the strings.
    let options = parse_options(unsafe { opt_str(c.options) });
    s.apply_options(&options).map_err(PluginError::error)?;
    Ok(s)
}

/// Borrows the planes of a host frame, checking size and format.
///
/// # Safety
/// `frame` points to a valid [`Frame`] whose planes hold `strides × rows`
/// readable bytes.
unsafe fn planes_of<'a>(
    frame: &'a Frame,
    width: u32,
    height: u32,
) -> Result<Planes<'a>, PluginError> {
    if frame.width != width || frame.height != height {
        return Err(PluginError::error(format!(
            "vaapi: frame is {}x{}, session is {width}x{height}",
            frame.width, frame.height
        )));
    }
    let (w, h) = (width as usize, height as usize);
    let plane =
        |i: usize, row_bytes: usize, rows: usize| -> Result<(&'a [u8], usize), PluginError> {
            let stride = frame.strides[i] as usize;
            if frame.planes[i].is_null() || stride < row_bytes {
                return Err(PluginError::error(format!(
                    "vaapi: plane {i} missing or stride too small"
                )));
            }
            let len = stride * (rows - 1) + row_bytes;
            // SAFETY: caller guarantees `stride × rows` readable bytes per plane.
            Ok((
                unsafe { std::slice::from_raw_parts(frame.planes[i], len) },
                stride,
            ))
        };
    match PixelFormat::from_raw(frame.pixel_format) {
        Some(PixelFormat::Nv12) if frame.plane_count >= 2 => {
            let (y, y_stride) = plane(0, w, h)?;
            let (uv, uv_stride) = plane(1, w, h / 2)?;
            Ok(Planes::Nv12 {
                y,
                y_stride,
                uv,
                uv_stride,
            })
        }
        Some(PixelFormat::I420) if frame.plane_count >= 3 => {
            let (y, y_stride) = plane(0, w, h)?;
            let (u, u_stride) = plane(1, w / 2, h / 2)?;
            let (v, v_stride) = plane(2, w / 2, h / 2)?;
            Ok(Planes::I420 {
                y,
                y_stride,
                u,
                u_stride,
                v,
                v_stride,
            })
        }
        _ => Err(PluginError::error(format!(
            "vaapi: unsupported frame format {} with {} planes (NV12 or I420)",
            frame.pixel_format, frame.plane_count
        ))),
    }
}

/// Opens a session, encodes one mid-grey frame and checks a packet came out.
pub fn probe_settings(settings: &Settings) -> Result<(), PluginError> {
    let mut enc = encoder::open(settings)?;
    let (w, h) = (settings.width as usize, settings.height as usize);
    let y = vec![128u8; w * h];
    let uv = vec![128u8; w * h / 2];
    let out = enc
        .encode(
            &Planes::Nv12 {
                y: &y,
                y_stride: w,
                uv: &uv,
                uv_stride: w,
            },
            true,
        )
        .map_err(|e| PluginError::unavailable(format!("test encode failed: {e}")))?;
    if !out.keyframe || out.data.len() < 8 {
        return Err(PluginError::unavailable(
            "test encode produced no IDR picture",
        ));
    }
    Ok(())
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
            let enc = encoder::open(&settings_from(config)?)?;
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
            let frame = frame
                .as_ref()
                .ok_or_else(|| PluginError::error("vaapi: null frame"))?;
            let (w, h) = (enc.params().width, enc.params().height);
            let planes = planes_of(frame, w, h)?;
            let out = enc.encode(&planes, frame.force_keyframe != 0)?;
            emit(sink, user, &out.data, frame.pts, frame.pts, out.keyframe);
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
    // SAFETY: the host passes a live session and an error buffer.
    unsafe {
        guard(err, || {
            // Encoding is synchronous: nothing is ever held back.
            session_mut::<Encoder>(session, PLUGIN).map(|_| ())
        })
    }
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
            let enc = session_mut::<Encoder>(session, PLUGIN)?;
            match enc.codec_config() {
                Some(cfg) => {
                    emit(sink, user, cfg, 0, 0, true);
                    Ok(())
                }
                None => Err(PluginError {
                    status: STATUS_UNAVAILABLE,
                    message:
                        "vaapi: the driver writes its own SPS/PPS; known after the first packet"
                            .into(),
                }),
            }
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
    name: c"vaapi".as_ptr(),
    description: c"H.264 via VA-API (Intel/AMD GPUs; libva loaded at run time)".as_ptr(),
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
