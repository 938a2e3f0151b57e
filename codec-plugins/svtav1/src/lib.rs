//! s6-edge codec plugin `svtav1`: software AV1 encoding with the system
//! libSvtAv1Enc (SVT-AV1 1.4, Debian 12's `libsvtav1enc1`).
//!
//! # Defaults
//! yuv420p 8-bit input (I420 only), CRF 30, preset 12, GOP 2 (SVT
//! `intra_period_length = gop - 1`, closed GOP: every keyframe is a
//! KEY_FRAME and a random access point), low-delay prediction without
//! look-ahead so packets come out with little latency. `threads` maps to
//! SVT's `logical_processors` (0 = every core). Options (`key=value;...`):
//! `film-grain=0..50`, `pred-struct=low-delay|random-access`; others are
//! ignored with a warning on stderr.
//!
//! # Output
//! * Packets are AV1 temporal units in the low-overhead OBU format **with
//!   temporal delimiter OBUs removed**, i.e. exactly what an MP4 sample holds
//!   (AV1-ISOBMFF: samples must not contain temporal delimiters). Writers of
//!   IVF/Annex-less raw streams must put a TD (`0x12 0x00`) back in front of
//!   each packet. A keyframe packet also carries the sequence header OBU.
//! * `pts`/`dts` are in frame units (the input `pts`, passed through SVT).
//! * `keyframe` is set only for KEY_FRAME pictures (random access points),
//!   never for intra-only frames.
//! * `codec_config` delivers the sequence header OBU alone (no temporal
//!   delimiter), from which the host builds the `av1C` box. It is the header
//!   the keyframes carry (taken from a one-frame encode with the same
//!   settings when asked before the first keyframe), not SVT's pre-encode
//!   `svt_av1_enc_stream_header`, whose tool flags differ in 1.4.
//! * `force_keyframe` is honoured with `pred-struct=random-access` only:
//!   SVT-AV1 1.4 refuses forced keyframes in low-delay mode, where the
//!   fixed GOP is the only keyframe source.
//!
//! # Threads
//! SVT-AV1 1.4 creates its worker threads with `SCHED_FIFO` priority 99 when
//! the creating thread may (CAP_SYS_NICE or a high RLIMIT_RTPRIO) and falls
//! back to ordinary threads otherwise; the host decides by the capabilities
//! of the thread that calls `open`.
//!
//! A session is used from one thread at a time. Every entry point is wrapped
//! in [`guard`], so no panic crosses the C ABI.

pub mod encoder;
pub mod ffi;
pub mod obu;
pub mod settings;

use encoder::{EncodedPacket, Encoder};
use s6_codec_abi::helpers::{
    drop_session, emit, guard, opt_str, session_mut, store_session, PluginError,
};

use s6_codec_abi::{
    BackendKind, CodecId, EncoderConfig, ErrorBuf, Frame, PacketFn, PixelFormat, PluginTable,
    Session, Status, ABI_VERSION,
};
use std::ffi::c_void;

/// The plugin's name, in its error messages.
const PLUGIN: &str = "svtav1";

/// The plugin's function table.
pub static TABLE: PluginTable = PluginTable {
    abi_version: ABI_VERSION,
    struct_size: std::mem::size_of::<PluginTable>() as u32,
    name: c"svtav1".as_ptr(),
    description: c"Software AV1 encoder (SVT-AV1 1.4, libSvtAv1Enc)".as_ptr(),
    codec: CodecId::Av1 as u32,
    kind: BackendKind::Software as u32,
    preferred_input: PixelFormat::I420 as u32,
    probe,
    open,
    encode,
    flush,
    codec_config,
    close,
};

s6_codec_abi::export_plugin!(&TABLE);

/// Reads the host's config (null-checked) into validated settings.
///
/// # Safety
/// `config` is null or a valid [`EncoderConfig`] whose `options` is null or
/// a valid C string.
unsafe fn read_settings(config: *const EncoderConfig) -> Result<settings::Settings, PluginError> {
    // SAFETY: caller guarantees null or valid.
    let cfg = unsafe { config.as_ref() }.ok_or_else(|| PluginError::error("null config"))?;
    // SAFETY: caller guarantees `options` is null or a valid C string.
    let options = unsafe { opt_str(cfg.options) };
    settings::from_config(cfg, options)
}

