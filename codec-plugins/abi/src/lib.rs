//! The C ABI between the s6-edge host and its codec plugins.
//!
//! A plugin is a shared library exporting one symbol, [`ENTRY_SYMBOL`]
//! (`s6_codec_plugin_entry`), a function returning a pointer to a static
//! [`PluginTable`]. The host reads `abi_version` first and refuses a table
//! whose version differs from [`ABI_VERSION`]. Everything that crosses the
//! boundary is `#[repr(C)]`; nothing Rust-specific does. Every entry point
//! returns a [`Status`] and writes a UTF-8 message into an [`ErrorBuf`] on
//! failure; panics must never unwind across the boundary (Rust plugins use
//! [`helpers::guard`]).
//!
//! A plugin only encodes: raw frames in, compressed packets out, plus the
//! codec configuration record the muxer needs (AV1 sequence header OBU or
//! H.264 SPS/PPS NAL units). Capture, muxing, files and timing stay in the
//! host.
#![cfg_attr(not(feature = "plugin-helpers"), no_std)]

use core::ffi::{c_char, c_void};

/// Version of this ABI. Bumped on any incompatible change of the types below.
pub const ABI_VERSION: u32 = 1;

/// Name of the one symbol a plugin exports (NUL-terminated for `dlsym`).
pub const ENTRY_SYMBOL: &[u8] = b"s6_codec_plugin_entry\0";

/// Signature of the exported entry symbol.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginTable;

/// Name of an OPTIONAL symbol (an ABI 1 extension; the table is unchanged,
/// so plugins without it keep loading): a plugin whose coded format depends
/// on the device it finds (V4L2 M2M: H.264 on a Raspberry Pi, FWHT on the
/// kernel's `vicodec`) exports it so the host learns what a session really
/// produces instead of trusting [`PluginTable::codec`]. The host never muxes
/// a session under a codec other than the one this reports.
pub const SESSION_CODEC_SYMBOL: &[u8] = b"s6_codec_session_codec\0";

/// Signature of [`SESSION_CODEC_SYMBOL`]: the raw [`CodecId`] an open
/// session produces, or 0 when it cannot tell (the host then uses the
/// table's codec). Must not unwind; `session` is live and not used
/// concurrently.
pub type SessionCodecFn = unsafe extern "C" fn(session: *mut Session) -> u32;

/// Result of an entry point. `OK` is 0; anything else is a failure whose
/// reason is in the [`ErrorBuf`].
pub type Status = i32;
/// Success.
pub const STATUS_OK: Status = 0;
/// The backend cannot run here (no device, no driver, unsupported format...).
pub const STATUS_UNAVAILABLE: Status = 1;
/// A call failed at run time (bad argument, encoder error).
pub const STATUS_ERROR: Status = 2;
/// The plugin caught a panic inside the entry point.
pub const STATUS_PANIC: Status = 3;

/// Raw pixel layouts that cross the ABI.
///
/// Values are stable; new formats get new numbers.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Planar 4:2:0, 8 bit: Y, U, V planes (a.k.a. yuv420p).
    I420 = 1,
    /// Semi-planar 4:2:0, 8 bit: Y plane, interleaved UV plane.
    Nv12 = 2,
    /// Packed 4:2:2, 8 bit: Y0 U Y1 V.
    Yuyv = 3,
    /// Packed 8-bit RGB.
    Rgb24 = 4,
    /// Packed 8-bit BGR.
    Bgr24 = 5,
    /// Packed 8-bit RGBx / RGBA (alpha ignored).
    Rgba = 6,
    /// Single 8-bit luma plane.
    Gray8 = 7,
    /// Motion-JPEG: one compressed JPEG image per frame. Host-side only (a
    /// capture layout the host decodes to I420 on its encoder thread); never
    /// passed to a plugin, and a table announcing it as `preferred_input` is
    /// refused. In a host frame buffer it is packed as a `u32` LE byte count
    /// followed by the JPEG bytes.
    Mjpeg = 8,
}

impl PixelFormat {
    /// Converts the raw ABI value back into a format, if it is known.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            1 => Self::I420,
            2 => Self::Nv12,
            3 => Self::Yuyv,
            4 => Self::Rgb24,
            5 => Self::Bgr24,
            6 => Self::Rgba,
            7 => Self::Gray8,
            8 => Self::Mjpeg,
            _ => return None,
        })
    }
}

/// Compressed formats a plugin may produce.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodecId {
    /// AV1; the configuration record is the sequence header OBU.
    Av1 = 1,
    /// H.264; the configuration record is Annex-B SPS and PPS NAL units.
    H264 = 2,
    /// H.265; the configuration record is Annex-B VPS, SPS and PPS.
    Hevc = 3,
    /// The kernel's vicodec FWHT format (tests only; not muxable to MP4).
    Fwht = 4,
}

impl CodecId {
    /// Converts the raw ABI value back into a codec, if it is known.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            1 => Self::Av1,
            2 => Self::H264,
            3 => Self::Hevc,
            4 => Self::Fwht,
            _ => return None,
        })
    }
}

/// Whether a backend runs on dedicated hardware. `--vcodec auto` prefers
/// hardware.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// CPU encoder.
    Software = 0,
    /// Hardware encoder (V4L2 M2M, VAAPI, NVENC, ...).
    Hardware = 1,
}

