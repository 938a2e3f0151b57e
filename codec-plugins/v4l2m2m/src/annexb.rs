//! Annex-B byte-stream helpers: split NAL units and collect the parameter
//! sets (H.264 SPS/PPS, HEVC VPS/SPS/PPS) that form the codec
//! configuration record.

/// Splits an Annex-B stream into NAL unit payloads (start codes removed).
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&next| next - 3);
        // A 4-byte start code leaves its leading zero on the previous unit;
        // trailing zero bytes are never part of a NAL unit.
        while end > s && data[end - 1] == 0 {
            end -= 1;
        }
        if end > s {
            units.push(&data[s..end]);
        }
    }
    units
}

/// Whether `nal` is a parameter set of `codec`.
fn is_parameter_set(nal: &[u8], hevc: bool) -> bool {
    let Some(&head) = nal.first() else {
        return false;
    };
    if hevc {
        // nal_unit_type is bits 1..6: VPS 32, SPS 33, PPS 34.
        matches!((head >> 1) & 0x3f, 32..=34)
    } else {
        // nal_unit_type is the low 5 bits: SPS 7, PPS 8.
        matches!(head & 0x1f, 7 | 8)
    }
}

/// The parameter sets in `data`, re-emitted as Annex-B with 4-byte start
/// codes, in stream order. `None` when there are none (or no SPS).
pub fn parameter_sets(data: &[u8], hevc: bool) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut has_sps = false;
    for nal in nal_units(data) {
        if is_parameter_set(nal, hevc) {
            let sps_type = if hevc {
                (nal[0] >> 1) & 0x3f == 33
            } else {
                nal[0] & 0x1f == 7
            };
            has_sps |= sps_type;
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
    }
    has_sps.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // SPS (0x67), PPS (0x68), IDR slice (0x65) with mixed 4/3-byte start codes.
    const H264_KEY: &[u8] = &[
        0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xda, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1,
        0x65, 0x88, 0x84, 0x00, 0x21,
    ];

    #[test]
    fn splits_nal_units_with_both_start_code_lengths() {
        let units = nal_units(H264_KEY);
        assert_eq!(units.len(), 3);
        assert_eq!(units[0], &[0x67, 0x42, 0xc0, 0x1e, 0xda]);
        assert_eq!(units[1], &[0x68, 0xce, 0x3c, 0x80]);
        assert_eq!(units[2], &[0x65, 0x88, 0x84, 0x00, 0x21]);
    }

    #[test]
    fn extracts_sps_and_pps_only() {
        let ps = parameter_sets(H264_KEY, false).expect("SPS present");
        assert_eq!(
            ps,
            vec![0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xda, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]
        );
    }

    #[test]
    fn no_config_from_a_non_key_frame() {
        assert_eq!(parameter_sets(&[0, 0, 1, 0x41, 0x9a, 0x00], false), None);
        assert_eq!(parameter_sets(&[], false), None);
    }

    #[test]
    fn hevc_parameter_sets_by_type() {
        // VPS 0x40, SPS 0x42, PPS 0x44, IDR_W_RADL 0x26.
        let data = [
            0, 0, 0, 1, 0x40, 1, 0, 0, 1, 0x42, 1, 2, 0, 0, 1, 0x44, 1, 3, 0, 0, 1, 0x26, 1, 9,
        ];
        let ps = parameter_sets(&data, true).expect("SPS present");
        assert_eq!(nal_units(&ps).len(), 3);
        assert_eq!(parameter_sets(&data, false), None);
    }
}
