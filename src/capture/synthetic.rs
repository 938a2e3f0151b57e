//! The built-in test source: a moving pattern with the frame number stamped
//! into the pixels, paced in real time on the monotonic clock.
//!
//! Options (after `#` in the URI): `frames=N` ends the source after N frames,
//! `realtime=false` produces frames as fast as the consumer pulls them (for
//! benchmarks; such a source is pausable: the recorder waits for ring space
//! instead of spilling), `noise=N` adds deterministic ±N luma noise.
//!
//! Pacing never skips: frame `n` is due at `start + n / fps`; when the
//! consumer is late, the next frames are produced at once until it catches up.

use super::spec::{parse_bool, split_options};
use super::stamp::stamp_i420;
use super::{CameraSpec, CaptureError, CaptureSource};
use crate::convert::convert_into;
use crate::frame::{frame_bytes, FrameMeta, PixelFormat, VideoFormat};
use std::time::{Duration, Instant};

/// Options of the synthetic source beyond its format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyntheticOptions {
    /// Stop (return `Ok(None)`) after this many frames.
    pub frames: Option<u64>,
    /// Pace frames at the frame rate (`true`) or produce them on demand.
    pub realtime: bool,
    /// Amplitude of deterministic luma noise (0 = none).
    pub noise: u8,
}

impl Default for SyntheticOptions {
    fn default() -> Self {
        Self {
            frames: None,
            realtime: true,
            noise: 0,
        }
    }
}

/// The synthetic camera.
pub struct SyntheticSource {
    format: VideoFormat,
    options: SyntheticOptions,
    next_index: u64,
    start: Option<Instant>,
    /// I420 scratch frame when the output format is not I420.
    scratch: Vec<u8>,
}

impl SyntheticSource {
    /// A source producing `format` with `options`.
    pub fn new(format: VideoFormat, options: SyntheticOptions) -> Self {
        let scratch = if format.pixel_format == PixelFormat::I420 {
            Vec::new()
        } else {
            vec![0; frame_bytes(PixelFormat::I420, format.width, format.height)]
        };
        Self {
            format,
            options,
            next_index: 0,
            start: None,
            scratch,
        }
    }

    /// Opens from a parsed spec (reads `frames`, `realtime`, `noise` from the URI).
    pub fn from_spec(spec: &CameraSpec) -> anyhow::Result<Self> {
        let split = split_options(&spec.uri)?;
        let mut options = SyntheticOptions::default();
        if let Some(v) = split.get("frames") {
            options.frames = Some(v.parse().map_err(|_| {
                crate::exit::usage(format!(
                    "camera {:?}: frames={v:?} is not a number",
                    spec.uri
                ))
            })?);
        }
        if let Some(v) = split.get("realtime") {
            options.realtime = parse_bool(&spec.uri, "realtime", v)?;
        }
        if let Some(v) = split.get("noise") {
            options.noise = v.parse::<u8>().ok().filter(|n| *n <= 64).ok_or_else(|| {
                crate::exit::usage(format!("camera {:?}: bad noise={v:?}", spec.uri))
            })?;
        }
        super::spec::validate_format(&spec.uri, &spec.format)?;
        Ok(Self::new(spec.format, options))
    }

