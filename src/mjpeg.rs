//! Motion-JPEG frames: how a captured JPEG travels in a pool buffer, and its
//! decoding to I420 on the encoder thread (never on the capture thread).
//!
//! A V4L2 `MJPG`/`JPEG` buffer is copied as is into the frame pool, prefixed
//! by its length (`u32` LE), because a JPEG's size varies per frame while
//! pool buffers have one fixed size ([`max_frame_bytes`]). Decoding uses the
//! pure-Rust `zune-jpeg` (so the lean V4L2-only build keeps it; it also fills
//! in the default Huffman tables UVC cameras omit), asks for YCbCr output,
//! maps JFIF full range to the BT.601 limited range the rest of
//! [`crate::convert`] uses, and averages chroma 2x2 to 4:2:0.

use anyhow::{bail, Context};
use std::cell::RefCell;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Bytes of the length prefix in front of the JPEG.
pub const LEN_PREFIX: usize = 4;

/// Size of a pool buffer for MJPEG frames of `width` x `height`: room for a
/// JPEG as large as the raw 4:4:4 image plus 64 KiB of headers (cameras'
/// JPEGs are a fraction of that).
pub fn max_frame_bytes(width: u32, height: u32) -> usize {
    LEN_PREFIX + 3 * width as usize * height as usize + 64 * 1024
}

/// Stores `jpeg` (one driver buffer) length-prefixed in the pool buffer `buf`.
pub fn pack(jpeg: &[u8], buf: &mut [u8]) -> anyhow::Result<()> {
    let room = buf.len().saturating_sub(LEN_PREFIX);
    if jpeg.len() > room {
        bail!(
            "JPEG frame of {} bytes does not fit the {room}-byte frame buffer",
            jpeg.len()
        );
    }
    if jpeg.len() < 4 || jpeg[..2] != [0xFF, 0xD8] {
        bail!(
            "the driver delivered {} bytes that are not a JPEG image (no SOI marker)",
            jpeg.len()
        );
    }
    buf[..LEN_PREFIX].copy_from_slice(&(jpeg.len() as u32).to_le_bytes());
    buf[LEN_PREFIX..LEN_PREFIX + jpeg.len()].copy_from_slice(jpeg);
    Ok(())
}

/// The JPEG bytes stored by [`pack`].
pub fn payload(buf: &[u8]) -> anyhow::Result<&[u8]> {
    let len_bytes: [u8; LEN_PREFIX] = buf
        .get(..LEN_PREFIX)
        .and_then(|b| b.try_into().ok())
        .context("MJPEG frame buffer shorter than its length prefix")?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    buf.get(LEN_PREFIX..LEN_PREFIX + len)
        .with_context(|| format!("MJPEG frame claims {len} bytes, buffer holds fewer"))
}

