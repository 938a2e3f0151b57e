//! The parts of the CUDA driver API and of NVENC's `nvEncodeAPI.h` (Video
//! Codec SDK API 12.0, struct revisions as shipped in the 12.x headers) that
//! this plugin uses, declared by hand and resolved at run time from
//! `libcuda.so.1` / `libnvidia-encode.so.1` with `libloading`.
//!
//! Every NVENC struct is declared with its full size: the fields this plugin
//! touches by name, everything else as reserved arrays at the same offsets,
//! so the driver can read and write the whole struct. Sizes and offsets are
//! asserted in the tests below against values worked out from the header.
#![allow(non_snake_case, missing_docs)]

use libloading::Library;
use std::ffi::{c_char, c_int, c_uint, c_void};

// ---------------------------------------------------------------- CUDA

pub type CUresult = c_int;
pub type CUdevice = c_int;
pub type CUcontext = *mut c_void;
pub const CUDA_SUCCESS: CUresult = 0;

macro_rules! dyn_functions {
    ($name:ident, $($f:ident: fn($($arg:ty),*) -> $ret:ty;)*) => {
        /// Entry points resolved from the driver library.
        pub struct $name {
            $(pub $f: unsafe extern "C" fn($($arg),*) -> $ret,)*
            _lib: Library,
        }

        impl $name {
            fn resolve(lib: Library, soname: &str) -> Result<Self, String> {
                $(
                    let $f = {
                        // SAFETY: the declared signature matches the driver's prototype.
                        let s: libloading::Symbol<unsafe extern "C" fn($($arg),*) -> $ret> =
                            unsafe { lib.get(concat!(stringify!($f), "\0").as_bytes()) }
                                .map_err(|e| format!("{soname} lacks {} ({e}): driver too old", stringify!($f)))?;
                        *s
                    };
                )*
                Ok(Self { $($f,)* _lib: lib })
            }
        }
    };
}

dyn_functions! {
    CudaApi,
    cuInit: fn(c_uint) -> CUresult;
    cuDriverGetVersion: fn(*mut c_int) -> CUresult;
    cuDeviceGetCount: fn(*mut c_int) -> CUresult;
    cuDeviceGet: fn(*mut CUdevice, c_int) -> CUresult;
    cuDeviceGetName: fn(*mut c_char, c_int, CUdevice) -> CUresult;
    cuCtxCreate_v2: fn(*mut CUcontext, c_uint, CUdevice) -> CUresult;
    cuCtxDestroy_v2: fn(CUcontext) -> CUresult;
    cuCtxPushCurrent_v2: fn(CUcontext) -> CUresult;
    cuCtxPopCurrent_v2: fn(*mut CUcontext) -> CUresult;
    cuGetErrorName: fn(CUresult, *mut *const c_char) -> CUresult;
}

/// Reason given when the CUDA driver library is missing.
pub const NO_LIBCUDA: &str = "no NVIDIA driver: libcuda.so.1 not found";
/// Reason given when the NVENC library is missing.
pub const NO_LIBNVENC: &str =
    "libnvidia-encode.so.1 not found: install the NVIDIA driver's encode library";

impl CudaApi {
    /// Opens `libcuda.so.1`.
    pub fn load() -> Result<Self, String> {
        // SAFETY: loading the system CUDA driver runs its initialisers only.
        let lib =
            unsafe { Library::new("libcuda.so.1") }.map_err(|e| format!("{NO_LIBCUDA} ({e})"))?;
        Self::resolve(lib, "libcuda.so.1")
    }

    /// `CUDA_ERROR_...` name of a result code.
    pub fn error_name(&self, r: CUresult) -> String {
        let mut p: *const c_char = std::ptr::null();
        // SAFETY: out-pointer valid; the returned string is static.
        let ok = unsafe { (self.cuGetErrorName)(r, &mut p) } == CUDA_SUCCESS && !p.is_null();
        if ok {
            // SAFETY: non-null static C string from the driver.
            let s = unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy();
            format!("{s} ({r})")
        } else {
            format!("CUDA error {r}")
        }
    }
}

// ---------------------------------------------------------------- NVENC

pub type NVENCSTATUS = c_int;

/// `GUID` as laid out on non-Windows platforms.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GUID {
    pub Data1: u32,
    pub Data2: u16,
    pub Data3: u16,
    pub Data4: [u8; 8],
}

