//! A safe wrapper around one SVT-AV1 encoder instance: open, send pictures,
//! collect packets, flush, close.

use crate::ffi::{self, BufferHeader, Component, IoFormat, Params};
use crate::obu;
use s6_codec_abi::helpers::PluginError;
use s6_codec_abi::{Frame, PixelFormat};
use std::ptr::NonNull;

/// One compressed temporal unit, temporal delimiters already removed.
pub struct EncodedPacket<'a> {
    /// OBUs in low-overhead format, as stored in an MP4 sample.
    pub data: &'a [u8],
    /// Presentation time in frame units.
    pub pts: i64,
    /// Decode time in frame units.
    pub dts: i64,
    /// True only for KEY_FRAME packets (random access points).
    pub keyframe: bool,
}

/// An open SVT-AV1 encoder. Used from one thread at a time (`Send`, not
/// `Sync`).
pub struct Encoder {
    handle: NonNull<Component>,
    params: Params,
    frames_sent: u64,
    eos_sent: bool,
    eos_received: bool,
    /// The sequence header OBU as it appears in the bitstream, once known.
    seq_header: Option<Vec<u8>>,
}

// SAFETY: the SVT handle is not tied to the thread that created it; the
// library synchronises its own worker threads. `Encoder` is not `Sync`, so
// the handle is only ever used from one thread at a time.
unsafe impl Send for Encoder {}

/// Serialises SVT instance creation and teardown across the process.
/// `svt_av1_enc_init_handle` sets up process-wide state (CPU-specific
/// function tables, instance counters) without locking, and a crash was
/// seen when sessions were opened concurrently and one was rejected; the
/// lock costs only the few milliseconds an open/close takes.
static LIFECYCLE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lifecycle_lock() -> std::sync::MutexGuard<'static, ()> {
    LIFECYCLE.lock().unwrap_or_else(|e| e.into_inner())
}

fn svt_error(what: &str, code: i32) -> PluginError {
    PluginError::error(format!(
        "{what} failed: {} (0x{:08x})",
        ffi::error_name(code),
        code as u32
    ))
}

impl Encoder {
    /// Creates and initialises an encoder (this starts SVT's worker threads).
    pub fn open(params: &Params) -> Result<Self, PluginError> {
        let mut handle: *mut Component = std::ptr::null_mut();
        let mut stage = 0i32;
        let _lock = lifecycle_lock();
        // SAFETY: `params` is a valid `S6SvtParams`; `handle` and `stage` are
        // valid out-pointers for the duration of the call.
        let code = unsafe { ffi::s6_svt_open(params, &mut handle, &mut stage) };
        if code != ffi::EB_ERROR_NONE {
            let step = match stage {
                1 => "svt_av1_enc_init_handle",
                2 => "svt_av1_enc_set_parameter (configuration rejected)",
                _ => "svt_av1_enc_init",
            };
            return Err(PluginError::unavailable(format!(
                "SVT-AV1 {} could not open a {}x{} session: {step} returned {} (0x{:08x})",
                ffi::library_version(),
                params.width,
                params.height,
                ffi::error_name(code),
                code as u32
            )));
        }
        let handle = NonNull::new(handle)
            .ok_or_else(|| PluginError::error("SVT-AV1 returned a null handle"))?;
        Ok(Self {
            handle,
            params: *params,
            frames_sent: 0,
            eos_sent: false,
            eos_received: false,
            seq_header: None,
        })
    }

