//! V4L2 capture (`v4l2:/dev/videoN`): format negotiation, mmap streaming,
//! kernel timestamps mapped to wall-clock time, sequence gaps.
//!
//! Pixel formats are negotiated in this order: the requested one, then
//! YUYV, NV12, YU12 (I420), RGB3, BGR3, AB24/XB24 (RGBA), GREY, and last
//! MJPEG (`MJPG`/`JPEG`; ask for it first with `format=mjpeg`, e.g. for a
//! UVC camera whose raw modes are slow at large sizes). H.264 capture is not
//! supported: a device offering nothing usable is refused with a message
//! listing what it offers. Raw frames are copied tightly packed into the
//! caller's buffer, JPEGs length-prefixed ([`crate::mjpeg`]); conversion and
//! JPEG decoding to I420 happen on the encoder thread (`crate::convert`).
//!
//! Every frame carries the driver's buffer sequence number; a jump counts
//! the skipped numbers as frames the driver dropped.

use super::{CaptureError, CaptureSource};
use crate::convert::copy_plane;
use crate::frame::{frame_bytes, pixel_format_str, FrameMeta, PixelFormat, VideoFormat};
use anyhow::{anyhow, bail, Context};
use std::io;
use std::time::Duration;
use v4l::buffer::{Flags as BufFlags, Type};
use v4l::capability::Flags as CapFlags;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::capture::Parameters;
use v4l::video::Capture;
use v4l::{Device, Format, FourCC, Fraction};

/// Fewest mmap buffers requested from the driver.
pub const MIN_BUFFERS: u32 = 4;
/// Most mmap buffers requested from the driver.
pub const MAX_BUFFERS: u32 = 16;

/// Mmap buffers to request at `fps`: about half a second of frames (4..16),
/// so a capture thread descheduled for a few hundred milliseconds (a busy
/// board, an emulated CPU) does not make the driver drop frames. With 4
/// buffers at 15 fps the slack was ~200 ms, and a loaded VM lost frames.
pub fn buffer_count(fps: f64) -> u32 {
    let half_second = (fps / 2.0).ceil() as u32 + 1;
    half_second.clamp(MIN_BUFFERS, MAX_BUFFERS)
}
/// How long `next_frame` waits for the driver before reporting a stall.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// Negotiation order after the requested format.
const PREFERENCE: [PixelFormat; 8] = [
    PixelFormat::Yuyv,
    PixelFormat::Nv12,
    PixelFormat::I420,
    PixelFormat::Rgb24,
    PixelFormat::Bgr24,
    PixelFormat::Rgba,
    PixelFormat::Gray8,
    PixelFormat::Mjpeg,
];

/// The V4L2 fourcc s6-edge asks for when capturing `format`.
pub fn fourcc_of(format: PixelFormat) -> [u8; 4] {
    match format {
        PixelFormat::I420 => *b"YU12",
        PixelFormat::Nv12 => *b"NV12",
        PixelFormat::Yuyv => *b"YUYV",
        PixelFormat::Rgb24 => *b"RGB3",
        PixelFormat::Bgr24 => *b"BGR3",
        PixelFormat::Rgba => *b"AB24",
        PixelFormat::Gray8 => *b"GREY",
        PixelFormat::Mjpeg => *b"MJPG",
    }
}

/// The pixel format a V4L2 fourcc carries, if s6-edge can capture it.
pub fn pixel_format_of(fourcc: &[u8; 4]) -> Option<PixelFormat> {
    Some(match fourcc {
        b"YU12" => PixelFormat::I420,
        b"NV12" => PixelFormat::Nv12,
        b"YUYV" => PixelFormat::Yuyv,
        b"RGB3" => PixelFormat::Rgb24,
        b"BGR3" => PixelFormat::Bgr24,
        b"AB24" | b"XB24" => PixelFormat::Rgba,
        b"GREY" => PixelFormat::Gray8,
        b"MJPG" | b"JPEG" => PixelFormat::Mjpeg,
        _ => return None,
    })
}