const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> GUID {
    GUID {
        Data1: d1,
        Data2: d2,
        Data3: d3,
        Data4: d4,
    }
}

pub const NV_ENC_CODEC_H264_GUID: GUID = guid(
    0x6bc82762,
    0x4e63,
    0x4ca4,
    [0xaa, 0x85, 0x1e, 0x50, 0xf3, 0x21, 0xf6, 0xbf],
);
pub const NV_ENC_CODEC_HEVC_GUID: GUID = guid(
    0x790cdc88,
    0x4522,
    0x4d7b,
    [0x94, 0x25, 0xbd, 0xa9, 0x97, 0x5f, 0x76, 0x03],
);
pub const NV_ENC_H264_PROFILE_HIGH_GUID: GUID = guid(
    0xe7cbc309,
    0x4f7a,
    0x4b89,
    [0xaf, 0x2a, 0xd5, 0x37, 0xc9, 0x2b, 0xe3, 0x10],
);

/// Presets P1 (fastest) .. P7 (best quality).
pub const NV_ENC_PRESET_GUIDS: [GUID; 7] = [
    guid(
        0xfc0a8d3e,
        0x45f8,
        0x4cf8,
        [0x80, 0xc7, 0x29, 0x88, 0x71, 0x59, 0x0e, 0xbf],
    ),
    guid(
        0xf581cfb8,
        0x88d6,
        0x4381,
        [0x93, 0xf0, 0xdf, 0x13, 0xf9, 0xc2, 0x7d, 0xab],
    ),
    guid(
        0x36850110,
        0x3a07,
        0x441f,
        [0x94, 0xd5, 0x36, 0x70, 0x63, 0x1f, 0x91, 0xf6],
    ),
    guid(
        0x90a7b826,
        0xdf06,
        0x4862,
        [0xb9, 0xd2, 0xcd, 0x6d, 0x73, 0xa0, 0x86, 0x81],
    ),
    guid(
        0x21c6e6b4,
        0x297a,
        0x4cba,
        [0x99, 0x8f, 0xb6, 0xcb, 0xde, 0x72, 0xad, 0xe3],
    ),
    guid(
        0x8e75c279,
        0x6299,
        0x4ab6,
        [0x83, 0x02, 0x0b, 0x21, 0x5a, 0x33, 0x5c, 0xf5],
    ),
    guid(
        0x84848c12,
        0x6f71,
        0x4c13,
        [0x93, 0x1b, 0x53, 0xe2, 0x83, 0xf5, 0x79, 0x74],
    ),
];

pub const NVENCAPI_MAJOR_VERSION: u32 = 12;
pub const NVENCAPI_MINOR_VERSION: u32 = 0;
pub const NVENCAPI_VERSION: u32 = NVENCAPI_MAJOR_VERSION | (NVENCAPI_MINOR_VERSION << 24);

/// `NVENCAPI_STRUCT_VERSION(ver)`.
pub const fn struct_version(ver: u32) -> u32 {
    NVENCAPI_VERSION | (ver << 16) | (0x7 << 28)
}

pub const NV_ENCODE_API_FUNCTION_LIST_VER: u32 = struct_version(2);
pub const NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS_VER: u32 = struct_version(1);
pub const NV_ENC_PRESET_CONFIG_VER: u32 = struct_version(4) | (1 << 31);
pub const NV_ENC_CONFIG_VER: u32 = struct_version(8) | (1 << 31);
pub const NV_ENC_INITIALIZE_PARAMS_VER: u32 = struct_version(6) | (1 << 31);
pub const NV_ENC_CREATE_INPUT_BUFFER_VER: u32 = struct_version(1);
pub const NV_ENC_CREATE_BITSTREAM_BUFFER_VER: u32 = struct_version(1);
pub const NV_ENC_LOCK_INPUT_BUFFER_VER: u32 = struct_version(1);
pub const NV_ENC_PIC_PARAMS_VER: u32 = struct_version(6) | (1 << 31);
pub const NV_ENC_LOCK_BITSTREAM_VER: u32 = struct_version(1) | (1 << 31);
pub const NV_ENC_SEQUENCE_PARAM_PAYLOAD_VER: u32 = struct_version(1);

