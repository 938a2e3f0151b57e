//! Reads the fragmented MP4 files the writer makes: the init segment, then
//! every complete `moof` + `mdat` pair, into a sample table. A torn or
//! corrupt tail stops the scan and is reported with the length of the valid
//! prefix, which `recover` truncates to.

use crate::frame::CodecId;
use anyhow::{bail, Context};
use mp4_atom::{Decode, FourCC};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Largest `moov`/`moof` the reader loads (anything bigger is corruption).
const MAX_META_BOX: u64 = 64 << 20;

/// What the init segment says about the video track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInfo {
    /// Track id of the video track.
    pub track_id: u32,
    /// AV1 or H.264.
    pub codec: CodecId,
    /// Width from the sample entry.
    pub width: u32,
    /// Height from the sample entry.
    pub height: u32,
    /// Media timescale (units per second).
    pub timescale: u32,
    /// Default sample duration from `trex` (one frame, in timescale units).
    pub frame_duration: u32,
    /// Decoder configuration in the writer's [`super::TrackConfig`] form:
    /// AV1 sequence header OBU, or H.264 Annex-B SPS + PPS.
    pub config_record: Vec<u8>,
}

/// One sample of the track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleInfo {
    /// Byte offset of the sample data in the file.
    pub offset: u64,
    /// Sample size in bytes.
    pub size: u32,
    /// Decode time in timescale units.
    pub dts: i64,
    /// Presentation time in timescale units.
    pub pts: i64,
    /// Duration in timescale units.
    pub duration: u32,
    /// Sync sample (keyframe).
    pub keyframe: bool,
}

/// One complete fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Offset of the `moof`.
    pub offset: u64,
    /// Bytes of `moof` + `mdat`.
    pub len: u64,
    /// Index of its first sample in [`Mp4Scan::samples`].
    pub first_sample: usize,
    /// Samples in it.
    pub samples: usize,
}

/// Result of scanning a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mp4Scan {
    /// The video track.
    pub track: TrackInfo,
    /// Samples of every complete fragment, in decode order.
    pub samples: Vec<SampleInfo>,
    /// Complete fragments.
    pub fragments: Vec<FragmentInfo>,
    /// File size in bytes.
    pub file_len: u64,
    /// Length of the valid prefix (init segment + complete fragments).
    pub valid_len: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub torn: Option<String>,
}

impl Mp4Scan {
    /// Presentation time of `sample` in frame units (PTS / frame duration).
    pub fn pts_frames(&self, sample: &SampleInfo) -> i64 {
        sample.pts / i64::from(self.track.frame_duration.max(1))
    }
}

/// A top-level box header.
#[derive(Clone, Copy, Debug)]
struct BoxHeader {
    kind: [u8; 4],
    offset: u64,
    header_len: u64,
    /// Total size including the header.
    size: u64,
}

impl BoxHeader {
    fn end(&self) -> u64 {
        self.offset + self.size
    }

    fn name(&self) -> String {
        kind_name(&self.kind)
    }
}

/// A box type for messages: printable ASCII as is, anything else as hex.
fn kind_name(kind: &[u8; 4]) -> String {
    if kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("'{}'", String::from_utf8_lossy(kind))
    } else {
        format!("0x{:08x}", u32::from_be_bytes(*kind))
    }
}

/// Reads the box header at `offset`; `Ok(None)` when fewer bytes remain than a header needs.
fn read_header(file: &mut File, offset: u64, file_len: u64) -> anyhow::Result<Option<BoxHeader>> {
    if file_len.saturating_sub(offset) < 8 {
        return Ok(None);
    }
    let mut head = [0u8; 16];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut head[..8])?;
    let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let kind = [head[4], head[5], head[6], head[7]];
    let (size, header_len) = match size32 {
        0 => (file_len - offset, 8),
        1 => {
            if file_len - offset < 16 {
                return Ok(None);
            }
            file.read_exact(&mut head[8..16])?;
            let mut large = [0u8; 8];
            large.copy_from_slice(&head[8..16]);
            (u64::from_be_bytes(large), 16)
        }
        n => (u64::from(n), 8),
    };
    if size < header_len {
        bail!(
            "box {} at offset {offset} has an impossible size {size}",
            kind_name(&kind)
        );
    }
    Ok(Some(BoxHeader {
        kind,
        offset,
        header_len,
        size,
    }))
}

