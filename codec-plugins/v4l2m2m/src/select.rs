//! Which `/dev/video*` node is a usable encoder, and with which formats.
//! Pure logic over the facts the ioctls reported, so it is unit-tested
//! without hardware.

use crate::sys;
use s6_codec_abi::CodecId;

/// What one device node reported (QUERYCAP + ENUM_FMT on both queues).
#[derive(Clone, Debug, Default)]
pub struct DeviceFacts {
    /// Device path.
    pub path: String,
    /// `driver` from QUERYCAP.
    pub driver: String,
    /// `card` from QUERYCAP.
    pub card: String,
    /// Effective capabilities (`device_caps` when provided).
    pub caps: u32,
    /// OUTPUT-queue formats: (fourcc, flags).
    pub output_formats: Vec<(u32, u32)>,
    /// CAPTURE-queue formats: (fourcc, flags).
    pub capture_formats: Vec<(u32, u32)>,
}

/// A chosen encoder configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// Device path.
    pub path: String,
    /// Multiplanar API (`*_MPLANE` queue types).
    pub mplane: bool,
    /// Compressed CAPTURE fourcc.
    pub coded: u32,
    /// The codec it produces.
    pub codec: CodecId,
    /// Raw OUTPUT fourcc.
    pub raw: u32,
}

/// Raw formats the plugin can fill, best first.
pub const RAW_PREFERENCE: [u32; 4] = [
    sys::PIX_FMT_NV12,
    sys::PIX_FMT_YUV420,
    sys::PIX_FMT_NV12M,
    sys::PIX_FMT_YUV420M,
];

/// Compressed formats the plugin accepts, best first. HEVC is left out on
/// purpose: the plugin table declares one codec (H.264) and the host would
/// mux HEVC as H.264. FWHT only exists on the kernel's test codec.
pub fn codec_preference(restrict: Option<CodecId>) -> Vec<(u32, CodecId)> {
    let all = [
        (sys::PIX_FMT_H264, CodecId::H264),
        (sys::PIX_FMT_FWHT, CodecId::Fwht),
    ];
    all.into_iter()
        .filter(|(_, c)| restrict.is_none_or(|r| r == *c))
        .collect()
}

