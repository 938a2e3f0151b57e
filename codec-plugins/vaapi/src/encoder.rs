//! One VA-API H.264 encode session: config, surfaces, context and coded
//! buffer on an open [`Display`], and the per-frame upload → render → sync →
//! read-back cycle. Encoding is synchronous (I/P only, one reference), so
//! every `encode` returns its packet and `flush` has nothing to drain.

use crate::bits::split_annex_b;
use crate::device::{candidate_nodes, Display};
use crate::ffi::{self, *};
use crate::headers::H264Params;
use crate::params::{self, GopState, RefPic, Settings};
use s6_codec_abi::helpers::PluginError;
use std::ffi::c_void;

/// A raw frame as plane slices: NV12 (`uv` interleaved) or I420 (`u`, `v`).
pub enum Planes<'a> {
    /// Y plane and interleaved UV plane.
    Nv12 {
        /// Luma rows.
        y: &'a [u8],
        /// Luma stride.
        y_stride: usize,
        /// Interleaved chroma rows.
        uv: &'a [u8],
        /// Chroma stride.
        uv_stride: usize,
    },
    /// Y, U and V planes.
    I420 {
        /// Luma rows.
        y: &'a [u8],
        /// Luma stride.
        y_stride: usize,
        /// Cb rows.
        u: &'a [u8],
        /// Cb stride.
        u_stride: usize,
        /// Cr rows.
        v: &'a [u8],
        /// Cr stride.
        v_stride: usize,
    },
}

/// An encoded access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// Annex-B bytes.
    pub data: Vec<u8>,
    /// Whether it is an IDR picture.
    pub keyframe: bool,
}

/// A live encode session.
pub struct Encoder {
    display: Display,
    params: H264Params,
    config: VAConfigID,
    context: VAContextID,
    surfaces: Vec<VASurfaceID>, // [input, recon0, recon1]
    coded_buf: VABufferID,
    packed_headers: u32,
    gop: GopState,
    reference: Option<RefPic>,
    next_recon: usize,
    /// SPS+PPS: ours when the driver takes packed headers, else the driver's
    /// own, captured from the first IDR.
    codec_config: Option<Vec<u8>>,
    put_image: Option<VAImage>,
}

