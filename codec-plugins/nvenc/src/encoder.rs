//! One NVENC H.264 session on a CUDA context: driver loading and checks
//! (the probe path), encoder initialisation from a preset, NV12 upload into
//! an NVENC input buffer, synchronous encode and bitstream read-back.

use crate::ffi::*;
use crate::settings::{apply, Settings};
use s6_codec_abi::helpers::PluginError;
use std::ffi::{c_char, c_void};

/// An encoded access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// Annex-B bytes.
    pub data: Vec<u8>,
    /// IDR / I picture.
    pub keyframe: bool,
    /// The frame's timestamp as passed in.
    pub pts: i64,
}

/// NV12 planes of one frame.
pub struct Nv12<'a> {
    /// Luma rows.
    pub y: &'a [u8],
    /// Luma stride.
    pub y_stride: usize,
    /// Interleaved chroma rows.
    pub uv: &'a [u8],
    /// Chroma stride.
    pub uv_stride: usize,
}

/// Makes the session's CUDA context current for a scope.
struct CtxGuard<'a> {
    cuda: &'a CudaApi,
}

impl<'a> CtxGuard<'a> {
    fn push(cuda: &'a CudaApi, ctx: CUcontext) -> Result<Self, PluginError> {
        // SAFETY: ctx is a live context created by cuCtxCreate.
        let r = unsafe { (cuda.cuCtxPushCurrent_v2)(ctx) };
        if r != CUDA_SUCCESS {
            return Err(PluginError::error(format!(
                "cuCtxPushCurrent failed: {}",
                cuda.error_name(r)
            )));
        }
        Ok(Self { cuda })
    }
}

impl Drop for CtxGuard<'_> {
    fn drop(&mut self) {
        let mut old: CUcontext = std::ptr::null_mut();
        // SAFETY: pops the context pushed in `push` on this thread.
        unsafe { (self.cuda.cuCtxPopCurrent_v2)(&mut old) };
    }
}

/// A live encode session.
pub struct Encoder {
    cuda: CudaApi,
    _nvenc: NvencLib,
    fns: Box<NV_ENCODE_API_FUNCTION_LIST>,
    ctx: CUcontext,
    enc: *mut c_void,
    input: *mut c_void,
    bitstream: *mut c_void,
    settings: Settings,
    frame_idx: u32,
    /// Name of the GPU, for messages.
    pub gpu: String,
}

fn need<T>(f: Option<T>, name: &str) -> Result<T, PluginError> {
    f.ok_or_else(|| PluginError::unavailable(format!("NVENC driver did not provide {name}")))
}

