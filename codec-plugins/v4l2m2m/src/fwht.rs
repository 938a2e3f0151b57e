//! The kernel's FWHT frame header (vicodec): vicodec's encoder does not set
//! `V4L2_BUF_FLAG_KEYFRAME`, so intra frames are read from the header.

/// `FWHT_MAGIC1`, `FWHT_MAGIC2` (native-endian u32s in the header).
const MAGIC: [u8; 8] = [0x4f, 0x4f, 0x4f, 0x4f, 0xff, 0xff, 0xff, 0xff];
/// `V4L2_FWHT_FL_I_FRAME`.
const FL_I_FRAME: u32 = 1 << 10;
/// Byte offset of the big-endian `flags` field.
const FLAGS_OFFSET: usize = 20;

/// Whether `packet` starts with an FWHT header flagged as an intra frame.
pub fn is_intra(packet: &[u8]) -> bool {
    if packet.len() < FLAGS_OFFSET + 4 || packet[..8] != MAGIC {
        return false;
    }
    let flags = u32::from_be_bytes([
        packet[FLAGS_OFFSET],
        packet[FLAGS_OFFSET + 1],
        packet[FLAGS_OFFSET + 2],
        packet[FLAGS_OFFSET + 3],
    ]);
    flags & FL_I_FRAME != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u32) -> Vec<u8> {
        let mut h = MAGIC.to_vec();
        for v in [3u32, 320, 240, flags, 0, 0, 0, 0, 1000] {
            h.extend_from_slice(&v.to_be_bytes());
        }
        h
    }

    #[test]
    fn reads_the_intra_flag() {
        assert!(is_intra(&header(FL_I_FRAME | 0x3)));
        assert!(!is_intra(&header(0x3)));
        let mut bad = header(FL_I_FRAME);
        bad[0] = 0;
        assert!(!is_intra(&bad));
        assert!(!is_intra(&[0x4f; 10]));
    }
}