/// Opens an encoder on the first usable render node.
pub fn open(settings: &Settings) -> Result<Encoder, PluginError> {
    settings.validate().map_err(PluginError::error)?;
    // libva first: without it nothing else can be said about the GPU.
    drop(VaApi::load().map_err(PluginError::unavailable)?);
    let nodes = candidate_nodes(settings.device.as_deref())?;
    let mut reasons = Vec::new();
    for node in &nodes {
        let api = VaApi::load().map_err(PluginError::unavailable)?;
        match Display::open(api, node).and_then(|d| Encoder::new(d, settings)) {
            Ok(e) => return Ok(e),
            Err(e) => reasons.push(e),
        }
    }
    if reasons.len() == 1 {
        return Err(reasons.remove(0));
    }
    let status = reasons
        .first()
        .map_or(s6_codec_abi::STATUS_UNAVAILABLE, |e| e.status);
    let message = reasons
        .iter()
        .map(|e| e.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Err(PluginError { status, message })
}

fn va_err(display: &Display, what: &str, st: VAStatus) -> PluginError {
    PluginError::error(format!(
        "{what} failed on {} ({}): {}",
        display.node.display(),
        display.vendor,
        display.api.error_str(st)
    ))
}

impl Encoder {
    fn new(display: Display, settings: &Settings) -> Result<Self, PluginError> {
        let (profile, va_profile, entrypoint) =
            display.find_h264_encoder(settings.profile, settings.low_power)?;
        let params = params::h264_params(settings, profile);
        let attrs = display.config_attributes(
            va_profile,
            entrypoint,
            &[
                VA_CONFIG_ATTRIB_RT_FORMAT,
                VA_CONFIG_ATTRIB_RATE_CONTROL,
                VA_CONFIG_ATTRIB_ENC_PACKED_HEADERS,
            ],
        )?;
        let supported = |i: usize| match attrs[i].value {
            VA_ATTRIB_NOT_SUPPORTED => 0,
            v => v,
        };
        if supported(0) & VA_RT_FORMAT_YUV420 == 0 {
            return Err(PluginError::unavailable(format!(
                "driver {} cannot encode YUV 4:2:0 H.264",
                display.vendor
            )));
        }
        let rc_modes = supported(1);
        let rc_mode = rc_mode_for(params.bitrate_bps.is_some(), rc_modes).ok_or_else(|| {
            PluginError::unavailable(format!(
                "driver {} supports none of the needed rate-control modes (has {rc_modes:#x}; \
                 {} wanted)",
                display.vendor,
                if params.bitrate_bps.is_some() {
                    "VBR or CBR"
                } else {
                    "CQP"
                }
            ))
        })?;
        let packed_headers =
            supported(2) & (VA_ENC_PACKED_HEADER_SEQUENCE | VA_ENC_PACKED_HEADER_PICTURE);
        let mut config_attrs = vec![
            VAConfigAttrib {
                type_: VA_CONFIG_ATTRIB_RT_FORMAT,
                value: VA_RT_FORMAT_YUV420,
            },
            VAConfigAttrib {
                type_: VA_CONFIG_ATTRIB_RATE_CONTROL,
                value: rc_mode,
            },
        ];
        if packed_headers != 0 {
            config_attrs.push(VAConfigAttrib {
                type_: VA_CONFIG_ATTRIB_ENC_PACKED_HEADERS,
                value: packed_headers,
            });
        }
        let mut enc = Self {
            params,
            config: VA_INVALID_ID,
            context: VA_INVALID_ID,
            surfaces: Vec::new(),
            coded_buf: VA_INVALID_ID,
            packed_headers,
            gop: GopState::default(),
            reference: None,
            next_recon: 0,
            codec_config: None,
            put_image: None,
            display,
        };
        if enc.packed_headers & VA_ENC_PACKED_HEADER_SEQUENCE != 0 {
            enc.codec_config = Some(enc.params.codec_config());
        }
        let d = &enc.display;
        // SAFETY: valid display; attribute array of the given length; out-pointer valid.
        let st = unsafe {
            (d.api.vaCreateConfig)(
                d.dpy,
                va_profile,
                entrypoint,
                config_attrs.as_mut_ptr(),
                config_attrs.len() as i32,
                &mut enc.config,
            )
        };
        if st != VA_STATUS_SUCCESS {
            return Err(PluginError::unavailable(format!(
                "vaCreateConfig (H.264 {:?}, entrypoint {entrypoint}) failed on {} ({}): {}",
                profile,
                d.node.display(),
                d.vendor,
                d.api.error_str(st)
            )));
        }
        let (aw, ah) = (enc.params.width_mbs() * 16, enc.params.height_mbs() * 16);
        let mut surfaces = [VA_INVALID_ID; 3];
        // SAFETY: valid display; `surfaces` holds 3 ids; no attributes.
        let st = unsafe {
            (d.api.vaCreateSurfaces)(
                d.dpy,
                VA_RT_FORMAT_YUV420,
                aw,
                ah,
                surfaces.as_mut_ptr(),
                3,
                std::ptr::null_mut(),
                0,
            )
        };
        if st != VA_STATUS_SUCCESS {
            return Err(va_err(d, "vaCreateSurfaces", st));
        }
        enc.surfaces = surfaces.to_vec();
        let mut context = VA_INVALID_ID;
        // SAFETY: valid config and surfaces; out-pointer valid.
        let st = unsafe {
            (d.api.vaCreateContext)(
                d.dpy,
                enc.config,
                aw as i32,
                ah as i32,
                VA_PROGRESSIVE,
                surfaces.as_mut_ptr(),
                3,
                &mut context,
            )
        };
        if st != VA_STATUS_SUCCESS {
            return Err(va_err(d, "vaCreateContext", st));
        }
        enc.context = context;
        let coded_size = aw * ah * 3 / 2 + (1 << 18);
        let mut coded = VA_INVALID_ID;
        // SAFETY: valid context; no initial data; out-pointer valid.
        let st = unsafe {
            (d.api.vaCreateBuffer)(
                d.dpy,
                context,
                VA_ENC_CODED_BUFFER_TYPE,
                coded_size,
                1,
                std::ptr::null_mut(),
                &mut coded,
            )
        };
        if st != VA_STATUS_SUCCESS {
            return Err(va_err(d, "vaCreateBuffer(coded)", st));
        }
        enc.coded_buf = coded;
        Ok(enc)
    }

    /// The stream parameters in use.
    pub fn params(&self) -> &H264Params {
        &self.params
    }

    /// The SPS+PPS record, once known.
    pub fn codec_config(&self) -> Option<&[u8]> {
        self.codec_config.as_deref()
    }

    /// Encodes one frame synchronously.
    pub fn encode(
        &mut self,
        planes: &Planes<'_>,
        force_idr: bool,
    ) -> Result<EncodedFrame, PluginError> {
        let input = self.surfaces[0];
        self.upload(input, planes)?;
        let pic = self.gop.next(&self.params, force_idr);
        let recon = self.surfaces[1 + self.next_recon];
        let reference = if pic.idr { None } else { self.reference };
        let mut buffers = Vec::new();
        let result = self.render(&pic, input, recon, reference.as_ref(), &mut buffers);
        for b in buffers {
            // SAFETY: each id came from vaCreateBuffer on this display.
            unsafe { (self.display.api.vaDestroyBuffer)(self.display.dpy, b) };
        }
        result?;
        let d = &self.display;
        // SAFETY: the surface was just submitted on this display.
        let st = unsafe { (d.api.vaSyncSurface)(d.dpy, input) };
        if st != VA_STATUS_SUCCESS {
            return Err(va_err(d, "vaSyncSurface", st));
        }
        let data = self.read_coded()?;
        self.reference = Some(RefPic {
            surface: recon,
            frame_num: pic.frame_num,
            poc: pic.poc,
        });
        self.next_recon ^= 1;
        if pic.idr && self.codec_config.is_none() {
            self.codec_config = extract_parameter_sets(&data);
        }
        Ok(EncodedFrame {
            data,
            keyframe: pic.idr,
        })
    }

    fn render(
        &self,
        pic: &params::PicInfo,
        input: VASurfaceID,
        recon: VASurfaceID,
        reference: Option<&RefPic>,
        buffers: &mut Vec<VABufferID>,
    ) -> Result<(), PluginError> {
        let p = &self.params;
        if pic.idr {
            buffers.push(self.create(
                VA_ENC_SEQUENCE_PARAMETER_BUFFER_TYPE,
                as_bytes(&params::sequence_buffer(p)),
            )?);
            let fr = misc_bytes(
                VA_ENC_MISC_PARAMETER_TYPE_FRAME_RATE,
                &params::frame_rate(p),
            );
            buffers.push(self.create(VA_ENC_MISC_PARAMETER_BUFFER_TYPE, &fr)?);
            if let Some((rc, hrd)) = params::rate_control(p) {
                let rc = misc_bytes(VA_ENC_MISC_PARAMETER_TYPE_RATE_CONTROL, &rc);
                buffers.push(self.create(VA_ENC_MISC_PARAMETER_BUFFER_TYPE, &rc)?);
                let hrd = misc_bytes(VA_ENC_MISC_PARAMETER_TYPE_HRD, &hrd);
                buffers.push(self.create(VA_ENC_MISC_PARAMETER_BUFFER_TYPE, &hrd)?);
            }
        }
        buffers.push(self.create(
            VA_ENC_PICTURE_PARAMETER_BUFFER_TYPE,
            as_bytes(&params::picture_buffer(
                p,
                pic,
                recon,
                reference,
                self.coded_buf,
            )),
        )?);
        if pic.idr {
            if self.packed_headers & VA_ENC_PACKED_HEADER_SEQUENCE != 0 {
                self.packed(VA_ENC_PACKED_HEADER_TYPE_SEQUENCE, &p.sps_nal(), buffers)?;
            }
            if self.packed_headers & VA_ENC_PACKED_HEADER_PICTURE != 0 {
                self.packed(VA_ENC_PACKED_HEADER_TYPE_PICTURE, &p.pps_nal(), buffers)?;
            }
        }
        buffers.push(self.create(
            VA_ENC_SLICE_PARAMETER_BUFFER_TYPE,
            as_bytes(&params::slice_buffer(p, pic, reference)),
        )?);
        let d = &self.display;
        // SAFETY: valid context and surface.
        let st = unsafe { (d.api.vaBeginPicture)(d.dpy, self.context, input) };
        if st != VA_STATUS_SUCCESS {
            return Err(va_err(d, "vaBeginPicture", st));
        }
        // SAFETY: `buffers` holds valid buffer ids of this context.
        let st = unsafe {
            (d.api.vaRenderPicture)(
                d.dpy,
                self.context,
                buffers.as_mut_ptr(),
                buffers.len() as i32,
            )
        };
        // SAFETY: a picture was begun on this context; it must be ended either way.
        let end = unsafe { (d.api.vaEndPicture)(d.dpy, self.context) };
        if st != VA_STATUS_SUCCESS {
            return Err(va_err(d, "vaRenderPicture", st));
        }
        if end != VA_STATUS_SUCCESS {
            return Err(va_err(d, "vaEndPicture", end));
        }
        Ok(())
    }

    fn packed(
        &self,
        kind: u32,
        nal: &[u8],
        buffers: &mut Vec<VABufferID>,
    ) -> Result<(), PluginError> {
        let param = VAEncPackedHeaderParameterBuffer {
            type_: kind,
            bit_length: u32::try_from(nal.len() * 8).unwrap_or(u32::MAX),
            has_emulation_bytes: 1,
            va_reserved: [0; 4],
        };
        buffers.push(self.create(VA_ENC_PACKED_HEADER_PARAMETER_BUFFER_TYPE, as_bytes(&param))?);
        buffers.push(self.create(VA_ENC_PACKED_HEADER_DATA_BUFFER_TYPE, nal)?);
        Ok(())
    }

    fn create(&self, kind: VABufferType, data: &[u8]) -> Result<VABufferID, PluginError> {
        let d = &self.display;
        let mut id = VA_INVALID_ID;
        // SAFETY: libva copies `data.len()` bytes from the pointer; it does not write to it.
        let st = unsafe {
            (d.api.vaCreateBuffer)(
                d.dpy,
                self.context,
                kind,
                data.len() as u32,
                1,
                data.as_ptr() as *mut c_void,
                &mut id,
            )
        };
        if st != VA_STATUS_SUCCESS {
            return Err(va_err(d, &format!("vaCreateBuffer(type {kind})"), st));
        }
        Ok(id)
    }

    /// Copies the frame into `surface`: through `vaDeriveImage` where the
    /// driver allows it, else through an NV12 `VAImage` and `vaPutImage`.
    fn upload(&mut self, surface: VASurfaceID, planes: &Planes<'_>) -> Result<(), PluginError> {
        let d = &self.display;
        let mut image: VAImage = ffi::zeroed();
        // SAFETY: valid surface; out-pointer valid.
        let derived =
            unsafe { (d.api.vaDeriveImage)(d.dpy, surface, &mut image) } == VA_STATUS_SUCCESS;
        if derived && image.format.fourcc != VA_FOURCC_NV12 {
            // SAFETY: the image was created by vaDeriveImage above.
            unsafe { (d.api.vaDestroyImage)(d.dpy, image.image_id) };
        }
        if derived && image.format.fourcc == VA_FOURCC_NV12 {
            let r = self.fill_image(&image, planes);
            // SAFETY: derived image of this display.
            unsafe { (self.display.api.vaDestroyImage)(self.display.dpy, image.image_id) };
            return r;
        }
        let image = match self.put_image {
            Some(i) => i,
            None => {
                let mut format = VAImageFormat {
                    fourcc: VA_FOURCC_NV12,
                    byte_order: VA_LSB_FIRST,
                    bits_per_pixel: 12,
                    ..Default::default()
                };
                let mut img: VAImage = ffi::zeroed();
                let (aw, ah) = (self.params.width_mbs() * 16, self.params.height_mbs() * 16);
                // SAFETY: valid display, format and out-pointer.
                let st = unsafe {
                    (d.api.vaCreateImage)(d.dpy, &mut format, aw as i32, ah as i32, &mut img)
                };
                if st != VA_STATUS_SUCCESS {
                    return Err(va_err(d, "vaDeriveImage and vaCreateImage(NV12)", st));
                }
                self.put_image = Some(img);
                img
            }
        };
        self.fill_image(&image, planes)?;
        let d = &self.display;
        let (w, h) = (u32::from(image.width), u32::from(image.height));
        // SAFETY: image and surface belong to this display; region within both.
        let st =
            unsafe { (d.api.vaPutImage)(d.dpy, surface, image.image_id, 0, 0, w, h, 0, 0, w, h) };
        if st != VA_STATUS_SUCCESS {
            return Err(va_err(d, "vaPutImage", st));
        }
        Ok(())
    }

    fn fill_image(&self, image: &VAImage, planes: &Planes<'_>) -> Result<(), PluginError> {
        let d = &self.display;
        let mut ptr: *mut c_void = std::ptr::null_mut();
        // SAFETY: the image buffer belongs to this display.
        let st = unsafe { (d.api.vaMapBuffer)(d.dpy, image.buf, &mut ptr) };
        if st != VA_STATUS_SUCCESS || ptr.is_null() {
            return Err(va_err(d, "vaMapBuffer(image)", st));
        }
        // SAFETY: libva maps `data_size` bytes at `ptr` until vaUnmapBuffer.
        let dst =
            unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), image.data_size as usize) };
        let layout = NvLayout {
            y_offset: image.offsets[0] as usize,
            y_pitch: image.pitches[0] as usize,
            uv_offset: image.offsets[1] as usize,
            uv_pitch: image.pitches[1] as usize,
            rows: usize::from(image.height),
        };
        let r = write_nv12(
            dst,
            &layout,
            planes,
            self.params.width as usize,
            self.params.height as usize,
        );
        // SAFETY: mapped above.
        unsafe { (d.api.vaUnmapBuffer)(d.dpy, image.buf) };
        r.map_err(PluginError::error)
    }

    fn read_coded(&self) -> Result<Vec<u8>, PluginError> {
        let d = &self.display;
        let mut ptr: *mut c_void = std::ptr::null_mut();
        // SAFETY: the coded buffer belongs to this display.
        let st = unsafe { (d.api.vaMapBuffer)(d.dpy, self.coded_buf, &mut ptr) };
        if st != VA_STATUS_SUCCESS {
            return Err(va_err(d, "vaMapBuffer(coded)", st));
        }
        let mut out = Vec::new();
        let mut seg = ptr.cast::<VACodedBufferSegment>();
        let mut guard = 0;
        while !seg.is_null() && guard < 1024 {
            // SAFETY: libva returns a linked list of valid segments while mapped.
            let s = unsafe { &*seg };
            if !s.buf.is_null() && s.size > 0 {
                // SAFETY: `buf` holds `size` bytes of this segment.
                let bytes =
                    unsafe { std::slice::from_raw_parts(s.buf.cast::<u8>(), s.size as usize) };
                let skip = (s.bit_offset / 8) as usize;
                out.extend_from_slice(bytes.get(skip..).unwrap_or(&[]));
            }
            seg = s.next.cast();
            guard += 1;
        }
        // SAFETY: mapped above.
        unsafe { (d.api.vaUnmapBuffer)(d.dpy, self.coded_buf) };
        if out.is_empty() {
            return Err(PluginError::error(format!(
                "driver {} produced an empty coded buffer",
                d.vendor
            )));
        }
        Ok(out)
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        let d = &self.display;
        // SAFETY: every id was created on this display and is destroyed once;
        // invalid ids are skipped. The display itself is terminated afterwards
        // when the `display` field drops.
        unsafe {
            if let Some(img) = self.put_image {
                (d.api.vaDestroyImage)(d.dpy, img.image_id);
            }
            if self.coded_buf != VA_INVALID_ID {
                (d.api.vaDestroyBuffer)(d.dpy, self.coded_buf);
            }
            if self.context != VA_INVALID_ID {
                (d.api.vaDestroyContext)(d.dpy, self.context);
            }
            if !self.surfaces.is_empty() {
                (d.api.vaDestroySurfaces)(
                    d.dpy,
                    self.surfaces.as_mut_ptr(),
                    self.surfaces.len() as i32,
                );
            }
            if self.config != VA_INVALID_ID {
                (d.api.vaDestroyConfig)(d.dpy, self.config);
            }
        }
    }
}

