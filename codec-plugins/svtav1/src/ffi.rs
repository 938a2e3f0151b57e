//! Hand-written FFI to the system libSvtAv1Enc 1.4 and to the C shim in
//! `csrc/svt_shim.c`.
//!
//! Only the calls the plugin uses are declared. The large
//! `EbSvtAv1EncConfiguration` is never mirrored here: the shim, compiled
//! against the installed header, fills it from [`Params`]. The two small
//! structs that do cross ([`BufferHeader`], [`IoFormat`]) are mirrored and
//! checked against the header's layout by a unit test.

use std::ffi::{c_char, c_void};

/// `EbErrorType`: 0 is success.
pub type EbError = i32;
/// `EB_ErrorNone`.
pub const EB_ERROR_NONE: EbError = 0;
/// `EB_NoErrorEmptyQueue`: `get_packet` has nothing ready yet.
pub const EB_NO_ERROR_EMPTY_QUEUE: EbError = 0x8000_2033_u32 as i32;
/// `EB_ErrorMax`: `get_packet` reports an encode error with this.
pub const EB_ERROR_MAX: EbError = 0x7FFF_FFFF;

/// `EB_BUFFERFLAG_EOS`: the last packet of the stream / an EOS input buffer.
pub const EB_BUFFERFLAG_EOS: u32 = 0x1;

/// `EB_AV1_KEY_PICTURE` (`EbAv1PictureType`).
pub const EB_AV1_KEY_PICTURE: u32 = 3;
/// `EB_AV1_INVALID_PICTURE`: let the encoder decide the frame type.
pub const EB_AV1_INVALID_PICTURE: u32 = 0xFF;

/// `EB_YUV420` (`EbColorFormat`).
pub const EB_YUV420: u32 = 1;
/// `EB_EIGHT_BIT` (`EbBitDepth`).
pub const EB_EIGHT_BIT: u32 = 8;

/// Opaque `EbComponentType` handle.
#[repr(C)]
pub struct Component {
    _private: [u8; 0],
}

/// Mirror of `EbBufferHeaderType` (EbSvtAv1.h, 1.4.1).
#[repr(C)]
pub struct BufferHeader {
    /// `sizeof(EbBufferHeaderType)`.
    pub size: u32,
    /// Payload: an [`IoFormat`] for input, bitstream bytes for output.
    pub p_buffer: *mut u8,
    /// Valid bytes in `p_buffer`.
    pub n_filled_len: u32,
    /// Allocated bytes in `p_buffer`.
    pub n_alloc_len: u32,
    /// Application data, passed through.
    pub p_app_private: *mut c_void,
    /// Library internal.
    pub wrapper_ptr: *mut c_void,
    /// Unused by the encoder API.
    pub n_tick_count: u32,
    /// Decode timestamp.
    pub dts: i64,
    /// Presentation timestamp.
    pub pts: i64,
    /// Quantiser of the packet.
    pub qp: u32,
    /// `EbAv1PictureType`.
    pub pic_type: u32,
    /// Statistics (only with `stat_report`).
    pub luma_sse: u64,
    /// Statistics.
    pub cr_sse: u64,
    /// Statistics.
    pub cb_sse: u64,
    /// `EB_BUFFERFLAG_*`.
    pub flags: u32,
    /// Statistics.
    pub luma_ssim: f64,
    /// Statistics.
    pub cr_ssim: f64,
    /// Statistics.
    pub cb_ssim: f64,
    /// `struct SvtMetadataArray *`.
    pub metadata: *mut c_void,
}

impl BufferHeader {
    /// An all-zero header with `size` filled in.
    pub fn zeroed() -> Self {
        Self {
            size: std::mem::size_of::<Self>() as u32,
            p_buffer: std::ptr::null_mut(),
            n_filled_len: 0,
            n_alloc_len: 0,
            p_app_private: std::ptr::null_mut(),
            wrapper_ptr: std::ptr::null_mut(),
            n_tick_count: 0,
            dts: 0,
            pts: 0,
            qp: 0,
            pic_type: EB_AV1_INVALID_PICTURE,
            luma_sse: 0,
            cr_sse: 0,
            cb_sse: 0,
            flags: 0,
            luma_ssim: 0.0,
            cr_ssim: 0.0,
            cb_ssim: 0.0,
            metadata: std::ptr::null_mut(),
        }
    }
}