/// A caller-owned buffer for an error message. The plugin writes at most
/// `cap - 1` bytes of UTF-8 and a terminating NUL.
#[repr(C)]
pub struct ErrorBuf {
    /// Start of the buffer.
    pub ptr: *mut c_char,
    /// Capacity in bytes, including the NUL.
    pub cap: usize,
}

/// Encoder settings passed to `probe` and `open`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EncoderConfig {
    /// Size of `EncoderConfig` as the host knows it (forward compatibility).
    pub struct_size: u32,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frame rate numerator.
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
    /// Raw [`PixelFormat`] the host will pass to `encode`.
    pub pixel_format: u32,
    /// Keyframe interval in frames (1 = every frame a keyframe).
    pub gop: u32,
    /// Constant-quality factor (codec specific range); negative = plugin default.
    pub crf: i32,
    /// Speed preset (codec specific); negative = plugin default.
    pub preset: i32,
    /// Encoder worker threads; 0 = plugin default.
    pub threads: u32,
    /// Target bitrate in kbit/s for rate-controlled hardware; 0 = plugin default.
    pub bitrate_kbps: u32,
    /// Optional NUL-terminated device path (e.g. `/dev/video11`); null = auto.
    pub device: *const c_char,
    /// Optional NUL-terminated `key=value` pairs separated by `;`; null = none.
    pub options: *const c_char,
}

/// One raw frame handed to `encode`. Borrowed for the duration of the call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Frame {
    /// Raw [`PixelFormat`].
    pub pixel_format: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Number of valid entries in `planes`/`strides`.
    pub plane_count: u32,
    /// Plane start pointers.
    pub planes: [*const u8; 4],
    /// Bytes per row of each plane.
    pub strides: [u32; 4],
    /// Presentation time in frame units (frame index).
    pub pts: i64,
    /// Ask for a keyframe at this frame.
    pub force_keyframe: u8,
}

/// One compressed packet delivered to the host's [`PacketFn`]. Borrowed
/// for the duration of the callback; the host copies what it keeps.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Packet {
    /// Packet bytes (AV1: temporal unit of OBUs, low-overhead format;
    /// H.264: Annex-B NAL units).
    pub data: *const u8,
    /// Number of bytes.
    pub len: usize,
    /// Presentation time in frame units.
    pub pts: i64,
    /// Decode time in frame units.
    pub dts: i64,
    /// Non-zero for a random access point.
    pub keyframe: u8,
}

/// Callback through which a plugin delivers packets (and the configuration
/// record) synchronously during `encode`, `flush` and `codec_config`.
pub type PacketFn = unsafe extern "C" fn(user: *mut c_void, packet: *const Packet);

/// Opaque encoder session owned by the plugin.
#[repr(C)]
pub struct Session {
    _private: [u8; 0],
}

/// The function table a plugin exports. All function pointers are required.
#[repr(C)]
pub struct PluginTable {
    /// Must equal [`ABI_VERSION`]; checked before anything else is read.
    pub abi_version: u32,
    /// `size_of::<PluginTable>()` as the plugin was built.
    pub struct_size: u32,
    /// Short backend name, NUL-terminated (`svtav1`, `v4l2m2m`, ...).
    pub name: *const c_char,
    /// One-line description, NUL-terminated.
    pub description: *const c_char,
    /// Raw [`CodecId`] this backend produces.
    pub codec: u32,
    /// Raw [`BackendKind`].
    pub kind: u32,
    /// Raw [`PixelFormat`] the backend wants (the host converts to it).
    pub preferred_input: u32,
    /// Opens a session with `config`, encodes one test frame, closes it.
    /// `STATUS_OK` means the backend really works here.
    pub probe: unsafe extern "C" fn(config: *const EncoderConfig, err: *mut ErrorBuf) -> Status,
    /// Opens an encoder session.
    pub open: unsafe extern "C" fn(
        config: *const EncoderConfig,
        out: *mut *mut Session,
        err: *mut ErrorBuf,
    ) -> Status,
    /// Encodes one frame; packets that become ready are passed to `sink`.
    pub encode: unsafe extern "C" fn(
        session: *mut Session,
        frame: *const Frame,
        sink: PacketFn,
        user: *mut c_void,
        err: *mut ErrorBuf,
    ) -> Status,
    /// Drains the encoder: every remaining packet is passed to `sink`.
    pub flush: unsafe extern "C" fn(
        session: *mut Session,
        sink: PacketFn,
        user: *mut c_void,
        err: *mut ErrorBuf,
    ) -> Status,
    /// Delivers the codec configuration record as one [`Packet`] (only
    /// `data`/`len` meaningful). Valid after `open`; some hardware backends
    /// can only answer after the first packet was produced and return
    /// `STATUS_UNAVAILABLE` before that.
    pub codec_config: unsafe extern "C" fn(
        session: *mut Session,
        sink: PacketFn,
        user: *mut c_void,
        err: *mut ErrorBuf,
    ) -> Status,
    /// Frees a session. Never fails.
    pub close: unsafe extern "C" fn(session: *mut Session),
}

// SAFETY: the table only holds pointers to static, immutable data and
// function pointers; sharing it between threads is sound.
unsafe impl Sync for PluginTable {}

#[cfg(feature = "plugin-helpers")]
pub mod helpers;
