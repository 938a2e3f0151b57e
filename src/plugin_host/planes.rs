//! Plane offsets and strides of a tightly packed frame (the layout
//! [`crate::frame::frame_bytes`] sizes), for building an ABI `Frame`.

use crate::frame::PixelFormat;

/// One plane inside a packed frame buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plane {
    /// Byte offset of the plane's first row.
    pub offset: usize,
    /// Bytes per row.
    pub stride: usize,
    /// Number of rows.
    pub rows: usize,
}

/// Planes of a packed `format` frame of `width` x `height` (4:2:0 chroma
/// rounded up, no row padding).
pub fn packed_planes(format: PixelFormat, width: u32, height: u32) -> Vec<Plane> {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let single = |stride: usize| {
        vec![Plane {
            offset: 0,
            stride,
            rows: h,
        }]
    };
    match format {
        PixelFormat::I420 => vec![
            Plane {
                offset: 0,
                stride: w,
                rows: h,
            },
            Plane {
                offset: w * h,
                stride: cw,
                rows: ch,
            },
            Plane {
                offset: w * h + cw * ch,
                stride: cw,
                rows: ch,
            },
        ],
        PixelFormat::Nv12 => vec![
            Plane {
                offset: 0,
                stride: w,
                rows: h,
            },
            Plane {
                offset: w * h,
                stride: 2 * cw,
                rows: ch,
            },
        ],
        PixelFormat::Yuyv => single(4 * cw),
        PixelFormat::Rgb24 | PixelFormat::Bgr24 => single(3 * w),
        PixelFormat::Rgba => single(4 * w),
        PixelFormat::Gray8 => single(w),
        // Never handed to a plugin (the host decodes it); one opaque plane.
        PixelFormat::Mjpeg => vec![Plane {
            offset: 0,
            stride: crate::frame::frame_bytes(format, width, height),
            rows: 1,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::frame_bytes;

    #[test]
    fn planes_tile_the_packed_frame_exactly() {
        for format in [
            PixelFormat::I420,
            PixelFormat::Nv12,
            PixelFormat::Yuyv,
            PixelFormat::Rgb24,
            PixelFormat::Bgr24,
            PixelFormat::Rgba,
            PixelFormat::Gray8,
        ] {
            for (w, h) in [(640, 480), (3, 5), (1, 1)] {
                let planes = packed_planes(format, w, h);
                let mut end = 0;
                for p in &planes {
                    assert_eq!(p.offset, end, "{format:?} {w}x{h}: planes are contiguous");
                    end = p.offset + p.stride * p.rows;
                }
                assert_eq!(end, frame_bytes(format, w, h), "{format:?} {w}x{h}");
            }
        }
    }
}