pub const NV_ENC_DEVICE_TYPE_CUDA: u32 = 1;
pub const NV_ENC_BUFFER_FORMAT_NV12: u32 = 1;
pub const NV_ENC_PIC_STRUCT_FRAME: u32 = 1;
pub const NV_ENC_PIC_TYPE_I: u32 = 2;
pub const NV_ENC_PIC_TYPE_IDR: u32 = 3;
pub const NV_ENC_PIC_FLAG_FORCEIDR: u32 = 0x2;
pub const NV_ENC_PIC_FLAG_OUTPUT_SPSPPS: u32 = 0x4;
pub const NV_ENC_PIC_FLAG_EOS: u32 = 0x8;
pub const NV_ENC_PARAMS_RC_CONSTQP: u32 = 0;
pub const NV_ENC_PARAMS_RC_VBR: u32 = 1;
pub const NV_ENC_TUNING_INFO_LOW_LATENCY: u32 = 2;
pub const NV_MAX_SEQ_HDR_LEN: usize = 512;

pub const NV_ENC_SUCCESS: NVENCSTATUS = 0;
pub const NV_ENC_ERR_NEED_MORE_INPUT: NVENCSTATUS = 17;

/// Names of `NVENCSTATUS` values 0..=26, in enum order.
const STATUS_NAMES: [&str; 27] = [
    "NV_ENC_SUCCESS",
    "NV_ENC_ERR_NO_ENCODE_DEVICE",
    "NV_ENC_ERR_UNSUPPORTED_DEVICE",
    "NV_ENC_ERR_INVALID_ENCODERDEVICE",
    "NV_ENC_ERR_INVALID_DEVICE",
    "NV_ENC_ERR_DEVICE_NOT_EXIST",
    "NV_ENC_ERR_INVALID_PTR",
    "NV_ENC_ERR_INVALID_EVENT",
    "NV_ENC_ERR_INVALID_PARAM",
    "NV_ENC_ERR_INVALID_CALL",
    "NV_ENC_ERR_OUT_OF_MEMORY",
    "NV_ENC_ERR_ENCODER_NOT_INITIALIZED",
    "NV_ENC_ERR_UNSUPPORTED_PARAM",
    "NV_ENC_ERR_LOCK_BUSY",
    "NV_ENC_ERR_NOT_ENOUGH_BUFFER",
    "NV_ENC_ERR_INVALID_VERSION",
    "NV_ENC_ERR_MAP_FAILED",
    "NV_ENC_ERR_NEED_MORE_INPUT",
    "NV_ENC_ERR_ENCODER_BUSY",
    "NV_ENC_ERR_EVENT_NOT_REGISTERD",
    "NV_ENC_ERR_GENERIC",
    "NV_ENC_ERR_INCOMPATIBLE_CLIENT_KEY",
    "NV_ENC_ERR_UNIMPLEMENTED",
    "NV_ENC_ERR_RESOURCE_REGISTER_FAILED",
    "NV_ENC_ERR_RESOURCE_NOT_REGISTERED",
    "NV_ENC_ERR_RESOURCE_NOT_MAPPED",
    "NV_ENC_ERR_NEED_MORE_OUTPUT",
];

/// `NV_ENC_ERR_...` name of a status.
pub fn status_name(s: NVENCSTATUS) -> String {
    usize::try_from(s)
        .ok()
        .and_then(|i| STATUS_NAMES.get(i))
        .map_or_else(|| format!("NVENCSTATUS {s}"), |n| format!("{n} ({s})"))
}

/// `NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS` (1552 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS {
    pub version: u32,
    pub deviceType: u32,
    pub device: *mut c_void,
    pub reserved: *mut c_void,
    pub apiVersion: u32,
    pub reserved1: [u32; 253],
    pub reserved2: [*mut c_void; 64],
}

/// `NV_ENC_QP`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NV_ENC_QP {
    pub qpInterP: u32,
    pub qpInterB: u32,
    pub qpIntra: u32,
}

/// `NV_ENC_RC_PARAMS` (128 bytes); `rest` covers everything from the
/// bit-field word (`enableMinQP`...) to the end.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NV_ENC_RC_PARAMS {
    pub version: u32,
    pub rateControlMode: u32,
    pub constQP: NV_ENC_QP,
    pub averageBitRate: u32,
    pub maxBitRate: u32,
    pub vbvBufferSize: u32,
    pub vbvInitialDelay: u32,
    pub rest: [u32; 23],
}

