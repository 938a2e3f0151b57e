//! AV1 bitstream helpers for MP4 muxing: OBU iteration, sample cleaning
//! (temporal delimiters and padding removed, size fields present) and the
//! `av1C` fields parsed from the sequence header OBU.

use anyhow::{bail, Context};

/// OBU type of a sequence header.
pub const OBU_SEQUENCE_HEADER: u8 = 1;
/// OBU type of a temporal delimiter.
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;
/// OBU type of padding.
pub const OBU_PADDING: u8 = 15;

/// One OBU inside a low-overhead bitstream buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Obu<'a> {
    /// `obu_type` from the header.
    pub obu_type: u8,
    /// The header bytes (1, or 2 with the extension byte), size field excluded.
    pub header: &'a [u8],
    /// The payload bytes.
    pub payload: &'a [u8],
}

/// Reads a LEB128 value; returns (value, bytes used).
pub fn read_leb128(data: &[u8]) -> anyhow::Result<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..8 {
        let byte = *data.get(i).context("truncated LEB128 size field")?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    bail!("LEB128 size field longer than 8 bytes")
}

/// Appends `value` as LEB128.
pub fn write_leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let mut byte = (value & 0x7f) as u8;
        value >>= 7;
        if value != 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if value == 0 {
            break;
        }
    }
}

/// Splits a low-overhead AV1 buffer into OBUs. An OBU without a size field
/// extends to the end of the buffer (only legal for the last one).
pub fn parse_obus(data: &[u8]) -> anyhow::Result<Vec<Obu<'_>>> {
    let mut obus = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let first = data[pos];
        if first & 0x80 != 0 {
            bail!("OBU forbidden bit set at byte {pos}");
        }
        let obu_type = (first >> 3) & 0x0f;
        let has_extension = first & 0x04 != 0;
        let has_size = first & 0x02 != 0;
        let header_len = if has_extension { 2 } else { 1 };
        if pos + header_len > data.len() {
            bail!("truncated OBU header at byte {pos}");
        }
        let header = &data[pos..pos + header_len];
        pos += header_len;
        let payload_len = if has_size {
            let (len, used) = read_leb128(&data[pos..])?;
            pos += used;
            usize::try_from(len).context("OBU size does not fit in memory")?
        } else {
            data.len() - pos
        };
        let end = pos
            .checked_add(payload_len)
            .filter(|&end| end <= data.len())
            .with_context(|| format!("OBU of {payload_len} bytes runs past the buffer end"))?;
        obus.push(Obu {
            obu_type,
            header,
            payload: &data[pos..end],
        });
        pos = end;
    }
    Ok(obus)
}

/// Appends one OBU with `obu_has_size_field = 1`.
fn push_obu(out: &mut Vec<u8>, obu: &Obu<'_>) {
    out.push(obu.header[0] | 0x02);
    out.extend_from_slice(&obu.header[1..]);
    write_leb128(out, obu.payload.len() as u64);
    out.extend_from_slice(obu.payload);
}

/// Converts one encoder packet into an MP4 sample: temporal delimiters and
/// padding OBUs removed (AV1-ISOBMFF §2.4), every OBU with a size field.
pub fn packet_to_sample(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len());
    for obu in parse_obus(data)? {
        if obu.obu_type == OBU_TEMPORAL_DELIMITER || obu.obu_type == OBU_PADDING {
            continue;
        }
        push_obu(&mut out, &obu);
    }
    Ok(out)
}

/// Finds the sequence header OBU in `data` and returns it re-encoded with a
/// size field, as `av1C.configOBUs` wants it.
pub fn find_sequence_header(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let obu = parse_obus(data)?
        .into_iter()
        .find(|o| o.obu_type == OBU_SEQUENCE_HEADER)
        .context("no sequence header OBU in the AV1 configuration record")?;
    let mut out = Vec::new();
    push_obu(&mut out, &obu);
    Ok(out)
}

/// OBU type of a frame header.
pub const OBU_FRAME_HEADER: u8 = 3;
/// OBU type of a frame (header + tile group).
pub const OBU_FRAME: u8 = 6;