    /// The AV1 sequence header OBU (header + payload, no temporal delimiter)
    /// exactly as it appears in this session's keyframes.
    ///
    /// SVT-AV1 1.4's `svt_av1_enc_stream_header` is written before encoding
    /// and differs from the in-band header in several tool flags (order
    /// hint, CDEF, restoration...). An `av1C` must match the samples, so the
    /// header is taken from the first keyframe this session produced or,
    /// before that, from a one-frame encode with identical settings.
    pub fn sequence_header(&mut self) -> Result<Vec<u8>, PluginError> {
        if let Some(sh) = &self.seq_header {
            return Ok(sh.clone());
        }
        let mut twin = Encoder::open(&self.params)?;
        twin.send_gray()?;
        twin.flush(&mut |_| {})?;
        let sh = twin
            .seq_header
            .take()
            .ok_or_else(|| PluginError::error("SVT-AV1 keyframe carried no sequence header OBU"))?;
        self.seq_header = Some(sh.clone());
        Ok(sh)
    }

    /// SVT's own pre-encode stream header (`svt_av1_enc_stream_header`),
    /// reduced to its sequence header OBU. See [`Self::sequence_header`] for
    /// why this is not what the muxer gets.
    pub fn init_stream_header(&self) -> Result<Vec<u8>, PluginError> {
        let mut buf: *mut BufferHeader = std::ptr::null_mut();
        // SAFETY: the handle is initialised; `buf` is a valid out-pointer.
        let code = unsafe { ffi::svt_av1_enc_stream_header(self.handle.as_ptr(), &mut buf) };
        if code != ffi::EB_ERROR_NONE || buf.is_null() {
            return Err(svt_error("svt_av1_enc_stream_header", code));
        }
        // SAFETY: SVT returned a valid buffer header whose `p_buffer` holds
        // `n_filled_len` bytes; it stays valid until released below.
        let result = unsafe {
            let header = &*buf;
            let bytes = raw_bytes(header);
            match obu::sequence_header(bytes) {
                Ok(Some(sh)) => Ok(sh.to_vec()),
                Ok(None) => Err(PluginError::error(
                    "SVT-AV1 stream header holds no sequence header OBU",
                )),
                Err(e) => Err(PluginError::error(format!(
                    "SVT-AV1 stream header is not a valid OBU stream: {e}"
                ))),
            }
        };
        // SAFETY: `buf` came from svt_av1_enc_stream_header and is released once.
        unsafe { ffi::svt_av1_enc_stream_header_release(buf) };
        result
    }

    /// Queues one mid-gray frame (header twin, teardown of unused sessions).
    pub fn send_gray(&mut self) -> Result<(), PluginError> {
        let (w, h) = (self.params.width as usize, self.params.height as usize);
        let cw = w.div_ceil(2);
        let luma = vec![128u8; w * h];
        let chroma = vec![128u8; cw * h.div_ceil(2)];
        self.send(&Frame {
            pixel_format: PixelFormat::I420 as u32,
            width: self.params.width,
            height: self.params.height,
            plane_count: 3,
            planes: [
                luma.as_ptr(),
                chroma.as_ptr(),
                chroma.as_ptr(),
                std::ptr::null(),
            ],
            strides: [self.params.width, cw as u32, cw as u32, 0],
            pts: 0,
            force_keyframe: 0,
        })
    }

