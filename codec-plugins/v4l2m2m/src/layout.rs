//! Where the planes of a raw 4:2:0 frame live in the V4L2 buffers of a
//! negotiated format, and copying frames in and out of them.

use crate::sys;
use anyhow::{bail, Result};

/// Which component(s) a plane holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// Luma.
    Y,
    /// Interleaved Cb/Cr (NV12).
    Uv,
    /// Cb.
    U,
    /// Cr.
    V,
}

/// One component plane inside a V4L2 buffer plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneLoc {
    /// What it holds.
    pub component: Component,
    /// Index of the V4L2 buffer plane (0 for single-buffer formats).
    pub buffer: usize,
    /// Byte offset inside that buffer plane.
    pub offset: usize,
    /// Bytes per row.
    pub stride: usize,
}

/// The planes of a 4:2:0 raw format as negotiated: `bytesperline` per
/// V4L2 plane and the (possibly padded) height the driver reported.
pub fn plane_map(fourcc: u32, height: u32, bytesperline: &[u32]) -> Result<Vec<PlaneLoc>> {
    let h = height as usize;
    let bpl = |i: usize| bytesperline.get(i).copied().unwrap_or(0) as usize;
    let loc = |component, buffer, offset, stride| PlaneLoc {
        component,
        buffer,
        offset,
        stride,
    };
    Ok(match fourcc {
        sys::PIX_FMT_NV12 => vec![
            loc(Component::Y, 0, 0, bpl(0)),
            loc(Component::Uv, 0, bpl(0) * h, bpl(0)),
        ],
        sys::PIX_FMT_YUV420 => {
            let c = bpl(0) / 2;
            vec![
                loc(Component::Y, 0, 0, bpl(0)),
                loc(Component::U, 0, bpl(0) * h, c),
                loc(Component::V, 0, bpl(0) * h + c * h.div_ceil(2), c),
            ]
        }
        sys::PIX_FMT_NV12M => vec![
            loc(Component::Y, 0, 0, bpl(0)),
            loc(Component::Uv, 1, 0, bpl(1)),
        ],
        sys::PIX_FMT_YUV420M => vec![
            loc(Component::Y, 0, 0, bpl(0)),
            loc(Component::U, 1, 0, bpl(1)),
            loc(Component::V, 2, 0, bpl(2)),
        ],
        other => bail!("raw format {} is not supported", sys::fourcc_str(other)),
    })
}

/// A borrowed 4:2:0 frame from the host: I420 (Y, U, V) or NV12 (Y, UV).
pub struct SourceFrame<'a> {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// NV12 (`true`) or I420.
    pub nv12: bool,
    /// Planes, each with its stride.
    pub planes: Vec<(&'a [u8], usize)>,
}

impl SourceFrame<'_> {
    /// Byte `(x, y)` of component `c` (x in chroma samples for U/V; for UV
    /// x indexes bytes of the interleaved row).
    fn row(&self, c: Component, y: usize) -> &[u8] {
        let (idx, w) = match (c, self.nv12) {
            (Component::Y, _) => (0, self.width),
            (Component::Uv, true) | (Component::U, true) | (Component::V, true) => {
                (1, self.width.div_ceil(2) * 2)
            }
            (Component::U, false) | (Component::Uv, false) => (1, self.width.div_ceil(2)),
            (Component::V, false) => (2, self.width.div_ceil(2)),
        };
        let (data, stride) = self.planes[idx];
        &data[y * stride..y * stride + w]
    }
}

/// Copies `src` into the mapped V4L2 buffer planes `dst` laid out as `map`
/// (converting I420 <-> NV12 chroma as needed). Returns bytes used per plane.
pub fn write_frame(
    src: &SourceFrame<'_>,
    map: &[PlaneLoc],
    dst: &mut [&mut [u8]],
) -> Result<Vec<usize>> {
    let cw = src.width.div_ceil(2);
    let ch = src.height.div_ceil(2);
    let mut used = vec![0usize; dst.len()];
    for p in map {
        let rows = if p.component == Component::Y {
            src.height
        } else {
            ch
        };
        let row_bytes = match p.component {
            Component::Y => src.width,
            Component::Uv => cw * 2,
            _ => cw,
        };
        let buf = dst
            .get_mut(p.buffer)
            .ok_or_else(|| anyhow::anyhow!("buffer plane {} missing", p.buffer))?;
        let end = p.offset + p.stride * (rows - 1) + row_bytes;
        if end > buf.len() || p.stride < row_bytes {
            bail!(
                "frame does not fit the V4L2 buffer ({} < {end} bytes)",
                buf.len()
            );
        }
        for y in 0..rows {
            let out = &mut buf[p.offset + y * p.stride..p.offset + y * p.stride + row_bytes];
            match (p.component, src.nv12) {
                (Component::Y, _) | (Component::Uv, true) => {
                    out.copy_from_slice(src.row(p.component, y))
                }
                (Component::Uv, false) => {
                    let (u, v) = (src.row(Component::U, y), src.row(Component::V, y));
                    for x in 0..cw {
                        out[2 * x] = u[x];
                        out[2 * x + 1] = v[x];
                    }
                }
                (Component::U | Component::V, true) => {
                    let uv = src.row(Component::Uv, y);
                    let k = usize::from(p.component == Component::V);
                    for x in 0..cw {
                        out[x] = uv[2 * x + k];
                    }
                }
                (Component::U | Component::V, false) => {
                    out.copy_from_slice(src.row(p.component, y))
                }
            }
        }
        // Single-buffer formats: a plane's payload ends after its last plane.
        let plane_end = p.offset + p.stride * rows;
        used[p.buffer] = used[p.buffer].max(plane_end.min(buf.len()));
    }
    Ok(used)
}