/// Printable fourcc (`MJPG`, `YUYV`, ...).
pub fn fourcc_str(fourcc: &[u8; 4]) -> String {
    fourcc
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

/// Picks the fourcc to capture among those the device `offered`: the
/// `requested` format if offered, else the first of [`PREFERENCE`]. The
/// error lists what the device offers.
pub fn choose_fourcc(offered: &[[u8; 4]], requested: PixelFormat) -> Result<[u8; 4], String> {
    let is_offered = |f: PixelFormat| {
        offered
            .iter()
            .find(|cc| pixel_format_of(cc) == Some(f))
            .copied()
    };
    if let Some(cc) = is_offered(requested) {
        return Ok(cc);
    }
    if let Some(cc) = PREFERENCE.iter().find_map(|&f| is_offered(f)) {
        return Ok(cc);
    }
    let list: Vec<String> = offered.iter().map(fourcc_str).collect();
    let compressed = offered.iter().any(|cc| matches!(cc, b"H264" | b"HEVC"));
    Err(format!(
        "the device offers no format s6-edge can capture (it offers {}; supported: \
         YUYV, NV12, YU12, RGB3, BGR3, AB24, XB24, GREY, MJPG, JPEG){}",
        if list.is_empty() {
            "none".to_string()
        } else {
            list.join(", ")
        },
        if compressed {
            "; compressed H.264/HEVC capture is not supported"
        } else {
            ""
        }
    ))
}

/// What a device node is, from its `device_caps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// Single-planar video capture with streaming I/O: usable.
    Capture,
    /// Multi-planar video capture (not supported yet).
    CaptureMultiplanar,
    /// Memory-to-memory device (a codec or scaler, not a camera).
    MemToMem,
    /// Video output only.
    Output,
    /// Metadata capture node (e.g. UVC metadata).
    Metadata,
    /// Anything else (radio, VBI, touch, SDR, ...).
    Other,
}

impl DeviceKind {
    /// Classifies a device from its capability flags.
    pub fn from_caps(flags: CapFlags) -> Self {
        if flags.intersects(CapFlags::VIDEO_M2M | CapFlags::VIDEO_M2M_MPLANE)
            || (flags.contains(CapFlags::VIDEO_CAPTURE) && flags.contains(CapFlags::VIDEO_OUTPUT))
        {
            Self::MemToMem
        } else if flags.contains(CapFlags::VIDEO_CAPTURE) && flags.contains(CapFlags::STREAMING) {
            Self::Capture
        } else if flags.contains(CapFlags::VIDEO_CAPTURE_MPLANE) {
            Self::CaptureMultiplanar
        } else if flags.intersects(CapFlags::VIDEO_OUTPUT | CapFlags::VIDEO_OUTPUT_MPLANE) {
            Self::Output
        } else if flags.contains(CapFlags::META_CAPTURE) {
            Self::Metadata
        } else {
            Self::Other
        }
    }

    /// Short label for listings.
    pub fn label(self) -> &'static str {
        match self {
            Self::Capture => "capture",
            Self::CaptureMultiplanar => "capture (multi-planar, unsupported)",
            Self::MemToMem => "m2m (codec/scaler, not a camera)",
            Self::Output => "output",
            Self::Metadata => "metadata",
            Self::Other => "other",
        }
    }
}

/// Turns an OS error from `path` into a message that says what to do.
pub fn explain_io(path: &str, what: &str, err: &io::Error) -> anyhow::Error {
    match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENXIO) => anyhow!(
            "no such device {path}: check the camera is plugged in, `s6-edge cameras` lists devices"
        ),
        Some(libc::ENODEV) => anyhow!("{path} disappeared (unplugged?) while {what}"),
        Some(libc::ENOTTY) => anyhow!(
            "{path} is not a V4L2 device (it answers no V4L2 ioctl); `s6-edge cameras` lists the cameras"
        ),
        Some(libc::EBUSY) => {
            anyhow!("{path}: device busy: another program is using it (check with `fuser {path}`)")
        }
        Some(libc::EACCES) | Some(libc::EPERM) => anyhow!(
            "permission denied opening {path}: add the user to the `video` group or run with access to the device"
        ),
        _ => anyhow!("{path}: {what} failed: {err}"),
    }
}

