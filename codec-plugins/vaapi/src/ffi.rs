//! The part of the libva C API this plugin uses, declared by hand from
//! `va/va.h`, `va/va_drm.h` and `va/va_enc_h264.h` (libva 2.x) and resolved at
//! run time with `libloading`, so the plugin neither links against libva nor
//! needs it installed to load.
//!
//! Struct layouts are checked against the real headers by
//! `tests/layout.rs` (compiled with the C compiler against `libva-dev`).
#![allow(non_snake_case, missing_docs)]

use libloading::Library;
use std::ffi::{c_char, c_int, c_uint, c_void};

pub type VADisplay = *mut c_void;
pub type VAStatus = c_int;
pub type VAGenericID = c_uint;
pub type VAConfigID = VAGenericID;
pub type VAContextID = VAGenericID;
pub type VASurfaceID = VAGenericID;
pub type VABufferID = VAGenericID;
pub type VAImageID = VAGenericID;
pub type VAProfile = c_int;
pub type VAEntrypoint = c_int;
pub type VABufferType = c_int;

pub const VA_STATUS_SUCCESS: VAStatus = 0;
pub const VA_INVALID_ID: u32 = 0xffff_ffff;
pub const VA_ATTRIB_NOT_SUPPORTED: u32 = 0x8000_0000;
pub const VA_PROGRESSIVE: c_int = 0x1;

pub const VA_PROFILE_H264_MAIN: VAProfile = 6;
pub const VA_PROFILE_H264_HIGH: VAProfile = 7;
pub const VA_PROFILE_H264_CONSTRAINED_BASELINE: VAProfile = 13;

pub const VA_ENTRYPOINT_ENC_SLICE: VAEntrypoint = 6;
pub const VA_ENTRYPOINT_ENC_SLICE_LP: VAEntrypoint = 8;

pub const VA_CONFIG_ATTRIB_RT_FORMAT: c_int = 0;
pub const VA_CONFIG_ATTRIB_RATE_CONTROL: c_int = 5;
pub const VA_CONFIG_ATTRIB_ENC_PACKED_HEADERS: c_int = 10;

pub const VA_RT_FORMAT_YUV420: u32 = 0x1;
pub const VA_RC_CBR: u32 = 0x2;
pub const VA_RC_VBR: u32 = 0x4;
pub const VA_RC_CQP: u32 = 0x10;
pub const VA_ENC_PACKED_HEADER_SEQUENCE: u32 = 0x1;
pub const VA_ENC_PACKED_HEADER_PICTURE: u32 = 0x2;

pub const VA_FOURCC_NV12: u32 = 0x3231_564E;
pub const VA_LSB_FIRST: u32 = 1;

pub const VA_ENC_CODED_BUFFER_TYPE: VABufferType = 21;
pub const VA_ENC_SEQUENCE_PARAMETER_BUFFER_TYPE: VABufferType = 22;
pub const VA_ENC_PICTURE_PARAMETER_BUFFER_TYPE: VABufferType = 23;
pub const VA_ENC_SLICE_PARAMETER_BUFFER_TYPE: VABufferType = 24;
pub const VA_ENC_PACKED_HEADER_PARAMETER_BUFFER_TYPE: VABufferType = 25;
pub const VA_ENC_PACKED_HEADER_DATA_BUFFER_TYPE: VABufferType = 26;
pub const VA_ENC_MISC_PARAMETER_BUFFER_TYPE: VABufferType = 27;

pub const VA_ENC_MISC_PARAMETER_TYPE_FRAME_RATE: u32 = 0;
pub const VA_ENC_MISC_PARAMETER_TYPE_RATE_CONTROL: u32 = 1;
pub const VA_ENC_MISC_PARAMETER_TYPE_HRD: u32 = 5;

pub const VA_ENC_PACKED_HEADER_TYPE_SEQUENCE: u32 = 1;
pub const VA_ENC_PACKED_HEADER_TYPE_PICTURE: u32 = 2;

pub const VA_PICTURE_H264_INVALID: u32 = 0x1;
pub const VA_PICTURE_H264_SHORT_TERM_REFERENCE: u32 = 0x8;

/// `VAConfigAttrib`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VAConfigAttrib {
    pub type_: c_int,
    pub value: u32,
}