/// The rate-control mode for a config: VBR (or CBR) with a bit rate, CQP
/// without. `None` when the driver offers none of them.
pub fn rc_mode_for(has_bitrate: bool, supported: u32) -> Option<u32> {
    let order: &[u32] = if has_bitrate {
        &[VA_RC_VBR, VA_RC_CBR]
    } else {
        &[VA_RC_CQP]
    };
    order.iter().copied().find(|m| supported & m != 0)
}

/// SPS and PPS NAL units (with start codes) found in an Annex-B packet.
pub fn extract_parameter_sets(packet: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for nal in split_annex_b(packet) {
        if matches!(nal.first().map(|h| h & 0x1f), Some(7 | 8)) {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Where an NV12 image lives inside a mapped buffer.
pub struct NvLayout {
    /// Byte offset of the Y plane.
    pub y_offset: usize,
    /// Bytes per Y row.
    pub y_pitch: usize,
    /// Byte offset of the UV plane.
    pub uv_offset: usize,
    /// Bytes per UV row.
    pub uv_pitch: usize,
    /// Luma rows of the image (≥ frame height; extra rows repeat the last).
    pub rows: usize,
}

/// Writes `planes` (`width`×`height`) into an NV12 image, converting I420 on
/// the way and repeating the last row into the alignment padding.
pub fn write_nv12(
    dst: &mut [u8],
    l: &NvLayout,
    planes: &Planes<'_>,
    width: usize,
    height: usize,
) -> Result<(), String> {
    let rows = l.rows.max(height);
    let fits = |off: usize, pitch: usize, n: usize, w: usize| {
        pitch >= w && n > 0 && off + pitch * (n - 1) + w <= dst.len()
    };
    if !fits(l.y_offset, l.y_pitch, rows, width) || !fits(l.uv_offset, l.uv_pitch, rows / 2, width)
    {
        return Err(format!(
            "VA image too small for {width}x{height} (size {}, pitches {}/{})",
            dst.len(),
            l.y_pitch,
            l.uv_pitch
        ));
    }
    let row = |plane: &[u8], stride: usize, r: usize, w: usize| -> Result<Vec<u8>, String> {
        plane
            .get(r * stride..r * stride + w)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| format!("frame plane too short for row {r}"))
    };
    let (y, y_stride) = match planes {
        Planes::Nv12 { y, y_stride, .. } | Planes::I420 { y, y_stride, .. } => (*y, *y_stride),
    };
    for r in 0..rows {
        let src = row(y, y_stride, r.min(height - 1), width)?;
        let at = l.y_offset + r * l.y_pitch;
        dst[at..at + width].copy_from_slice(&src);
    }
    let cw = width / 2;
    for r in 0..rows / 2 {
        let sr = r.min(height / 2 - 1);
        let at = l.uv_offset + r * l.uv_pitch;
        match planes {
            Planes::Nv12 { uv, uv_stride, .. } => {
                let src = row(uv, *uv_stride, sr, width)?;
                dst[at..at + width].copy_from_slice(&src);
            }
            Planes::I420 {
                u,
                u_stride,
                v,
                v_stride,
                ..
            } => {
                let su = row(u, *u_stride, sr, cw)?;
                let sv = row(v, *v_stride, sr, cw)?;
                for (i, (cb, cr)) in su.iter().zip(&sv).enumerate() {
                    dst[at + 2 * i] = *cb;
                    dst[at + 2 * i + 1] = *cr;
                }
            }
        }
    }
    Ok(())
}

/// Bytes of a plain `#[repr(C)]` FFI struct.
fn as_bytes<T: Copy>(value: &T) -> &[u8] {
    // SAFETY: T is one of the padding-tolerant POD structs of `ffi`, read as bytes only.
    unsafe {
        std::slice::from_raw_parts((value as *const T).cast::<u8>(), std::mem::size_of::<T>())
    }
}

/// A `VAEncMiscParameterBuffer`: the type word followed by the payload.
pub fn misc_bytes<T: Copy>(kind: u32, payload: &T) -> Vec<u8> {
    let mut v = kind.to_ne_bytes().to_vec();
    v.extend_from_slice(as_bytes(payload));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc_mode_selection() {
        assert_eq!(rc_mode_for(false, VA_RC_CQP | VA_RC_CBR), Some(VA_RC_CQP));
        assert_eq!(
            rc_mode_for(true, VA_RC_CQP | VA_RC_CBR | VA_RC_VBR),
            Some(VA_RC_VBR)
        );
        assert_eq!(rc_mode_for(true, VA_RC_CQP | VA_RC_CBR), Some(VA_RC_CBR));
        assert_eq!(rc_mode_for(false, VA_RC_CBR), None);
    }

    #[test]
    fn parameter_sets_are_extracted_from_a_packet() {
        let pkt = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 7,
        ];
        assert_eq!(
            extract_parameter_sets(&pkt),
            Some(vec![0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3])
        );
        assert_eq!(extract_parameter_sets(&[0, 0, 1, 0x41, 5]), None);
    }

    #[test]
    fn i420_is_interleaved_and_padding_rows_repeat() {
        let (w, h) = (4usize, 2usize);
        let y: Vec<u8> = (0..8).collect();
        let u = [100u8, 101];
        let v = [200u8, 201];
        let layout = NvLayout {
            y_offset: 0,
            y_pitch: 8,
            uv_offset: 32,
            uv_pitch: 8,
            rows: 4,
        };
        let mut dst = vec![0u8; 48];
        let planes = Planes::I420 {
            y: &y,
            y_stride: 4,
            u: &u,
            u_stride: 2,
            v: &v,
            v_stride: 2,
        };
        write_nv12(&mut dst, &layout, &planes, w, h).expect("write");
        assert_eq!(&dst[0..4], &[0, 1, 2, 3]);
        assert_eq!(&dst[8..12], &[4, 5, 6, 7]);
        assert_eq!(&dst[16..20], &[4, 5, 6, 7]); // padding repeats the last row
        assert_eq!(&dst[32..36], &[100, 200, 101, 201]);
        assert_eq!(&dst[40..44], &[100, 200, 101, 201]);
    }

    #[test]
    fn short_planes_and_small_images_are_errors() {
        let y = [0u8; 8];
        let uv = [0u8; 2];
        let planes = Planes::Nv12 {
            y: &y,
            y_stride: 4,
            uv: &uv,
            uv_stride: 4,
        };
        let layout = NvLayout {
            y_offset: 0,
            y_pitch: 4,
            uv_offset: 8,
            uv_pitch: 4,
            rows: 2,
        };
        let mut dst = vec![0u8; 12];
        assert!(write_nv12(&mut dst, &layout, &planes, 4, 2)
            .unwrap_err()
            .contains("too short"));
        let mut tiny = vec![0u8; 4];
        assert!(write_nv12(&mut tiny, &layout, &planes, 4, 2)
            .unwrap_err()
            .contains("too small"));
    }
}