/// Decides whether `facts` describe a usable encoder. `Err` says why not.
pub fn classify(facts: &DeviceFacts, restrict: Option<CodecId>) -> Result<Choice, String> {
    let mplane = if facts.caps & sys::CAP_VIDEO_M2M_MPLANE != 0 {
        true
    } else if facts.caps & sys::CAP_VIDEO_M2M != 0 {
        false
    } else {
        return Err(format!(
            "not a memory-to-memory device (caps {:#010x})",
            facts.caps
        ));
    };
    if facts.caps & sys::CAP_STREAMING == 0 {
        return Err("no streaming I/O".into());
    }
    let compressed_out = facts
        .output_formats
        .iter()
        .any(|&(_, f)| f & sys::FMT_FLAG_COMPRESSED != 0);
    if compressed_out {
        return Err("a decoder (takes compressed input)".into());
    }
    let coded = codec_preference(restrict)
        .into_iter()
        .find(|(fourcc, _)| facts.capture_formats.iter().any(|&(f, _)| f == *fourcc));
    let Some((coded, codec)) = coded else {
        let offered: Vec<String> = facts
            .capture_formats
            .iter()
            .map(|&(f, _)| sys::fourcc_str(f))
            .collect();
        return Err(format!(
            "produces [{}], none of [{}]",
            offered.join(", "),
            codec_preference(restrict)
                .iter()
                .map(|(f, _)| sys::fourcc_str(*f))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let raw = RAW_PREFERENCE
        .into_iter()
        .filter(|f| mplane || !matches!(*f, sys::PIX_FMT_NV12M | sys::PIX_FMT_YUV420M))
        .find(|raw| facts.output_formats.iter().any(|&(f, _)| f == *raw));
    let Some(raw) = raw else {
        let offered: Vec<String> = facts
            .output_formats
            .iter()
            .map(|&(f, _)| sys::fourcc_str(f))
            .collect();
        return Err(format!(
            "takes [{}], none of NV12/YU12/NM12/YM12",
            offered.join(", ")
        ));
    };
    Ok(Choice {
        path: facts.path.clone(),
        mplane,
        coded,
        codec,
        raw,
    })
}

/// Picks the best encoder among `scanned` (device facts or an open/query
/// error per path). The error lists every device and why it was rejected.
pub fn choose(
    scanned: &[(String, Result<DeviceFacts, String>)],
    restrict: Option<CodecId>,
) -> Result<Choice, String> {
    if scanned.is_empty() {
        return Err("no V4L2 M2M encoder device found (scanned /dev/video*: none present)".into());
    }
    let mut reasons = Vec::new();
    let mut best: Option<(usize, Choice)> = None;
    let prefs = codec_preference(restrict);
    for (path, facts) in scanned {
        match facts
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|f| classify(f, restrict))
        {
            Ok(choice) => {
                let rank = prefs
                    .iter()
                    .position(|(_, c)| *c == choice.codec)
                    .unwrap_or(usize::MAX);
                if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                    best = Some((rank, choice));
                }
            }
            Err(why) => reasons.push(format!("{path}: {why}")),
        }
    }
    best.map(|(_, c)| c).ok_or_else(|| {
        format!(
            "no V4L2 M2M encoder device found (scanned {})",
            reasons.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sys::*;

    fn vicodec_encoder(mplane: bool) -> DeviceFacts {
        DeviceFacts {
            path: "/dev/video1".into(),
            driver: "vicodec".into(),
            card: "vicodec".into(),
            caps: CAP_STREAMING
                | if mplane {
                    CAP_VIDEO_M2M_MPLANE
                } else {
                    CAP_VIDEO_M2M
                },
            output_formats: vec![(PIX_FMT_YUV420, 0), (PIX_FMT_NV12, 0), (fourcc(b"YUYV"), 0)],
            capture_formats: vec![(PIX_FMT_FWHT, FMT_FLAG_COMPRESSED)],
        }
    }

    fn h264_encoder(path: &str) -> DeviceFacts {
        DeviceFacts {
            path: path.into(),
            driver: "bcm2835-codec".into(),
            card: "bcm2835-codec-encode".into(),
            caps: CAP_STREAMING | CAP_VIDEO_M2M_MPLANE,
            output_formats: vec![(PIX_FMT_YUV420, 0), (PIX_FMT_NV12M, 0)],
            capture_formats: vec![(PIX_FMT_H264, FMT_FLAG_COMPRESSED)],
        }
    }

    #[test]
    fn vicodec_encoder_is_fwht_with_nv12() {
        for mplane in [false, true] {
            let c = classify(&vicodec_encoder(mplane), None).unwrap();
            assert_eq!(c.codec, CodecId::Fwht);
            assert_eq!(c.raw, PIX_FMT_NV12);
            assert_eq!(c.mplane, mplane);
        }
    }

    #[test]
    fn decoder_and_capture_devices_are_rejected_with_reasons() {
        let mut dec = vicodec_encoder(false);
        std::mem::swap(&mut dec.output_formats, &mut dec.capture_formats);
        assert!(classify(&dec, None).unwrap_err().contains("decoder"));
        let cam = DeviceFacts {
            caps: CAP_STREAMING | 0x1,
            ..Default::default()
        };
        assert!(classify(&cam, None)
            .unwrap_err()
            .contains("not a memory-to-memory"));
    }

    #[test]
    fn single_planar_device_never_gets_multi_buffer_formats() {
        let mut f = h264_encoder("/dev/video11");
        f.caps = CAP_STREAMING | CAP_VIDEO_M2M;
        f.output_formats = vec![(PIX_FMT_NV12M, 0)];
        assert!(classify(&f, None).unwrap_err().contains("none of NV12"));
    }

    #[test]
    fn h264_is_preferred_over_fwht_and_errors_list_every_device() {
        let scanned = vec![
            ("/dev/video1".to_string(), Ok(vicodec_encoder(false))),
            ("/dev/video11".to_string(), Ok(h264_encoder("/dev/video11"))),
            (
                "/dev/video0".to_string(),
                Err("permission denied".to_string()),
            ),
        ];
        let c = choose(&scanned, None).unwrap();
        assert_eq!(
            (c.path.as_str(), c.codec, c.raw),
            ("/dev/video11", CodecId::H264, PIX_FMT_YUV420)
        );
        let only_fwht = choose(&scanned[..1], Some(CodecId::H264)).unwrap_err();
        assert!(
            only_fwht.contains("/dev/video1: produces [FWHT], none of [H264]"),
            "{only_fwht}"
        );
        let err = choose(&scanned[2..], None).unwrap_err();
        assert_eq!(
            err,
            "no V4L2 M2M encoder device found (scanned /dev/video0: permission denied)"
        );
        assert!(choose(&[], None).unwrap_err().contains("none present"));
    }

    #[test]
    fn hevc_only_encoders_are_rejected() {
        let mut f = h264_encoder("/dev/video12");
        f.capture_formats = vec![(PIX_FMT_HEVC, FMT_FLAG_COMPRESSED)];
        assert!(classify(&f, None).unwrap_err().contains("produces [HEVC]"));
    }
}