/// `NV_ENC_CONFIG_H264` (1792 bytes) up to `sliceModeData`; `flags` is the
/// leading bit-field word (`repeatSPSPPS` is bit 12).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_CONFIG_H264 {
    pub flags: u32,
    pub level: u32,
    pub idrPeriod: u32,
    pub separateColourPlaneFlag: u32,
    pub disableDeblockingFilterIDC: u32,
    pub numTemporalLayers: u32,
    pub spsId: u32,
    pub ppsId: u32,
    pub adaptiveTransformMode: u32,
    pub fmoMode: u32,
    pub bdirectMode: u32,
    pub entropyCodingMode: u32,
    pub stereoMode: u32,
    pub intraRefreshPeriod: u32,
    pub intraRefreshCnt: u32,
    pub maxNumRefFrames: u32,
    pub sliceMode: u32,
    pub sliceModeData: u32,
    /// VUI (28 words), LTR/chroma/ref fields (7 words), reserved1[267].
    pub rest: [u32; 302],
    pub reserved2: [*mut c_void; 64],
}

/// `repeatSPSPPS` bit in [`NV_ENC_CONFIG_H264::flags`].
pub const H264_REPEAT_SPSPPS: u32 = 1 << 12;
/// `outputAUD` bit in [`NV_ENC_CONFIG_H264::flags`].
pub const H264_OUTPUT_AUD: u32 = 1 << 6;

/// `NV_ENC_CONFIG` (3584 bytes); the codec union is seen as its H.264 member.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_CONFIG {
    pub version: u32,
    pub profileGUID: GUID,
    pub gopLength: u32,
    pub frameIntervalP: i32,
    pub monoChromeEncoding: u32,
    pub frameFieldMode: u32,
    pub mvPrecision: u32,
    pub rcParams: NV_ENC_RC_PARAMS,
    pub h264: NV_ENC_CONFIG_H264,
    pub reserved: [u32; 278],
    pub reserved2: [*mut c_void; 64],
}

/// `NV_ENC_PRESET_CONFIG` (5128 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_PRESET_CONFIG {
    pub version: u32,
    pub presetCfg: NV_ENC_CONFIG,
    pub reserved1: [u32; 255],
    pub reserved2: [*mut c_void; 64],
}

/// `NV_ENC_INITIALIZE_PARAMS` (1808 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_INITIALIZE_PARAMS {
    pub version: u32,
    pub encodeGUID: GUID,
    pub presetGUID: GUID,
    pub encodeWidth: u32,
    pub encodeHeight: u32,
    pub darWidth: u32,
    pub darHeight: u32,
    pub frameRateNum: u32,
    pub frameRateDen: u32,
    pub enableEncodeAsync: u32,
    pub enablePTD: u32,
    pub bitFields: u32,
    pub privDataSize: u32,
    pub privData: *mut c_void,
    pub encodeConfig: *mut NV_ENC_CONFIG,
    pub maxEncodeWidth: u32,
    pub maxEncodeHeight: u32,
    pub maxMEHintCountsPerBlock: [[u32; 4]; 2],
    pub tuningInfo: u32,
    pub bufferFormat: u32,
    pub numStateBuffers: u32,
    pub outputStatsLevel: u32,
    pub reserved: [u32; 285],
    pub reserved2: [*mut c_void; 64],
}

/// `NV_ENC_CREATE_INPUT_BUFFER` (776 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_CREATE_INPUT_BUFFER {
    pub version: u32,
    pub width: u32,
    pub height: u32,
    pub memoryHeap: u32,
    pub bufferFmt: u32,
    pub reserved: u32,
    pub inputBuffer: *mut c_void,
    pub pSysMemBuffer: *mut c_void,
    pub reserved1: [u32; 57],
    pub reserved2: [*mut c_void; 63],
}

/// `NV_ENC_CREATE_BITSTREAM_BUFFER` (776 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_CREATE_BITSTREAM_BUFFER {
    pub version: u32,
    pub size: u32,
    pub memoryHeap: u32,
    pub reserved: u32,
    pub bitstreamBuffer: *mut c_void,
    pub bitstreamBufferPtr: *mut c_void,
    pub reserved1: [u32; 58],
    pub reserved2: [*mut c_void; 64],
}