/// `VAImageFormat`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VAImageFormat {
    pub fourcc: u32,
    pub byte_order: u32,
    pub bits_per_pixel: u32,
    pub depth: u32,
    pub red_mask: u32,
    pub green_mask: u32,
    pub blue_mask: u32,
    pub alpha_mask: u32,
    pub va_reserved: [u32; 4],
}

/// `VAImage`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VAImage {
    pub image_id: VAImageID,
    pub format: VAImageFormat,
    pub buf: VABufferID,
    pub width: u16,
    pub height: u16,
    pub data_size: u32,
    pub num_planes: u32,
    pub pitches: [u32; 3],
    pub offsets: [u32; 3],
    pub num_palette_entries: i32,
    pub entry_bytes: i32,
    pub component_order: [i8; 4],
    pub va_reserved: [u32; 4],
}

/// `VACodedBufferSegment`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VACodedBufferSegment {
    pub size: u32,
    pub bit_offset: u32,
    pub status: u32,
    pub reserved: u32,
    pub buf: *mut c_void,
    pub next: *mut c_void,
    pub va_reserved: [u32; 4],
}

/// `VAPictureH264`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VAPictureH264 {
    pub picture_id: VASurfaceID,
    pub frame_idx: u32,
    pub flags: u32,
    pub TopFieldOrderCnt: i32,
    pub BottomFieldOrderCnt: i32,
    pub va_reserved: [u32; 4],
}

impl VAPictureH264 {
    /// An unused DPB / reference-list entry.
    pub const INVALID: Self = Self {
        picture_id: VA_INVALID_ID,
        frame_idx: 0,
        flags: VA_PICTURE_H264_INVALID,
        TopFieldOrderCnt: 0,
        BottomFieldOrderCnt: 0,
        va_reserved: [0; 4],
    };
}

/// `VAEncSequenceParameterBufferH264`. The bit-field unions are plain `u32`
/// (`seq_fields`, `vui_fields`); see [`crate::params`] for the bit packing.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VAEncSequenceParameterBufferH264 {
    pub seq_parameter_set_id: u8,
    pub level_idc: u8,
    pub intra_period: u32,
    pub intra_idr_period: u32,
    pub ip_period: u32,
    pub bits_per_second: u32,
    pub max_num_ref_frames: u32,
    pub picture_width_in_mbs: u16,
    pub picture_height_in_mbs: u16,
    pub seq_fields: u32,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
    pub num_ref_frames_in_pic_order_cnt_cycle: u8,
    pub offset_for_non_ref_pic: i32,
    pub offset_for_top_to_bottom_field: i32,
    pub offset_for_ref_frame: [i32; 256],
    pub frame_cropping_flag: u8,
    pub frame_crop_left_offset: u32,
    pub frame_crop_right_offset: u32,
    pub frame_crop_top_offset: u32,
    pub frame_crop_bottom_offset: u32,
    pub vui_parameters_present_flag: u8,
    pub vui_fields: u32,
    pub aspect_ratio_idc: u8,
    pub sar_width: u32,
    pub sar_height: u32,
    pub num_units_in_tick: u32,
    pub time_scale: u32,
    pub va_reserved: [u32; 4],
}

/// `VAEncPictureParameterBufferH264` (`pic_fields` is the bit-field union).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VAEncPictureParameterBufferH264 {
    pub CurrPic: VAPictureH264,
    pub ReferenceFrames: [VAPictureH264; 16],
    pub coded_buf: VABufferID,
    pub pic_parameter_set_id: u8,
    pub seq_parameter_set_id: u8,
    pub last_picture: u8,
    pub frame_num: u16,
    pub pic_init_qp: u8,
    pub num_ref_idx_l0_active_minus1: u8,
    pub num_ref_idx_l1_active_minus1: u8,
    pub chroma_qp_index_offset: i8,
    pub second_chroma_qp_index_offset: i8,
    pub pic_fields: u32,
    pub va_reserved: [u32; 4],
}

