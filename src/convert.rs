//! Pixel conversion from captured layouts to what an encoder plugin wants
//! (I420 for SVT-AV1). Runs on the encoder thread, never the capture thread.
//!
//! All frames are tightly packed (no row padding; 4:2:0 chroma planes are
//! `ceil(w/2) x ceil(h/2)`; YUYV rows hold `2 * ceil(w/2)` pixels). Colour
//! maths is BT.601 limited range in integer arithmetic, written as plain
//! per-row loops the compiler can vectorise.
//!
//! Supported: any of I420, NV12, YUYV, RGB24, BGR24, RGBA, GRAY8, MJPEG
//! (decoded by [`crate::mjpeg`]) → I420; I420 → any of those but MJPEG; and
//! any format to itself (a copy).

use crate::frame::{frame_bytes, pixel_format_str, PixelFormat};
use anyhow::{bail, Context};

/// Converts `src` into `dst`, resizing `dst` to the destination frame size
/// (a no-op after the first frame of a given size, so steady state does not
/// allocate).
pub fn convert_to(
    src_format: PixelFormat,
    src: &[u8],
    width: u32,
    height: u32,
    dst_format: PixelFormat,
    dst: &mut Vec<u8>,
) -> anyhow::Result<()> {
    dst.resize(frame_bytes(dst_format, width, height), 0);
    convert_into(src_format, src, width, height, dst_format, dst)
}

/// Whether [`convert_into`] supports `src` → `dst`.
pub fn is_supported(src: PixelFormat, dst: PixelFormat) -> bool {
    src == dst
        || (src == PixelFormat::I420 && dst != PixelFormat::Mjpeg)
        || dst == PixelFormat::I420
}

/// Converts `src` into the preallocated `dst`, which must be exactly
/// `frame_bytes(dst_format, width, height)` long.
pub fn convert_into(
    src_format: PixelFormat,
    src: &[u8],
    width: u32,
    height: u32,
    dst_format: PixelFormat,
    dst: &mut [u8],
) -> anyhow::Result<()> {
    let need_src = frame_bytes(src_format, width, height);
    let need_dst = frame_bytes(dst_format, width, height);
    if width == 0 || height == 0 {
        bail!("cannot convert an empty {width}x{height} frame");
    }
    if src.len() < need_src {
        bail!(
            "{} frame {width}x{height} needs {need_src} bytes, got {}",
            pixel_format_str(src_format),
            src.len()
        );
    }
    if dst.len() != need_dst {
        bail!(
            "{} destination {width}x{height} needs {need_dst} bytes, got {}",
            pixel_format_str(dst_format),
            dst.len()
        );
    }
    let src = &src[..need_src];
    let (w, h) = (width as usize, height as usize);
    if src_format == dst_format {
        dst.copy_from_slice(src);
        return Ok(());
    }
    use PixelFormat as P;
    match (src_format, dst_format) {
        (_, P::I420) => {
            let mut out = I420Mut::split(dst, w, h);
            match src_format {
                P::Nv12 => nv12_to_i420(src, w, h, &mut out),
                P::Yuyv => yuyv_to_i420(src, w, h, &mut out),
                P::Rgb24 => rgb_to_i420::<3, 0, 1, 2>(src, w, h, &mut out),
                P::Bgr24 => rgb_to_i420::<3, 2, 1, 0>(src, w, h, &mut out),
                P::Rgba => rgb_to_i420::<4, 0, 1, 2>(src, w, h, &mut out),
                P::Gray8 => {
                    out.y.copy_from_slice(src);
                    out.u.fill(128);
                    out.v.fill(128);
                }
                P::Mjpeg => crate::mjpeg::decode_to_i420(src, w, h, out.y, out.u, out.v)?,
                P::I420 => unreachable!("same-format copy handled above"),
            }
        }
        (P::I420, _) => {
            let inp = I420Ref::split(src, w, h);
            match dst_format {
                P::Nv12 => i420_to_nv12(&inp, w, h, dst),
                P::Yuyv => i420_to_yuyv(&inp, w, h, dst),
                P::Rgb24 => i420_to_rgb::<3, 0, 1, 2>(&inp, w, h, dst),
                P::Bgr24 => i420_to_rgb::<3, 2, 1, 0>(&inp, w, h, dst),
                P::Rgba => i420_to_rgb::<4, 0, 1, 2>(&inp, w, h, dst),
                P::Gray8 => dst.copy_from_slice(inp.y),
                P::Mjpeg => bail!("s6-edge does not encode JPEG; it only decodes captured MJPEG"),
                P::I420 => unreachable!("same-format copy handled above"),
            }
        }
        _ => {
            return Err(anyhow::anyhow!(
                "no direct conversion {} → {}",
                pixel_format_str(src_format),
                pixel_format_str(dst_format)
            ))
            .context("convert through i420 in two steps")
        }
    }
    Ok(())
}

