//! Turns the host's [`EncoderConfig`] (plus its `options` string) into the
//! flat SVT parameters, applying the defaults training pipelines expect and
//! rejecting what SVT-AV1 cannot encode with a message that says why.

use crate::ffi::Params;
use s6_codec_abi::helpers::{parse_options, PluginError};
use s6_codec_abi::{EncoderConfig, PixelFormat};

/// Default speed preset (SVT `enc_mode`; 13 fastest).
pub const DEFAULT_PRESET: i32 = 12;
/// Default constant-quality factor.
pub const DEFAULT_CRF: i32 = 30;
/// Default keyframe interval in frames (every 2nd frame is a keyframe).
pub const DEFAULT_GOP: u32 = 2;

/// Smallest frame side SVT-AV1 1.4 accepts.
pub const MIN_SIDE: u32 = 64;
/// Largest frame width SVT-AV1 1.4 accepts.
pub const MAX_WIDTH: u32 = 16384;
/// Largest frame height SVT-AV1 1.4 accepts.
pub const MAX_HEIGHT: u32 = 8704;

/// Validated settings for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// What the shim applies to SVT's configuration.
    pub params: Params,
    /// Option keys that were not understood (ignored).
    pub warnings: Vec<String>,
}

/// Builds [`Settings`] from the host's config and option string.
///
/// Keys understood in `options`: `film-grain=0..50` (SVT film grain
/// synthesis with denoising) and `pred-struct=low-delay|random-access`
/// (default `low-delay`: no look-ahead, a packet per frame as soon as
/// possible). Unknown keys are ignored and listed in `warnings`.
pub fn from_config(cfg: &EncoderConfig, options: Option<&str>) -> Result<Settings, PluginError> {
    if PixelFormat::from_raw(cfg.pixel_format) != Some(PixelFormat::I420) {
        return Err(PluginError::unavailable(format!(
            "svtav1 encodes I420 (yuv420p) input only; got pixel format {} (convert to I420 first)",
            describe_format(cfg.pixel_format)
        )));
    }
    let (w, h) = (cfg.width, cfg.height);
    if !(MIN_SIDE..=MAX_WIDTH).contains(&w) || !(MIN_SIDE..=MAX_HEIGHT).contains(&h) {
        return Err(PluginError::unavailable(format!(
            "SVT-AV1 cannot encode {w}x{h}: width must be {MIN_SIDE}..{MAX_WIDTH} and height \
             {MIN_SIDE}..{MAX_HEIGHT}"
        )));
    }
    if w % 2 != 0 || h % 2 != 0 {
        return Err(PluginError::unavailable(format!(
            "SVT-AV1 needs even frame sides for 4:2:0; got {w}x{h}"
        )));
    }
    if cfg.fps_num == 0 || cfg.fps_den == 0 {
        return Err(PluginError::error(format!(
            "invalid frame rate {}/{}",
            cfg.fps_num, cfg.fps_den
        )));
    }
    let preset = if cfg.preset < 0 {
        DEFAULT_PRESET
    } else {
        cfg.preset
    };
    if preset > 13 {
        return Err(PluginError::error(format!(
            "SVT-AV1 preset must be 0..13, got {preset}"
        )));
    }
    let crf = if cfg.crf < 0 { DEFAULT_CRF } else { cfg.crf };
    if !(1..=63).contains(&crf) {
        return Err(PluginError::error(format!(
            "SVT-AV1 CRF must be 1..63, got {crf}"
        )));
    }
    let gop = if cfg.gop == 0 { DEFAULT_GOP } else { cfg.gop };
    // SVT counts the frames *between* intra refreshes: period N means a
    // keyframe every N+1 frames.
    let intra_period = i32::try_from(gop - 1)
        .map_err(|_| PluginError::error(format!("GOP {gop} is too long for SVT-AV1")))?;

    let mut params = Params {
        width: w,
        height: h,
        fps_num: cfg.fps_num,
        fps_den: cfg.fps_den,
        preset,
        crf,
        intra_period,
        threads: cfg.threads,
        film_grain: 0,
        low_delay: 1,
    };
    let mut warnings = Vec::new();
    for (key, value) in parse_options(options) {
        match key.as_str() {
            "film-grain" => {
                params.film_grain =
                    value
                        .parse::<u32>()
                        .ok()
                        .filter(|v| *v <= 50)
                        .ok_or_else(|| {
                            PluginError::error(format!("film-grain must be 0..50, got `{value}`"))
                        })?;
            }
            "pred-struct" => {
                params.low_delay = match value.as_str() {
                    "low-delay" | "ld" => 1,
                    "random-access" | "ra" => 0,
                    other => {
                        return Err(PluginError::error(format!(
                            "pred-struct must be low-delay or random-access, got `{other}`"
                        )))
                    }
                };
            }
            other => warnings.push(format!("svtav1: ignoring unknown option `{other}`")),
        }
    }
    Ok(Settings { params, warnings })
}

fn describe_format(raw: u32) -> String {
    match PixelFormat::from_raw(raw) {
        Some(f) => format!("{f:?}"),
        None => format!("#{raw} (unknown)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(w: u32, h: u32) -> EncoderConfig {
        EncoderConfig {
            struct_size: std::mem::size_of::<EncoderConfig>() as u32,
            width: w,
            height: h,
            fps_num: 30,
            fps_den: 1,
            pixel_format: PixelFormat::I420 as u32,
            gop: 0,
            crf: -1,
            preset: -1,
            threads: 0,
            bitrate_kbps: 0,
            device: std::ptr::null(),
            options: std::ptr::null(),
        }
    }

    #[test]
    fn defaults_are_training_pipeline_defaults() {
        let s = from_config(&config(640, 480), None).unwrap();
        assert_eq!(s.params.preset, 12);
        assert_eq!(s.params.crf, 30);
        assert_eq!(s.params.intra_period, 1, "GOP 2 = intra period 1");
        assert_eq!(s.params.low_delay, 1);
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn gop_one_is_all_intra() {
        let mut c = config(640, 480);
        c.gop = 1;
        assert_eq!(from_config(&c, None).unwrap().params.intra_period, 0);
    }

    #[test]
    fn rejects_bad_sizes_and_formats() {
        for (w, h) in [(1, 1), (100_000, 100_000), (63, 480), (641, 480)] {
            let e = from_config(&config(w, h), None).unwrap_err();
            assert_eq!(e.status, s6_codec_abi::STATUS_UNAVAILABLE, "{w}x{h}");
            assert!(e.message.contains(&format!("{w}x{h}")), "{}", e.message);
        }
        let mut c = config(640, 480);
        c.pixel_format = PixelFormat::Nv12 as u32;
        let e = from_config(&c, None).unwrap_err();
        assert!(e.message.contains("Nv12"), "{}", e.message);
    }

    #[test]
    fn options_are_honoured_or_reported() {
        let s = from_config(
            &config(640, 480),
            Some("film-grain=8;pred-struct=ra;bogus=1"),
        )
        .unwrap();
        assert_eq!(s.params.film_grain, 8);
        assert_eq!(s.params.low_delay, 0);
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].contains("bogus"));
        assert!(from_config(&config(640, 480), Some("film-grain=99")).is_err());
    }
}
