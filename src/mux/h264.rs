//! H.264 bitstream helpers for MP4 muxing: Annex-B splitting, `avcC` from
//! SPS/PPS and conversion of access units to 4-byte length-prefixed samples.

use anyhow::{bail, Context};

/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// NAL unit type of filler data.
pub const NAL_FILLER: u8 = 12;

/// Splits an Annex-B byte stream into NAL units (start codes and trailing
/// zero bytes removed). Bytes before the first start code are ignored.
pub fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0usize;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &start) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&next| next - 3);
        while end > start && data[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            nals.push(&data[start..end]);
        }
    }
    nals
}

/// `nal_unit_type` of a NAL unit.
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// Converts one Annex-B access unit into an MP4 sample (4-byte big-endian
/// lengths). Parameter sets live in `avcC` (sample entry `avc1`), so SPS,
/// PPS, access unit delimiters and filler data are dropped from samples.
pub fn packet_to_sample(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let nals = split_annex_b(data);
    if nals.is_empty() {
        bail!(
            "H.264 packet of {} bytes holds no Annex-B NAL unit",
            data.len()
        );
    }
    let mut out = Vec::with_capacity(data.len() + 4 * nals.len());
    for nal in nals {
        if matches!(nal_type(nal), NAL_SPS | NAL_PPS | NAL_AUD | NAL_FILLER) {
            continue;
        }
        let len = u32::try_from(nal.len()).context("NAL unit larger than 4 GiB")?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(nal);
    }
    Ok(out)
}

/// Builds the `avcC` box contents from Annex-B SPS + PPS.
pub fn build_avcc(config_record: &[u8]) -> anyhow::Result<mp4_atom::Avcc> {
    let nals = split_annex_b(config_record);
    let sps: Vec<Vec<u8>> = nals
        .iter()
        .filter(|n| nal_type(n) == NAL_SPS)
        .map(|n| n.to_vec())
        .collect();
    let pps: Vec<Vec<u8>> = nals
        .iter()
        .filter(|n| nal_type(n) == NAL_PPS)
        .map(|n| n.to_vec())
        .collect();
    let first = sps
        .first()
        .context("no SPS NAL unit in the H.264 configuration record")?;
    if pps.is_empty() {
        bail!("no PPS NAL unit in the H.264 configuration record");
    }
    if first.len() < 4 {
        bail!("H.264 SPS of {} bytes is too short", first.len());
    }
    let profile = first[1];
    // High profiles carry chroma format and bit depths in avcC (ISO 14496-15 §5.3.3.1.2).
    let ext = if matches!(profile, 100 | 110 | 122 | 144) {
        let (chroma_format, luma, chroma) = sps_chroma_and_depth(first).unwrap_or((1, 8, 8));
        Some(mp4_atom::AvccExt {
            chroma_format,
            bit_depth_luma: luma,
            bit_depth_chroma: chroma,
            sequence_parameter_sets_ext: Vec::new(),
        })
    } else {
        None
    };
    Ok(mp4_atom::Avcc {
        configuration_version: 1,
        avc_profile_indication: profile,
        profile_compatibility: first[2],
        avc_level_indication: first[3],
        length_size: 4,
        sequence_parameter_sets: sps,
        picture_parameter_sets: pps,
        ext,
    })
}

/// Exp-Golomb bit reader over an RBSP.
struct Rbsp {
    data: Vec<u8>,
    bit: usize,
}

impl Rbsp {
    /// Copies `ebsp` with emulation prevention bytes (00 00 03 → 00 00) removed.
    fn new(ebsp: &[u8]) -> Self {
        let mut data = Vec::with_capacity(ebsp.len());
        let mut zeros = 0;
        for &b in ebsp {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            data.push(b);
        }
        Self { data, bit: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.bit / 8)?;
        self.bit += 1;
        Some(u32::from((byte >> (7 - (self.bit - 1) % 8)) & 1))
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let mut value = 0u32;
        for _ in 0..zeros {
            value = (value << 1) | self.bit()?;
        }
        Some(value + ((1u32 << zeros) - 1))
    }
}

/// Reads `chroma_format_idc` and the luma/chroma bit depths of a High-profile
/// SPS NAL unit (header byte included). `None` when the SPS is too short.
fn sps_chroma_and_depth(sps: &[u8]) -> Option<(u8, u8, u8)> {
    let mut r = Rbsp::new(sps.get(4..)?);
    let _sps_id = r.ue()?;
    let chroma_format = r.ue()?;
    if chroma_format == 3 {
        r.bit()?; // separate_colour_plane_flag
    }
    let luma = r.ue()? + 8;
    let chroma = r.ue()? + 8;
    Some((chroma_format as u8, luma as u8, chroma as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5,
        ];
        let nals = split_annex_b(&data);
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]
        );
    }

    #[test]
    fn samples_are_length_prefixed_without_parameter_sets() {
        let data = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x65, 4, 5,
        ];
        let sample = packet_to_sample(&data).unwrap();
        assert_eq!(sample, [0, 0, 0, 3, 0x65, 4, 5]);
        assert!(packet_to_sample(&[1, 2, 3]).is_err());
    }

    #[test]
    fn avcc_takes_profile_from_sps() {
        let config = [
            0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xab, 0, 0, 0, 1, 0x68, 0xce, 0x38,
        ];
        let avcc = build_avcc(&config).unwrap();
        assert_eq!(avcc.avc_profile_indication, 0x42);
        assert_eq!(avcc.profile_compatibility, 0xc0);
        assert_eq!(avcc.avc_level_indication, 0x1e);
        assert_eq!(avcc.picture_parameter_sets, vec![vec![0x68, 0xce, 0x38]]);
        assert!(build_avcc(&config[..9]).is_err());
    }
}