/// Splits a low-overhead AV1 stream (e.g. ffmpeg's `-f obu` output) into
/// temporal units, each starting at a temporal delimiter OBU.
pub fn split_temporal_units(data: &[u8]) -> anyhow::Result<Vec<&[u8]>> {
    let mut starts = Vec::new();
    let mut pos = 0usize;
    for obu in parse_obus(data)? {
        let total = obu.payload.as_ptr() as usize + obu.payload.len() - data.as_ptr() as usize;
        if obu.obu_type == OBU_TEMPORAL_DELIMITER {
            starts.push(pos);
        }
        pos = total;
    }
    if starts.first() != Some(&0) {
        bail!("the AV1 stream does not start with a temporal delimiter");
    }
    let mut units = Vec::with_capacity(starts.len());
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(data.len());
        units.push(&data[start..end]);
    }
    Ok(units)
}

/// Whether a temporal unit starts with a shown key frame: its first frame
/// (header) OBU has `show_existing_frame = 0` and `frame_type = KEY_FRAME`.
/// Assumes a sequence header without `reduced_still_picture_header`.
pub fn temporal_unit_is_keyframe(unit: &[u8]) -> anyhow::Result<bool> {
    let Some(frame) = parse_obus(unit)?
        .into_iter()
        .find(|o| o.obu_type == OBU_FRAME || o.obu_type == OBU_FRAME_HEADER)
    else {
        return Ok(false);
    };
    let first = *frame.payload.first().context("empty frame header")?;
    let show_existing_frame = first & 0x80 != 0;
    let frame_type = (first >> 5) & 0x03;
    Ok(!show_existing_frame && frame_type == 0)
}

/// The `av1C` fields carried by a sequence header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SequenceHeaderInfo {
    /// `seq_profile`.
    pub seq_profile: u8,
    /// `seq_level_idx[0]`.
    pub seq_level_idx_0: u8,
    /// `seq_tier[0]`.
    pub seq_tier_0: bool,
    /// `high_bitdepth`.
    pub high_bitdepth: bool,
    /// `twelve_bit`.
    pub twelve_bit: bool,
    /// `mono_chrome`.
    pub monochrome: bool,
    /// `subsampling_x`.
    pub chroma_subsampling_x: bool,
    /// `subsampling_y`.
    pub chroma_subsampling_y: bool,
    /// `chroma_sample_position` (0..=3).
    pub chroma_sample_position: u8,
    /// `max_frame_width_minus_1 + 1`.
    pub max_width: u32,
    /// `max_frame_height_minus_1 + 1`.
    pub max_height: u32,
}

/// MSB-first bit reader over a byte slice.
struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, bit: 0 }
    }

    fn bit(&mut self) -> anyhow::Result<bool> {
        let byte = *self
            .data
            .get(self.bit / 8)
            .context("sequence header ends early")?;
        let value = (byte >> (7 - (self.bit % 8))) & 1;
        self.bit += 1;
        Ok(value == 1)
    }

    fn bits(&mut self, n: u32) -> anyhow::Result<u32> {
        debug_assert!(n <= 32);
        let mut value = 0u64;
        for _ in 0..n {
            value = (value << 1) | u64::from(self.bit()?);
        }
        Ok(value as u32)
    }

    fn flag(&mut self) -> anyhow::Result<bool> {
        self.bit()
    }

    /// `uvlc()` from the AV1 specification (§4.10.3).
    fn uvlc(&mut self) -> anyhow::Result<u32> {
        let mut leading_zeros = 0u32;
        while !self.bit()? {
            leading_zeros += 1;
            if leading_zeros >= 32 {
                return Ok(u32::MAX);
            }
        }
        let value = self.bits(leading_zeros)?;
        Ok(value.saturating_add((1u32 << leading_zeros) - 1))
    }
}