/// An open, streaming V4L2 capture device.
pub struct V4l2Source {
    // Declared first so it is dropped (STREAMOFF, unmap) before the device.
    stream: Stream<'static>,
    _device: Device,
    path: String,
    format: VideoFormat,
    fourcc: [u8; 4],
    /// Bytes per line of the first plane as the driver lays it out.
    stride: usize,
    /// CLOCK_REALTIME − CLOCK_MONOTONIC in ns, measured at start.
    realtime_offset_ns: i128,
    last_sequence: Option<u32>,
}

impl V4l2Source {
    /// Opens `path`, negotiates `requested` (size, rate, pixel format) as
    /// closely as the driver allows and maps the streaming buffers.
    pub fn open(path: &str, requested: &VideoFormat) -> anyhow::Result<Self> {
        let device = Device::with_path(path).map_err(|e| explain_io(path, "opening", &e))?;
        let caps = device
            .query_caps()
            .map_err(|e| explain_io(path, "querying capabilities", &e))?;
        match DeviceKind::from_caps(caps.capabilities) {
            DeviceKind::Capture => {}
            kind => bail!(
                "{path} ({}, driver {}) is not a usable capture device: it is {}; \
                 `s6-edge cameras` lists the cameras",
                caps.card,
                caps.driver,
                kind.label()
            ),
        }
        let offered: Vec<[u8; 4]> = device
            .enum_formats()
            .map_err(|e| explain_io(path, "listing formats", &e))?
            .iter()
            .map(|d| d.fourcc.repr)
            .collect();
        let wanted = choose_fourcc(&offered, requested.pixel_format)
            .map_err(|msg| anyhow!("{path} ({}): {msg}", caps.card))?;
        let asked = Format::new(requested.width, requested.height, FourCC::new(&wanted));
        let got = device
            .set_format(&asked)
            .map_err(|e| explain_io(path, "setting the format", &e))?;
        let pixel_format = pixel_format_of(&got.fourcc.repr).ok_or_else(|| {
            anyhow!(
                "{path}: asked for {}, the driver chose {} which s6-edge cannot capture",
                fourcc_str(&wanted),
                fourcc_str(&got.fourcc.repr)
            )
        })?;
        if (got.width, got.height) != (requested.width, requested.height) {
            log::warn!(
                "{path}: asked for {}x{}, the device delivers {}x{}",
                requested.width,
                requested.height,
                got.width,
                got.height
            );
        }
        let (fps_num, fps_den) = negotiate_rate(&device, path, requested);
        let format = VideoFormat {
            width: got.width,
            height: got.height,
            fps_num,
            fps_den,
            pixel_format,
        };
        let min_stride = frame_bytes(pixel_format, got.width, 1);
        let min_stride = match pixel_format {
            PixelFormat::I420 | PixelFormat::Nv12 => got.width as usize,
            PixelFormat::Mjpeg => 0,
            _ => min_stride,
        };
        let stride = (got.stride as usize).max(min_stride);
        let buffers = buffer_count(format.fps());
        let mut stream = Stream::with_buffers(&device, Type::VideoCapture, buffers)
            .map_err(|e| explain_io(path, "mapping capture buffers", &e))?;
        stream.set_timeout(FRAME_TIMEOUT);
        log::info!(
            "{path} ({}): {}x{} {} at {}/{} fps, stride {stride}, {buffers} buffers",
            caps.card,
            format.width,
            format.height,
            fourcc_str(&got.fourcc.repr),
            fps_num,
            fps_den
        );
        Ok(Self {
            stream,
            _device: device,
            path: path.to_string(),
            format,
            fourcc: got.fourcc.repr,
            stride,
            realtime_offset_ns: realtime_minus_monotonic_ns()?,
            last_sequence: None,
        })
    }

