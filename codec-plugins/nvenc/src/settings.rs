//! The host's encoder settings and their mapping onto NVENC's preset,
//! rate control and GOP parameters. Pure code, unit-tested without a GPU.

use crate::ffi::{
    GUID, H264_REPEAT_SPSPPS, NV_ENC_CONFIG, NV_ENC_PARAMS_RC_CONSTQP, NV_ENC_PARAMS_RC_VBR,
    NV_ENC_PRESET_GUIDS,
};

/// Default preset (P1 fastest .. P7 best): P4 balances speed and quality.
pub const DEFAULT_PRESET: u8 = 4;
/// Default constant QP when the host passes no CRF and no bit rate.
pub const DEFAULT_QP: u32 = 23;

/// Settings copied out of the ABI config.
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
    /// IDR interval in frames.
    pub gop: u32,
    /// Constant QP (negative = default).
    pub crf: i32,
    /// Preset 1..=7 (negative or 0 = default).
    pub preset: i32,
    /// Target bit rate in kbit/s (0 = constant QP).
    pub bitrate_kbps: u32,
    /// CUDA device ordinal (`device` = `N` or `cuda:N`).
    pub cuda_device: i32,
}

impl Settings {
    /// Checks what NVENC cannot take.
    pub fn validate(&self) -> Result<(), String> {
        if self.width < 2
            || self.height < 2
            || !self.width.is_multiple_of(2)
            || !self.height.is_multiple_of(2)
        {
            return Err(format!(
                "nvenc: {}x{} is not a valid NV12 size",
                self.width, self.height
            ));
        }
        if self.fps_num == 0 || self.fps_den == 0 {
            return Err(format!(
                "nvenc: invalid frame rate {}/{}",
                self.fps_num, self.fps_den
            ));
        }
        Ok(())
    }

    /// The preset number actually used (1..=7).
    pub fn preset_number(&self) -> u8 {
        match self.preset {
            p @ 1..=7 => p as u8,
            _ => DEFAULT_PRESET,
        }
    }

    /// GUID of the preset.
    pub fn preset_guid(&self) -> GUID {
        NV_ENC_PRESET_GUIDS[usize::from(self.preset_number() - 1)]
    }

    /// QP used in constant-QP mode (0..=51).
    pub fn qp(&self) -> u32 {
        if self.crf < 0 {
            DEFAULT_QP
        } else {
            self.crf.clamp(0, 51) as u32
        }
    }
}

/// Parses the `device` config string: `N`, `cuda:N` or empty.
pub fn parse_device(device: Option<&str>) -> Result<i32, String> {
    let Some(d) = device.map(str::trim).filter(|d| !d.is_empty()) else {
        return Ok(0);
    };
    let n = d.strip_prefix("cuda:").unwrap_or(d);
    n.parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| format!("nvenc: device '{d}' is not a CUDA ordinal (N or cuda:N)"))
}

/// Applies GOP, rate control and stream options on top of a preset config:
/// I/P only (no B frames, so every encode call returns its packet), IDR
/// every `gop` frames, SPS/PPS repeated at every IDR, CQP or VBR.
pub fn apply(cfg: &mut NV_ENC_CONFIG, s: &Settings) {
    let gop = s.gop.max(1);
    cfg.gopLength = gop;
    cfg.frameIntervalP = 1;
    cfg.h264.idrPeriod = gop;
    cfg.h264.flags |= H264_REPEAT_SPSPPS;
    cfg.h264.maxNumRefFrames = 1;
    let rc = &mut cfg.rcParams;
    if s.bitrate_kbps > 0 {
        let bps = s.bitrate_kbps.saturating_mul(1000);
        rc.rateControlMode = NV_ENC_PARAMS_RC_VBR;
        rc.averageBitRate = bps;
        rc.maxBitRate = bps.saturating_mul(3) / 2;
        rc.vbvBufferSize = bps.saturating_mul(2);
        rc.vbvInitialDelay = bps;
    } else {
        let qp = s.qp();
        rc.rateControlMode = NV_ENC_PARAMS_RC_CONSTQP;
        rc.constQP.qpIntra = qp;
        rc.constQP.qpInterP = qp;
        rc.constQP.qpInterB = qp;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::zeroed;

    fn settings() -> Settings {
        Settings {
            width: 1280,
            height: 720,
            fps_num: 30,
            fps_den: 1,
            gop: 60,
            crf: -1,
            preset: -1,
            ..Default::default()
        }
    }

    #[test]
    fn cqp_mapping_sets_gop_and_qp() {
        let mut cfg = zeroed::<NV_ENC_CONFIG>();
        cfg.frameIntervalP = 3; // a preset with B frames
        apply(&mut cfg, &settings());
        assert_eq!(
            (cfg.gopLength, cfg.frameIntervalP, cfg.h264.idrPeriod),
            (60, 1, 60)
        );
        assert_eq!(cfg.h264.flags & H264_REPEAT_SPSPPS, H264_REPEAT_SPSPPS);
        assert_eq!(cfg.rcParams.rateControlMode, NV_ENC_PARAMS_RC_CONSTQP);
        assert_eq!(cfg.rcParams.constQP.qpIntra, DEFAULT_QP);
    }

    #[test]
    fn vbr_mapping_uses_the_bitrate() {
        let mut s = settings();
        s.bitrate_kbps = 8000;
        s.gop = 0;
        let mut cfg = zeroed::<NV_ENC_CONFIG>();
        apply(&mut cfg, &s);
        assert_eq!(cfg.rcParams.rateControlMode, NV_ENC_PARAMS_RC_VBR);
        assert_eq!(
            (cfg.rcParams.averageBitRate, cfg.rcParams.maxBitRate),
            (8_000_000, 12_000_000)
        );
        assert_eq!(cfg.gopLength, 1);
    }

    #[test]
    fn presets_and_qp_are_clamped() {
        let mut s = settings();
        assert_eq!(s.preset_number(), 4);
        s.preset = 1;
        assert_eq!(s.preset_guid(), NV_ENC_PRESET_GUIDS[0]);
        s.preset = 9;
        assert_eq!(s.preset_number(), DEFAULT_PRESET);
        s.crf = 80;
        assert_eq!(s.qp(), 51);
    }

    #[test]
    fn device_strings() {
        assert_eq!(parse_device(None), Ok(0));
        assert_eq!(parse_device(Some("cuda:1")), Ok(1));
        assert_eq!(parse_device(Some("2")), Ok(2));
        assert!(parse_device(Some("/dev/nvidia0")).is_err());
        let mut s = settings();
        assert!(s.validate().is_ok());
        s.width = 641;
        assert!(s.validate().is_err());
    }
}
