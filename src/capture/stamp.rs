//! A frame number drawn into the pixels, readable after lossy coding.
//!
//! The stamp is 40 bits — the low 32 bits of the frame number, big-endian,
//! then an 8-bit CRC — drawn as black (Y=16) / white (Y=235) square blocks in
//! a band at the top of the picture, most significant bit first, left to
//! right, then on the next row of blocks. Blocks are at least 16x16 pixels
//! (`max(16, width / 40)`), so they survive AV1 and H.264 at high CRF; the
//! reader averages the centre of each block and thresholds at mid-grey, then
//! checks the CRC. A black or white picture never reads as a stamp.
//!
//! Band sizes: 160 px wide → 4 rows of 10 blocks of 16 px (64 px band);
//! 320 → 2 rows of 20 (32 px); 640 → 1 row of 40 (16 px); 1920 → 1 row of
//! 40 blocks of 48 px.

/// Bits in a stamp: 32 value bits + 8 check bits.
const BITS: u32 = 40;
const BLACK: u8 = 16;
const WHITE: u8 = 235;
const THRESHOLD: u32 = 126;

/// Where the stamp blocks lie for one picture size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StampLayout {
    /// Side of one square block in pixels.
    pub block: u32,
    /// Blocks per row.
    pub cols: u32,
    /// Rows of blocks.
    pub rows: u32,
}

impl StampLayout {
    /// Height of the band the stamp covers, in pixels.
    pub fn band_height(&self) -> u32 {
        self.block * self.rows
    }
    /// Top-left pixel of bit `i`.
    fn origin(&self, i: u32) -> (usize, usize) {
        (
            ((i % self.cols) * self.block) as usize,
            ((i / self.cols) * self.block) as usize,
        )
    }
}

/// The layout for a `width` x `height` picture, or `None` when it is too
/// small to carry a stamp (narrower than 160 px or the band would exceed
/// the picture height).
pub fn stamp_layout(width: u32, height: u32) -> Option<StampLayout> {
    let block = (width / BITS).max(16);
    let cols = (width / block).min(BITS);
    if cols < 10 {
        return None;
    }
    let rows = BITS.div_ceil(cols);
    (rows * block <= height).then_some(StampLayout { block, cols, rows })
}