/// `NV_ENC_LOCK_INPUT_BUFFER` (1544 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_LOCK_INPUT_BUFFER {
    pub version: u32,
    pub bitFields: u32,
    pub inputBuffer: *mut c_void,
    pub bufferDataPtr: *mut c_void,
    pub pitch: u32,
    pub reserved1: [u32; 251],
    pub reserved2: [*mut c_void; 64],
}

/// `NV_ENC_PIC_PARAMS` (3344 bytes); the codec union (1536 bytes) and the
/// tail are opaque and stay zero.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_PIC_PARAMS {
    pub version: u32,
    pub inputWidth: u32,
    pub inputHeight: u32,
    pub inputPitch: u32,
    pub encodePicFlags: u32,
    pub frameIdx: u32,
    pub inputTimeStamp: u64,
    pub inputDuration: u64,
    pub inputBuffer: *mut c_void,
    pub outputBitstream: *mut c_void,
    pub completionEvent: *mut c_void,
    pub bufferFmt: u32,
    pub pictureStruct: u32,
    pub pictureType: u32,
    pub codecPicParams: [u64; 192],
    pub tail: [u64; 216],
}

/// `NV_ENC_LOCK_BITSTREAM` (1552 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_LOCK_BITSTREAM {
    pub version: u32,
    pub bitFields: u32,
    pub outputBitstream: *mut c_void,
    pub sliceOffsets: *mut u32,
    pub frameIdx: u32,
    pub hwEncodeStatus: u32,
    pub numSlices: u32,
    pub bitstreamSizeInBytes: u32,
    pub outputTimeStamp: u64,
    pub outputDuration: u64,
    pub bitstreamBufferPtr: *mut c_void,
    pub pictureType: u32,
    pub pictureStruct: u32,
    pub frameAvgQP: u32,
    pub frameSatd: u32,
    pub ltrFrameIdx: u32,
    pub ltrFrameBitmap: u32,
    pub temporalId: u32,
    pub intraMBCount: u32,
    pub interMBCount: u32,
    pub averageMVX: i32,
    pub averageMVY: i32,
    pub alphaLayerSizeInBytes: u32,
    pub outputStatsPtrSize: u32,
    pub outputStatsPtr: *mut c_void,
    pub frameIdxDisplay: u32,
    pub reserved1: [u32; 220],
    pub reserved2: [*mut c_void; 63],
    pub reservedInternal: [u32; 8],
}

/// `NV_ENC_SEQUENCE_PARAM_PAYLOAD` (1544 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NV_ENC_SEQUENCE_PARAM_PAYLOAD {
    pub version: u32,
    pub inBufferSize: u32,
    pub spsId: u32,
    pub ppsId: u32,
    pub spsppsBuffer: *mut c_void,
    pub outSPSPPSPayloadSize: *mut u32,
    pub reserved: [u32; 250],
    pub reserved2: [*mut c_void; 64],
}

type Enc = *mut c_void;
type Fp = Option<unsafe extern "C" fn()>;