    fn wait_for_deadline(&mut self) {
        let start = *self.start.get_or_insert_with(Instant::now);
        if !self.options.realtime {
            return;
        }
        let f = &self.format;
        let due_ns = u128::from(self.next_index) * 1_000_000_000u128 * u128::from(f.fps_den)
            / u128::from(f.fps_num.max(1));
        let due = start + Duration::from_nanos(due_ns.min(u128::from(u64::MAX)) as u64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

impl CaptureSource for SyntheticSource {
    fn format(&self) -> VideoFormat {
        self.format
    }

    /// Without real-time pacing, frames are made on demand: nothing is lost
    /// by waiting, so the recorder pulls them only inside an episode and
    /// waits for ring space instead of spilling (`frames=N` then records
    /// exactly N frames, the basis of the overhead benchmark).
    fn pausable(&self) -> bool {
        !self.options.realtime
    }

    fn next_frame(&mut self, buf: &mut [u8]) -> Result<Option<FrameMeta>, CaptureError> {
        if self.options.frames.is_some_and(|n| self.next_index >= n) {
            return Ok(None);
        }
        let f = self.format;
        if buf.len() != f.frame_bytes() {
            return Err(CaptureError::Failed(format!(
                "synthetic: frame buffer is {} bytes, expected {}",
                buf.len(),
                f.frame_bytes()
            )));
        }
        self.wait_for_deadline();
        let index = self.next_index;
        if f.pixel_format == PixelFormat::I420 {
            draw_i420(buf, f.width, f.height, index, self.options.noise);
        } else {
            draw_i420(
                &mut self.scratch,
                f.width,
                f.height,
                index,
                self.options.noise,
            );
            convert_into(
                PixelFormat::I420,
                &self.scratch,
                f.width,
                f.height,
                f.pixel_format,
                buf,
            )
            .map_err(|e| CaptureError::Failed(format!("synthetic: {e:#}")))?;
        }
        self.next_index += 1;
        Ok(Some(FrameMeta {
            capture_ts_ns: realtime_now_ns(),
            sequence: Some(index),
            lost_before: 0,
        }))
    }
}

/// Nanoseconds since the Unix epoch (CLOCK_REALTIME).
pub fn realtime_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Draws test frame `index` into a tightly packed I420 buffer: diagonal luma
/// ramps scrolling with time, chroma gradients, a bouncing checkered box,
/// optional noise, and the frame-number stamp on top.
pub fn draw_i420(frame: &mut [u8], width: u32, height: u32, index: u64, noise: u8) {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (luma, chroma) = frame.split_at_mut(w * h);
    let (u_plane, v_plane) = chroma.split_at_mut(cw * ch);
    let t = index as usize;

    // Luma: a ramp along x shifted by y and time; values stay in 16..=235.
    for (y, row) in luma.chunks_exact_mut(w).enumerate() {
        let base = (y / 2 + 3 * t) as u32;
        for (x, p) in row.iter_mut().enumerate() {
            let ramp = (base + x as u32) & 255;
            *p = (16 + ((ramp * 219) >> 8)) as u8;
        }
    }
    // Chroma: horizontal / vertical gradients slowly drifting.
    for (cy, (u_row, v_row)) in u_plane
        .chunks_exact_mut(cw)
        .zip(v_plane.chunks_exact_mut(cw))
        .enumerate()
    {
        let v = 64 + ((cy * 128 / ch.max(1) + t) % 128) as u8;
        for (cx, u) in u_row.iter_mut().enumerate() {
            *u = 64 + (cx * 128 / cw.max(1)) as u8;
        }
        v_row.fill(v);
    }
    // A bouncing box with an 8x8 checkerboard inside.
    let side = (w.min(h) / 4).max(8);
    let (bx, by) = (
        bounce(t * 4, w.saturating_sub(side)),
        bounce(t * 3, h.saturating_sub(side)),
    );
    for y in by..(by + side).min(h) {
        for x in bx..(bx + side).min(w) {
            luma[y * w + x] = if ((x - bx) / 8 + (y - by) / 8) % 2 == 0 {
                235
            } else {
                40
            };
        }
    }
    for cy in by / 2..((by + side) / 2).min(ch) {
        u_plane[cy * cw + bx / 2..cy * cw + ((bx + side) / 2).min(cw)].fill(90);
        v_plane[cy * cw + bx / 2..cy * cw + ((bx + side) / 2).min(cw)].fill(220);
    }
    if noise > 0 {
        add_noise(luma, index, noise);
    }
    stamp_i420(frame, width, height, index);
}

/// Position on a triangle wave 0..=span..0 for distance `d`.
fn bounce(d: usize, span: usize) -> usize {
    if span == 0 {
        return 0;
    }
    let period = 2 * span;
    let p = d % period;
    if p <= span {
        p
    } else {
        period - p
    }
}

/// Adds ±`amp` deterministic noise (xorshift seeded by the frame index).
fn add_noise(luma: &mut [u8], index: u64, amp: u8) {
    let mut s = (index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1) as u32;
    let span = 2 * u32::from(amp) + 1;
    for p in luma.iter_mut() {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        let n = (s % span) as i32 - i32::from(amp);
        *p = (i32::from(*p) + n).clamp(16, 235) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::stamp::read_stamp;

    fn fmt(pf: PixelFormat, fps: u32) -> VideoFormat {
        VideoFormat {
            width: 320,
            height: 240,
            fps_num: fps,
            fps_den: 1,
            pixel_format: pf,
        }
    }

    #[test]
    fn frames_are_stamped_in_order_and_finite() {
        let opts = SyntheticOptions {
            frames: Some(5),
            realtime: false,
            noise: 3,
        };
        let mut src = SyntheticSource::new(fmt(PixelFormat::I420, 30), opts);
        let mut buf = vec![0u8; src.format().frame_bytes()];
        for i in 0..5 {
            let meta = src.next_frame(&mut buf).unwrap().unwrap();
            assert_eq!(meta.sequence, Some(i));
            assert_eq!(read_stamp(&buf, 320, 240, 320), Some(i));
        }
        assert!(src.next_frame(&mut buf).unwrap().is_none());
    }

    #[test]
    fn consecutive_frames_differ() {
        let mut a = vec![0u8; frame_bytes(PixelFormat::I420, 320, 240)];
        let mut b = a.clone();
        draw_i420(&mut a, 320, 240, 10, 0);
        draw_i420(&mut b, 320, 240, 11, 0);
        let changed = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        assert!(changed > a.len() / 2, "only {changed} bytes changed");
    }

    #[test]
    fn realtime_pacing_holds_the_rate() {
        let opts = SyntheticOptions {
            frames: Some(7),
            ..Default::default()
        };
        let mut src = SyntheticSource::new(fmt(PixelFormat::I420, 50), opts);
        let mut buf = vec![0u8; src.format().frame_bytes()];
        let t0 = Instant::now();
        let mut stamps = Vec::new();
        while let Some(m) = src.next_frame(&mut buf).unwrap() {
            stamps.push(m.capture_ts_ns);
        }
        // 7 frames at 50 fps: the last is due 120 ms after the first.
        let elapsed = t0.elapsed();
        assert!(elapsed >= Duration::from_millis(118), "{elapsed:?}");
        let span = stamps[6] - stamps[0];
        assert!((115_000_000..400_000_000).contains(&span), "{span}");
    }

    #[test]
    fn wrong_buffer_size_is_an_error() {
        let mut src =
            SyntheticSource::new(fmt(PixelFormat::Rgb24, 30), SyntheticOptions::default());
        let mut buf = vec![0u8; 10];
        assert!(matches!(
            src.next_frame(&mut buf),
            Err(CaptureError::Failed(_))
        ));
    }
}