/// CRC-8 (polynomial 0x07, init 0xFF) of the four value bytes, xor 0xA5 so
/// that neither an all-black nor an all-white band is a valid stamp.
fn check_byte(value: u32) -> u8 {
    let mut crc: u8 = 0xFF;
    for byte in value.to_be_bytes() {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc ^ 0xA5
}

fn code_word(value: u32) -> u64 {
    (u64::from(value) << 8) | u64::from(check_byte(value))
}

/// Draws the low 32 bits of `value` into a luma plane with row pitch
/// `stride`. Returns `false` (and draws nothing) when the picture is too
/// small for a stamp or the plane is shorter than `stride * height`.
pub fn stamp_luma(luma: &mut [u8], width: u32, height: u32, stride: usize, value: u64) -> bool {
    let Some(layout) = stamp_layout(width, height) else {
        return false;
    };
    if stride < width as usize || luma.len() < stride * (height as usize - 1) + width as usize {
        return false;
    }
    let word = code_word(value as u32);
    let block = layout.block as usize;
    // Pixels right of the last column in the band are painted black.
    let band = layout.band_height() as usize;
    for row in luma.chunks_mut(stride).take(band) {
        row[..width as usize].fill(BLACK);
    }
    for i in 0..BITS {
        let bit = (word >> (BITS - 1 - i)) & 1 == 1;
        let (x0, y0) = layout.origin(i);
        let shade = if bit { WHITE } else { BLACK };
        for y in y0..y0 + block {
            luma[y * stride + x0..y * stride + x0 + block].fill(shade);
        }
    }
    true
}

/// Stamps a tightly packed I420 frame: the luma blocks, and neutral chroma
/// under the band so colour cannot bleed into the blocks.
pub fn stamp_i420(frame: &mut [u8], width: u32, height: u32, value: u64) -> bool {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    if frame.len() < w * h + 2 * cw * ch {
        return false;
    }
    let Some(layout) = stamp_layout(width, height) else {
        return false;
    };
    let (luma, chroma) = frame.split_at_mut(w * h);
    if !stamp_luma(luma, width, height, w, value) {
        return false;
    }
    let band_c = (layout.band_height() as usize).div_ceil(2).min(ch);
    let (u, v) = chroma.split_at_mut(cw * ch);
    u[..band_c * cw].fill(128);
    v[..band_c * cw].fill(128);
    true
}

/// Reads a stamp back from a luma plane (row pitch `stride`): the stamped
/// value's low 32 bits, or `None` when no valid stamp is there.
pub fn read_stamp(luma: &[u8], width: u32, height: u32, stride: usize) -> Option<u64> {
    let layout = stamp_layout(width, height)?;
    if stride < width as usize || luma.len() < stride * (height as usize - 1) + width as usize {
        return None;
    }
    let block = layout.block as usize;
    // Average the central half of each block: edges blur under coding.
    let (lo, hi) = (block / 4, block - block / 4);
    let mut word: u64 = 0;
    for i in 0..BITS {
        let (x0, y0) = layout.origin(i);
        let mut sum: u32 = 0;
        for y in y0 + lo..y0 + hi {
            let row = &luma[y * stride + x0 + lo..y * stride + x0 + hi];
            sum += row.iter().map(|&p| u32::from(p)).sum::<u32>();
        }
        let n = ((hi - lo) * (hi - lo)) as u32;
        word = (word << 1) | u64::from(sum / n > THRESHOLD);
    }
    let value = (word >> 8) as u32;
    (check_byte(value) == (word & 0xFF) as u8).then_some(u64::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_cover_small_and_large_pictures() {
        let l = stamp_layout(160, 120).unwrap();
        assert_eq!((l.block, l.cols, l.rows), (16, 10, 4));
        let l = stamp_layout(320, 240).unwrap();
        assert_eq!((l.block, l.cols, l.rows), (16, 20, 2));
        let l = stamp_layout(1920, 1080).unwrap();
        assert_eq!((l.block, l.cols, l.rows), (48, 40, 1));
        assert!(stamp_layout(64, 64).is_none());
        assert!(stamp_layout(160, 40).is_none());
    }

    #[test]
    fn stamps_round_trip_with_padding_stride() {
        for (w, h) in [(160u32, 120u32), (320, 240), (642, 480), (1920, 1080)] {
            let stride = w as usize + 32;
            let mut luma = vec![90u8; stride * h as usize];
            for value in [0u64, 1, 29, 0xDEAD_BEEF, u64::from(u32::MAX)] {
                assert!(stamp_luma(&mut luma, w, h, stride, value));
                assert_eq!(read_stamp(&luma, w, h, stride), Some(value), "{w}x{h}");
            }
        }
    }

    #[test]
    fn flat_pictures_are_not_stamps() {
        for shade in [0u8, 16, 128, 235, 255] {
            let luma = vec![shade; 320 * 240];
            assert_eq!(read_stamp(&luma, 320, 240, 320), None, "shade {shade}");
        }
    }

    #[test]
    fn stamp_survives_blur_and_noise() {
        let (w, h) = (320u32, 240u32);
        let mut luma = vec![100u8; (w * h) as usize];
        assert!(stamp_luma(&mut luma, w, h, w as usize, 123_456));
        // Deterministic +-40 noise plus a horizontal box blur.
        let mut seed: u32 = 7;
        let mut noisy = luma.clone();
        for (i, p) in noisy.iter_mut().enumerate() {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let n = (seed >> 24) as i32 % 81 - 40;
            let left = luma[i.saturating_sub(2)] as i32;
            let right = luma[(i + 2).min(luma.len() - 1)] as i32;
            *p = ((left + 2 * *p as i32 + right) / 4 + n).clamp(0, 255) as u8;
        }
        assert_eq!(read_stamp(&noisy, w, h, w as usize), Some(123_456));
    }

    #[test]
    fn i420_stamp_neutralises_band_chroma() {
        let (w, h) = (320u32, 240u32);
        let mut frame =
            vec![200u8; crate::frame::frame_bytes(crate::frame::PixelFormat::I420, w, h)];
        assert!(stamp_i420(&mut frame, w, h, 42));
        assert_eq!(read_stamp(&frame, w, h, w as usize), Some(42));
        let u0 = (w * h) as usize;
        assert_eq!(frame[u0], 128);
        assert_eq!(frame[u0 + (160 * 119)], 200); // below the band
    }
}