/// Copies `rows` rows of `row_bytes` bytes from a plane with pitch
/// `src_stride` into a tightly packed `dst` (`rows * row_bytes` long).
pub fn copy_plane(
    src: &[u8],
    src_stride: usize,
    row_bytes: usize,
    rows: usize,
    dst: &mut [u8],
) -> anyhow::Result<()> {
    if rows == 0 || row_bytes == 0 {
        return Ok(());
    }
    if src_stride < row_bytes || src.len() < src_stride * (rows - 1) + row_bytes {
        bail!(
            "plane too short: {} bytes for {rows} rows of {row_bytes} (stride {src_stride})",
            src.len()
        );
    }
    if dst.len() < rows * row_bytes {
        bail!(
            "destination plane too short: {} < {}",
            dst.len(),
            rows * row_bytes
        );
    }
    if src_stride == row_bytes {
        dst[..rows * row_bytes].copy_from_slice(&src[..rows * row_bytes]);
        return Ok(());
    }
    for (d, s) in dst
        .chunks_exact_mut(row_bytes)
        .zip(src.chunks(src_stride))
        .take(rows)
    {
        d.copy_from_slice(&s[..row_bytes]);
    }
    Ok(())
}

struct I420Mut<'a> {
    y: &'a mut [u8],
    u: &'a mut [u8],
    v: &'a mut [u8],
}

impl<'a> I420Mut<'a> {
    fn split(buf: &'a mut [u8], w: usize, h: usize) -> Self {
        let c = w.div_ceil(2) * h.div_ceil(2);
        let (y, rest) = buf.split_at_mut(w * h);
        let (u, v) = rest.split_at_mut(c);
        Self {
            y,
            u,
            v: &mut v[..c],
        }
    }
}

struct I420Ref<'a> {
    y: &'a [u8],
    u: &'a [u8],
    v: &'a [u8],
}

impl<'a> I420Ref<'a> {
    fn split(buf: &'a [u8], w: usize, h: usize) -> Self {
        let c = w.div_ceil(2) * h.div_ceil(2);
        let (y, rest) = buf.split_at(w * h);
        let (u, v) = rest.split_at(c);
        Self { y, u, v: &v[..c] }
    }
}

