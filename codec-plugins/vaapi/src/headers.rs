//! H.264 stream parameters derived from the host's encoder config, and the
//! SPS/PPS NAL units written from them. The same parameters feed the VA
//! parameter buffers ([`crate::params`]), so the headers this plugin packs
//! into the stream and hands out as the codec configuration record always
//! describe what the driver encodes.

use crate::bits::{nal_unit, BitWriter};

/// H.264 profile used for the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Constrained Baseline (profile_idc 66, constraint_set0/1): CAVLC only.
    ConstrainedBaseline,
    /// Main (77): CABAC.
    Main,
    /// High (100): CABAC and 8x8 transforms.
    High,
}

impl Profile {
    /// `profile_idc` of the SPS.
    pub fn idc(self) -> u8 {
        match self {
            Self::ConstrainedBaseline => 66,
            Self::Main => 77,
            Self::High => 100,
        }
    }

    /// The `constraint_set*_flag` byte of the SPS.
    pub fn constraint_flags(self) -> u8 {
        match self {
            Self::ConstrainedBaseline => 0xc0,
            Self::Main | Self::High => 0,
        }
    }
}

/// Everything the SPS, PPS and the per-picture VA parameters depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H264Params {
    /// Visible width in pixels (even).
    pub width: u32,
    /// Visible height in pixels (even).
    pub height: u32,
    /// Frame rate numerator.
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
    /// Profile.
    pub profile: Profile,
    /// `level_idc` (10 × level).
    pub level_idc: u8,
    /// IDR period in frames (≥ 1); every picture in between is a P picture.
    pub idr_period: u32,
    /// Target bit rate in bit/s for VBR, `None` for constant QP.
    pub bitrate_bps: Option<u32>,
    /// QP of every picture in CQP mode, initial QP otherwise (0..=51).
    pub qp: u8,
    /// CABAC (`entropy_coding_mode_flag`); Main and High only.
    pub cabac: bool,
    /// `transform_8x8_mode_flag`; High only.
    pub transform_8x8: bool,
    /// `log2_max_frame_num_minus4`.
    pub log2_max_frame_num_minus4: u8,
}

/// `MaxMBPS`, `MaxFS` and `MaxBR` (kbit/s, Baseline/Main) of each level (Table A-1).
const LEVELS: [(u8, u64, u64, u64); 16] = [
    (10, 1_485, 99, 64),
    (11, 3_000, 396, 192),
    (12, 6_000, 396, 384),
    (13, 11_880, 396, 768),
    (20, 11_880, 396, 2_000),
    (21, 19_800, 792, 4_000),
    (22, 20_250, 1_620, 4_000),
    (30, 40_500, 1_620, 10_000),
    (31, 108_000, 3_600, 14_000),
    (32, 216_000, 5_120, 20_000),
    (40, 245_760, 8_192, 20_000),
    (41, 245_760, 8_192, 50_000),
    (42, 522_240, 8_704, 50_000),
    (50, 589_824, 22_080, 135_000),
    (51, 983_040, 36_864, 240_000),
    (52, 2_073_600, 36_864, 240_000),
];

/// The lowest level whose limits hold the picture size, macroblock rate and
/// bit rate; level 5.2 when nothing fits (the encoder still runs).
pub fn choose_level(
    width_mbs: u32,
    height_mbs: u32,
    fps_num: u32,
    fps_den: u32,
    bitrate_bps: Option<u32>,
    profile: Profile,
) -> u8 {
    let fs = u64::from(width_mbs) * u64::from(height_mbs);
    let mbps = (fs * u64::from(fps_num)).div_ceil(u64::from(fps_den.max(1)));
    // High profile allows 1.25× the Baseline/Main bit rate (Table A-2).
    let br_factor_x4 = if profile == Profile::High { 5 } else { 4 };
    for &(idc, max_mbps, max_fs, max_br) in &LEVELS {
        let side_limit = max_fs * 8; // width and height each ≤ sqrt(8·MaxFS)
        let fits_side =
            u64::from(width_mbs).pow(2) <= side_limit && u64::from(height_mbs).pow(2) <= side_limit;
        let fits_br = bitrate_bps.is_none_or(|b| u64::from(b) * 4 <= max_br * 1000 * br_factor_x4);
        if fs <= max_fs && mbps <= max_mbps && fits_side && fits_br {
            return idc;
        }
    }
    52
}