/// Parses the payload of a sequence header OBU (AV1 spec §5.5) as far as
/// `color_config()`, which holds the last fields `av1C` needs.
pub fn parse_sequence_header(payload: &[u8]) -> anyhow::Result<SequenceHeaderInfo> {
    let mut r = BitReader::new(payload);
    let mut info = SequenceHeaderInfo {
        seq_profile: r.bits(3)? as u8,
        ..Default::default()
    };
    let _still_picture = r.flag()?;
    let reduced_still_picture_header = r.flag()?;
    if reduced_still_picture_header {
        info.seq_level_idx_0 = r.bits(5)? as u8;
    } else {
        let timing_info_present = r.flag()?;
        let mut decoder_model_info_present = false;
        let mut buffer_delay_length = 0;
        if timing_info_present {
            r.bits(32)?; // num_units_in_display_tick
            r.bits(32)?; // time_scale
            if r.flag()? {
                // equal_picture_interval
                r.uvlc()?;
            }
            decoder_model_info_present = r.flag()?;
            if decoder_model_info_present {
                buffer_delay_length = r.bits(5)? + 1;
                r.bits(32)?; // num_units_in_decoding_tick
                r.bits(5)?; // buffer_removal_time_length_minus_1
                r.bits(5)?; // frame_presentation_time_length_minus_1
            }
        }
        let initial_display_delay_present = r.flag()?;
        let operating_points = r.bits(5)? + 1;
        for i in 0..operating_points {
            r.bits(12)?; // operating_point_idc
            let level = r.bits(5)? as u8;
            let tier = if level > 7 { r.flag()? } else { false };
            if i == 0 {
                info.seq_level_idx_0 = level;
                info.seq_tier_0 = tier;
            }
            if decoder_model_info_present && r.flag()? {
                r.bits(buffer_delay_length)?; // decoder_buffer_delay
                r.bits(buffer_delay_length)?; // encoder_buffer_delay
                r.flag()?; // low_delay_mode_flag
            }
            if initial_display_delay_present && r.flag()? {
                r.bits(4)?; // initial_display_delay_minus_1
            }
        }
    }
    let width_bits = r.bits(4)? + 1;
    let height_bits = r.bits(4)? + 1;
    info.max_width = r.bits(width_bits)? + 1;
    info.max_height = r.bits(height_bits)? + 1;
    let frame_id_numbers_present = if reduced_still_picture_header {
        false
    } else {
        r.flag()?
    };
    if frame_id_numbers_present {
        r.bits(4)?; // delta_frame_id_length_minus_2
        r.bits(3)?; // additional_frame_id_length_minus_1
    }
    r.flag()?; // use_128x128_superblock
    r.flag()?; // enable_filter_intra
    r.flag()?; // enable_intra_edge_filter
    if !reduced_still_picture_header {
        r.flag()?; // enable_interintra_compound
        r.flag()?; // enable_masked_compound
        r.flag()?; // enable_warped_motion
        r.flag()?; // enable_dual_filter
        let enable_order_hint = r.flag()?;
        if enable_order_hint {
            r.flag()?; // enable_jnt_comp
            r.flag()?; // enable_ref_frame_mvs
        }
        let seq_choose_screen_content_tools = r.flag()?;
        let seq_force_screen_content_tools = if seq_choose_screen_content_tools {
            2
        } else {
            u32::from(r.flag()?)
        };
        if seq_force_screen_content_tools > 0 && !r.flag()? {
            // seq_choose_integer_mv == 0 → seq_force_integer_mv is coded
            r.flag()?;
        }
        if enable_order_hint {
            r.bits(3)?; // order_hint_bits_minus_1
        }
    }
    r.flag()?; // enable_superres
    r.flag()?; // enable_cdef
    r.flag()?; // enable_restoration
    parse_color_config(&mut r, &mut info)?;
    Ok(info)
}

/// `color_config()` (AV1 spec §5.5.2).
fn parse_color_config(r: &mut BitReader<'_>, info: &mut SequenceHeaderInfo) -> anyhow::Result<()> {
    info.high_bitdepth = r.flag()?;
    let mut bit_depth = if info.high_bitdepth { 10 } else { 8 };
    if info.seq_profile == 2 && info.high_bitdepth {
        info.twelve_bit = r.flag()?;
        if info.twelve_bit {
            bit_depth = 12;
        }
    }
    info.monochrome = if info.seq_profile == 1 {
        false
    } else {
        r.flag()?
    };
    let (mut primaries, mut transfer, mut matrix) = (2, 2, 2);
    if r.flag()? {
        primaries = r.bits(8)?;
        transfer = r.bits(8)?;
        matrix = r.bits(8)?;
    }
    if info.monochrome {
        r.flag()?; // color_range
        info.chroma_subsampling_x = true;
        info.chroma_subsampling_y = true;
        info.chroma_sample_position = 0;
        return Ok(());
    }
    if primaries == 1 && transfer == 13 && matrix == 0 {
        // sRGB: 4:4:4, full range.
        info.chroma_subsampling_x = false;
        info.chroma_subsampling_y = false;
        return Ok(());
    }
    r.flag()?; // color_range
    match info.seq_profile {
        0 => {
            info.chroma_subsampling_x = true;
            info.chroma_subsampling_y = true;
        }
        1 => {
            info.chroma_subsampling_x = false;
            info.chroma_subsampling_y = false;
        }
        _ => {
            if bit_depth == 12 {
                info.chroma_subsampling_x = r.flag()?;
                info.chroma_subsampling_y = if info.chroma_subsampling_x {
                    r.flag()?
                } else {
                    false
                };
            } else {
                info.chroma_subsampling_x = true;
                info.chroma_subsampling_y = false;
            }
        }
    }
    if info.chroma_subsampling_x && info.chroma_subsampling_y {
        info.chroma_sample_position = r.bits(2)? as u8;
    }
    Ok(())
}