    /// Queues one I420 frame. SVT copies the planes before returning.
    pub fn send(&mut self, frame: &Frame) -> Result<(), PluginError> {
        if self.eos_sent {
            return Err(PluginError::error(
                "svtav1 session was already flushed; open a new one",
            ));
        }
        check_frame(frame, self.params.width, self.params.height)?;
        let mut io = IoFormat {
            luma: frame.planes[0].cast_mut(),
            cb: frame.planes[1].cast_mut(),
            cr: frame.planes[2].cast_mut(),
            luma_ext: std::ptr::null_mut(),
            cb_ext: std::ptr::null_mut(),
            cr_ext: std::ptr::null_mut(),
            y_stride: frame.strides[0],
            cr_stride: frame.strides[2],
            cb_stride: frame.strides[1],
            width: self.params.width,
            height: self.params.height,
            origin_x: 0,
            origin_y: 0,
            color_fmt: ffi::EB_YUV420,
            bit_depth: ffi::EB_EIGHT_BIT,
        };
        let chroma_rows = u64::from(self.params.height.div_ceil(2));
        let filled = u64::from(frame.strides[0]) * u64::from(self.params.height)
            + (u64::from(frame.strides[1]) + u64::from(frame.strides[2])) * chroma_rows;
        let mut header = BufferHeader::zeroed();
        header.p_buffer = (&mut io as *mut IoFormat).cast();
        header.n_filled_len = u32::try_from(filled).unwrap_or(u32::MAX);
        header.n_alloc_len = header.n_filled_len;
        header.pts = frame.pts;
        header.pic_type = if frame.force_keyframe != 0 {
            ffi::EB_AV1_KEY_PICTURE
        } else {
            ffi::EB_AV1_INVALID_PICTURE
        };
        // SAFETY: the handle is initialised; `header` points at `io`, whose
        // plane pointers were checked non-null with strides covering the
        // frame; SVT only reads them and copies the picture before returning.
        let code = unsafe { ffi::svt_av1_enc_send_picture(self.handle.as_ptr(), &mut header) };
        if code != ffi::EB_ERROR_NONE {
            return Err(svt_error("svt_av1_enc_send_picture", code));
        }
        self.frames_sent += 1;
        Ok(())
    }