/// `VAEncSliceParameterBufferH264`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VAEncSliceParameterBufferH264 {
    pub macroblock_address: u32,
    pub num_macroblocks: u32,
    pub macroblock_info: VABufferID,
    pub slice_type: u8,
    pub pic_parameter_set_id: u8,
    pub idr_pic_id: u16,
    pub pic_order_cnt_lsb: u16,
    pub delta_pic_order_cnt_bottom: i32,
    pub delta_pic_order_cnt: [i32; 2],
    pub direct_spatial_mv_pred_flag: u8,
    pub num_ref_idx_active_override_flag: u8,
    pub num_ref_idx_l0_active_minus1: u8,
    pub num_ref_idx_l1_active_minus1: u8,
    pub RefPicList0: [VAPictureH264; 32],
    pub RefPicList1: [VAPictureH264; 32],
    pub luma_log2_weight_denom: u8,
    pub chroma_log2_weight_denom: u8,
    pub luma_weight_l0_flag: u8,
    pub luma_weight_l0: [i16; 32],
    pub luma_offset_l0: [i16; 32],
    pub chroma_weight_l0_flag: u8,
    pub chroma_weight_l0: [[i16; 2]; 32],
    pub chroma_offset_l0: [[i16; 2]; 32],
    pub luma_weight_l1_flag: u8,
    pub luma_weight_l1: [i16; 32],
    pub luma_offset_l1: [i16; 32],
    pub chroma_weight_l1_flag: u8,
    pub chroma_weight_l1: [[i16; 2]; 32],
    pub chroma_offset_l1: [[i16; 2]; 32],
    pub cabac_init_idc: u8,
    pub slice_qp_delta: i8,
    pub disable_deblocking_filter_idc: u8,
    pub slice_alpha_c0_offset_div2: i8,
    pub slice_beta_offset_div2: i8,
    pub va_reserved: [u32; 4],
}

/// `VAEncPackedHeaderParameterBuffer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VAEncPackedHeaderParameterBuffer {
    pub type_: u32,
    pub bit_length: u32,
    pub has_emulation_bytes: u8,
    pub va_reserved: [u32; 4],
}

/// `VAEncMiscParameterRateControl` (`rc_flags` is the bit-field union).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VAEncMiscParameterRateControl {
    pub bits_per_second: u32,
    pub target_percentage: u32,
    pub window_size: u32,
    pub initial_qp: u32,
    pub min_qp: u32,
    pub basic_unit_size: u32,
    pub rc_flags: u32,
    pub ICQ_quality_factor: u32,
    pub max_qp: u32,
    pub quality_factor: u32,
    pub target_frame_size: u32,
    pub va_reserved: [u32; 4],
}

/// `VAEncMiscParameterFrameRate`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VAEncMiscParameterFrameRate {
    pub framerate: u32,
    pub framerate_flags: u32,
    pub va_reserved: [u32; 4],
}

/// `VAEncMiscParameterHRD`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VAEncMiscParameterHRD {
    pub initial_buffer_fullness: u32,
    pub buffer_size: u32,
    pub va_reserved: [u32; 4],
}

/// Zero-initialised value of a plain-old-data FFI struct.
pub fn zeroed<T: Copy>() -> T {
    // SAFETY: only used for the `#[repr(C)]` structs above, made of integers,
    // arrays of integers and raw pointers, for all of which all-zero is valid.
    unsafe { std::mem::zeroed() }
}

macro_rules! va_functions {
    ($($name:ident: fn($($arg:ty),*) -> $ret:ty;)*) => {
        /// libva entry points resolved from `libva.so.2` / `libva-drm.so.2`.
        pub struct VaApi {
            $(pub $name: unsafe extern "C" fn($($arg),*) -> $ret,)*
            _va: Library,
            _va_drm: Library,
        }

        impl VaApi {
            /// Opens libva and resolves every function this plugin calls.
            pub fn load() -> Result<Self, String> {
                let missing = "libva.so.2 not found: install libva2 / libva-drm2";
                // SAFETY: loading libva runs its (trusted, system) initialisers only.
                let va = unsafe { Library::new("libva.so.2") }
                    .map_err(|e| format!("{missing} ({e})"))?;
                // SAFETY: as above.
                let va_drm = unsafe { Library::new("libva-drm.so.2") }
                    .map_err(|e| format!("libva-drm.so.2 not found: install libva2 / libva-drm2 ({e})"))?;
                $(
                    let $name = {
                        let sym = concat!(stringify!($name), "\0").as_bytes();
                        let lib = if stringify!($name) == "vaGetDisplayDRM" { &va_drm } else { &va };
                        // SAFETY: the declared signature matches the libva 2.x prototype.
                        let f: libloading::Symbol<unsafe extern "C" fn($($arg),*) -> $ret> =
                            unsafe { lib.get(sym) }.map_err(|e| {
                                format!("libva is too old: missing {} ({e})", stringify!($name))
                            })?;
                        *f
                    };
                )*
                Ok(Self { $($name,)* _va: va, _va_drm: va_drm })
            }
        }
    };
}