/// Mirror of `EbSvtIOFormat` (EbSvtAv1.h, 1.4.1): one input picture.
#[repr(C)]
pub struct IoFormat {
    /// Y plane.
    pub luma: *mut u8,
    /// U plane.
    pub cb: *mut u8,
    /// V plane.
    pub cr: *mut u8,
    /// 10-bit extension planes (unused, null).
    pub luma_ext: *mut u8,
    /// Unused, null.
    pub cb_ext: *mut u8,
    /// Unused, null.
    pub cr_ext: *mut u8,
    /// Luma stride in pixels (= bytes at 8 bit).
    pub y_stride: u32,
    /// V stride in pixels.
    pub cr_stride: u32,
    /// U stride in pixels.
    pub cb_stride: u32,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Crop origin (0).
    pub origin_x: u32,
    /// Crop origin (0).
    pub origin_y: u32,
    /// `EbColorFormat`.
    pub color_fmt: u32,
    /// `EbBitDepth`.
    pub bit_depth: u32,
}

/// Flat encoder settings handed to the shim (`S6SvtParams` in the C file).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frame rate numerator.
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
    /// SVT `enc_mode` (preset).
    pub preset: i32,
    /// CRF (SVT `qp` with adaptive quantisation).
    pub crf: i32,
    /// SVT `intra_period_length`: keyframe interval minus one; -1 = none.
    pub intra_period: i32,
    /// SVT `logical_processors`; 0 = every core.
    pub threads: u32,
    /// SVT `film_grain_denoise_strength`; 0 = off.
    pub film_grain: u32,
    /// 1 = low-delay prediction without look-ahead.
    pub low_delay: u8,
}

#[link(name = "SvtAv1Enc")]
extern "C" {
    /// `const char *svt_av1_get_version(void)`.
    pub fn svt_av1_get_version() -> *const c_char;
    /// Copies the sequence header (as an OBU stream) into a new buffer.
    pub fn svt_av1_enc_stream_header(
        handle: *mut Component,
        output: *mut *mut BufferHeader,
    ) -> EbError;
    /// Frees a buffer from [`svt_av1_enc_stream_header`].
    pub fn svt_av1_enc_stream_header_release(header: *mut BufferHeader) -> EbError;
    /// Queues one picture (copied by the library) or, with the EOS flag, the end.
    pub fn svt_av1_enc_send_picture(handle: *mut Component, input: *mut BufferHeader) -> EbError;
    /// Takes one packet; blocks only when `pic_send_done` is 1.
    pub fn svt_av1_enc_get_packet(
        handle: *mut Component,
        output: *mut *mut BufferHeader,
        pic_send_done: u8,
    ) -> EbError;
    /// Returns a packet from [`svt_av1_enc_get_packet`] to the library.
    pub fn svt_av1_enc_release_out_buffer(output: *mut *mut BufferHeader);
    /// Stops the worker threads and frees the encoder's buffers.
    pub fn svt_av1_enc_deinit(handle: *mut Component) -> EbError;
    /// Frees the handle itself.
    pub fn svt_av1_enc_deinit_handle(handle: *mut Component) -> EbError;
}

extern "C" {
    /// Shim: `svt_av1_enc_init_handle` + configuration + `svt_av1_enc_set_parameter`
    /// + `svt_av1_enc_init`; cleans up on failure and reports the failing stage.
    pub fn s6_svt_open(params: *const Params, out: *mut *mut Component, stage: *mut i32)
        -> EbError;
    /// Shim: header version as `major*10000 + minor*100 + patch`.
    pub fn s6_svt_header_version() -> u32;
    /// Shim: sizes/offsets of mirrored structs (see the C file for indices).
    pub fn s6_svt_layout(which: u32) -> usize;
}

