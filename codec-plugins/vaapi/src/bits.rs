//! H.264 bitstream primitives: an MSB-first bit writer with Exp-Golomb codes,
//! NAL unit wrapping with emulation prevention, and the matching reader used
//! to check what the writer produced.

/// MSB-first bit writer for RBSP payloads.
#[derive(Default, Debug, Clone)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Bits already used in the last byte (0 = byte aligned).
    used: u8,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the `n` (≤ 32) low bits of `value`, most significant first.
    pub fn u(&mut self, n: u32, value: u32) {
        debug_assert!(n <= 32);
        for i in (0..n).rev() {
            self.bit((value >> i) & 1 == 1);
        }
    }

    /// Writes one bit.
    pub fn bit(&mut self, one: bool) {
        if self.used == 0 {
            self.bytes.push(0);
        }
        if one {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 0x80 >> self.used;
        }
        self.used = (self.used + 1) % 8;
    }

    /// Writes a flag.
    pub fn flag(&mut self, on: bool) {
        self.bit(on);
    }

    /// Unsigned Exp-Golomb code `ue(v)`.
    pub fn ue(&mut self, value: u32) {
        let v = u64::from(value) + 1;
        let len = 64 - v.leading_zeros(); // bits in v
        for _ in 0..len - 1 {
            self.bit(false);
        }
        for i in (0..len).rev() {
            self.bit((v >> i) & 1 == 1);
        }
    }

    /// Signed Exp-Golomb code `se(v)`.
    pub fn se(&mut self, value: i32) {
        let mapped = if value > 0 {
            (value as u32) * 2 - 1
        } else {
            value.unsigned_abs() * 2
        };
        self.ue(mapped);
    }

    /// `rbsp_trailing_bits()`: a one bit, then zero bits to the byte boundary.
    pub fn trailing_bits(&mut self) {
        self.bit(true);
        self.align_zero();
    }

    /// Zero bits up to the next byte boundary.
    pub fn align_zero(&mut self) {
        while self.used != 0 {
            self.bit(false);
        }
    }

    /// Whether the writer sits on a byte boundary.
    pub fn is_aligned(&self) -> bool {
        self.used == 0
    }

    /// Number of bits written.
    pub fn bit_len(&self) -> usize {
        if self.used == 0 {
            self.bytes.len() * 8
        } else {
            (self.bytes.len() - 1) * 8 + usize::from(self.used)
        }
    }

    /// Appends whole bytes (the writer must be byte aligned).
    pub fn bytes(&mut self, data: &[u8]) {
        debug_assert!(self.is_aligned());
        self.bytes.extend_from_slice(data);
    }

    /// The written bytes (the last one zero-padded).
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Wraps an RBSP into an Annex-B NAL unit: start code, NAL header and
/// emulation-prevention bytes (`00 00 0x` with x ≤ 3 becomes `00 00 03 0x`).
pub fn nal_unit(nal_ref_idc: u8, nal_unit_type: u8, rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + 8);
    out.extend_from_slice(&[0, 0, 0, 1]);
    out.push(((nal_ref_idc & 3) << 5) | (nal_unit_type & 0x1f));
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// Removes emulation-prevention bytes from a NAL payload (after its header).
pub fn unescape(ebsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ebsp.len());
    let mut zeros = 0;
    for &b in ebsp {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// Splits an Annex-B byte stream into NAL units (without start codes).
pub fn split_annex_b(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(stream.len(), |&n| n - 3);
        while end > s && stream[end - 1] == 0 && k + 1 < starts.len() {
            end -= 1;
        }
        nals.push(&stream[s..end]);
    }
    nals
}

/// MSB-first bit reader with Exp-Golomb decoding.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Reads from `data` (an RBSP, emulation prevention already removed).
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// One bit, or `None` past the end.
    pub fn bit(&mut self) -> Option<bool> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - (self.pos % 8))) & 1 == 1;
        self.pos += 1;
        Some(b)
    }

    /// `n` (≤ 32) bits as an unsigned value.
    pub fn u(&mut self, n: u32) -> Option<u32> {
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        u32::try_from(v).ok()
    }

    /// `ue(v)`.
    pub fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.u(zeros)?;
        u32::try_from((1u64 << zeros) - 1 + u64::from(rest)).ok()
    }

    /// `se(v)`.
    pub fn se(&mut self) -> Option<i32> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).ok()
    }

    /// Bits consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether the remaining bits are exactly `rbsp_trailing_bits()`.
    pub fn at_trailing_bits(&self) -> bool {
        let mut r = self.clone();
        if r.bit() != Some(true) {
            return false;
        }
        while !r.pos.is_multiple_of(8) {
            if r.bit() != Some(false) {
                return false;
            }
        }
        r.pos == r.data.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_codes_match_the_standard_table() {
        // H.264 Table 9-2: codeNum 0..=8 and their bit strings.
        let table = [
            (0, "1"),
            (1, "010"),
            (2, "011"),
            (3, "00100"),
            (4, "00101"),
            (5, "00110"),
            (6, "00111"),
            (7, "0001000"),
            (8, "0001001"),
        ];
        for (v, bits) in table {
            let mut w = BitWriter::new();
            w.ue(v);
            assert_eq!(w.bit_len(), bits.len(), "length of ue({v})");
            let bytes = w.into_bytes();
            let mut r = BitReader::new(&bytes);
            let s: String = (0..bits.len())
                .map(|_| if r.bit().unwrap() { '1' } else { '0' })
                .collect();
            assert_eq!(s, bits, "ue({v})");
        }
    }

    #[test]
    fn signed_exp_golomb_mapping() {
        // se: 0→0, 1→1, -1→2, 2→3, -2→4 (Table 9-3).
        for (v, code) in [(0, 0u32), (1, 1), (-1, 2), (2, 3), (-2, 4), (-26, 52)] {
            let mut a = BitWriter::new();
            a.se(v);
            let mut b = BitWriter::new();
            b.ue(code);
            assert_eq!(a.into_bytes(), b.into_bytes(), "se({v})");
        }
    }

    #[test]
    fn reader_roundtrips_writer_for_extremes() {
        let mut w = BitWriter::new();
        let values = [0u32, 1, 2, 254, 255, 65_535, 1 << 20, u32::MAX - 1];
        for &v in &values {
            w.ue(v);
        }
        for v in [-100_000, -1, 0, 1, 51, i32::MAX / 2] {
            w.se(v);
        }
        w.u(32, 0xdead_beef);
        w.u(3, 5);
        w.trailing_bits();
        let bytes = w.into_bytes();
        let mut r = BitReader::new(&bytes);
        for &v in &values {
            assert_eq!(r.ue(), Some(v));
        }
        for v in [-100_000, -1, 0, 1, 51, i32::MAX / 2] {
            assert_eq!(r.se(), Some(v));
        }
        assert_eq!(r.u(32), Some(0xdead_beef));
        assert_eq!(r.u(3), Some(5));
        assert!(r.at_trailing_bits());
    }

    #[test]
    fn emulation_prevention_escapes_and_unescapes() {
        let rbsp = [
            0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x00, 0x04,
        ];
        let nal = nal_unit(3, 7, &rbsp);
        assert_eq!(&nal[..5], &[0, 0, 0, 1, 0x67]);
        assert_eq!(
            &nal[5..],
            &[0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x03, 0x00, 0x00, 0x04]
        );
        assert_eq!(unescape(&nal[5..]), rbsp);
    }

    #[test]
    fn annex_b_split_finds_each_nal() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9,
        ];
        let nals = split_annex_b(&stream);
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 9][..]]
        );
    }
}