va_functions! {
    vaGetDisplayDRM: fn(c_int) -> VADisplay;
    vaInitialize: fn(VADisplay, *mut c_int, *mut c_int) -> VAStatus;
    vaTerminate: fn(VADisplay) -> VAStatus;
    vaErrorStr: fn(VAStatus) -> *const c_char;
    vaQueryVendorString: fn(VADisplay) -> *const c_char;
    vaMaxNumEntrypoints: fn(VADisplay) -> c_int;
    vaQueryConfigEntrypoints: fn(VADisplay, VAProfile, *mut VAEntrypoint, *mut c_int) -> VAStatus;
    vaGetConfigAttributes: fn(VADisplay, VAProfile, VAEntrypoint, *mut VAConfigAttrib, c_int) -> VAStatus;
    vaCreateConfig: fn(VADisplay, VAProfile, VAEntrypoint, *mut VAConfigAttrib, c_int, *mut VAConfigID) -> VAStatus;
    vaDestroyConfig: fn(VADisplay, VAConfigID) -> VAStatus;
    vaCreateSurfaces: fn(VADisplay, c_uint, c_uint, c_uint, *mut VASurfaceID, c_uint, *mut c_void, c_uint) -> VAStatus;
    vaDestroySurfaces: fn(VADisplay, *mut VASurfaceID, c_int) -> VAStatus;
    vaCreateContext: fn(VADisplay, VAConfigID, c_int, c_int, c_int, *mut VASurfaceID, c_int, *mut VAContextID) -> VAStatus;
    vaDestroyContext: fn(VADisplay, VAContextID) -> VAStatus;
    vaCreateBuffer: fn(VADisplay, VAContextID, VABufferType, c_uint, c_uint, *mut c_void, *mut VABufferID) -> VAStatus;
    vaDestroyBuffer: fn(VADisplay, VABufferID) -> VAStatus;
    vaMapBuffer: fn(VADisplay, VABufferID, *mut *mut c_void) -> VAStatus;
    vaUnmapBuffer: fn(VADisplay, VABufferID) -> VAStatus;
    vaDeriveImage: fn(VADisplay, VASurfaceID, *mut VAImage) -> VAStatus;
    vaCreateImage: fn(VADisplay, *mut VAImageFormat, c_int, c_int, *mut VAImage) -> VAStatus;
    vaPutImage: fn(VADisplay, VASurfaceID, VAImageID, c_int, c_int, c_uint, c_uint, c_int, c_int, c_uint, c_uint) -> VAStatus;
    vaDestroyImage: fn(VADisplay, VAImageID) -> VAStatus;
    vaBeginPicture: fn(VADisplay, VAContextID, VASurfaceID) -> VAStatus;
    vaRenderPicture: fn(VADisplay, VAContextID, *mut VABufferID, c_int) -> VAStatus;
    vaEndPicture: fn(VADisplay, VAContextID) -> VAStatus;
    vaSyncSurface: fn(VADisplay, VASurfaceID) -> VAStatus;
}

impl VaApi {
    /// The libva description of `status` (`vaErrorStr`).
    pub fn error_str(&self, status: VAStatus) -> String {
        // SAFETY: vaErrorStr returns a static NUL-terminated string for any value.
        let p = unsafe { (self.vaErrorStr)(status) };
        if p.is_null() {
            return format!("VA status {status:#x}");
        }
        // SAFETY: non-null static C string.
        let s = unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy();
        format!("{s} (VA status {status:#x})")
    }

    /// Turns a VA status into `Ok` or an error naming the call.
    pub fn check(&self, what: &str, status: VAStatus) -> Result<(), String> {
        if status == VA_STATUS_SUCCESS {
            Ok(())
        } else {
            Err(format!("{what} failed: {}", self.error_str(status)))
        }
    }
}