/// Reads a whole box (header included) into memory.
fn read_box(file: &mut File, header: &BoxHeader) -> anyhow::Result<Vec<u8>> {
    if header.size > MAX_META_BOX {
        bail!(
            "box {} at offset {} claims {} bytes",
            header.name(),
            header.offset,
            header.size
        );
    }
    let mut buf = vec![0u8; header.size as usize];
    file.seek(SeekFrom::Start(header.offset))?;
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// Track facts and `trex` defaults from `moov`.
fn track_info(moov: &mp4_atom::Moov) -> anyhow::Result<(TrackInfo, mp4_atom::Trex)> {
    let trak = moov
        .trak
        .iter()
        .find(|t| t.mdia.hdlr.handler == FourCC::new(b"vide"))
        .context("the MP4 has no video track")?;
    let track_id = trak.tkhd.track_id;
    let entry = trak
        .mdia
        .minf
        .stbl
        .stsd
        .codecs
        .first()
        .context("the video track has no sample entry")?;
    let (codec, width, height, config_record) = match entry {
        mp4_atom::Codec::Av01(av01) => (
            CodecId::Av1,
            av01.visual.width,
            av01.visual.height,
            av01.av1c.config_obus.clone(),
        ),
        mp4_atom::Codec::Avc1(avc1) => {
            let mut config = Vec::new();
            for nal in avc1
                .avcc
                .sequence_parameter_sets
                .iter()
                .chain(&avc1.avcc.picture_parameter_sets)
            {
                config.extend_from_slice(&[0, 0, 0, 1]);
                config.extend_from_slice(nal);
            }
            (CodecId::H264, avc1.visual.width, avc1.visual.height, config)
        }
        _ => bail!("unsupported sample entry (only av01 and avc1 are read)"),
    };
    let trex = moov
        .mvex
        .as_ref()
        .and_then(|m| m.trex.iter().find(|t| t.track_id == track_id))
        .cloned()
        .context("the MP4 is not fragmented (no mvex/trex for the video track)")?;
    let info = TrackInfo {
        track_id,
        codec,
        width: u32::from(width),
        height: u32::from(height),
        timescale: trak.mdia.mdhd.timescale,
        frame_duration: trex.default_sample_duration,
        config_record,
    };
    Ok((info, trex))
}

/// Scans `path`. Fails only when the init segment itself is unreadable; a
/// damaged tail is reported through [`Mp4Scan::torn`] and
/// [`Mp4Scan::valid_len`].
pub fn scan(path: &Path) -> anyhow::Result<Mp4Scan> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    scan_file(&mut file).with_context(|| format!("reading {}", path.display()))
}

fn scan_file(file: &mut File) -> anyhow::Result<Mp4Scan> {
    let file_len = file.metadata()?.len();
    let mut pos = 0u64;
    let mut moov = None;
    let mut saw_ftyp = false;
    while moov.is_none() {
        let Some(header) = read_header(file, pos, file_len)? else {
            bail!("no complete MP4 header (ftyp + moov): the file ends at byte {file_len}");
        };
        if header.end() > file_len {
            bail!(
                "the MP4 header box {} is truncated (needs {} bytes, file has {file_len})",
                header.name(),
                header.end()
            );
        }
        match &header.kind {
            b"ftyp" => saw_ftyp = true,
            b"moov" => {
                let bytes = read_box(file, &header)?;
                moov = Some(mp4_atom::Moov::decode(&mut &bytes[..]).context("decoding moov")?);
            }
            b"free" | b"skip" => {}
            _ => bail!(
                "unexpected box {} before moov at offset {pos}",
                header.name()
            ),
        }
        pos = header.end();
    }
    if !saw_ftyp {
        bail!("the MP4 has no ftyp box");
    }
    let moov = moov.context("no moov")?;
    let (track, trex) = track_info(&moov)?;
    let mut scan = Mp4Scan {
        track,
        samples: Vec::new(),
        fragments: Vec::new(),
        file_len,
        valid_len: pos,
        torn: None,
    };
    let mut next_dts = 0i64;
    while pos < file_len {
        match read_fragment(file, pos, file_len, &scan.track, &trex, next_dts, false) {
            Ok(Step::Fragment(samples, end)) => {
                if let Some(last) = samples.last() {
                    next_dts = last.dts + i64::from(last.duration);
                }
                scan.fragments.push(FragmentInfo {
                    offset: pos,
                    len: end - pos,
                    first_sample: scan.samples.len(),
                    samples: samples.len(),
                });
                scan.samples.extend(samples);
                pos = end;
                scan.valid_len = pos;
            }
            Ok(Step::Skip(end)) => {
                pos = end;
                scan.valid_len = pos;
            }
            Err(err) => {
                scan.torn = Some(format!("{err:#}"));
                break;
            }
        }
    }
    Ok(scan)
}

/// What one step of the fragment scan found.
enum Step {
    /// A complete fragment and where it ends.
    Fragment(Vec<SampleInfo>, u64),
    /// A harmless box (`free`, `mfra`, ...) and where it ends.
    Skip(u64),
}