/// Encodes one mid-gray frame at the requested size and checks a packet
/// comes out, then closes the session.
unsafe extern "C" fn probe(config: *const EncoderConfig, err: *mut ErrorBuf) -> Status {
    // SAFETY: `err` comes from the host, which guarantees null or valid.
    unsafe {
        guard(err, || {
            // SAFETY: host guarantees `config` is null or valid.
            let settings = read_settings(config)?;
            let p = settings.params;
            let mut enc = Encoder::open(&p)?;
            enc.send_gray()?;
            let mut packets = 0usize;
            let mut bytes = 0usize;
            enc.flush(&mut |pkt: EncodedPacket<'_>| {
                packets += 1;
                bytes += pkt.data.len();
            })?;
            enc.init_stream_header()?;
            if packets == 0 || bytes == 0 {
                return Err(PluginError::unavailable(
                    "SVT-AV1 opened but produced no packet for the test frame",
                ));
            }
            Ok(())
        })
    }
}

unsafe extern "C" fn open(
    config: *const EncoderConfig,
    out: *mut *mut Session,
    err: *mut ErrorBuf,
) -> Status {
    // SAFETY: `err` comes from the host (null or valid).
    unsafe {
        guard(err, || {
            // SAFETY: host guarantees `config` is null or valid.
            let settings = read_settings(config)?;
            for warning in &settings.warnings {
                eprintln!("{warning}");
            }
            let enc = Box::new(Encoder::open(&settings.params)?);
            // SAFETY: `out` is null or the host's, valid for a write.
            store_session(out, enc, PLUGIN)
        })
    }
}

/// A sink closure that forwards packets to the host callback.
fn host_sink(sink: PacketFn, user: *mut c_void) -> impl FnMut(EncodedPacket<'_>) {
    move |pkt: EncodedPacket<'_>| {
        // SAFETY: `sink`/`user` are the pair the host passed to this entry point.
        unsafe { emit(sink, user, pkt.data, pkt.pts, pkt.dts, pkt.keyframe) }
    }
}

unsafe extern "C" fn encode(
    session: *mut Session,
    frame: *const Frame,
    sink: PacketFn,
    user: *mut c_void,
    err: *mut ErrorBuf,
) -> Status {
    // SAFETY: `err` comes from the host (null or valid).
    unsafe {
        guard(err, || {
            // SAFETY: host contract for `session`.
            let enc = session_mut::<Encoder>(session, PLUGIN)?;
            // SAFETY: host guarantees `frame` is null or valid for the call.
            let frame = frame
                .as_ref()
                .ok_or_else(|| PluginError::error("null frame"))?;
            enc.send(frame)?;
            enc.drain_ready(&mut host_sink(sink, user))
        })
    }
}

unsafe extern "C" fn flush(
    session: *mut Session,
    sink: PacketFn,
    user: *mut c_void,
    err: *mut ErrorBuf,
) -> Status {
    // SAFETY: `err` comes from the host (null or valid).
    unsafe {
        guard(err, || {
            // SAFETY: host contract for `session`.
            let enc = session_mut::<Encoder>(session, PLUGIN)?;
            enc.flush(&mut host_sink(sink, user))
        })
    }
}

unsafe extern "C" fn codec_config(
    session: *mut Session,
    sink: PacketFn,
    user: *mut c_void,
    err: *mut ErrorBuf,
) -> Status {
    // SAFETY: `err` comes from the host (null or valid).
    unsafe {
        guard(err, || {
            // SAFETY: host contract for `session`.
            let enc = session_mut::<Encoder>(session, PLUGIN)?;
            let sh = enc.sequence_header()?;
            // SAFETY: `sink`/`user` are the host's pair for this call.
            emit(sink, user, &sh, 0, 0, false);
            Ok(())
        })
    }
}

unsafe extern "C" fn close(session: *mut Session) {
    // Dropping the encoder joins SVT's threads; `drop_session` never lets a
    // panic escape.
    // SAFETY: the host passes a pointer from `open` exactly once (or null).
    unsafe { drop_session::<Encoder>(session) }
}