impl H264Params {
    /// Width in macroblocks.
    pub fn width_mbs(&self) -> u32 {
        self.width.div_ceil(16)
    }

    /// Height in macroblocks (frame coding only).
    pub fn height_mbs(&self) -> u32 {
        self.height.div_ceil(16)
    }

    /// Cropping (right, bottom) in 4:2:0 crop units (2 pixels).
    pub fn crop(&self) -> (u32, u32) {
        (
            (self.width_mbs() * 16 - self.width) / 2,
            (self.height_mbs() * 16 - self.height) / 2,
        )
    }

    /// `MaxFrameNum`.
    pub fn max_frame_num(&self) -> u32 {
        1 << (u32::from(self.log2_max_frame_num_minus4) + 4)
    }

    /// The sequence parameter set RBSP (no NAL header, no escaping).
    pub fn sps_rbsp(&self) -> Vec<u8> {
        let mut w = BitWriter::new();
        w.u(8, u32::from(self.profile.idc()));
        w.u(8, u32::from(self.profile.constraint_flags()));
        w.u(8, u32::from(self.level_idc));
        w.ue(0); // seq_parameter_set_id
        if self.profile == Profile::High {
            w.ue(1); // chroma_format_idc: 4:2:0
            w.ue(0); // bit_depth_luma_minus8
            w.ue(0); // bit_depth_chroma_minus8
            w.flag(false); // qpprime_y_zero_transform_bypass_flag
            w.flag(false); // seq_scaling_matrix_present_flag
        }
        w.ue(u32::from(self.log2_max_frame_num_minus4));
        w.ue(2); // pic_order_cnt_type 2: output order = decode order (no B frames)
        w.ue(1); // max_num_ref_frames
        w.flag(false); // gaps_in_frame_num_value_allowed_flag
        w.ue(self.width_mbs() - 1);
        w.ue(self.height_mbs() - 1); // pic_height_in_map_units_minus1
        w.flag(true); // frame_mbs_only_flag
        w.flag(true); // direct_8x8_inference_flag
        let (crop_right, crop_bottom) = self.crop();
        let cropping = crop_right != 0 || crop_bottom != 0;
        w.flag(cropping);
        if cropping {
            w.ue(0);
            w.ue(crop_right);
            w.ue(0);
            w.ue(crop_bottom);
        }
        w.flag(true); // vui_parameters_present_flag
        w.flag(false); // aspect_ratio_info_present_flag
        w.flag(false); // overscan_info_present_flag
        w.flag(false); // video_signal_type_present_flag
        w.flag(false); // chroma_loc_info_present_flag
        w.flag(true); // timing_info_present_flag
        w.u(32, self.fps_den); // num_units_in_tick
        w.u(32, self.fps_num.saturating_mul(2)); // time_scale (field rate)
        w.flag(true); // fixed_frame_rate_flag
        w.flag(false); // nal_hrd_parameters_present_flag
        w.flag(false); // vcl_hrd_parameters_present_flag
        w.flag(false); // pic_struct_present_flag
        w.flag(false); // bitstream_restriction_flag
        w.trailing_bits();
        w.into_bytes()
    }

    /// The picture parameter set RBSP.
    pub fn pps_rbsp(&self) -> Vec<u8> {
        let mut w = BitWriter::new();
        w.ue(0); // pic_parameter_set_id
        w.ue(0); // seq_parameter_set_id
        w.flag(self.cabac); // entropy_coding_mode_flag
        w.flag(false); // bottom_field_pic_order_in_frame_present_flag
        w.ue(0); // num_slice_groups_minus1
        w.ue(0); // num_ref_idx_l0_default_active_minus1
        w.ue(0); // num_ref_idx_l1_default_active_minus1
        w.flag(false); // weighted_pred_flag
        w.u(2, 0); // weighted_bipred_idc
        w.se(i32::from(self.qp) - 26); // pic_init_qp_minus26
        w.se(0); // pic_init_qs_minus26
        w.se(0); // chroma_qp_index_offset
        w.flag(true); // deblocking_filter_control_present_flag
        w.flag(false); // constrained_intra_pred_flag
        w.flag(false); // redundant_pic_cnt_present_flag
        if self.transform_8x8 {
            w.flag(true); // transform_8x8_mode_flag
            w.flag(false); // pic_scaling_matrix_present_flag
            w.se(0); // second_chroma_qp_index_offset
        }
        w.trailing_bits();
        w.into_bytes()
    }