fn read_fragment(
    file: &mut File,
    pos: u64,
    file_len: u64,
    track: &TrackInfo,
    trex: &mp4_atom::Trex,
    next_dts: i64,
    partial: bool,
) -> anyhow::Result<Step> {
    let header = read_header(file, pos, file_len)?.with_context(|| {
        format!(
            "torn box header at offset {pos} ({} trailing bytes)",
            file_len - pos
        )
    })?;
    if header.end() > file_len {
        bail!(
            "truncated {} box at offset {pos}: needs {} bytes, {} present",
            header.name(),
            header.size,
            file_len - pos
        );
    }
    match &header.kind {
        b"moof" => {}
        b"free" | b"skip" | b"mfra" | b"sidx" | b"styp" | b"prft" | b"emsg" => {
            return Ok(Step::Skip(header.end()))
        }
        _ => bail!("unexpected box {} at offset {pos}", header.name()),
    }
    let bytes = read_box(file, &header)?;
    let moof = mp4_atom::Moof::decode(&mut &bytes[..])
        .map_err(|e| anyhow::anyhow!("corrupt moof at offset {pos}: {e}"))?;
    let mdat = read_header(file, header.end(), file_len)?
        .with_context(|| format!("moof at offset {pos} is not followed by an mdat header"))?;
    if &mdat.kind != b"mdat" {
        bail!(
            "moof at offset {pos} is followed by {} instead of mdat",
            mdat.name()
        );
    }
    if mdat.end() > file_len && !partial {
        bail!(
            "truncated mdat at offset {}: needs {} bytes, {} present",
            mdat.offset,
            mdat.size,
            file_len - mdat.offset
        );
    }
    let data_start = mdat.offset + mdat.header_len;
    // A torn fragment read with `partial`: samples end where the file does.
    let data_end = if partial {
        mdat.end().min(file_len)
    } else {
        mdat.end()
    };
    let mut samples = Vec::new();
    let mut dts = next_dts;
    for traf in moof
        .traf
        .iter()
        .filter(|t| t.tfhd.track_id == track.track_id)
    {
        let tfhd = &traf.tfhd;
        let base = tfhd.base_data_offset.unwrap_or(pos);
        if let Some(tfdt) = &traf.tfdt {
            dts = i64::try_from(tfdt.base_media_decode_time).context("tfdt out of range")?;
        }
        let default_duration = tfhd
            .default_sample_duration
            .unwrap_or(trex.default_sample_duration);
        let default_size = tfhd.default_sample_size.unwrap_or(trex.default_sample_size);
        let default_flags = tfhd
            .default_sample_flags
            .unwrap_or(trex.default_sample_flags);
        let mut offset = base;
        for trun in &traf.trun {
            if let Some(data_offset) = trun.data_offset {
                offset = base
                    .checked_add_signed(i64::from(data_offset))
                    .context("trun data offset out of range")?;
            }
            for entry in trun.samples.iter() {
                let size = entry.size.unwrap_or(default_size);
                let end = offset + u64::from(size);
                if partial && offset >= data_start && end > data_end {
                    // The first incomplete sample ends the salvageable prefix.
                    return Ok(Step::Fragment(samples, data_end));
                }
                if offset < data_start || end > mdat.end() {
                    bail!(
                        "sample at {offset}+{size} lies outside the mdat at {}..{}",
                        data_start,
                        mdat.end()
                    );
                }
                let duration = entry.duration.unwrap_or(default_duration);
                let flags = entry.flags.unwrap_or(default_flags);
                samples.push(SampleInfo {
                    offset,
                    size,
                    dts,
                    pts: dts + entry.cts.unwrap_or(0),
                    duration,
                    keyframe: flags & 0x0001_0000 == 0,
                });
                dts += i64::from(duration);
                offset = end;
            }
        }
    }
    Ok(Step::Fragment(samples, mdat.end()))
}

/// The complete samples of a torn trailing fragment: when the scan of
/// `path` stopped at a fragment whose `moof` is intact but whose `mdat` is cut
/// short, the samples lying wholly inside the file, in decode order (their
/// decode times continue those of `scan`). Empty when nothing can be
/// rescued (no torn tail, a torn `moof`, no sample complete).
pub fn torn_fragment_samples(path: &Path, scan: &Mp4Scan) -> anyhow::Result<Vec<SampleInfo>> {
    if scan.torn.is_none() || scan.valid_len >= scan.file_len {
        return Ok(Vec::new());
    }
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let (_, trex) = {
        let mut pos = 0u64;
        let moov = loop {
            let header =
                read_header(&mut file, pos, scan.file_len)?.context("no complete MP4 header")?;
            if &header.kind == b"moov" {
                let bytes = read_box(&mut file, &header)?;
                break mp4_atom::Moov::decode(&mut &bytes[..]).context("decoding moov")?;
            }
            pos = header.end();
        };
        track_info(&moov)?
    };
    let next_dts = scan
        .samples
        .last()
        .map_or(0, |s| s.dts + i64::from(s.duration));
    match read_fragment(
        &mut file,
        scan.valid_len,
        scan.file_len,
        &scan.track,
        &trex,
        next_dts,
        true,
    ) {
        Ok(Step::Fragment(samples, _)) => Ok(samples),
        Ok(Step::Skip(_)) | Err(_) => Ok(Vec::new()),
    }
}

/// Reads the bytes of one sample.
pub fn read_sample(file: &mut File, sample: &SampleInfo) -> anyhow::Result<Vec<u8>> {
    let mut buf = vec![0u8; sample.size as usize];
    file.seek(SeekFrom::Start(sample.offset))?;
    file.read_exact(&mut buf)
        .with_context(|| format!("reading sample at offset {}", sample.offset))?;
    Ok(buf)
}