/// Human-readable name of an SVT error code.
pub fn error_name(code: EbError) -> &'static str {
    match code as u32 {
        0 => "EB_ErrorNone",
        0x8000_1000 => "EB_ErrorInsufficientResources",
        0x8000_1001 => "EB_ErrorUndefined",
        0x8000_1004 => "EB_ErrorInvalidComponent",
        0x8000_1005 => "EB_ErrorBadParameter",
        0x8000_2012 => "EB_ErrorDestroyThreadFailed",
        0x8000_2021 => "EB_ErrorSemaphoreUnresponsive",
        0x8000_2022 => "EB_ErrorDestroySemaphoreFailed",
        0x8000_2030 => "EB_ErrorCreateMutexFailed",
        0x8000_2031 => "EB_ErrorMutexUnresponsive",
        0x8000_2032 => "EB_ErrorDestroyMutexFailed",
        0x8000_2033 => "EB_NoErrorEmptyQueue",
        0x8000_2034 => "EB_NoErrorFifoShutdown",
        0x7FFF_FFFF => "EB_ErrorMax (encode error)",
        _ => "unknown SVT error",
    }
}

/// The runtime library's version string (`v1.4.1`), if it reports one.
pub fn library_version() -> String {
    // SAFETY: svt_av1_get_version returns a pointer to a static NUL-terminated
    // string (or null, handled below).
    let ptr = unsafe { svt_av1_get_version() };
    if ptr.is_null() {
        return "unknown".to_string();
    }
    // SAFETY: non-null pointer to a static C string, see above.
    unsafe { std::ffi::CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    fn layout(which: u32) -> usize {
        // SAFETY: pure function of its argument, no pointers involved.
        unsafe { s6_svt_layout(which) }
    }

    #[test]
    fn buffer_header_matches_installed_header() {
        assert_eq!(size_of::<BufferHeader>(), layout(0));
        assert_eq!(offset_of!(BufferHeader, size), layout(1));
        assert_eq!(offset_of!(BufferHeader, p_buffer), layout(2));
        assert_eq!(offset_of!(BufferHeader, n_filled_len), layout(3));
        assert_eq!(offset_of!(BufferHeader, n_alloc_len), layout(4));
        assert_eq!(offset_of!(BufferHeader, p_app_private), layout(5));
        assert_eq!(offset_of!(BufferHeader, dts), layout(6));
        assert_eq!(offset_of!(BufferHeader, pts), layout(7));
        assert_eq!(offset_of!(BufferHeader, pic_type), layout(8));
        assert_eq!(offset_of!(BufferHeader, flags), layout(9));
    }

    #[test]
    fn io_format_matches_installed_header() {
        assert_eq!(size_of::<IoFormat>(), layout(10));
        assert_eq!(offset_of!(IoFormat, luma), layout(11));
        assert_eq!(offset_of!(IoFormat, cb), layout(12));
        assert_eq!(offset_of!(IoFormat, cr), layout(13));
        assert_eq!(offset_of!(IoFormat, y_stride), layout(14));
        assert_eq!(offset_of!(IoFormat, cr_stride), layout(15));
        assert_eq!(offset_of!(IoFormat, cb_stride), layout(16));
        assert_eq!(offset_of!(IoFormat, width), layout(17));
        assert_eq!(offset_of!(IoFormat, color_fmt), layout(18));
        assert_eq!(offset_of!(IoFormat, bit_depth), layout(19));
    }

    /// The figures gcc printed for Debian 12's 1.4.1 header on x86_64; a
    /// different header (other SVT release) fails here first.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn layout_is_the_one_of_svt_1_4_1() {
        assert_eq!(layout(0), 136, "sizeof(EbBufferHeaderType)");
        assert_eq!(layout(10), 88, "sizeof(EbSvtIOFormat)");
        assert_eq!(layout(20), 1720, "sizeof(EbSvtAv1EncConfiguration)");
        // SAFETY: pure function.
        let v = unsafe { s6_svt_header_version() };
        assert_eq!(v / 100, 104, "header version {v}");
    }

    #[test]
    fn runtime_library_matches_header_major_minor() {
        // SAFETY: pure function.
        let v = unsafe { s6_svt_header_version() };
        let want = format!("v{}.{}.", v / 10000, (v / 100) % 100);
        assert!(
            library_version().starts_with(&want),
            "library {} vs header {want}",
            library_version()
        );
    }

    #[test]
    fn error_names() {
        assert_eq!(error_name(EB_NO_ERROR_EMPTY_QUEUE), "EB_NoErrorEmptyQueue");
        assert_eq!(error_name(0x8000_1005_u32 as i32), "EB_ErrorBadParameter");
    }
}
