//! Mapping from the host's encoder settings to the H.264 stream parameters
//! and from those to the VA-API parameter buffers (sequence, picture, slice,
//! rate control). Pure functions: unit-tested without hardware.

use crate::ffi::{
    zeroed, VABufferID, VAEncMiscParameterFrameRate, VAEncMiscParameterHRD,
    VAEncMiscParameterRateControl, VAEncPictureParameterBufferH264,
    VAEncSequenceParameterBufferH264, VAEncSliceParameterBufferH264, VAPictureH264, VASurfaceID,
    VA_INVALID_ID, VA_PICTURE_H264_SHORT_TERM_REFERENCE,
};
use crate::headers::{choose_level, H264Params, Profile};

/// Default QP in constant-QP mode when the host passes no CRF.
pub const DEFAULT_QP: u8 = 26;

/// The host's settings, copied out of the ABI config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frame rate numerator.
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
    /// Keyframe (IDR) interval in frames.
    pub gop: u32,
    /// Constant-quality factor; negative = default. Used as QP in CQP mode.
    pub crf: i32,
    /// Target bit rate in kbit/s; 0 = constant QP.
    pub bitrate_kbps: u32,
    /// Render node override (`device` of the config).
    pub device: Option<String>,
    /// `profile=` option: `high`, `main` or `baseline` (constrained).
    pub profile: Option<Profile>,
    /// `low_power=1`: prefer `VAEntrypointEncSliceLP`.
    pub low_power: bool,
}

impl Settings {
    /// Checks the values the encoder cannot work with.
    pub fn validate(&self) -> Result<(), String> {
        if self.width == 0
            || self.height == 0
            || !self.width.is_multiple_of(2)
            || !self.height.is_multiple_of(2)
        {
            return Err(format!(
                "vaapi: {}x{} is not a valid NV12 size (non-zero, even width and height)",
                self.width, self.height
            ));
        }
        if self.width > 4096 || self.height > 4096 {
            return Err(format!(
                "vaapi: {}x{} exceeds 4096x4096",
                self.width, self.height
            ));
        }
        if self.fps_num == 0 || self.fps_den == 0 {
            return Err(format!(
                "vaapi: invalid frame rate {}/{}",
                self.fps_num, self.fps_den
            ));
        }
        Ok(())
    }