impl Encoder {
    /// Loads the driver, opens a session and initialises the encoder.
    pub fn open(settings: &Settings) -> Result<Self, PluginError> {
        settings.validate().map_err(PluginError::error)?;
        let cuda = CudaApi::load().map_err(PluginError::unavailable)?;
        let nvenc = NvencLib::load().map_err(PluginError::unavailable)?;
        // SAFETY: plain driver call.
        let r = unsafe { (cuda.cuInit)(0) };
        if r != CUDA_SUCCESS {
            return Err(PluginError::unavailable(format!(
                "cuInit failed: {}",
                cuda.error_name(r)
            )));
        }
        let mut count = 0;
        // SAFETY: out-pointer valid.
        let r = unsafe { (cuda.cuDeviceGetCount)(&mut count) };
        if r != CUDA_SUCCESS || count == 0 {
            return Err(PluginError::unavailable(if r == CUDA_SUCCESS {
                "no CUDA device".to_string()
            } else {
                format!(
                    "no CUDA device: cuDeviceGetCount failed: {}",
                    cuda.error_name(r)
                )
            }));
        }
        if settings.cuda_device >= count {
            return Err(PluginError::unavailable(format!(
                "CUDA device {} requested, {count} present",
                settings.cuda_device
            )));
        }
        let mut dev: CUdevice = 0;
        // SAFETY: ordinal checked against the count; out-pointer valid.
        let r = unsafe { (cuda.cuDeviceGet)(&mut dev, settings.cuda_device) };
        if r != CUDA_SUCCESS {
            return Err(PluginError::unavailable(format!(
                "cuDeviceGet failed: {}",
                cuda.error_name(r)
            )));
        }
        let mut name = [0 as c_char; 128];
        // SAFETY: buffer of the given length.
        unsafe { (cuda.cuDeviceGetName)(name.as_mut_ptr(), name.len() as i32, dev) };
        // SAFETY: the driver NUL-terminates (buffer zeroed, last byte never written past len).
        let gpu = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        let mut max_ver = 0u32;
        // SAFETY: out-pointer valid.
        let st = unsafe { (nvenc.NvEncodeAPIGetMaxSupportedVersion)(&mut max_ver) };
        if st != NV_ENC_SUCCESS {
            return Err(PluginError::unavailable(format!(
                "NvEncodeAPIGetMaxSupportedVersion failed: {}",
                status_name(st)
            )));
        }
        let needed = (NVENCAPI_MAJOR_VERSION << 4) | NVENCAPI_MINOR_VERSION;
        if max_ver < needed {
            return Err(PluginError::unavailable(format!(
                "the NVIDIA driver supports NVENC API {}.{}, this plugin needs {}.{}: update the driver",
                max_ver >> 4,
                max_ver & 0xf,
                NVENCAPI_MAJOR_VERSION,
                NVENCAPI_MINOR_VERSION
            )));
        }
        let mut fns = zeroed::<NV_ENCODE_API_FUNCTION_LIST>();
        fns.version = NV_ENCODE_API_FUNCTION_LIST_VER;
        // SAFETY: `fns` is a zeroed function list of the declared version and size.
        let st = unsafe { (nvenc.NvEncodeAPICreateInstance)(&mut *fns) };
        if st != NV_ENC_SUCCESS {
            return Err(PluginError::unavailable(format!(
                "NvEncodeAPICreateInstance failed: {}",
                status_name(st)
            )));
        }
        let mut ctx: CUcontext = std::ptr::null_mut();
        // SAFETY: valid device; out-pointer valid.
        let r = unsafe { (cuda.cuCtxCreate_v2)(&mut ctx, 0, dev) };
        if r != CUDA_SUCCESS {
            return Err(PluginError::unavailable(format!(
                "cuCtxCreate on {gpu} failed: {}",
                cuda.error_name(r)
            )));
        }
        let mut popped: CUcontext = std::ptr::null_mut();
        // SAFETY: cuCtxCreate made ctx current on this thread; sessions push it per call.
        unsafe { (cuda.cuCtxPopCurrent_v2)(&mut popped) };
        let mut e = Self {
            cuda,
            _nvenc: nvenc,
            fns,
            ctx,
            enc: std::ptr::null_mut(),
            input: std::ptr::null_mut(),
            bitstream: std::ptr::null_mut(),
            settings: settings.clone(),
            frame_idx: 0,
            gpu,
        };
        e.start()?;
        Ok(e)
    }

