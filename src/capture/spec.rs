//! Parsing of `-i` camera arguments into [`CameraSpec`]s.
//!
//! Grammar: `SOURCE[#OPTIONS]` where `SOURCE` is `synthetic`,
//! `v4l2:/dev/videoN`, `gst:<gst-launch description>` or `replay:DIR[/CAM]`
//! (a recorded dataset, see [`super::replay`]), and `OPTIONS` is a
//! comma-separated list of `key=value` pairs.
//!
//! Generic keys: `name`, `width`, `height`, `fps` (`30` or `30000/1001`),
//! `format` (`i420`, `nv12`, `yuyv`, `rgb24`, ...). Source keys: `frames=N`
//! (stop after N frames, any source), `realtime=true|false` (synthetic and
//! replay), `noise=N` (synthetic only), `episode=N|all` (replay only).
//!
//! GStreamer descriptions may themselves contain `#` and commas, so the
//! option separator is the **last** `#` whose tail consists only of
//! `key=value` pairs with known keys; anything else stays part of the
//! description. The full argument is kept verbatim in [`CameraSpec::uri`];
//! sources re-read their options with [`split_options`].

use super::CameraSpec;
use crate::exit::usage;
use crate::frame::{parse_pixel_format, PixelFormat, VideoFormat};

/// Option keys recognised after `#`.
pub const KNOWN_KEYS: &[&str] = &[
    "name", "width", "height", "fps", "format", "frames", "realtime", "noise", "episode",
];

/// Largest accepted width or height.
pub const MAX_DIMENSION: u32 = 8192;

/// Which kind of source a URI names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// The built-in moving test pattern.
    Synthetic,
    /// A V4L2 capture device (the path).
    V4l2(String),
    /// A GStreamer description producing raw video.
    Gst(String),
    /// A recorded dataset (`DIR` or `DIR/CAM`).
    Replay(String),
}

/// A URI split into its source part and its `#` options (in order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitUri {
    /// What produces the frames.
    pub kind: SourceKind,
    /// The `key=value` options, in the order given.
    pub options: Vec<(String, String)>,
}

impl SplitUri {
    /// The value of option `key`, if given (the last occurrence wins).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

const UNKNOWN_SOURCE_HINT: &str =
    "expected synthetic, v4l2:/dev/videoN, gst:<pipeline> or replay:DIR[/CAM]";

/// Splits `arg` at its option separator (see the module docs) and classifies
/// the source. Errors are usage errors (exit code 2).
pub fn split_options(arg: &str) -> anyhow::Result<SplitUri> {
    let (source, options) = match arg.rfind('#') {
        Some(pos) => {
            let (head, tail) = (&arg[..pos], &arg[pos + 1..]);
            match parse_pairs(tail) {
                Some(pairs) => (head, pairs),
                // synthetic and v4l2 have no '#' of their own: the tail must be options.
                None if head.trim() == "synthetic"
                    || head.trim_start().starts_with("v4l2:")
                    || head.trim_start().starts_with("replay:") =>
                {
                    return Err(usage(format!(
                        "camera source {arg:?}: bad options {tail:?}: expected key=value pairs \
                         separated by ',' with keys {}",
                        KNOWN_KEYS.join(", ")
                    )));
                }
                None => (arg, Vec::new()),
            }
        }
        None => (arg, Vec::new()),
    };
    let source = source.trim();
    let kind = if source == "synthetic" {
        SourceKind::Synthetic
    } else if let Some(path) = source.strip_prefix("v4l2:") {
        let path = path.trim();
        if path.is_empty() {
            return Err(usage(format!(
                "camera source {arg:?}: missing device path, e.g. v4l2:/dev/video0"
            )));
        }
        SourceKind::V4l2(path.to_string())
    } else if let Some(desc) = source.strip_prefix("gst:") {
        let desc = desc.trim();
        if desc.is_empty() {
            return Err(usage(format!(
                "camera source {arg:?}: missing pipeline, e.g. gst:videotestsrc is-live=true"
            )));
        }
        SourceKind::Gst(desc.to_string())
    } else if let Some(path) = source.strip_prefix("replay:") {
        let path = path.trim();
        if path.is_empty() {
            return Err(usage(format!(
                "camera source {arg:?}: missing dataset directory, e.g. replay:/data/run1/left"
            )));
        }
        SourceKind::Replay(path.to_string())
    } else {
        let shown = source.split('#').next().unwrap_or(source);
        return Err(usage(format!(
            "unknown camera source \"{shown}\": {UNKNOWN_SOURCE_HINT}"
        )));
    };
    Ok(SplitUri { kind, options })
}

/// Parses `k=v,k=v` with known keys only; `None` if the text is not such a list.
fn parse_pairs(text: &str) -> Option<Vec<(String, String)>> {
    if text.trim().is_empty() {
        return None;
    }
    text.split(',')
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim().to_ascii_lowercase();
            KNOWN_KEYS
                .contains(&k.as_str())
                .then(|| (k, v.trim().to_string()))
        })
        .collect()
}