    /// Parses `profile=` and `low_power=` from the `key=value` option pairs.
    pub fn apply_options(&mut self, options: &[(String, String)]) -> Result<(), String> {
        for (k, v) in options {
            match k.as_str() {
                "profile" => {
                    self.profile = Some(match v.to_ascii_lowercase().as_str() {
                        "high" => Profile::High,
                        "main" => Profile::Main,
                        "baseline" | "constrained_baseline" => Profile::ConstrainedBaseline,
                        other => {
                            return Err(format!(
                                "vaapi: unknown profile '{other}' (high, main, baseline)"
                            ))
                        }
                    })
                }
                "low_power" | "lowpower" => {
                    self.low_power = matches!(v.as_str(), "" | "1" | "true")
                }
                other => {
                    return Err(format!(
                        "vaapi: unknown option '{other}' (profile, low_power)"
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Stream parameters for `settings` encoded with `profile`.
pub fn h264_params(settings: &Settings, profile: Profile) -> H264Params {
    let bitrate_bps =
        (settings.bitrate_kbps > 0).then(|| settings.bitrate_kbps.saturating_mul(1000));
    let qp = if settings.crf < 0 {
        DEFAULT_QP
    } else {
        u8::try_from(settings.crf.clamp(0, 51)).unwrap_or(DEFAULT_QP)
    };
    let width_mbs = settings.width.div_ceil(16);
    let height_mbs = settings.height.div_ceil(16);
    H264Params {
        width: settings.width,
        height: settings.height,
        fps_num: settings.fps_num,
        fps_den: settings.fps_den,
        profile,
        level_idc: choose_level(
            width_mbs,
            height_mbs,
            settings.fps_num,
            settings.fps_den,
            bitrate_bps,
            profile,
        ),
        idr_period: settings.gop.max(1),
        bitrate_bps,
        qp,
        cabac: profile != Profile::ConstrainedBaseline,
        transform_8x8: profile == Profile::High,
        log2_max_frame_num_minus4: 4,
    }
}

/// `seq_fields` bit-field union of the sequence parameter buffer.
pub fn seq_fields(p: &H264Params) -> u32 {
    let chroma_format_idc = 1u32; // bits 0-1
    let frame_mbs_only = 1u32 << 2;
    let direct_8x8_inference = 1u32 << 5;
    let log2_max_frame_num_minus4 = u32::from(p.log2_max_frame_num_minus4 & 0xf) << 6;
    let pic_order_cnt_type = 2u32 << 10;
    chroma_format_idc
        | frame_mbs_only
        | direct_8x8_inference
        | log2_max_frame_num_minus4
        | pic_order_cnt_type
}

/// `vui_fields` bit-field union: timing info, fixed frame rate and the
/// default motion-vector ranges.
pub fn vui_fields(_p: &H264Params) -> u32 {
    let timing_info_present = 1u32 << 1;
    let log2_max_mv_length_horizontal = 15u32 << 3;
    let log2_max_mv_length_vertical = 15u32 << 8;
    let fixed_frame_rate = 1u32 << 13;
    timing_info_present
        | log2_max_mv_length_horizontal
        | log2_max_mv_length_vertical
        | fixed_frame_rate
}

/// `pic_fields` bit-field union of the picture parameter buffer.
pub fn pic_fields(p: &H264Params, idr: bool) -> u32 {
    let idr_pic = u32::from(idr);
    let reference_pic = 1u32 << 1; // every picture is a reference (I/P only)
    let entropy = u32::from(p.cabac) << 3;
    let transform_8x8 = u32::from(p.transform_8x8) << 8;
    let deblocking_filter_control_present = 1u32 << 9;
    idr_pic | reference_pic | entropy | transform_8x8 | deblocking_filter_control_present
}

/// The sequence parameter buffer matching [`H264Params::sps_rbsp`].
pub fn sequence_buffer(p: &H264Params) -> VAEncSequenceParameterBufferH264 {
    let mut s: VAEncSequenceParameterBufferH264 = zeroed();
    let (crop_right, crop_bottom) = p.crop();
    s.seq_parameter_set_id = 0;
    s.level_idc = p.level_idc;
    s.intra_period = p.idr_period;
    s.intra_idr_period = p.idr_period;
    s.ip_period = 1;
    s.bits_per_second = p.bitrate_bps.unwrap_or(0);
    s.max_num_ref_frames = 1;
    s.picture_width_in_mbs = u16::try_from(p.width_mbs()).unwrap_or(u16::MAX);
    s.picture_height_in_mbs = u16::try_from(p.height_mbs()).unwrap_or(u16::MAX);
    s.seq_fields = seq_fields(p);
    s.frame_cropping_flag = u8::from(crop_right != 0 || crop_bottom != 0);
    s.frame_crop_right_offset = crop_right;
    s.frame_crop_bottom_offset = crop_bottom;
    s.vui_parameters_present_flag = 1;
    s.vui_fields = vui_fields(p);
    s.num_units_in_tick = p.fps_den;
    s.time_scale = p.fps_num.saturating_mul(2);
    s
}

/// Position of one picture in the I/P GOP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PicInfo {
    /// IDR picture (starts a GOP).
    pub idr: bool,
    /// `frame_num` of the picture.
    pub frame_num: u32,
    /// Picture order count (2 × index since the IDR, POC type 2).
    pub poc: i32,
    /// `idr_pic_id` of the current (or last) IDR.
    pub idr_pic_id: u16,
}

/// Decides IDR/P and numbering frame by frame.
#[derive(Clone, Debug, Default)]
pub struct GopState {
    since_idr: Option<u32>,
    idr_count: u32,
}

impl GopState {
    /// Numbers the next picture; `force_idr` starts a new GOP early.
    pub fn next(&mut self, p: &H264Params, force_idr: bool) -> PicInfo {
        let index = match self.since_idr {
            Some(i) if !force_idr && i + 1 < p.idr_period => i + 1,
            _ => 0,
        };
        if index == 0 {
            self.idr_count = self.idr_count.wrapping_add(1);
        }
        self.since_idr = Some(index);
        PicInfo {
            idr: index == 0,
            frame_num: index % p.max_frame_num(),
            poc: i32::try_from((index % (1 << 30)) * 2).unwrap_or(0),
            idr_pic_id: ((self.idr_count.wrapping_sub(1)) & 0xffff) as u16,
        }
    }
}

/// A reconstructed picture kept as the reference for the next P picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefPic {
    /// Surface holding the reconstruction.
    pub surface: VASurfaceID,
    /// Its `frame_num`.
    pub frame_num: u32,
    /// Its picture order count.
    pub poc: i32,
}

fn va_pic(r: &RefPic, reference: bool) -> VAPictureH264 {
    VAPictureH264 {
        picture_id: r.surface,
        frame_idx: r.frame_num,
        flags: if reference {
            VA_PICTURE_H264_SHORT_TERM_REFERENCE
        } else {
            0
        },
        TopFieldOrderCnt: r.poc,
        BottomFieldOrderCnt: r.poc,
        va_reserved: [0; 4],
    }
}

/// The picture parameter buffer for picture `pic` reconstructed into
/// `recon`, predicting from `reference` (P pictures).
pub fn picture_buffer(
    p: &H264Params,
    pic: &PicInfo,
    recon: VASurfaceID,
    reference: Option<&RefPic>,
    coded_buf: VABufferID,
) -> VAEncPictureParameterBufferH264 {
    let mut b: VAEncPictureParameterBufferH264 = zeroed();
    b.CurrPic = va_pic(
        &RefPic {
            surface: recon,
            frame_num: pic.frame_num,
            poc: pic.poc,
        },
        false,
    );
    b.ReferenceFrames = [VAPictureH264::INVALID; 16];
    if let (false, Some(r)) = (pic.idr, reference) {
        b.ReferenceFrames[0] = va_pic(r, true);
    }
    b.coded_buf = coded_buf;
    b.frame_num = u16::try_from(pic.frame_num).unwrap_or(0);
    b.pic_init_qp = p.qp;
    b.pic_fields = pic_fields(p, pic.idr);
    b
}

/// Slice types of `slice_type` (values 0..=4 of Table 7-6).
pub const SLICE_TYPE_P: u8 = 0;
/// I slice.
pub const SLICE_TYPE_I: u8 = 2;

/// One slice covering the whole picture.
pub fn slice_buffer(
    p: &H264Params,
    pic: &PicInfo,
    reference: Option<&RefPic>,
) -> VAEncSliceParameterBufferH264 {
    let mut s: VAEncSliceParameterBufferH264 = zeroed();
    s.macroblock_address = 0;
    s.num_macroblocks = p.width_mbs() * p.height_mbs();
    s.macroblock_info = VA_INVALID_ID;
    s.RefPicList0 = [VAPictureH264::INVALID; 32];
    s.RefPicList1 = [VAPictureH264::INVALID; 32];
    match (pic.idr, reference) {
        (false, Some(r)) => {
            s.slice_type = SLICE_TYPE_P;
            s.RefPicList0[0] = va_pic(r, true);
        }
        _ => s.slice_type = SLICE_TYPE_I,
    }
    s.idr_pic_id = pic.idr_pic_id;
    s.pic_order_cnt_lsb = 0; // POC type 2 carries no lsb
    s.num_ref_idx_l0_active_minus1 = 0;
    s.slice_qp_delta = 0;
    s.disable_deblocking_filter_idc = 0;
    s
}

/// Rate-control misc parameters (VBR at the target; 100 % for CBR-only
/// drivers), or `None` in constant-QP mode.
pub fn rate_control(
    p: &H264Params,
) -> Option<(VAEncMiscParameterRateControl, VAEncMiscParameterHRD)> {
    let bps = p.bitrate_bps?;
    let rc = VAEncMiscParameterRateControl {
        bits_per_second: bps,
        target_percentage: 90,
        window_size: 1000,
        initial_qp: u32::from(p.qp),
        min_qp: 1,
        max_qp: 51,
        ..Default::default()
    };
    let hrd = VAEncMiscParameterHRD {
        buffer_size: bps.saturating_mul(2),
        initial_buffer_fullness: bps,
        ..Default::default()
    };
    Some((rc, hrd))
}

/// Frame-rate misc parameter: numerator in the low 16 bits, denominator in
/// the high 16 bits (denominator 0 means 1), as va.h specifies.
pub fn frame_rate(p: &H264Params) -> VAEncMiscParameterFrameRate {
    let (mut num, mut den) = (p.fps_num, p.fps_den);
    while num > 0xffff || den > 0xffff {
        num = num.div_ceil(2);
        den = den.div_ceil(2);
    }
    VAEncMiscParameterFrameRate {
        framerate: num | (den << 16),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            width: 1280,
            height: 720,
            fps_num: 30,
            fps_den: 1,
            gop: 4,
            crf: -1,
            bitrate_kbps: 0,
            ..Default::default()
        }
    }

    #[test]
    fn cqp_and_vbr_mapping() {
        let p = h264_params(&settings(), Profile::High);
        assert_eq!(
            (p.qp, p.bitrate_bps, p.idr_period, p.level_idc),
            (26, None, 4, 31)
        );
        assert!(rate_control(&p).is_none());
        let mut s = settings();
        s.bitrate_kbps = 4000;
        s.crf = 70;
        let p = h264_params(&s, Profile::Main);
        assert_eq!((p.qp, p.bitrate_bps), (51, Some(4_000_000)));
        let (rc, hrd) = rate_control(&p).expect("vbr");
        assert_eq!((rc.bits_per_second, rc.initial_qp), (4_000_000, 51));
        assert_eq!(hrd.buffer_size, 8_000_000);
        assert!(p.cabac && !p.transform_8x8);
        let cb = h264_params(&s, Profile::ConstrainedBaseline);
        assert!(!cb.cabac && !cb.transform_8x8);
    }

    #[test]
    fn sequence_buffer_matches_the_sps() {
        let mut s = settings();
        s.height = 1080;
        s.width = 1920;
        s.fps_num = 30_000;
        s.fps_den = 1001;
        let p = h264_params(&s, Profile::High);
        let b = sequence_buffer(&p);
        assert_eq!((b.picture_width_in_mbs, b.picture_height_in_mbs), (120, 68));
        assert_eq!((b.frame_cropping_flag, b.frame_crop_bottom_offset), (1, 4));
        assert_eq!((b.intra_idr_period, b.intra_period, b.ip_period), (4, 4, 1));
        assert_eq!((b.num_units_in_tick, b.time_scale), (1001, 60_000));
        assert_eq!(b.level_idc, 40);
        // chroma 4:2:0, frame_mbs_only, direct_8x8, log2_max_frame_num-4 = 4, POC type 2.
        assert_eq!(b.seq_fields, 1 | (1 << 2) | (1 << 5) | (4 << 6) | (2 << 10));
    }

    #[test]
    fn gop_numbering_and_forced_idr() {
        let p = h264_params(&settings(), Profile::High); // idr_period 4
        let mut g = GopState::default();
        let seq: Vec<_> = (0..6).map(|_| g.next(&p, false)).collect();
        assert_eq!(
            seq.iter()
                .map(|x| (x.idr, x.frame_num, x.poc))
                .collect::<Vec<_>>(),
            vec![
                (true, 0, 0),
                (false, 1, 2),
                (false, 2, 4),
                (false, 3, 6),
                (true, 0, 0),
                (false, 1, 2)
            ]
        );
        assert_eq!((seq[0].idr_pic_id, seq[4].idr_pic_id), (0, 1));
        let forced = g.next(&p, true);
        assert!(forced.idr);
        assert_eq!(forced.idr_pic_id, 2);
    }

    #[test]
    fn picture_and_slice_buffers_reference_the_previous_reconstruction() {
        let p = h264_params(&settings(), Profile::High);
        let idr = PicInfo {
            idr: true,
            frame_num: 0,
            poc: 0,
            idr_pic_id: 0,
        };
        let pb = picture_buffer(&p, &idr, 7, None, 99);
        assert_eq!(
            (pb.CurrPic.picture_id, pb.coded_buf, pb.pic_init_qp),
            (7, 99, 26)
        );
        assert!(pb
            .ReferenceFrames
            .iter()
            .all(|r| *r == VAPictureH264::INVALID));
        assert_eq!(pb.pic_fields, 1 | (1 << 1) | (1 << 3) | (1 << 8) | (1 << 9));
        let sb = slice_buffer(&p, &idr, None);
        assert_eq!((sb.slice_type, sb.num_macroblocks), (SLICE_TYPE_I, 80 * 45));

        let prev = RefPic {
            surface: 7,
            frame_num: 0,
            poc: 0,
        };
        let pp = PicInfo {
            idr: false,
            frame_num: 1,
            poc: 2,
            idr_pic_id: 0,
        };
        let pb = picture_buffer(&p, &pp, 8, Some(&prev), 99);
        assert_eq!(pb.ReferenceFrames[0].picture_id, 7);
        assert_eq!(
            pb.ReferenceFrames[0].flags,
            VA_PICTURE_H264_SHORT_TERM_REFERENCE
        );
        assert_eq!(pb.ReferenceFrames[1], VAPictureH264::INVALID);
        assert_eq!((pb.frame_num, pb.CurrPic.TopFieldOrderCnt), (1, 2));
        assert_eq!(pb.pic_fields & 1, 0);
        let sb = slice_buffer(&p, &pp, Some(&prev));
        assert_eq!(sb.slice_type, SLICE_TYPE_P);
        assert_eq!(sb.RefPicList0[0].picture_id, 7);
        assert_eq!(sb.RefPicList1[0], VAPictureH264::INVALID);
    }

    #[test]
    fn frame_rate_packs_fraction() {
        let mut s = settings();
        s.fps_num = 30_000;
        s.fps_den = 1001;
        let p = h264_params(&s, Profile::Main);
        assert_eq!(frame_rate(&p).framerate, 30_000 | (1001 << 16));
    }

    #[test]
    fn options_and_validation() {
        let mut s = settings();
        s.apply_options(&[
            ("profile".into(), "baseline".into()),
            ("low_power".into(), "1".into()),
        ])
        .expect("options");
        assert_eq!(
            (s.profile, s.low_power),
            (Some(Profile::ConstrainedBaseline), true)
        );
        assert!(s
            .apply_options(&[("profile".into(), "extended".into())])
            .is_err());
        assert!(s.apply_options(&[("bogus".into(), String::new())]).is_err());
        assert!(s.validate().is_ok());
        s.width = 641;
        assert!(s.validate().unwrap_err().contains("641x720"));
    }
}
