//! Raw video formats and frame metadata shared by capture, conversion and encoding.

pub use s6_codec_abi::PixelFormat;
use serde::{Deserialize, Serialize};

/// Size, rate and pixel layout of one camera's raw frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoFormat {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rate numerator.
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
    /// Pixel layout of the captured bytes.
    #[serde(with = "pixel_format_name")]
    pub pixel_format: PixelFormat,
}

impl VideoFormat {
    /// Bytes of one tightly packed frame in this format.
    pub fn frame_bytes(&self) -> usize {
        frame_bytes(self.pixel_format, self.width, self.height)
    }
    /// Frames per second as a float.
    pub fn fps(&self) -> f64 {
        f64::from(self.fps_num) / f64::from(self.fps_den.max(1))
    }
    /// Nominal interval between frames in nanoseconds.
    pub fn frame_interval_ns(&self) -> u64 {
        (1_000_000_000u64 * u64::from(self.fps_den.max(1))) / u64::from(self.fps_num.max(1))
    }
}

/// Bytes of one tightly packed frame (no row padding; 4:2:0 chroma rounded up).
pub fn frame_bytes(format: PixelFormat, width: u32, height: u32) -> usize {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    match format {
        PixelFormat::I420 | PixelFormat::Nv12 => w * h + 2 * cw * ch,
        PixelFormat::Yuyv => 2 * cw * 2 * h,
        PixelFormat::Rgb24 | PixelFormat::Bgr24 => 3 * w * h,
        PixelFormat::Rgba => 4 * w * h,
        PixelFormat::Gray8 => w * h,
        PixelFormat::Mjpeg => crate::mjpeg::max_frame_bytes(width, height),
    }
}

/// Short lower-case name of a pixel format (`i420`, `nv12`, `yuyv`, `rgb24`, ...).
pub fn pixel_format_str(format: PixelFormat) -> &'static str {
    match format {
        PixelFormat::I420 => "i420",
        PixelFormat::Nv12 => "nv12",
        PixelFormat::Yuyv => "yuyv",
        PixelFormat::Rgb24 => "rgb24",
        PixelFormat::Bgr24 => "bgr24",
        PixelFormat::Rgba => "rgba",
        PixelFormat::Gray8 => "gray8",
        PixelFormat::Mjpeg => "mjpeg",
    }
}

/// Parses a pixel format name (case-insensitive; `yuv420p` = `i420`, `yuy2` = `yuyv`, `rgb` = `rgb24`).
pub fn parse_pixel_format(name: &str) -> Option<PixelFormat> {
    Some(match name.to_ascii_lowercase().as_str() {
        "i420" | "yuv420p" => PixelFormat::I420,
        "nv12" => PixelFormat::Nv12,
        "yuyv" | "yuy2" => PixelFormat::Yuyv,
        "rgb24" | "rgb" => PixelFormat::Rgb24,
        "bgr24" | "bgr" => PixelFormat::Bgr24,
        "rgba" | "rgbx" => PixelFormat::Rgba,
        "gray8" | "gray" | "grey" => PixelFormat::Gray8,
        "mjpeg" | "mjpg" | "jpeg" => PixelFormat::Mjpeg,
        _ => return None,
    })
}

mod pixel_format_name {
    use super::*;
    pub fn serialize<S: serde::Serializer>(f: &PixelFormat, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(pixel_format_str(*f))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PixelFormat, D::Error> {
        let name = String::deserialize(d)?;
        parse_pixel_format(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown pixel format {name:?}")))
    }
}

/// Metadata of one captured frame, travelling with its pool slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameMeta {
    /// Capture timestamp in nanoseconds since the Unix epoch (CLOCK_REALTIME
    /// domain; V4L2 kernel timestamps are mapped into it).
    pub capture_ts_ns: u64,
    /// Source sequence number when the source has one (V4L2 `sequence`).
    pub sequence: Option<u64>,
    /// Frames the source reports lost just before this one (sequence gaps).
    pub lost_before: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_match_layouts() {
        assert_eq!(frame_bytes(PixelFormat::I420, 640, 480), 640 * 480 * 3 / 2);
        assert_eq!(frame_bytes(PixelFormat::I420, 3, 3), 9 + 2 * 4);
        assert_eq!(frame_bytes(PixelFormat::Yuyv, 640, 480), 640 * 480 * 2);
        assert_eq!(frame_bytes(PixelFormat::Rgb24, 2, 2), 12);
    }

    #[test]
    fn pixel_format_names_round_trip() {
        for f in [
            PixelFormat::I420,
            PixelFormat::Nv12,
            PixelFormat::Yuyv,
            PixelFormat::Rgb24,
            PixelFormat::Bgr24,
            PixelFormat::Rgba,
            PixelFormat::Gray8,
        ] {
            assert_eq!(parse_pixel_format(pixel_format_str(f)), Some(f));
        }
        assert_eq!(parse_pixel_format("YUV420P"), Some(PixelFormat::I420));
        assert_eq!(parse_pixel_format("mjpeg2"), None);
    }
}

pub use s6_codec_abi::CodecId;

/// One compressed packet as the host keeps it (copied out of the plugin's callback).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedPacket {
    /// Bitstream bytes (AV1: OBUs in low-overhead format; H.264: Annex-B).
    pub data: Vec<u8>,
    /// Presentation time in frame units (frame index within the episode).
    pub pts: i64,
    /// Decode time in frame units.
    pub dts: i64,
    /// Random access point.
    pub keyframe: bool,
}
