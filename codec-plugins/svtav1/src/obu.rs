//! Minimal AV1 OBU walking (low-overhead bitstream format, AV1 spec 5.3):
//! enough to drop temporal delimiters and to find the sequence header.

/// `OBU_SEQUENCE_HEADER`.
pub const OBU_SEQUENCE_HEADER: u8 = 1;
/// `OBU_TEMPORAL_DELIMITER`.
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;

/// A malformed OBU stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObuError(pub String);

impl std::fmt::Display for ObuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One OBU inside a buffer: its type and its byte range (header included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obu {
    /// `obu_type`.
    pub kind: u8,
    /// Offset of the OBU header.
    pub start: usize,
    /// Offset one past the OBU's last payload byte.
    pub end: usize,
}

/// Reads an unsigned LEB128 value (at most 8 bytes) at `data[pos..]`;
/// returns the value and the number of bytes it took.
fn leb128(data: &[u8], pos: usize) -> Result<(u64, usize), ObuError> {
    let mut value = 0u64;
    for i in 0..8 {
        let byte = *data
            .get(pos + i)
            .ok_or_else(|| ObuError(format!("truncated leb128 at byte {pos}")))?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(ObuError(format!(
        "leb128 longer than 8 bytes at byte {pos}"
    )))
}

/// Splits `data` into OBUs. An OBU without `obu_has_size_field` extends to
/// the end of the buffer (allowed only for the last one).
pub fn parse(data: &[u8]) -> Result<Vec<Obu>, ObuError> {
    let mut obus = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let header = data[pos];
        if header & 0x80 != 0 {
            return Err(ObuError(format!("forbidden bit set in OBU at byte {pos}")));
        }
        let kind = (header >> 3) & 0x0f;
        let has_extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        let mut cursor = pos + 1 + usize::from(has_extension);
        if cursor > data.len() {
            return Err(ObuError(format!("truncated OBU header at byte {pos}")));
        }
        let end = if has_size {
            let (size, n) = leb128(data, cursor)?;
            cursor += n;
            let size = usize::try_from(size)
                .map_err(|_| ObuError(format!("OBU size {size} too large at byte {pos}")))?;
            cursor
                .checked_add(size)
                .filter(|&e| e <= data.len())
                .ok_or_else(|| {
                    ObuError(format!(
                        "OBU at byte {pos} claims {size} bytes, only {} left",
                        data.len() - cursor
                    ))
                })?
        } else {
            data.len()
        };
        obus.push(Obu {
            kind,
            start: pos,
            end,
        });
        pos = end;
    }
    Ok(obus)
}

/// `data` without its temporal delimiter OBUs (MP4 samples must not carry
/// them, AV1-ISOBMFF 2.4). Borrows when nothing needs copying.
pub fn strip_temporal_delimiters(data: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, ObuError> {
    let obus = parse(data)?;
    let kept: Vec<&Obu> = obus
        .iter()
        .filter(|o| o.kind != OBU_TEMPORAL_DELIMITER)
        .collect();
    let (Some(first), Some(last)) = (kept.first(), kept.last()) else {
        return Ok(std::borrow::Cow::Borrowed(&data[..0]));
    };
    let contiguous = kept.windows(2).all(|w| w[0].end == w[1].start);
    if contiguous {
        return Ok(std::borrow::Cow::Borrowed(&data[first.start..last.end]));
    }
    let mut out = Vec::with_capacity(data.len());
    for o in kept {
        out.extend_from_slice(&data[o.start..o.end]);
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// The first sequence header OBU in `data` (header and payload).
pub fn sequence_header(data: &[u8]) -> Result<Option<&[u8]>, ObuError> {
    Ok(parse(data)?
        .into_iter()
        .find(|o| o.kind == OBU_SEQUENCE_HEADER)
        .map(|o| &data[o.start..o.end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    // TD (type 2, size 0), SH-like OBU (type 1, 3 bytes), frame OBU (type 6, 2 bytes).
    const TU: [u8; 11] = [0x12, 0x00, 0x0a, 0x03, 1, 2, 3, 0x32, 0x02, 9, 9];

    #[test]
    fn parses_types_and_ranges() {
        let obus = parse(&TU).unwrap();
        let kinds: Vec<u8> = obus.iter().map(|o| o.kind).collect();
        assert_eq!(kinds, vec![2, 1, 6]);
        assert_eq!((obus[1].start, obus[1].end), (2, 7));
        assert_eq!(obus[2].end, TU.len());
    }

    #[test]
    fn strips_leading_delimiter_without_copy() {
        let out = strip_temporal_delimiters(&TU).unwrap();
        assert!(matches!(out, std::borrow::Cow::Borrowed(_)));
        assert_eq!(&*out, &TU[2..]);
    }

    #[test]
    fn strips_inner_delimiter_with_copy() {
        let data = [0x0a, 0x01, 7, 0x12, 0x00, 0x32, 0x01, 5];
        let out = strip_temporal_delimiters(&data).unwrap();
        assert_eq!(&*out, &[0x0a, 0x01, 7, 0x32, 0x01, 5]);
    }

    #[test]
    fn finds_sequence_header() {
        assert_eq!(sequence_header(&TU).unwrap(), Some(&TU[2..7]));
        assert_eq!(sequence_header(&TU[7..]).unwrap(), None);
    }

    #[test]
    fn extension_and_no_size_field() {
        // Frame OBU with extension byte, no size field: runs to the end.
        let data = [0x0a, 0x00, 0x34, 0x08, 1, 2, 3];
        let obus = parse(&data).unwrap();
        assert_eq!(obus.len(), 2);
        assert_eq!(obus[1].kind, 6);
        assert_eq!(obus[1].end, data.len());
    }

    #[test]
    fn rejects_truncated_and_forbidden() {
        assert!(parse(&[0x0a, 0x05, 1]).is_err());
        assert!(parse(&[0x8a, 0x00]).is_err());
        assert!(parse(&[0x0a, 0x80]).is_err());
    }

    #[test]
    fn multi_byte_leb128() {
        let mut data = vec![0x32, 0x80, 0x01];
        data.extend(std::iter::repeat_n(0u8, 128));
        let obus = parse(&data).unwrap();
        assert_eq!(obus[0].end, 131);
    }
}