thread_local! {
    /// Decoded 4:4:4 YCbCr of the last frame, reused per encoder thread.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// JFIF full-range luma → BT.601 limited range (16..235).
fn luma_limited(v: u8) -> u8 {
    (16 + (u32::from(v) * 219 + 127) / 255) as u8
}

/// Sum of up to four full-range chroma samples → limited range (16..240).
fn chroma_limited(sum: u32, n: u32) -> u8 {
    // 128 + (c - 128) * 224 / 255 with c = sum / n, rounded.
    let c = (sum * 2 + n) / (2 * n);
    (16 + (c * 224 + 127) / 255) as u8
}

/// Decodes the length-prefixed JPEG in `src` (a pool buffer) into the packed
/// I420 planes `y`, `u`, `v` of a `width` x `height` frame. The JPEG must have
/// exactly that size.
pub fn decode_to_i420(
    src: &[u8],
    width: usize,
    height: usize,
    y: &mut [u8],
    u: &mut [u8],
    v: &mut [u8],
) -> anyhow::Result<()> {
    let jpeg = payload(src)?;
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::YCbCr)
        .set_max_width(width.max(1))
        .set_max_height(height.max(1));
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
    decoder
        .decode_headers()
        .map_err(|e| anyhow::anyhow!("corrupt JPEG frame ({} bytes): {e:?}", jpeg.len()))?;
    let (jw, jh) = decoder
        .dimensions()
        .context("JPEG frame has no dimensions")?;
    if (jw, jh) != (width, height) {
        bail!("JPEG frame is {jw}x{jh}, the camera negotiated {width}x{height}");
    }
    let out_cs = decoder.output_colorspace().unwrap_or(ColorSpace::YCbCr);
    let comps = out_cs.num_components();
    let need = decoder
        .output_buffer_size()
        .context("JPEG frame too large")?;
    SCRATCH.with(|scratch| -> anyhow::Result<()> {
        let mut ycc = scratch.borrow_mut();
        ycc.resize(need, 0);
        decoder
            .decode_into(&mut ycc)
            .map_err(|e| anyhow::anyhow!("corrupt JPEG frame ({} bytes): {e:?}", jpeg.len()))?;
        if comps == 1 {
            for (dst, &s) in y.iter_mut().zip(ycc.iter()) {
                *dst = luma_limited(s);
            }
            u.fill(128);
            v.fill(128);
            return Ok(());
        }
        if comps < 3 {
            bail!("JPEG decodes to {out_cs:?}, expected YCbCr");
        }
        let row = width * comps;
        for (r, yrow) in y.chunks_exact_mut(width).enumerate().take(height) {
            let src_row = &ycc[r * row..(r + 1) * row];
            for (dst, px) in yrow.iter_mut().zip(src_row.chunks_exact(comps)) {
                *dst = luma_limited(px[0]);
            }
        }
        let cw = width.div_ceil(2);
        for cy in 0..height.div_ceil(2) {
            let rows = [2 * cy, (2 * cy + 1).min(height - 1)];
            for cx in 0..cw {
                let cols = [2 * cx, (2 * cx + 1).min(width - 1)];
                let (mut sb, mut sr) = (0u32, 0u32);
                for r in rows {
                    for c in cols {
                        let p = r * row + c * comps;
                        sb += u32::from(ycc[p + 1]);
                        sr += u32::from(ycc[p + 2]);
                    }
                }
                u[cy * cw + cx] = chroma_limited(sb, 4);
                v[cy * cw + cx] = chroma_limited(sr, 4);
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_and_payload_round_trip() {
        let jpeg = [0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
        let mut buf = vec![0xAAu8; 32];
        pack(&jpeg, &mut buf).unwrap();
        assert_eq!(payload(&buf).unwrap(), &jpeg);
        // Too big, not a JPEG, or a lying prefix are errors, not panics.
        assert!(pack(&[0xFF, 0xD8, 0, 0, 0, 0, 0, 0, 0], &mut [0u8; 8]).is_err());
        assert!(pack(&[0, 0, 0, 0], &mut buf).is_err());
        buf[..4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(payload(&buf).is_err());
    }

    #[test]
    fn range_mapping_hits_bt601_limits() {
        assert_eq!(luma_limited(0), 16);
        assert_eq!(luma_limited(255), 235);
        assert_eq!(chroma_limited(0, 4), 16);
        assert_eq!(chroma_limited(4 * 255, 4), 240);
        assert_eq!(chroma_limited(4 * 128, 4), 128);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let mut buf = vec![0u8; max_frame_bytes(16, 16)];
        pack(&[0xFF, 0xD8, 0xFF, 0x00, 0x12, 0x34], &mut buf).unwrap();
        let (mut y, mut u, mut v) = (vec![0; 256], vec![0; 64], vec![0; 64]);
        let err = decode_to_i420(&buf, 16, 16, &mut y, &mut u, &mut v).unwrap_err();
        assert!(err.to_string().contains("corrupt JPEG"), "{err:#}");
    }
}