/// Reads a frame laid out as `map` from `src` into a tightly packed I420
/// buffer (`width * height * 3 / 2` bytes for even sizes).
pub fn read_i420(map: &[PlaneLoc], src: &[&[u8]], width: usize, height: usize) -> Result<Vec<u8>> {
    let cw = width.div_ceil(2);
    let ch = height.div_ceil(2);
    let mut out = vec![0u8; width * height + 2 * cw * ch];
    let (y_out, chroma) = out.split_at_mut(width * height);
    let (u_out, v_out) = chroma.split_at_mut(cw * ch);
    for p in map {
        let buf = src
            .get(p.buffer)
            .ok_or_else(|| anyhow::anyhow!("buffer plane {} missing", p.buffer))?;
        let rows = if p.component == Component::Y {
            height
        } else {
            ch
        };
        let row_bytes = match p.component {
            Component::Y => width,
            Component::Uv => cw * 2,
            _ => cw,
        };
        if p.offset + p.stride * (rows - 1) + row_bytes > buf.len() {
            bail!("decoded buffer too small ({} bytes)", buf.len());
        }
        for y in 0..rows {
            let row = &buf[p.offset + y * p.stride..p.offset + y * p.stride + row_bytes];
            match p.component {
                Component::Y => y_out[y * width..(y + 1) * width].copy_from_slice(row),
                Component::U => u_out[y * cw..(y + 1) * cw].copy_from_slice(row),
                Component::V => v_out[y * cw..(y + 1) * cw].copy_from_slice(row),
                Component::Uv => {
                    for x in 0..cw {
                        u_out[y * cw + x] = row[2 * x];
                        v_out[y * cw + x] = row[2 * x + 1];
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i420(w: usize, h: usize) -> Vec<u8> {
        (0..w * h * 3 / 2).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn source(data: &[u8], w: usize, h: usize) -> SourceFrame<'_> {
        let (y, c) = data.split_at(w * h);
        let (u, v) = c.split_at(w * h / 4);
        SourceFrame {
            width: w,
            height: h,
            nv12: false,
            planes: vec![(y, w), (u, w / 2), (v, w / 2)],
        }
    }

    #[test]
    fn i420_round_trips_through_every_device_layout_with_padding() {
        let (w, h) = (16, 6);
        let data = i420(w, h);
        for fourcc in [
            sys::PIX_FMT_NV12,
            sys::PIX_FMT_YUV420,
            sys::PIX_FMT_NV12M,
            sys::PIX_FMT_YUV420M,
        ] {
            // Padded rows (stride 32) and a padded height (8), as hardware does.
            let bpl = [32, 32, 16];
            let map = plane_map(fourcc, 8, &bpl).unwrap();
            let mut bufs = vec![vec![0u8; 32 * 8 * 2]; 3];
            let mut views: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
            write_frame(&source(&data, w, h), &map, &mut views).unwrap();
            let ro: Vec<&[u8]> = bufs.iter().map(|b| b.as_slice()).collect();
            assert_eq!(
                read_i420(&map, &ro, w, h).unwrap(),
                data,
                "{}",
                sys::fourcc_str(fourcc)
            );
        }
    }

    #[test]
    fn nv12_source_deinterleaves_into_i420_layout() {
        let (w, h) = (4, 2);
        let y = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let uv = [10u8, 20, 11, 21];
        let src = SourceFrame {
            width: w,
            height: h,
            nv12: true,
            planes: vec![(&y, 4), (&uv, 4)],
        };
        let map = plane_map(sys::PIX_FMT_YUV420, 2, &[4]).unwrap();
        let mut buf = vec![0u8; 12];
        let used = write_frame(&src, &map, &mut [buf.as_mut_slice()]).unwrap();
        assert_eq!(used, vec![12]);
        assert_eq!(buf, vec![1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 20, 21]);
    }

    #[test]
    fn too_small_buffer_is_an_error() {
        let data = i420(16, 6);
        let map = plane_map(sys::PIX_FMT_NV12, 6, &[16]).unwrap();
        let mut small = vec![0u8; 100];
        assert!(write_frame(&source(&data, 16, 6), &map, &mut [small.as_mut_slice()]).is_err());
    }
}