/// Parses one `-i` value into a [`CameraSpec`].
///
/// `defaults` supplies what the options leave out; `index` (0-based position
/// among the cameras) gives the default name `cam<index>`. Every error is a
/// usage error (exit code 2).
pub fn parse_camera_arg(
    arg: &str,
    defaults: &VideoFormat,
    index: usize,
) -> anyhow::Result<CameraSpec> {
    let split = split_options(arg)?;
    let mut format = *defaults;
    let mut name = format!("cam{index}");
    if let SourceKind::Replay(path) = &split.kind {
        // A recorded camera keeps its name and format unless options say otherwise.
        if let Some((recorded, f)) = super::replay::describe(path) {
            name = recorded;
            format = f;
        }
    }
    for (key, value) in &split.options {
        match key.as_str() {
            "name" => name = value.clone(),
            "width" => format.width = parse_u32(arg, key, value)?,
            "height" => format.height = parse_u32(arg, key, value)?,
            "fps" => (format.fps_num, format.fps_den) = parse_fps(arg, value)?,
            "format" => {
                format.pixel_format = parse_pixel_format(value).ok_or_else(|| {
                    usage(format!(
                        "camera {arg:?}: unknown pixel format {value:?} \
                         (use i420, nv12, yuyv, rgb24, bgr24, rgba or gray8)"
                    ))
                })?
            }
            "frames" => {
                parse_u64(arg, key, value)?;
            }
            "noise" => {
                let n = parse_u32(arg, key, value)?;
                if n > 64 {
                    return Err(usage(format!(
                        "camera {arg:?}: noise={n} is too strong (0..=64)"
                    )));
                }
            }
            "realtime" => {
                parse_bool(arg, key, value)?;
            }
            "episode" if value != "all" => {
                parse_u32(arg, key, value)?;
            }
            _ => {}
        }
    }
    validate_name(&name)?;
    validate_format(arg, &format)?;
    Ok(CameraSpec {
        name,
        uri: arg.trim().to_string(),
        format,
    })
}

/// Checks a camera name: non-empty, only `A-Z a-z 0-9 _ -`.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "invalid camera name {name:?}: use 1-64 letters, digits, '_' or '-'"
        )))
    }
}

/// Checks the size and rate of a requested format (usage error when bad).
pub fn validate_format(what: &str, f: &VideoFormat) -> anyhow::Result<()> {
    for (label, v) in [("width", f.width), ("height", f.height)] {
        if v == 0 || v > MAX_DIMENSION {
            return Err(usage(format!(
                "camera {what:?}: {label} {v} is out of range (1..={MAX_DIMENSION})"
            )));
        }
    }
    let needs_even_w = matches!(
        f.pixel_format,
        PixelFormat::I420 | PixelFormat::Nv12 | PixelFormat::Yuyv
    );
    let needs_even_h = matches!(f.pixel_format, PixelFormat::I420 | PixelFormat::Nv12);
    if (needs_even_w && !f.width.is_multiple_of(2)) || (needs_even_h && !f.height.is_multiple_of(2))
    {
        return Err(usage(format!(
            "camera {what:?}: {}x{} is odd; chroma-subsampled formats need even sizes",
            f.width, f.height
        )));
    }
    if f.fps_num == 0 || f.fps_den == 0 || f.fps() > 1000.0 {
        return Err(usage(format!(
            "camera {what:?}: frame rate {}/{} is out of range",
            f.fps_num, f.fps_den
        )));
    }
    Ok(())
}

fn parse_u32(arg: &str, key: &str, value: &str) -> anyhow::Result<u32> {
    value
        .parse()
        .map_err(|_| usage(format!("camera {arg:?}: {key}={value:?} is not a number")))
}

fn parse_u64(arg: &str, key: &str, value: &str) -> anyhow::Result<u64> {
    value
        .parse()
        .map_err(|_| usage(format!("camera {arg:?}: {key}={value:?} is not a number")))
}

/// Parses `true/false/yes/no/1/0`.
pub(crate) fn parse_bool(arg: &str, key: &str, value: &str) -> anyhow::Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(usage(format!(
            "camera {arg:?}: {key}={value:?} must be true or false"
        ))),
    }
}