    /// SPS as an Annex-B NAL unit (nal_ref_idc 3, type 7).
    pub fn sps_nal(&self) -> Vec<u8> {
        nal_unit(3, 7, &self.sps_rbsp())
    }

    /// PPS as an Annex-B NAL unit (nal_ref_idc 3, type 8).
    pub fn pps_nal(&self) -> Vec<u8> {
        nal_unit(3, 8, &self.pps_rbsp())
    }

    /// The codec configuration record of the ABI: SPS then PPS, Annex-B.
    pub fn codec_config(&self) -> Vec<u8> {
        let mut v = self.sps_nal();
        v.extend_from_slice(&self.pps_nal());
        v
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bits::{unescape, BitReader};

    /// The SPS fields the tests look at, parsed back from an RBSP.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) struct ParsedSps {
        pub profile_idc: u32,
        pub constraints: u32,
        pub level_idc: u32,
        pub log2_max_frame_num_minus4: u32,
        pub poc_type: u32,
        pub max_num_ref_frames: u32,
        pub width_mbs: u32,
        pub height_mbs: u32,
        pub crop: Option<(u32, u32, u32, u32)>,
        pub timing: Option<(u32, u32, bool)>,
    }

    /// A tiny SPS parser covering the syntax this plugin (and x264 with
    /// default settings) writes.
    pub(crate) fn parse_sps(rbsp: &[u8]) -> Option<ParsedSps> {
        let mut r = BitReader::new(rbsp);
        let profile_idc = r.u(8)?;
        let constraints = r.u(8)?;
        let level_idc = r.u(8)?;
        let _sps_id = r.ue()?;
        if [100, 110, 122, 244, 44, 83, 86, 118, 128].contains(&profile_idc) {
            let chroma = r.ue()?;
            if chroma == 3 {
                r.bit()?;
            }
            r.ue()?;
            r.ue()?;
            r.bit()?;
            if r.bit()? {
                return None; // scaling matrices: not needed here
            }
        }
        let log2_max_frame_num_minus4 = r.ue()?;
        let poc_type = r.ue()?;
        match poc_type {
            0 => {
                r.ue()?;
            }
            1 => return None,
            _ => {}
        }
        let max_num_ref_frames = r.ue()?;
        r.bit()?;
        let width_mbs = r.ue()? + 1;
        let height_units = r.ue()? + 1;
        let frame_mbs_only = r.bit()?;
        if !frame_mbs_only {
            r.bit()?;
        }
        r.bit()?; // direct_8x8_inference_flag
        let crop = if r.bit()? {
            Some((r.ue()?, r.ue()?, r.ue()?, r.ue()?))
        } else {
            None
        };
        let mut timing = None;
        if r.bit()? {
            if r.bit()? {
                let idc = r.u(8)?;
                if idc == 255 {
                    r.u(32)?;
                }
            }
            if r.bit()? {
                r.bit()?;
            }
            if r.bit()? {
                r.u(4)?;
                if r.bit()? {
                    r.u(24)?;
                }
            }
            if r.bit()? {
                r.ue()?;
                r.ue()?;
            }
            if r.bit()? {
                timing = Some((r.u(32)?, r.u(32)?, r.bit()?));
            }
        }
        Some(ParsedSps {
            profile_idc,
            constraints,
            level_idc,
            log2_max_frame_num_minus4,
            poc_type,
            max_num_ref_frames,
            width_mbs,
            height_mbs: height_units * if frame_mbs_only { 1 } else { 2 },
            crop,
            timing,
        })
    }