/// `NV_ENCODE_API_FUNCTION_LIST` (2552 bytes). Entries this plugin calls are
/// typed; the others are untyped placeholders at their slots.
#[repr(C)]
pub struct NV_ENCODE_API_FUNCTION_LIST {
    pub version: u32,
    pub reserved: u32,
    pub nvEncOpenEncodeSession: Fp,
    pub nvEncGetEncodeGUIDCount: Option<unsafe extern "C" fn(Enc, *mut u32) -> NVENCSTATUS>,
    pub nvEncGetEncodeProfileGUIDCount: Fp,
    pub nvEncGetEncodeProfileGUIDs: Fp,
    pub nvEncGetEncodeGUIDs:
        Option<unsafe extern "C" fn(Enc, *mut GUID, u32, *mut u32) -> NVENCSTATUS>,
    pub nvEncGetInputFormatCount: Fp,
    pub nvEncGetInputFormats: Fp,
    pub nvEncGetEncodeCaps: Fp,
    pub nvEncGetEncodePresetCount: Fp,
    pub nvEncGetEncodePresetGUIDs: Fp,
    pub nvEncGetEncodePresetConfig: Fp,
    pub nvEncInitializeEncoder:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_INITIALIZE_PARAMS) -> NVENCSTATUS>,
    pub nvEncCreateInputBuffer:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_CREATE_INPUT_BUFFER) -> NVENCSTATUS>,
    pub nvEncDestroyInputBuffer: Option<unsafe extern "C" fn(Enc, *mut c_void) -> NVENCSTATUS>,
    pub nvEncCreateBitstreamBuffer:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_CREATE_BITSTREAM_BUFFER) -> NVENCSTATUS>,
    pub nvEncDestroyBitstreamBuffer: Option<unsafe extern "C" fn(Enc, *mut c_void) -> NVENCSTATUS>,
    pub nvEncEncodePicture:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_PIC_PARAMS) -> NVENCSTATUS>,
    pub nvEncLockBitstream:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_LOCK_BITSTREAM) -> NVENCSTATUS>,
    pub nvEncUnlockBitstream: Option<unsafe extern "C" fn(Enc, *mut c_void) -> NVENCSTATUS>,
    pub nvEncLockInputBuffer:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_LOCK_INPUT_BUFFER) -> NVENCSTATUS>,
    pub nvEncUnlockInputBuffer: Option<unsafe extern "C" fn(Enc, *mut c_void) -> NVENCSTATUS>,
    pub nvEncGetEncodeStats: Fp,
    pub nvEncGetSequenceParams:
        Option<unsafe extern "C" fn(Enc, *mut NV_ENC_SEQUENCE_PARAM_PAYLOAD) -> NVENCSTATUS>,
    pub nvEncRegisterAsyncEvent: Fp,
    pub nvEncUnregisterAsyncEvent: Fp,
    pub nvEncMapInputResource: Fp,
    pub nvEncUnmapInputResource: Fp,
    pub nvEncDestroyEncoder: Option<unsafe extern "C" fn(Enc) -> NVENCSTATUS>,
    pub nvEncInvalidateRefFrames: Fp,
    pub nvEncOpenEncodeSessionEx: Option<
        unsafe extern "C" fn(*mut NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS, *mut Enc) -> NVENCSTATUS,
    >,
    pub nvEncRegisterResource: Fp,
    pub nvEncUnregisterResource: Fp,
    pub nvEncReconfigureEncoder: Fp,
    pub reserved1: *mut c_void,
    pub nvEncCreateMVBuffer: Fp,
    pub nvEncDestroyMVBuffer: Fp,
    pub nvEncRunMotionEstimationOnly: Fp,
    pub nvEncGetLastErrorString: Option<unsafe extern "C" fn(Enc) -> *const c_char>,
    pub nvEncSetIOCudaStreams: Fp,
    pub nvEncGetEncodePresetConfigEx: Option<
        unsafe extern "C" fn(Enc, GUID, GUID, u32, *mut NV_ENC_PRESET_CONFIG) -> NVENCSTATUS,
    >,
    pub nvEncGetSequenceParamEx: Fp,
    pub nvEncRestoreEncoderState: Fp,
    pub nvEncLookaheadPicture: Fp,
    pub reserved2: [*mut c_void; 275],
}

/// The two exported entry points of `libnvidia-encode.so.1`.
pub struct NvencLib {
    pub NvEncodeAPIGetMaxSupportedVersion: unsafe extern "C" fn(*mut u32) -> NVENCSTATUS,
    pub NvEncodeAPICreateInstance:
        unsafe extern "C" fn(*mut NV_ENCODE_API_FUNCTION_LIST) -> NVENCSTATUS,
    _lib: Library,
}