/// Parses `30`, `29.97` or `30000/1001` into a fraction.
pub fn parse_fps(arg: &str, value: &str) -> anyhow::Result<(u32, u32)> {
    let bad = || usage(format!("camera {arg:?}: fps={value:?} is not a frame rate"));
    let (num, den) = if let Some((n, d)) = value.split_once('/') {
        (
            n.trim().parse::<u32>().map_err(|_| bad())?,
            d.trim().parse::<u32>().map_err(|_| bad())?,
        )
    } else if let Ok(n) = value.trim().parse::<u32>() {
        (n, 1)
    } else {
        let f: f64 = value.trim().parse().map_err(|_| bad())?;
        if !(f.is_finite() && f > 0.0 && f <= 1000.0) {
            return Err(bad());
        }
        ((f * 1000.0).round() as u32, 1000)
    };
    if num == 0 || den == 0 {
        return Err(bad());
    }
    Ok((num, den))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::UsageError;

    fn defaults() -> VideoFormat {
        VideoFormat {
            width: 640,
            height: 480,
            fps_num: 30,
            fps_den: 1,
            pixel_format: PixelFormat::I420,
        }
    }

    fn is_usage(err: &anyhow::Error) -> bool {
        err.chain()
            .any(|c| c.downcast_ref::<UsageError>().is_some())
    }

    #[test]
    fn plain_synthetic_takes_defaults_and_index_name() {
        let s = parse_camera_arg("synthetic", &defaults(), 3).unwrap();
        assert_eq!(s.name, "cam3");
        assert_eq!(s.format, defaults());
        assert_eq!(s.uri, "synthetic");
    }

    #[test]
    fn synthetic_options_override_defaults() {
        let s = parse_camera_arg(
            "synthetic#name=left,width=320,height=240,fps=15,format=rgb24",
            &defaults(),
            0,
        )
        .unwrap();
        assert_eq!(s.name, "left");
        assert_eq!((s.format.width, s.format.height), (320, 240));
        assert_eq!((s.format.fps_num, s.format.fps_den), (15, 1));
        assert_eq!(s.format.pixel_format, PixelFormat::Rgb24);
        let split = split_options(&s.uri).unwrap();
        assert_eq!(split.kind, SourceKind::Synthetic);
        assert_eq!(split.get("name"), Some("left"));
    }

    #[test]
    fn v4l2_path_and_options() {
        let s = parse_camera_arg(
            "v4l2:/dev/video2#width=1280,height=720,fps=30000/1001",
            &defaults(),
            1,
        )
        .unwrap();
        assert_eq!(s.name, "cam1");
        assert_eq!((s.format.fps_num, s.format.fps_den), (30000, 1001));
        assert_eq!(
            split_options(&s.uri).unwrap().kind,
            SourceKind::V4l2("/dev/video2".into())
        );
    }

    #[test]
    fn gst_description_keeps_commas_and_foreign_hashes() {
        let arg = "gst:videotestsrc is-live=true ! video/x-raw,width=320,height=240#name=cam1";
        let s = parse_camera_arg(arg, &defaults(), 0).unwrap();
        assert_eq!(s.name, "cam1");
        // Size options inside the description are not ours.
        assert_eq!(s.format.width, 640);
        assert_eq!(
            split_options(arg).unwrap().kind,
            SourceKind::Gst("videotestsrc is-live=true ! video/x-raw,width=320,height=240".into())
        );
        // A '#' not followed by known key=value pairs belongs to the description.
        let arg = "gst:filesrc location=/tmp/a#b.mkv ! decodebin";
        let split = split_options(arg).unwrap();
        assert_eq!(
            split.kind,
            SourceKind::Gst("filesrc location=/tmp/a#b.mkv ! decodebin".into())
        );
        assert!(split.options.is_empty());
        let arg = "gst:filesrc location=/tmp/a#b.mkv ! decodebin#width=320,height=240";
        let split = split_options(arg).unwrap();
        assert_eq!(split.get("width"), Some("320"));
    }

    #[test]
    fn unknown_scheme_is_usage_error_with_hint() {
        let err = parse_camera_arg("rtsp://cam", &defaults(), 0).unwrap_err();
        assert!(is_usage(&err));
        assert_eq!(
            err.to_string(),
            "unknown camera source \"rtsp://cam\": expected synthetic, v4l2:/dev/videoN, gst:<pipeline> or replay:DIR[/CAM]"
        );
        let err = parse_camera_arg("synthetic#widht=3", &defaults(), 0).unwrap_err();
        assert!(is_usage(&err));
        assert!(err.to_string().contains("key=value"), "{err}");
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for arg in [
            "synthetic#width=0",
            "synthetic#width=321",
            "synthetic#height=241",
            "synthetic#width=8194",
            "synthetic#fps=0",
            "synthetic#fps=abc",
            "synthetic#format=h265",
            "synthetic#name=a b",
            "synthetic#name=",
            "synthetic#name=x/y",
            "synthetic#frames=-1",
            "synthetic#realtime=maybe",
            "v4l2:",
            "gst:",
            "replay:",
            "replay:/tmp/x#episode=two",
            "replay:/tmp/x#bogus=1",
        ] {
            let err = parse_camera_arg(arg, &defaults(), 0).unwrap_err();
            assert!(is_usage(&err), "{arg}: {err}");
        }
        // Odd sizes are fine for packed RGB.
        parse_camera_arg(
            "synthetic#width=321,height=241,format=rgb24",
            &defaults(),
            0,
        )
        .unwrap();
    }

    #[test]
    fn fps_forms() {
        assert_eq!(parse_fps("x", "25").unwrap(), (25, 1));
        assert_eq!(parse_fps("x", "30000/1001").unwrap(), (30000, 1001));
        assert_eq!(parse_fps("x", "29.97").unwrap(), (29970, 1000));
        assert!(parse_fps("x", "0/1").is_err());
        assert!(parse_fps("x", "-3").is_err());
    }
}