    pub(crate) fn params(width: u32, height: u32, profile: Profile) -> H264Params {
        H264Params {
            width,
            height,
            fps_num: 30,
            fps_den: 1,
            profile,
            level_idc: choose_level(
                width.div_ceil(16),
                height.div_ceil(16),
                30,
                1,
                None,
                profile,
            ),
            idr_period: 30,
            bitrate_bps: None,
            qp: 26,
            cabac: profile != Profile::ConstrainedBaseline,
            transform_8x8: profile == Profile::High,
            log2_max_frame_num_minus4: 4,
        }
    }

    #[test]
    fn sps_parses_back_with_cropping_and_timing() {
        let p = params(1920, 1080, Profile::High);
        let nal = p.sps_nal();
        assert_eq!(&nal[..5], &[0, 0, 0, 1, 0x67]);
        let sps = parse_sps(&unescape(&nal[5..])).expect("parse");
        assert_eq!(
            sps,
            ParsedSps {
                profile_idc: 100,
                constraints: 0,
                level_idc: 40,
                log2_max_frame_num_minus4: 4,
                poc_type: 2,
                max_num_ref_frames: 1,
                width_mbs: 120,
                height_mbs: 68,
                crop: Some((0, 0, 0, 4)),
                timing: Some((1, 60, true)),
            }
        );
    }

    #[test]
    fn sps_without_cropping_for_macroblock_aligned_sizes() {
        let p = params(640, 480, Profile::ConstrainedBaseline);
        let sps = parse_sps(&unescape(&p.sps_nal()[5..])).expect("parse");
        assert_eq!((sps.profile_idc, sps.constraints), (66, 0xc0));
        assert_eq!((sps.width_mbs, sps.height_mbs, sps.crop), (40, 30, None));
        assert_eq!(sps.level_idc, 30);
    }

    #[test]
    fn pps_fields_are_written_in_order() {
        let mut p = params(640, 480, Profile::High);
        p.qp = 30;
        let rbsp = p.pps_rbsp();
        let mut r = BitReader::new(&rbsp);
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.bit(), Some(true)); // CABAC
        assert_eq!(r.bit(), Some(false));
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.bit(), Some(false));
        assert_eq!(r.u(2), Some(0));
        assert_eq!(r.se(), Some(4)); // pic_init_qp_minus26
        assert_eq!(r.se(), Some(0));
        assert_eq!(r.se(), Some(0));
        assert_eq!(r.bit(), Some(true)); // deblocking control
        assert_eq!(r.bit(), Some(false));
        assert_eq!(r.bit(), Some(false));
        assert_eq!(r.bit(), Some(true)); // transform_8x8_mode_flag
        assert_eq!(r.bit(), Some(false));
        assert_eq!(r.se(), Some(0));
        assert!(r.at_trailing_bits());
    }

    #[test]
    fn level_follows_table_a1() {
        let hd = |w: u32, h: u32, fps| {
            choose_level(w.div_ceil(16), h.div_ceil(16), fps, 1, None, Profile::Main)
        };
        assert_eq!(hd(176, 144, 15), 10);
        assert_eq!(hd(352, 288, 30), 13);
        assert_eq!(hd(640, 480, 30), 30);
        assert_eq!(hd(1280, 720, 30), 31);
        assert_eq!(hd(1280, 720, 60), 32);
        assert_eq!(hd(1920, 1080, 30), 40);
        assert_eq!(hd(1920, 1080, 60), 42);
        assert_eq!(hd(3840, 2160, 30), 51);
        assert_eq!(hd(3840, 2160, 60), 52);
        // 30 Mbit/s at 1080p30 needs level 4.1 (Main: 20 Mbit/s max at 4.0)...
        assert_eq!(
            choose_level(120, 68, 30, 1, Some(30_000_000), Profile::Main),
            41
        );
        // ...and High's 1.25× allowance keeps 24 Mbit/s at 4.0.
        assert_eq!(
            choose_level(120, 68, 30, 1, Some(24_000_000), Profile::High),
            40
        );
        // A very wide strip breaks the per-side limit of low levels.
        assert_eq!(choose_level(40, 2, 30, 1, None, Profile::Main), 11);
    }
}