    /// The fourcc the device streams.
    pub fn fourcc(&self) -> [u8; 4] {
        self.fourcc
    }
}

/// Copies one driver buffer (with its strides) tightly packed into `buf`.
/// `stride` is the driver's bytes per line of the first plane; 4:2:0 chroma
/// planes follow the luma plane (NV12: same stride; YU12: half stride).
pub fn pack_frame(
    format: &VideoFormat,
    stride: usize,
    data: &[u8],
    buf: &mut [u8],
) -> anyhow::Result<()> {
    let (w, h) = (format.width as usize, format.height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let s = stride;
    match format.pixel_format {
        PixelFormat::Nv12 => {
            let (y, uv) = buf.split_at_mut(w * h);
            copy_plane(data, s, w, h, y)?;
            copy_plane(data.get(s * h..).unwrap_or(&[]), s, 2 * cw, ch, uv)?;
        }
        PixelFormat::I420 => {
            let cs = s / 2;
            let (y, rest) = buf.split_at_mut(w * h);
            let (u, v) = rest.split_at_mut(cw * ch);
            copy_plane(data, s, w, h, y)?;
            copy_plane(data.get(s * h..).unwrap_or(&[]), cs, cw, ch, u)?;
            copy_plane(data.get(s * h + cs * ch..).unwrap_or(&[]), cs, cw, ch, v)?;
        }
        PixelFormat::Mjpeg => crate::mjpeg::pack(data, buf)?,
        f => {
            let row = frame_bytes(f, format.width, 1);
            copy_plane(data, s, row, h, buf)?;
        }
    }
    Ok(())
}

/// Asks for the requested frame interval; returns what the driver reports
/// (or the request when the driver cannot tell).
fn negotiate_rate(device: &Device, path: &str, requested: &VideoFormat) -> (u32, u32) {
    let want = Parameters::new(Fraction::new(requested.fps_den, requested.fps_num));
    match device.set_params(&want) {
        Ok(p) if p.interval.numerator > 0 && p.interval.denominator > 0 => {
            (p.interval.denominator, p.interval.numerator)
        }
        Ok(_) => (requested.fps_num, requested.fps_den),
        Err(e) => {
            log::warn!(
                "{path}: cannot set the frame rate ({e}); assuming {}",
                requested.fps()
            );
            (requested.fps_num, requested.fps_den)
        }
    }
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC in nanoseconds (monotonic read on both
/// sides of the realtime read, midpoint taken).
pub fn realtime_minus_monotonic_ns() -> anyhow::Result<i128> {
    use nix::time::{clock_gettime, ClockId};
    let ns = |t: nix::sys::time::TimeSpec| {
        i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
    };
    let m0 = clock_gettime(ClockId::CLOCK_MONOTONIC).context("reading CLOCK_MONOTONIC")?;
    let r = clock_gettime(ClockId::CLOCK_REALTIME).context("reading CLOCK_REALTIME")?;
    let m1 = clock_gettime(ClockId::CLOCK_MONOTONIC).context("reading CLOCK_MONOTONIC")?;
    Ok(ns(r) - (ns(m0) + ns(m1)) / 2)
}

/// Frames lost between sequence numbers `last` and `now` (wrapping u32).
pub fn sequence_gap(last: Option<u32>, now: u32) -> u64 {
    match last {
        Some(l) => u64::from(now.wrapping_sub(l).wrapping_sub(1)).min(u64::from(u32::MAX / 2)),
        None => 0,
    }
}

impl CaptureSource for V4l2Source {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn next_frame(&mut self, buf: &mut [u8]) -> Result<Option<FrameMeta>, CaptureError> {
        if buf.len() != self.format.frame_bytes() {
            return Err(CaptureError::Failed(format!(
                "{}: frame buffer is {} bytes, expected {}",
                self.path,
                buf.len(),
                self.format.frame_bytes()
            )));
        }
        let (data, meta) = match self.stream.next() {
            Ok(frame) => frame,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(CaptureError::Disconnected(format!(
                    "{}: no frame within {} s",
                    self.path,
                    FRAME_TIMEOUT.as_secs()
                )))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {
                return Err(CaptureError::Disconnected(format!(
                    "{} was unplugged",
                    self.path
                )))
            }
            Err(e) => {
                return Err(CaptureError::Failed(format!(
                    "{}",
                    explain_io(&self.path, "capturing", &e)
                )))
            }
        };
        let used = meta.bytesused as usize;
        let data = if used > 0 && used <= data.len() {
            &data[..used]
        } else {
            data
        };
        let (flags, sequence, ts) = (meta.flags, meta.sequence, meta.timestamp);
        if flags.contains(BufFlags::ERROR) {
            log::debug!("{}: driver flagged frame {sequence} as corrupt", self.path);
        }
        // Copy before anything else; the buffer is requeued on the next call.
        pack_frame(&self.format, self.stride, data, buf)
            .map_err(|e| CaptureError::Failed(format!("{}: {e:#}", self.path)))?;
        let monotonic = (flags & BufFlags::TIMESTAMP_MASK) == BufFlags::TIMESTAMP_MONOTONIC;
        let capture_ts_ns = if monotonic {
            let kernel_ns = i128::from(ts.sec) * 1_000_000_000 + i128::from(ts.usec) * 1_000;
            (kernel_ns + self.realtime_offset_ns).max(0) as u64
        } else {
            super::synthetic::realtime_now_ns()
        };
        let lost_before = sequence_gap(self.last_sequence, sequence);
        if lost_before > 0 {
            log::warn!(
                "{}: the driver dropped {lost_before} frame(s) before {sequence}",
                self.path
            );
        }
        self.last_sequence = Some(sequence);
        Ok(Some(FrameMeta {
            capture_ts_ns,
            sequence: Some(u64::from(sequence)),
            lost_before,
        }))
    }
}

impl std::fmt::Debug for V4l2Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "V4l2Source({}, {}x{} {})",
            self.path,
            self.format.width,
            self.format.height,
            pixel_format_str(self.format.pixel_format)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_format_wins_when_offered() {
        let offered = [*b"MJPG", *b"YUYV", *b"NV12"];
        assert_eq!(choose_fourcc(&offered, PixelFormat::Nv12), Ok(*b"NV12"));
        assert_eq!(choose_fourcc(&offered, PixelFormat::I420), Ok(*b"YUYV"));
        assert_eq!(
            choose_fourcc(&[*b"RGB3", *b"NV12"], PixelFormat::I420),
            Ok(*b"NV12")
        );
        assert_eq!(choose_fourcc(&[*b"XB24"], PixelFormat::I420), Ok(*b"XB24"));
    }

    #[test]
    fn mjpeg_is_the_last_resort_and_h264_only_is_refused() {
        assert_eq!(
            choose_fourcc(&[*b"MJPG", *b"H264"], PixelFormat::I420),
            Ok(*b"MJPG")
        );
        assert_eq!(
            choose_fourcc(&[*b"MJPG", *b"YUYV"], PixelFormat::I420),
            Ok(*b"YUYV")
        );
        assert_eq!(
            choose_fourcc(&[*b"MJPG", *b"YUYV"], PixelFormat::Mjpeg),
            Ok(*b"MJPG")
        );
        let err = choose_fourcc(&[*b"H264", *b"HEVC"], PixelFormat::I420).unwrap_err();
        assert!(err.contains("H264, HEVC"), "{err}");
        assert!(err.contains("not supported"), "{err}");
        assert!(choose_fourcc(&[], PixelFormat::I420)
            .unwrap_err()
            .contains("none"));
    }

    #[test]
    fn fourccs_round_trip() {
        for f in PREFERENCE {
            assert_eq!(pixel_format_of(&fourcc_of(f)), Some(f));
        }
        assert_eq!(pixel_format_of(b"JPEG"), Some(PixelFormat::Mjpeg));
        assert_eq!(pixel_format_of(b"H264"), None);
    }

    #[test]
    fn device_kinds() {
        let cap = CapFlags::VIDEO_CAPTURE | CapFlags::STREAMING;
        assert_eq!(DeviceKind::from_caps(cap), DeviceKind::Capture);
        assert_eq!(
            DeviceKind::from_caps(CapFlags::VIDEO_M2M | CapFlags::STREAMING),
            DeviceKind::MemToMem
        );
        assert_eq!(
            DeviceKind::from_caps(CapFlags::VIDEO_CAPTURE_MPLANE | CapFlags::STREAMING),
            DeviceKind::CaptureMultiplanar
        );
        assert_eq!(
            DeviceKind::from_caps(CapFlags::META_CAPTURE),
            DeviceKind::Metadata
        );
        assert_eq!(
            DeviceKind::from_caps(CapFlags::VIDEO_CAPTURE),
            DeviceKind::Other
        );
    }

    #[test]
    fn driver_strides_are_removed() {
        let f = |pf| VideoFormat {
            width: 4,
            height: 2,
            fps_num: 30,
            fps_den: 1,
            pixel_format: pf,
        };
        // NV12, stride 6: Y rows then one UV row, each padded with 0xEE.
        let data = [
            1, 2, 3, 4, 0xEE, 0xEE, 5, 6, 7, 8, 0xEE, 0xEE, 9, 10, 11, 12, 0xEE, 0xEE,
        ];
        let mut buf = vec![0u8; 12];
        pack_frame(&f(PixelFormat::Nv12), 6, &data, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        // YUYV, stride 10 (8 used).
        let data = [
            1, 2, 3, 4, 5, 6, 7, 8, 0xEE, 0xEE, 9, 10, 11, 12, 13, 14, 15, 16,
        ];
        let mut buf = vec![0u8; 16];
        pack_frame(&f(PixelFormat::Yuyv), 10, &data, &mut buf).unwrap();
        assert_eq!(buf, (1..=16).collect::<Vec<u8>>());
        // A truncated buffer is an error, not a panic.
        assert!(pack_frame(&f(PixelFormat::Yuyv), 10, &data[..12], &mut buf).is_err());
    }

    #[test]
    fn about_half_a_second_of_buffers() {
        assert_eq!(buffer_count(5.0), 4);
        assert_eq!(buffer_count(15.0), 9);
        assert_eq!(buffer_count(30.0), 16);
        assert_eq!(buffer_count(120.0), 16);
    }

    #[test]
    fn sequence_gaps() {
        assert_eq!(sequence_gap(None, 7), 0);
        assert_eq!(sequence_gap(Some(7), 8), 0);
        assert_eq!(sequence_gap(Some(7), 10), 2);
        assert_eq!(sequence_gap(Some(u32::MAX), 0), 0);
    }

    #[test]
    fn missing_device_says_what_to_do() {
        let err = V4l2Source::open(
            "/dev/video-s6-missing",
            &VideoFormat {
                width: 640,
                height: 480,
                fps_num: 30,
                fps_den: 1,
                pixel_format: PixelFormat::I420,
            },
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("no such device /dev/video-s6-missing"),
            "{msg}"
        );
        assert!(msg.contains("s6-edge cameras"), "{msg}");
    }

    #[test]
    fn non_video_node_is_refused() {
        // /dev/null opens but answers no V4L2 ioctl.
        let f = VideoFormat {
            width: 640,
            height: 480,
            fps_num: 30,
            fps_den: 1,
            pixel_format: PixelFormat::I420,
        };
        let msg = format!("{:#}", V4l2Source::open("/dev/null", &f).unwrap_err());
        assert!(msg.contains("/dev/null is not a V4L2 device"), "{msg}");
    }

    #[test]
    fn clock_offset_is_near_wall_clock() {
        let off = realtime_minus_monotonic_ns().unwrap();
        // Realtime is after 2017 and monotonic is uptime: the offset is large and positive.
        assert!(off > 1_500_000_000_000_000_000i128, "{off}");
    }
}