impl NvencLib {
    /// Opens `libnvidia-encode.so.1`.
    pub fn load() -> Result<Self, String> {
        // SAFETY: loading the system NVENC library runs its initialisers only.
        let lib = unsafe { Library::new("libnvidia-encode.so.1") }
            .map_err(|e| format!("{NO_LIBNVENC} ({e})"))?;
        // SAFETY: signatures match nvEncodeAPI.h.
        let max = unsafe {
            lib.get::<unsafe extern "C" fn(*mut u32) -> NVENCSTATUS>(
                b"NvEncodeAPIGetMaxSupportedVersion\0",
            )
        }
        .map_err(|e| {
            format!("libnvidia-encode.so.1 lacks NvEncodeAPIGetMaxSupportedVersion ({e})")
        })?;
        let max = *max;
        // SAFETY: as above.
        let create = unsafe {
            lib.get::<unsafe extern "C" fn(*mut NV_ENCODE_API_FUNCTION_LIST) -> NVENCSTATUS>(
                b"NvEncodeAPICreateInstance\0",
            )
        }
        .map_err(|e| format!("libnvidia-encode.so.1 lacks NvEncodeAPICreateInstance ({e})"))?;
        let create = *create;
        Ok(Self {
            NvEncodeAPIGetMaxSupportedVersion: max,
            NvEncodeAPICreateInstance: create,
            _lib: lib,
        })
    }
}