    /// Passes every packet that is ready to `sink` without blocking.
    pub fn drain_ready(
        &mut self,
        sink: &mut dyn FnMut(EncodedPacket<'_>),
    ) -> Result<(), PluginError> {
        while !self.eos_received {
            if !self.next_packet(false, sink)? {
                break;
            }
        }
        Ok(())
    }

    /// Signals end of stream and passes every remaining packet to `sink`.
    /// Calling it again is a no-op.
    pub fn flush(&mut self, sink: &mut dyn FnMut(EncodedPacket<'_>)) -> Result<(), PluginError> {
        if !self.eos_sent {
            let mut header = BufferHeader::zeroed();
            header.flags = ffi::EB_BUFFERFLAG_EOS;
            // SAFETY: an EOS buffer carries no picture; the handle is initialised.
            let code = unsafe { ffi::svt_av1_enc_send_picture(self.handle.as_ptr(), &mut header) };
            if code != ffi::EB_ERROR_NONE {
                return Err(svt_error("svt_av1_enc_send_picture(EOS)", code));
            }
            self.eos_sent = true;
        }
        while !self.eos_received {
            // Blocking: after EOS SVT always ends with an EOS-flagged packet.
            self.next_packet(true, sink)?;
        }
        Ok(())
    }

    /// Fetches one packet; returns false when none was ready (non-blocking).
    fn next_packet(
        &mut self,
        block: bool,
        sink: &mut dyn FnMut(EncodedPacket<'_>),
    ) -> Result<bool, PluginError> {
        let mut buf: *mut BufferHeader = std::ptr::null_mut();
        // SAFETY: the handle is initialised; `buf` is a valid out-pointer.
        let code =
            unsafe { ffi::svt_av1_enc_get_packet(self.handle.as_ptr(), &mut buf, u8::from(block)) };
        if code == ffi::EB_NO_ERROR_EMPTY_QUEUE {
            return Ok(false);
        }
        if code != ffi::EB_ERROR_NONE || buf.is_null() {
            return Err(svt_error("svt_av1_enc_get_packet", code));
        }
        // SAFETY: SVT handed us a valid output buffer that stays ours until
        // svt_av1_enc_release_out_buffer below.
        let result = unsafe {
            let header = &*buf;
            if header.flags & ffi::EB_BUFFERFLAG_EOS != 0 {
                self.eos_received = true;
            }
            deliver(header, &mut self.seq_header, sink)
        };
        // SAFETY: `buf` came from svt_av1_enc_get_packet and is released once.
        unsafe { ffi::svt_av1_enc_release_out_buffer(&mut buf) };
        result.map(|()| true)
    }
}

/// The payload bytes of an SVT output buffer.
///
/// # Safety
/// `header.p_buffer` is null or valid for `n_filled_len` bytes while `header` lives.
unsafe fn raw_bytes(header: &BufferHeader) -> &[u8] {
    if header.p_buffer.is_null() || header.n_filled_len == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(header.p_buffer, header.n_filled_len as usize) }
}

/// Hands one SVT output buffer to `sink` (skipping empty EOS markers).
///
/// # Safety
/// `header` is a live SVT output buffer.
unsafe fn deliver(
    header: &BufferHeader,
    seq_header: &mut Option<Vec<u8>>,
    sink: &mut dyn FnMut(EncodedPacket<'_>),
) -> Result<(), PluginError> {
    if header.flags & !0xF != 0 {
        return Err(PluginError::error(format!(
            "SVT-AV1 reported an encode error (packet flags 0x{:08x})",
            header.flags
        )));
    }
    // SAFETY: forwarded caller guarantee.
    let bytes = unsafe { raw_bytes(header) };
    if bytes.is_empty() {
        return Ok(());
    }
    let data = obu::strip_temporal_delimiters(bytes).map_err(|e| {
        PluginError::error(format!("SVT-AV1 packet is not a valid OBU stream: {e}"))
    })?;
    let keyframe = header.pic_type == ffi::EB_AV1_KEY_PICTURE;
    if keyframe && seq_header.is_none() {
        if let Ok(Some(sh)) = obu::sequence_header(&data) {
            *seq_header = Some(sh.to_vec());
        }
    }
    sink(EncodedPacket {
        data: &data,
        pts: header.pts,
        dts: header.dts,
        keyframe,
    });
    Ok(())
}

/// Checks that `frame` is an I420 picture of the session's size whose
/// planes are present and whose strides cover a row.
fn check_frame(frame: &Frame, width: u32, height: u32) -> Result<(), PluginError> {
    if PixelFormat::from_raw(frame.pixel_format) != Some(PixelFormat::I420) {
        return Err(PluginError::error(format!(
            "svtav1 encodes I420 frames only; got pixel format {} (the host must convert)",
            frame.pixel_format
        )));
    }
    if frame.width != width || frame.height != height {
        return Err(PluginError::error(format!(
            "frame is {}x{} but the session was opened for {width}x{height}",
            frame.width, frame.height
        )));
    }
    if frame.plane_count < 3 || frame.planes[..3].iter().any(|p| p.is_null()) {
        return Err(PluginError::error(format!(
            "I420 frame needs 3 non-null planes, got plane_count {}",
            frame.plane_count
        )));
    }
    let chroma_w = width.div_ceil(2);
    if frame.strides[0] < width || frame.strides[1] < chroma_w || frame.strides[2] < chroma_w {
        return Err(PluginError::error(format!(
            "strides {:?} too small for a {width}x{height} I420 frame",
            &frame.strides[..3]
        )));
    }
    Ok(())
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SVT 1.4 hangs in svt_av1_enc_deinit when no EOS was sent ("deinit
        // called without sending EOS!"), so a session closed without flush
        // is drained first; its remaining packets are discarded.
        // It also never finishes an EOS-only stream (with no frame sent, EOS,
        // get_packet and deinit all block), so such a session gets one gray
        // frame first.
        if !self.eos_received {
            if self.frames_sent == 0 && !self.eos_sent {
                let _ = self.send_gray();
            }
            if self.frames_sent > 0 {
                let _ = self.flush(&mut |_| {});
            }
        }
        let _lock = lifecycle_lock();
        // SAFETY: the handle was initialised by s6_svt_open and is torn down
        // exactly once here (deinit stops the threads, then the handle goes).
        unsafe {
            ffi::svt_av1_enc_deinit(self.handle.as_ptr());
            ffi::svt_av1_enc_deinit_handle(self.handle.as_ptr());
        }
    }
}