    fn start(&mut self) -> Result<(), PluginError> {
        let _g = CtxGuard::push(&self.cuda, self.ctx)?;
        let open = need(
            self.fns.nvEncOpenEncodeSessionEx,
            "nvEncOpenEncodeSessionEx",
        )?;
        let mut p = zeroed::<NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS>();
        p.version = NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS_VER;
        p.deviceType = NV_ENC_DEVICE_TYPE_CUDA;
        p.device = self.ctx;
        p.apiVersion = NVENCAPI_VERSION;
        // SAFETY: params filled as the API requires; out-pointer valid.
        let st = unsafe { open(&mut *p, &mut self.enc) };
        if st != NV_ENC_SUCCESS {
            self.enc = std::ptr::null_mut();
            return Err(PluginError::unavailable(format!(
                "nvEncOpenEncodeSessionEx on {} failed: {}{}",
                self.gpu,
                status_name(st),
                match st {
                    1 | 2 => " (this GPU has no usable NVENC engine)",
                    _ => "",
                }
            )));
        }
        self.check_h264()?;
        let preset_ex = need(
            self.fns.nvEncGetEncodePresetConfigEx,
            "nvEncGetEncodePresetConfigEx",
        )?;
        let mut preset = zeroed::<NV_ENC_PRESET_CONFIG>();
        preset.version = NV_ENC_PRESET_CONFIG_VER;
        preset.presetCfg.version = NV_ENC_CONFIG_VER;
        let preset_guid = self.settings.preset_guid();
        // SAFETY: open session; struct versions set; preset struct of full size.
        let st = unsafe {
            preset_ex(
                self.enc,
                NV_ENC_CODEC_H264_GUID,
                preset_guid,
                NV_ENC_TUNING_INFO_LOW_LATENCY,
                &mut *preset,
            )
        };
        self.ok(
            st,
            &format!(
                "nvEncGetEncodePresetConfigEx(P{})",
                self.settings.preset_number()
            ),
        )?;
        let mut cfg = preset.presetCfg;
        cfg.version = NV_ENC_CONFIG_VER;
        cfg.profileGUID = NV_ENC_H264_PROFILE_HIGH_GUID;
        apply(&mut cfg, &self.settings);
        let mut init = zeroed::<NV_ENC_INITIALIZE_PARAMS>();
        let s = &self.settings;
        init.version = NV_ENC_INITIALIZE_PARAMS_VER;
        init.encodeGUID = NV_ENC_CODEC_H264_GUID;
        init.presetGUID = preset_guid;
        init.encodeWidth = s.width;
        init.encodeHeight = s.height;
        init.darWidth = s.width;
        init.darHeight = s.height;
        init.frameRateNum = s.fps_num;
        init.frameRateDen = s.fps_den;
        init.enablePTD = 1;
        init.encodeConfig = &mut cfg;
        init.maxEncodeWidth = s.width;
        init.maxEncodeHeight = s.height;
        init.tuningInfo = NV_ENC_TUNING_INFO_LOW_LATENCY;
        let initialize = need(self.fns.nvEncInitializeEncoder, "nvEncInitializeEncoder")?;
        // SAFETY: init points at `cfg`, which outlives the call.
        let st = unsafe { initialize(self.enc, &mut *init) };
        self.ok(st, "nvEncInitializeEncoder")?;

        let mut ib = zeroed::<NV_ENC_CREATE_INPUT_BUFFER>();
        ib.version = NV_ENC_CREATE_INPUT_BUFFER_VER;
        ib.width = s.width;
        ib.height = s.height;
        ib.bufferFmt = NV_ENC_BUFFER_FORMAT_NV12;
        let create_in = need(self.fns.nvEncCreateInputBuffer, "nvEncCreateInputBuffer")?;
        // SAFETY: initialised encoder; struct filled.
        let st = unsafe { create_in(self.enc, &mut *ib) };
        self.ok(st, "nvEncCreateInputBuffer")?;
        self.input = ib.inputBuffer;
        let mut bb = zeroed::<NV_ENC_CREATE_BITSTREAM_BUFFER>();
        bb.version = NV_ENC_CREATE_BITSTREAM_BUFFER_VER;
        let create_bs = need(
            self.fns.nvEncCreateBitstreamBuffer,
            "nvEncCreateBitstreamBuffer",
        )?;
        // SAFETY: as above.
        let st = unsafe { create_bs(self.enc, &mut *bb) };
        self.ok(st, "nvEncCreateBitstreamBuffer")?;
        self.bitstream = bb.bitstreamBuffer;
        Ok(())
    }