/// Builds the `av1C` box contents from a configuration record that holds a
/// sequence header OBU (possibly among other OBUs).
pub fn build_av1c(config_record: &[u8]) -> anyhow::Result<(mp4_atom::Av1c, SequenceHeaderInfo)> {
    let seq = find_sequence_header(config_record)?;
    let obu = parse_obus(&seq)?
        .into_iter()
        .next()
        .context("empty sequence header")?;
    let info = parse_sequence_header(obu.payload).context("parsing the AV1 sequence header")?;
    let av1c = mp4_atom::Av1c {
        seq_profile: info.seq_profile,
        seq_level_idx_0: info.seq_level_idx_0,
        seq_tier_0: info.seq_tier_0,
        high_bitdepth: info.high_bitdepth,
        twelve_bit: info.twelve_bit,
        monochrome: info.monochrome,
        chroma_subsampling_x: info.chroma_subsampling_x,
        chroma_subsampling_y: info.chroma_subsampling_y,
        chroma_sample_position: info.chroma_sample_position,
        initial_presentation_delay: None,
        config_obus: seq,
    };
    Ok((av1c, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sequence header from an SVT-AV1 320x240 4:2:0 8-bit stream
    /// (as written by ffmpeg's libsvtav1 wrapper), with TD in front.
    const TD_AND_SEQ: &[u8] = &[
        0x12, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xff, 0xbc, 0xfb, 0xf9, 0x00, 0x40,
    ];

    #[test]
    fn leb128_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 1 << 20, u32::MAX as u64] {
            let mut out = Vec::new();
            write_leb128(&mut out, v);
            assert_eq!(read_leb128(&out).unwrap(), (v, out.len()));
        }
        assert!(read_leb128(&[0x80, 0x80]).is_err());
    }

    #[test]
    fn strips_temporal_delimiters() {
        let sample = packet_to_sample(TD_AND_SEQ).unwrap();
        assert_eq!(sample, &TD_AND_SEQ[2..]);
        let obus = parse_obus(&sample).unwrap();
        assert_eq!(obus.len(), 1);
        assert_eq!(obus[0].obu_type, OBU_SEQUENCE_HEADER);
    }

    #[test]
    fn adds_missing_size_field() {
        // A padding-free OBU (type 6, frame) without size field.
        let data = [0x30, 0xaa, 0xbb, 0xcc];
        let sample = packet_to_sample(&data).unwrap();
        assert_eq!(sample, [0x32, 3, 0xaa, 0xbb, 0xcc]);
    }

    #[test]
    fn rejects_overlong_obu() {
        assert!(parse_obus(&[0x32, 10, 1, 2]).is_err());
        assert!(packet_to_sample(&[0x80]).is_err());
    }

    #[test]
    fn parses_svt_sequence_header() {
        let (av1c, info) = build_av1c(TD_AND_SEQ).unwrap();
        assert_eq!(info.seq_profile, 0);
        assert!(!info.high_bitdepth);
        assert!(!info.monochrome);
        assert!(info.chroma_subsampling_x && info.chroma_subsampling_y);
        assert_eq!((info.max_width, info.max_height), (320, 240));
        assert_eq!(av1c.config_obus, &TD_AND_SEQ[2..]);
    }

    #[test]
    fn missing_sequence_header_is_an_error() {
        assert!(build_av1c(&[0x12, 0x00]).is_err());
        assert!(build_av1c(&[]).is_err());
    }
}
