//! `s6-edge cameras [--json]`: lists `/dev/video*` nodes, what they are, and
//! for capture devices their formats, frame sizes and frame rates.

use super::v4l2::{explain_io, fourcc_str, pixel_format_of, DeviceKind};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::video::Capture;
use v4l::Device;

/// One device node in the listing.
#[derive(Debug, Serialize)]
pub struct DeviceInfo {
    /// Device path (`/dev/video0`).
    pub path: String,
    /// Driver name (`uvcvideo`, `vivid`, ...); empty when it could not be queried.
    pub driver: String,
    /// Card / product name.
    pub card: String,
    /// Bus location.
    pub bus: String,
    /// `capture`, `m2m (codec/scaler, not a camera)`, `metadata`, ...
    pub kind: String,
    /// Whether `-i v4l2:<path>` can capture from it.
    pub usable: bool,
    /// Why the device could not be queried, if so.
    pub error: Option<String>,
    /// Capture formats (capture devices only).
    pub formats: Vec<FormatInfo>,
}

/// One pixel format a capture device offers.
#[derive(Debug, Serialize)]
pub struct FormatInfo {
    /// Fourcc (`YUYV`, `MJPG`, ...).
    pub fourcc: String,
    /// Driver's description.
    pub description: String,
    /// Whether s6-edge can capture this format.
    pub supported: bool,
    /// Discrete sizes with their frame rates.
    pub sizes: Vec<SizeInfo>,
    /// A continuous/stepwise size range, when the driver reports one.
    pub size_range: Option<String>,
}

/// One discrete frame size.
#[derive(Debug, Serialize)]
pub struct SizeInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Discrete frame rates (frames per second).
    pub fps: Vec<f64>,
    /// A continuous/stepwise rate range, when the driver reports one.
    pub fps_range: Option<String>,
}

/// Lists every `/dev/video*` node, in numeric order.
pub fn video_nodes() -> Vec<PathBuf> {
    let mut nodes: Vec<(u32, PathBuf)> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("video")?.parse::<u32>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, p)| p).collect()
}

/// Queries one device node.
pub fn describe(path: &Path) -> DeviceInfo {
    let shown = path.display().to_string();
    let mut info = DeviceInfo {
        path: shown.clone(),
        driver: String::new(),
        card: String::new(),
        bus: String::new(),
        kind: "unknown".into(),
        usable: false,
        error: None,
        formats: Vec::new(),
    };
    let device = match Device::with_path(path) {
        Ok(d) => d,
        Err(e) => {
            info.error = Some(explain_io(&shown, "opening", &e).to_string());
            return info;
        }
    };
    let caps = match device.query_caps() {
        Ok(c) => c,
        Err(e) => {
            info.error = Some(explain_io(&shown, "querying capabilities", &e).to_string());
            return info;
        }
    };
    let kind = DeviceKind::from_caps(caps.capabilities);
    info.driver = caps.driver;
    info.card = caps.card;
    info.bus = caps.bus;
    info.kind = kind.label().into();
    if kind != DeviceKind::Capture {
        return info;
    }
    match device.enum_formats() {
        Ok(descs) => {
            for d in descs {
                info.formats
                    .push(describe_format(&device, d.fourcc, d.description));
            }
        }
        Err(e) => info.error = Some(explain_io(&shown, "listing formats", &e).to_string()),
    }
    info.usable = info.formats.iter().any(|f| f.supported);
    info
}

fn describe_format(device: &Device, fourcc: v4l::FourCC, description: String) -> FormatInfo {
    let mut f = FormatInfo {
        fourcc: fourcc_str(&fourcc.repr),
        description,
        supported: pixel_format_of(&fourcc.repr).is_some(),
        sizes: Vec::new(),
        size_range: None,
    };
    for size in device.enum_framesizes(fourcc).unwrap_or_default() {
        match size.size {
            FrameSizeEnum::Discrete(d) => {
                let (fps, fps_range) = rates(device, fourcc, d.width, d.height);
                f.sizes.push(SizeInfo {
                    width: d.width,
                    height: d.height,
                    fps,
                    fps_range,
                });
            }
            FrameSizeEnum::Stepwise(s) => f.size_range = Some(s.to_string()),
        }
    }
    f
}