    fn ok(&self, st: NVENCSTATUS, what: &str) -> Result<(), PluginError> {
        if st == NV_ENC_SUCCESS {
            return Ok(());
        }
        let detail = self
            .fns
            .nvEncGetLastErrorString
            .filter(|_| !self.enc.is_null())
            // SAFETY: open session; the string is owned by the driver.
            .map(|f| unsafe { f(self.enc) })
            .filter(|p| !p.is_null())
            // SAFETY: non-null NUL-terminated string.
            .map(|p| {
                unsafe { std::ffi::CStr::from_ptr(p) }
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|s| !s.is_empty())
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        Err(PluginError::unavailable(format!(
            "{what} failed on {}: {}{detail}",
            self.gpu,
            status_name(st)
        )))
    }

    fn check_h264(&self) -> Result<(), PluginError> {
        let count_fn = need(self.fns.nvEncGetEncodeGUIDCount, "nvEncGetEncodeGUIDCount")?;
        let list_fn = need(self.fns.nvEncGetEncodeGUIDs, "nvEncGetEncodeGUIDs")?;
        let mut n = 0u32;
        // SAFETY: open session; out-pointer valid.
        self.ok(
            unsafe { count_fn(self.enc, &mut n) },
            "nvEncGetEncodeGUIDCount",
        )?;
        let mut guids = vec![GUID::default(); n as usize];
        let mut got = 0u32;
        // SAFETY: array of `n` GUIDs.
        self.ok(
            unsafe { list_fn(self.enc, guids.as_mut_ptr(), n, &mut got) },
            "nvEncGetEncodeGUIDs",
        )?;
        guids.truncate(got.min(n) as usize);
        if !guids.contains(&NV_ENC_CODEC_H264_GUID) {
            return Err(PluginError::unavailable(format!(
                "GPU {} has no NVENC H.264 support",
                self.gpu
            )));
        }
        Ok(())
    }

    /// The SPS/PPS the encoder writes (`nvEncGetSequenceParams`).
    pub fn codec_config(&self) -> Result<Vec<u8>, PluginError> {
        let _g = CtxGuard::push(&self.cuda, self.ctx)?;
        let f = need(self.fns.nvEncGetSequenceParams, "nvEncGetSequenceParams")?;
        let mut buf = vec![0u8; NV_MAX_SEQ_HDR_LEN];
        let mut out_len = 0u32;
        let mut p = zeroed::<NV_ENC_SEQUENCE_PARAM_PAYLOAD>();
        p.version = NV_ENC_SEQUENCE_PARAM_PAYLOAD_VER;
        p.inBufferSize = buf.len() as u32;
        p.spsppsBuffer = buf.as_mut_ptr().cast();
        p.outSPSPPSPayloadSize = &mut out_len;
        // SAFETY: buffer and length pointer outlive the call.
        let st = unsafe { f(self.enc, &mut *p) };
        self.ok(st, "nvEncGetSequenceParams")
            .map_err(|e| PluginError::error(e.message))?;
        buf.truncate((out_len as usize).min(NV_MAX_SEQ_HDR_LEN));
        Ok(buf)
    }

    /// Encodes one NV12 frame synchronously.
    pub fn encode(
        &mut self,
        frame: &Nv12<'_>,
        pts: i64,
        force_idr: bool,
    ) -> Result<Option<EncodedFrame>, PluginError> {
        let _g = CtxGuard::push(&self.cuda, self.ctx)?;
        self.upload(frame)?;
        let mut pic = zeroed::<NV_ENC_PIC_PARAMS>();
        pic.version = NV_ENC_PIC_PARAMS_VER;
        pic.inputWidth = self.settings.width;
        pic.inputHeight = self.settings.height;
        pic.inputPitch = self.settings.width;
        pic.encodePicFlags = if force_idr || self.frame_idx == 0 {
            NV_ENC_PIC_FLAG_FORCEIDR | NV_ENC_PIC_FLAG_OUTPUT_SPSPPS
        } else {
            0
        };
        pic.frameIdx = self.frame_idx;
        pic.inputTimeStamp = pts as u64;
        pic.inputBuffer = self.input;
        pic.outputBitstream = self.bitstream;
        pic.bufferFmt = NV_ENC_BUFFER_FORMAT_NV12;
        pic.pictureStruct = NV_ENC_PIC_STRUCT_FRAME;
        self.frame_idx = self.frame_idx.wrapping_add(1);
        let f = need(self.fns.nvEncEncodePicture, "nvEncEncodePicture")?;
        // SAFETY: buffers belong to this session.
        let st = unsafe { f(self.enc, &mut *pic) };
        if st == NV_ENC_ERR_NEED_MORE_INPUT {
            return Ok(None);
        }
        self.ok(st, "nvEncEncodePicture")
            .map_err(|e| PluginError::error(e.message))?;
        self.read_bitstream().map(Some)
    }

    /// Signals end of stream (no frames are buffered: I/P only).
    pub fn flush(&mut self) -> Result<(), PluginError> {
        let _g = CtxGuard::push(&self.cuda, self.ctx)?;
        let mut pic = zeroed::<NV_ENC_PIC_PARAMS>();
        pic.version = NV_ENC_PIC_PARAMS_VER;
        pic.encodePicFlags = NV_ENC_PIC_FLAG_EOS;
        let f = need(self.fns.nvEncEncodePicture, "nvEncEncodePicture")?;
        // SAFETY: EOS picture with no buffers, as the API documents.
        let st = unsafe { f(self.enc, &mut *pic) };
        self.ok(st, "nvEncEncodePicture(EOS)")
            .map_err(|e| PluginError::error(e.message))
    }

    fn upload(&self, frame: &Nv12<'_>) -> Result<(), PluginError> {
        let lock = need(self.fns.nvEncLockInputBuffer, "nvEncLockInputBuffer")?;
        let unlock = need(self.fns.nvEncUnlockInputBuffer, "nvEncUnlockInputBuffer")?;
        let mut l = zeroed::<NV_ENC_LOCK_INPUT_BUFFER>();
        l.version = NV_ENC_LOCK_INPUT_BUFFER_VER;
        l.inputBuffer = self.input;
        // SAFETY: input buffer of this session.
        let st = unsafe { lock(self.enc, &mut *l) };
        self.ok(st, "nvEncLockInputBuffer")
            .map_err(|e| PluginError::error(e.message))?;
        let (w, h) = (self.settings.width as usize, self.settings.height as usize);
        let pitch = l.pitch as usize;
        let result = if l.bufferDataPtr.is_null() || pitch < w {
            Err(PluginError::error(
                "nvEncLockInputBuffer returned no usable buffer",
            ))
        } else {
            // SAFETY: a locked NV12 buffer holds pitch × (h × 3/2) bytes.
            let dst = unsafe {
                std::slice::from_raw_parts_mut(l.bufferDataPtr.cast::<u8>(), pitch * h * 3 / 2)
            };
            copy_nv12(dst, pitch, frame, w, h).map_err(PluginError::error)
        };
        // SAFETY: locked above.
        unsafe { unlock(self.enc, self.input) };
        result
    }

    fn read_bitstream(&self) -> Result<EncodedFrame, PluginError> {
        let lock = need(self.fns.nvEncLockBitstream, "nvEncLockBitstream")?;
        let unlock = need(self.fns.nvEncUnlockBitstream, "nvEncUnlockBitstream")?;
        let mut l = zeroed::<NV_ENC_LOCK_BITSTREAM>();
        l.version = NV_ENC_LOCK_BITSTREAM_VER;
        l.outputBitstream = self.bitstream;
        // SAFETY: bitstream buffer of this session, just encoded into (blocking lock).
        let st = unsafe { lock(self.enc, &mut *l) };
        self.ok(st, "nvEncLockBitstream")
            .map_err(|e| PluginError::error(e.message))?;
        let data = if l.bitstreamBufferPtr.is_null() {
            Vec::new()
        } else {
            // SAFETY: the locked buffer holds bitstreamSizeInBytes bytes.
            unsafe {
                std::slice::from_raw_parts(
                    l.bitstreamBufferPtr.cast::<u8>(),
                    l.bitstreamSizeInBytes as usize,
                )
            }
            .to_vec()
        };
        // SAFETY: locked above.
        unsafe { unlock(self.enc, self.bitstream) };
        Ok(EncodedFrame {
            data,
            keyframe: matches!(l.pictureType, NV_ENC_PIC_TYPE_IDR | NV_ENC_PIC_TYPE_I),
            pts: l.outputTimeStamp as i64,
        })
    }
}

/// Copies NV12 planes into a pitched NV12 buffer (`pitch × h` luma rows,
/// then `pitch × h/2` chroma rows).
pub fn copy_nv12(
    dst: &mut [u8],
    pitch: usize,
    f: &Nv12<'_>,
    w: usize,
    h: usize,
) -> Result<(), String> {
    if dst.len() < pitch * h * 3 / 2 || pitch < w {
        return Err(format!(
            "NVENC input buffer too small for {w}x{h} (pitch {pitch})"
        ));
    }
    for r in 0..h {
        let src =
            f.y.get(r * f.y_stride..r * f.y_stride + w)
                .ok_or("luma plane too short")?;
        dst[r * pitch..r * pitch + w].copy_from_slice(src);
    }
    let base = pitch * h;
    for r in 0..h / 2 {
        let src =
            f.uv.get(r * f.uv_stride..r * f.uv_stride + w)
                .ok_or("chroma plane too short")?;
        dst[base + r * pitch..base + r * pitch + w].copy_from_slice(src);
    }
    Ok(())
}

impl Drop for Encoder {
    fn drop(&mut self) {
        let Ok(guard) = CtxGuard::push(&self.cuda, self.ctx) else {
            return;
        };
        // SAFETY: each handle belongs to this session and is released once;
        // the session is destroyed after its buffers.
        unsafe {
            if !self.enc.is_null() {
                if let (false, Some(f)) = (self.input.is_null(), self.fns.nvEncDestroyInputBuffer) {
                    f(self.enc, self.input);
                }
                if let (false, Some(f)) = (
                    self.bitstream.is_null(),
                    self.fns.nvEncDestroyBitstreamBuffer,
                ) {
                    f(self.enc, self.bitstream);
                }
                if let Some(f) = self.fns.nvEncDestroyEncoder {
                    f(self.enc);
                }
            }
        }
        drop(guard);
        // SAFETY: the context was created by this session and is no longer current.
        unsafe { (self.cuda.cuCtxDestroy_v2)(self.ctx) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nv12_copy_respects_pitch() {
        let y: Vec<u8> = (0..8).collect(); // 4x2
        let uv = [50u8, 60, 70, 80];
        let f = Nv12 {
            y: &y,
            y_stride: 4,
            uv: &uv,
            uv_stride: 4,
        };
        let mut dst = vec![0u8; 8 * 3];
        copy_nv12(&mut dst, 8, &f, 4, 2).expect("copy");
        assert_eq!(&dst[0..4], &[0, 1, 2, 3]);
        assert_eq!(&dst[8..12], &[4, 5, 6, 7]);
        assert_eq!(&dst[16..20], &[50, 60, 70, 80]);
        assert!(copy_nv12(&mut dst[..10], 8, &f, 4, 2).is_err());
    }
}