/// A zeroed FFI struct: every NVENC struct is integers, arrays and
/// nullable pointers, for which all-zero is valid (and what the API expects
/// in reserved fields).
pub fn zeroed<T>() -> Box<T> {
    // SAFETY: only instantiated with the POD structs above (integers, raw or
    // nullable function pointers), which are valid when all-zero.
    unsafe { Box::new(std::mem::zeroed()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn struct_sizes_match_the_sdk_12_header() {
        assert_eq!(size_of::<GUID>(), 16);
        assert_eq!(size_of::<NV_ENC_RC_PARAMS>(), 128);
        assert_eq!(size_of::<NV_ENC_CONFIG_H264>(), 1792);
        assert_eq!(size_of::<NV_ENC_CONFIG>(), 3584);
        assert_eq!(size_of::<NV_ENC_PRESET_CONFIG>(), 5128);
        assert_eq!(size_of::<NV_ENC_INITIALIZE_PARAMS>(), 1808);
        assert_eq!(size_of::<NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS>(), 1552);
        assert_eq!(size_of::<NV_ENC_CREATE_INPUT_BUFFER>(), 776);
        assert_eq!(size_of::<NV_ENC_CREATE_BITSTREAM_BUFFER>(), 776);
        assert_eq!(size_of::<NV_ENC_LOCK_INPUT_BUFFER>(), 1544);
        assert_eq!(size_of::<NV_ENC_PIC_PARAMS>(), 3344);
        assert_eq!(size_of::<NV_ENC_LOCK_BITSTREAM>(), 1552);
        assert_eq!(size_of::<NV_ENC_SEQUENCE_PARAM_PAYLOAD>(), 1544);
        assert_eq!(size_of::<NV_ENCODE_API_FUNCTION_LIST>(), 2552);
    }

    #[test]
    fn field_offsets_match_the_sdk_12_header() {
        assert_eq!(offset_of!(NV_ENC_CONFIG, gopLength), 20);
        assert_eq!(offset_of!(NV_ENC_CONFIG, frameIntervalP), 24);
        assert_eq!(offset_of!(NV_ENC_CONFIG, rcParams), 40);
        assert_eq!(offset_of!(NV_ENC_CONFIG, h264), 168);
        assert_eq!(offset_of!(NV_ENC_CONFIG, reserved), 1960);
        assert_eq!(offset_of!(NV_ENC_RC_PARAMS, averageBitRate), 20);
        assert_eq!(offset_of!(NV_ENC_RC_PARAMS, vbvInitialDelay), 32);
        assert_eq!(offset_of!(NV_ENC_CONFIG_H264, idrPeriod), 8);
        assert_eq!(offset_of!(NV_ENC_CONFIG_H264, maxNumRefFrames), 60);
        assert_eq!(offset_of!(NV_ENC_CONFIG_H264, reserved2), 1280);
        assert_eq!(offset_of!(NV_ENC_PRESET_CONFIG, presetCfg), 8);
        assert_eq!(offset_of!(NV_ENC_PRESET_CONFIG, reserved1), 3592);
        assert_eq!(offset_of!(NV_ENC_INITIALIZE_PARAMS, encodeWidth), 36);
        assert_eq!(offset_of!(NV_ENC_INITIALIZE_PARAMS, enablePTD), 64);
        assert_eq!(offset_of!(NV_ENC_INITIALIZE_PARAMS, privData), 80);
        assert_eq!(offset_of!(NV_ENC_INITIALIZE_PARAMS, encodeConfig), 88);
        assert_eq!(
            offset_of!(NV_ENC_INITIALIZE_PARAMS, maxMEHintCountsPerBlock),
            104
        );
        assert_eq!(offset_of!(NV_ENC_INITIALIZE_PARAMS, tuningInfo), 136);
        assert_eq!(offset_of!(NV_ENC_INITIALIZE_PARAMS, reserved2), 1296);
        assert_eq!(
            offset_of!(NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS, apiVersion),
            24
        );
        assert_eq!(offset_of!(NV_ENC_CREATE_INPUT_BUFFER, inputBuffer), 24);
        assert_eq!(
            offset_of!(NV_ENC_CREATE_BITSTREAM_BUFFER, bitstreamBuffer),
            16
        );
        assert_eq!(offset_of!(NV_ENC_LOCK_INPUT_BUFFER, pitch), 24);
        assert_eq!(offset_of!(NV_ENC_PIC_PARAMS, inputTimeStamp), 24);
        assert_eq!(offset_of!(NV_ENC_PIC_PARAMS, inputBuffer), 40);
        assert_eq!(offset_of!(NV_ENC_PIC_PARAMS, bufferFmt), 64);
        assert_eq!(offset_of!(NV_ENC_PIC_PARAMS, pictureType), 72);
        assert_eq!(offset_of!(NV_ENC_PIC_PARAMS, codecPicParams), 80);
        assert_eq!(offset_of!(NV_ENC_PIC_PARAMS, tail), 1616);
        assert_eq!(offset_of!(NV_ENC_LOCK_BITSTREAM, bitstreamSizeInBytes), 36);
        assert_eq!(offset_of!(NV_ENC_LOCK_BITSTREAM, bitstreamBufferPtr), 56);
        assert_eq!(offset_of!(NV_ENC_LOCK_BITSTREAM, pictureType), 64);
        assert_eq!(offset_of!(NV_ENC_LOCK_BITSTREAM, outputStatsPtr), 120);
        assert_eq!(offset_of!(NV_ENC_LOCK_BITSTREAM, reservedInternal), 1520);
        assert_eq!(
            offset_of!(NV_ENC_SEQUENCE_PARAM_PAYLOAD, outSPSPPSPayloadSize),
            24
        );
        assert_eq!(
            offset_of!(NV_ENCODE_API_FUNCTION_LIST, nvEncInitializeEncoder),
            8 + 11 * 8
        );
        assert_eq!(
            offset_of!(NV_ENCODE_API_FUNCTION_LIST, nvEncEncodePicture),
            8 + 16 * 8
        );
        assert_eq!(
            offset_of!(NV_ENCODE_API_FUNCTION_LIST, nvEncGetSequenceParams),
            8 + 22 * 8
        );
        assert_eq!(
            offset_of!(NV_ENCODE_API_FUNCTION_LIST, nvEncDestroyEncoder),
            8 + 27 * 8
        );
        assert_eq!(
            offset_of!(NV_ENCODE_API_FUNCTION_LIST, nvEncOpenEncodeSessionEx),
            8 + 29 * 8
        );
        assert_eq!(
            offset_of!(NV_ENCODE_API_FUNCTION_LIST, nvEncGetEncodePresetConfigEx),
            8 + 39 * 8
        );
    }

    #[test]
    fn struct_versions_follow_the_macro() {
        assert_eq!(NVENCAPI_VERSION, 12);
        assert_eq!(NV_ENCODE_API_FUNCTION_LIST_VER, 0x7002_000c);
        assert_eq!(NV_ENC_INITIALIZE_PARAMS_VER, 0xf006_000c);
        assert_eq!(NV_ENC_CONFIG_VER, 0xf008_000c);
        assert_eq!(NV_ENC_PIC_PARAMS_VER, 0xf006_000c);
        assert_eq!(NV_ENC_LOCK_BITSTREAM_VER, 0xf001_000c);
    }

    #[test]
    fn status_names() {
        assert_eq!(status_name(1), "NV_ENC_ERR_NO_ENCODE_DEVICE (1)");
        assert_eq!(status_name(2), "NV_ENC_ERR_UNSUPPORTED_DEVICE (2)");
        assert_eq!(status_name(15), "NV_ENC_ERR_INVALID_VERSION (15)");
        assert_eq!(status_name(99), "NVENCSTATUS 99");
    }
}