fn rates(device: &Device, fourcc: v4l::FourCC, w: u32, h: u32) -> (Vec<f64>, Option<String>) {
    let mut fps = Vec::new();
    let mut range = None;
    for iv in device.enum_frameintervals(fourcc, w, h).unwrap_or_default() {
        match iv.interval {
            FrameIntervalEnum::Discrete(fr) if fr.numerator > 0 => {
                let v = f64::from(fr.denominator) / f64::from(fr.numerator);
                fps.push((v * 1000.0).round() / 1000.0);
            }
            FrameIntervalEnum::Discrete(_) => {}
            FrameIntervalEnum::Stepwise(s) => {
                let to_fps = |f: v4l::Fraction| {
                    if f.numerator == 0 {
                        0.0
                    } else {
                        f64::from(f.denominator) / f64::from(f.numerator)
                    }
                };
                range = Some(format!("{:.3}-{:.3} fps", to_fps(s.max), to_fps(s.min)));
            }
        }
    }
    (fps, range)
}

/// Runs `s6-edge cameras`.
pub fn run(json: bool) -> anyhow::Result<ExitCode> {
    let devices: Vec<DeviceInfo> = video_nodes().iter().map(|p| describe(p)).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&devices)?);
        return Ok(ExitCode::SUCCESS);
    }
    if devices.is_empty() {
        println!("no V4L2 devices (/dev/video*) found");
        return Ok(ExitCode::SUCCESS);
    }
    for d in &devices {
        print!("{}", render(d));
    }
    Ok(ExitCode::SUCCESS)
}

/// Human-readable text for one device.
pub fn render(d: &DeviceInfo) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} [{}] {}{}",
        d.path,
        if d.card.is_empty() { "?" } else { &d.card },
        d.driver,
        d.kind,
        if d.usable {
            ""
        } else if d.kind == "capture" {
            " (no supported format)"
        } else {
            ""
        }
    );
    if let Some(e) = &d.error {
        let _ = writeln!(out, "    error: {e}");
    }
    for f in &d.formats {
        let _ = writeln!(
            out,
            "    {} ({}){}",
            f.fourcc,
            f.description,
            if f.supported {
                ""
            } else {
                " — not supported by s6-edge"
            }
        );
        if let Some(r) = &f.size_range {
            let _ = writeln!(out, "        sizes {r}");
        }
        for s in &f.sizes {
            let rates: Vec<String> = s.fps.iter().map(|v| format!("{v}")).collect();
            let _ = writeln!(
                out,
                "        {}x{} @ {}{}",
                s.width,
                s.height,
                if rates.is_empty() {
                    "?".into()
                } else {
                    rates.join(", ")
                },
                s.fps_range
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_marks_unsupported_formats() {
        let d = DeviceInfo {
            path: "/dev/video0".into(),
            driver: "uvcvideo".into(),
            card: "Cam".into(),
            bus: "usb-1".into(),
            kind: "capture".into(),
            usable: true,
            error: None,
            formats: vec![
                FormatInfo {
                    fourcc: "YUYV".into(),
                    description: "YUYV 4:2:2".into(),
                    supported: true,
                    sizes: vec![SizeInfo {
                        width: 640,
                        height: 480,
                        fps: vec![30.0, 15.0],
                        fps_range: None,
                    }],
                    size_range: None,
                },
                FormatInfo {
                    fourcc: "MJPG".into(),
                    description: "Motion-JPEG".into(),
                    supported: false,
                    sizes: vec![],
                    size_range: None,
                },
            ],
        };
        let text = render(&d);
        assert!(text.contains("640x480 @ 30, 15"), "{text}");
        assert!(
            text.contains("MJPG (Motion-JPEG) — not supported"),
            "{text}"
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["formats"][0]["sizes"][0]["width"], 640);
    }

    #[test]
    fn listing_this_machine_does_not_fail() {
        // No camera here; the listing must still succeed (and be valid JSON).
        for p in video_nodes() {
            let _ = describe(&p);
        }
    }
}