#[inline(always)]
fn luma(r: i32, g: i32, b: i32) -> u8 {
    (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8
}

/// Chroma from RGB sums over `n` = 4 pixels (`shift` = 10) or 2 (9) or 1 (8).
#[inline(always)]
fn chroma(r: i32, g: i32, b: i32, shift: u32) -> (u8, u8) {
    let round = 1 << (shift - 1);
    let u = ((-38 * r - 74 * g + 112 * b + round) >> shift) + 128;
    let v = ((112 * r - 94 * g - 18 * b + round) >> shift) + 128;
    (u.clamp(0, 255) as u8, v.clamp(0, 255) as u8)
}

fn rgb_to_i420<const BPP: usize, const R: usize, const G: usize, const B: usize>(
    src: &[u8],
    w: usize,
    h: usize,
    out: &mut I420Mut<'_>,
) {
    let pitch = w * BPP;
    for (row, y_row) in src.chunks_exact(pitch).zip(out.y.chunks_exact_mut(w)) {
        for (px, y) in row.chunks_exact(BPP).zip(y_row.iter_mut()) {
            *y = luma(i32::from(px[R]), i32::from(px[G]), i32::from(px[B]));
        }
    }
    let cw = w.div_ceil(2);
    for (cy, (u_row, v_row)) in out
        .u
        .chunks_exact_mut(cw)
        .zip(out.v.chunks_exact_mut(cw))
        .enumerate()
    {
        let r0 = &src[2 * cy * pitch..][..pitch];
        let r1 = &src[(2 * cy + 1).min(h - 1) * pitch..][..pitch];
        let pairs = w / 2;
        for (cx, (u, v)) in u_row
            .iter_mut()
            .zip(v_row.iter_mut())
            .enumerate()
            .take(pairs)
        {
            let a = &r0[2 * cx * BPP..][..2 * BPP];
            let b = &r1[2 * cx * BPP..][..2 * BPP];
            let sum = |c: usize| {
                i32::from(a[c]) + i32::from(a[BPP + c]) + i32::from(b[c]) + i32::from(b[BPP + c])
            };
            (*u, *v) = chroma(sum(R), sum(G), sum(B), 10);
        }
        if w % 2 == 1 {
            let a = &r0[(w - 1) * BPP..][..BPP];
            let b = &r1[(w - 1) * BPP..][..BPP];
            let sum = |c: usize| i32::from(a[c]) + i32::from(b[c]);
            (u_row[cw - 1], v_row[cw - 1]) = chroma(sum(R), sum(G), sum(B), 9);
        }
    }
}

#[inline(always)]
fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

fn i420_to_rgb<const BPP: usize, const R: usize, const G: usize, const B: usize>(
    inp: &I420Ref<'_>,
    w: usize,
    h: usize,
    dst: &mut [u8],
) {
    let cw = w.div_ceil(2);
    let pitch = w * BPP;
    for (yy, out_row) in dst.chunks_exact_mut(pitch).enumerate().take(h) {
        let y_row = &inp.y[yy * w..][..w];
        let u_row = &inp.u[(yy / 2) * cw..][..cw];
        let v_row = &inp.v[(yy / 2) * cw..][..cw];
        // Two pixels share one chroma sample; the odd last pixel is the tail.
        let pairs = out_row.chunks_exact_mut(2 * BPP);
        let ys = y_row.chunks_exact(2);
        for (((pair, ys), &u), &v) in pairs.zip(ys).zip(u_row).zip(v_row) {
            let (d, e) = (i32::from(u) - 128, i32::from(v) - 128);
            let (dr, dg, db) = (409 * e, -100 * d - 208 * e, 516 * d);
            for (px, &y) in pair.chunks_exact_mut(BPP).zip(ys) {
                let c = 298 * (i32::from(y) - 16) + 128;
                px[R] = clamp_u8((c + dr) >> 8);
                px[G] = clamp_u8((c + dg) >> 8);
                px[B] = clamp_u8((c + db) >> 8);
                if BPP == 4 {
                    px[3] = 255;
                }
            }
        }
        if w % 2 == 1 {
            let px = &mut out_row[(w - 1) * BPP..];
            let (d, e) = (
                i32::from(u_row[cw - 1]) - 128,
                i32::from(v_row[cw - 1]) - 128,
            );
            let c = 298 * (i32::from(y_row[w - 1]) - 16) + 128;
            px[R] = clamp_u8((c + 409 * e) >> 8);
            px[G] = clamp_u8((c - 100 * d - 208 * e) >> 8);
            px[B] = clamp_u8((c + 516 * d) >> 8);
            if BPP == 4 {
                px[3] = 255;
            }
        }
    }
}

fn yuyv_to_i420(src: &[u8], w: usize, h: usize, out: &mut I420Mut<'_>) {
    let cw = w.div_ceil(2);
    let pitch = 4 * cw;
    for (row, y_row) in src.chunks_exact(pitch).zip(out.y.chunks_exact_mut(w)) {
        for (x, y) in y_row.iter_mut().enumerate() {
            *y = row[2 * x];
        }
    }
    for (cy, (u_row, v_row)) in out
        .u
        .chunks_exact_mut(cw)
        .zip(out.v.chunks_exact_mut(cw))
        .enumerate()
    {
        let r0 = &src[2 * cy * pitch..][..pitch];
        let r1 = &src[(2 * cy + 1).min(h - 1) * pitch..][..pitch];
        for (cx, (u, v)) in u_row.iter_mut().zip(v_row.iter_mut()).enumerate() {
            let (a, b) = (&r0[4 * cx..4 * cx + 4], &r1[4 * cx..4 * cx + 4]);
            *u = (u16::from(a[1]) + u16::from(b[1])).div_ceil(2) as u8;
            *v = (u16::from(a[3]) + u16::from(b[3])).div_ceil(2) as u8;
        }
    }
}

fn i420_to_yuyv(inp: &I420Ref<'_>, w: usize, h: usize, dst: &mut [u8]) {
    let cw = w.div_ceil(2);
    let pitch = 4 * cw;
    for (yy, out_row) in dst.chunks_exact_mut(pitch).enumerate().take(h) {
        let y_row = &inp.y[yy * w..][..w];
        let u_row = &inp.u[(yy / 2) * cw..][..cw];
        let v_row = &inp.v[(yy / 2) * cw..][..cw];
        for (cx, quad) in out_row.chunks_exact_mut(4).enumerate() {
            quad[0] = y_row[2 * cx];
            quad[1] = u_row[cx];
            quad[2] = y_row[(2 * cx + 1).min(w - 1)];
            quad[3] = v_row[cx];
        }
    }
}

fn nv12_to_i420(src: &[u8], w: usize, h: usize, out: &mut I420Mut<'_>) {
    out.y.copy_from_slice(&src[..w * h]);
    let uv = &src[w * h..];
    for ((pair, u), v) in uv
        .chunks_exact(2)
        .zip(out.u.iter_mut())
        .zip(out.v.iter_mut())
    {
        *u = pair[0];
        *v = pair[1];
    }
}

fn i420_to_nv12(inp: &I420Ref<'_>, w: usize, h: usize, dst: &mut [u8]) {
    let (y, uv) = dst.split_at_mut(w * h);
    y.copy_from_slice(inp.y);
    for ((pair, u), v) in uv.chunks_exact_mut(2).zip(inp.u).zip(inp.v) {
        pair[0] = *u;
        pair[1] = *v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PixelFormat as P;

    const ALL: [P; 7] = [
        P::I420,
        P::Nv12,
        P::Yuyv,
        P::Rgb24,
        P::Bgr24,
        P::Rgba,
        P::Gray8,
    ];

    fn solid_rgb(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
        rgb.iter()
            .copied()
            .cycle()
            .take((3 * w * h) as usize)
            .collect()
    }

    #[test]
    fn known_colours_to_bt601_limited() {
        // (R,G,B) → (Y,U,V), reference values of BT.601 studio swing.
        let cases = [
            ([0, 0, 0], (16, 128, 128)),
            ([255, 255, 255], (235, 128, 128)),
            ([255, 0, 0], (82, 90, 240)),
            ([0, 255, 0], (145, 54, 34)),
            ([0, 0, 255], (41, 240, 110)),
        ];
        for (rgb, (y, u, v)) in cases {
            let src = solid_rgb(4, 2, rgb);
            let mut dst = Vec::new();
            convert_to(P::Rgb24, &src, 4, 2, P::I420, &mut dst).unwrap();
            let close = |a: u8, b: u8| (i32::from(a) - b as i32).abs() <= 1;
            assert!(close(dst[0], y), "{rgb:?}: Y {}", dst[0]);
            assert!(close(dst[8], u), "{rgb:?}: U {}", dst[8]);
            assert!(close(dst[10], v), "{rgb:?}: V {}", dst[10]);
        }
    }

    /// A smooth test picture (gradients) in I420, inside the RGB gamut.
    fn gradient_i420(w: u32, h: u32) -> Vec<u8> {
        let (wu, hu) = (w as usize, h as usize);
        let (cw, ch) = (wu.div_ceil(2), hu.div_ceil(2));
        let mut f = vec![0u8; frame_bytes(P::I420, w, h)];
        for y in 0..hu {
            for x in 0..wu {
                f[y * wu + x] = (40 + (x * 150 / wu + y * 19 / hu)) as u8;
            }
        }
        for y in 0..ch {
            for x in 0..cw {
                f[wu * hu + y * cw + x] = (110 + x * 36 / cw) as u8;
                f[wu * hu + cw * ch + y * cw + x] = (110 + y * 36 / ch) as u8;
            }
        }
        f
    }

    fn max_diff(a: &[u8], b: &[u8]) -> i32 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (i32::from(x) - i32::from(y)).abs())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn round_trips_through_every_format() {
        for (w, h) in [(64u32, 48u32), (66, 34), (7, 5)] {
            let src = gradient_i420(w, h);
            for f in ALL {
                let mut mid = Vec::new();
                let mut back = Vec::new();
                convert_to(P::I420, &src, w, h, f, &mut mid).unwrap();
                assert_eq!(mid.len(), frame_bytes(f, w, h));
                convert_to(f, &mid, w, h, P::I420, &mut back).unwrap();
                let n = (w * h) as usize;
                let tol = match f {
                    P::Rgb24 | P::Bgr24 | P::Rgba => 2,
                    _ => 0,
                };
                let d = max_diff(&src[..n], &back[..n]);
                assert!(d <= tol, "{f:?} {w}x{h} luma differs by {d}");
                if f != P::Gray8 {
                    assert!(
                        max_diff(&src[n..], &back[n..]) <= tol + 1,
                        "{f:?} {w}x{h} chroma {}",
                        max_diff(&src[n..], &back[n..])
                    );
                }
            }
        }
    }

    #[test]
    fn yuyv_averages_chroma_rows() {
        // 2x2 YUYV: row0 Y=10,20 U=100 V=200; row1 Y=30,40 U=110 V=210.
        let src = [10, 100, 20, 200, 30, 110, 40, 210];
        let mut dst = Vec::new();
        convert_to(P::Yuyv, &src, 2, 2, P::I420, &mut dst).unwrap();
        assert_eq!(dst, vec![10, 20, 30, 40, 105, 205]);
    }

    #[test]
    fn destination_is_reused_without_reallocating() {
        let src = gradient_i420(64, 48);
        let mut dst = Vec::new();
        convert_to(P::I420, &src, 64, 48, P::Rgb24, &mut dst).unwrap();
        let ptr = dst.as_ptr();
        for _ in 0..3 {
            convert_to(P::I420, &src, 64, 48, P::Rgb24, &mut dst).unwrap();
        }
        assert_eq!(ptr, dst.as_ptr());
    }

    #[test]
    fn rejects_short_input_and_unsupported_pairs() {
        let mut dst = Vec::new();
        assert!(convert_to(P::Rgb24, &[0; 10], 4, 4, P::I420, &mut dst).is_err());
        let src = vec![0u8; frame_bytes(P::Yuyv, 4, 4)];
        assert!(convert_to(P::Yuyv, &src, 4, 4, P::Rgb24, &mut dst).is_err());
        assert!(!is_supported(P::Yuyv, P::Rgb24));
        assert!(is_supported(P::Yuyv, P::I420));
    }

    #[test]
    fn copy_plane_drops_padding() {
        let src = [1, 2, 9, 9, 3, 4, 9, 9, 5, 6];
        let mut dst = [0u8; 6];
        copy_plane(&src, 4, 2, 3, &mut dst).unwrap();
        assert_eq!(dst, [1, 2, 3, 4, 5, 6]);
        assert!(copy_plane(&src, 4, 2, 4, &mut dst).is_err());
    }
}
