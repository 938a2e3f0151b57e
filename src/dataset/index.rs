//! The per-camera frame index `CAM.idx`: an append-only postcard file.
//!
//! Layout: magic `b"S6IDX\0"`, version (u16 LE), header length (u32 LE),
//! postcard [`IndexHeader`], then records, each `u32 LE length`, postcard
//! [`IndexRecord`], `u32 LE crc32` of the postcard bytes. A torn or corrupt
//! last record (a crash mid-append) is detected and dropped by [`read_index`].

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// File magic.
pub const MAGIC: &[u8; 6] = b"S6IDX\0";
/// Current format version.
pub const VERSION: u16 = 1;
/// Largest record or header length accepted when reading (anything larger is corruption).
const MAX_CHUNK: u32 = 64 * 1024;

/// Who wrote the index and what the camera delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexHeader {
    /// Camera name (also the file stem).
    pub camera: String,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frame rate numerator.
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
    /// Codec name (`av1`, `h264`).
    pub codec: String,
    /// When the index was created, ns since the Unix epoch.
    pub created_unix_ns: u64,
}

/// One frame of the episode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRecord {
    /// Frame number within the episode (0-based); the video PTS in frames.
    pub frame_index: u64,
    /// Capture timestamp, ns since the Unix epoch.
    pub capture_ts_ns: u64,
    /// Presentation time in frame units.
    pub pts: i64,
    /// Encoded size in bytes.
    pub size: u32,
    /// Keyframe.
    pub keyframe: bool,
    /// Went through the PNG spill path.
    pub spilled: bool,
    /// Lost (not in the video): counted, never silent.
    pub dropped: bool,
}

impl IndexRecord {
    /// The row of a lost frame: no video sample (`pts` -1, size 0), its
    /// capture timestamp, `dropped`.
    pub fn dropped(frame_index: u64, capture_ts_ns: u64) -> Self {
        IndexRecord {
            frame_index,
            capture_ts_ns,
            pts: -1,
            size: 0,
            keyframe: false,
            spilled: false,
            dropped: true,
        }
    }
}

/// Appends records to an index file.
pub struct IndexWriter {
    out: BufWriter<File>,
    path: PathBuf,
    records: u64,
}

impl IndexWriter {
    /// Creates `path` (and its directory) and writes the header durably.
    pub fn create(path: &Path, header: &IndexHeader) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating directory {}", dir.display()))?;
        }
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let body = postcard::to_allocvec(header).context("encoding the index header")?;
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        out.write_all(MAGIC)
            .and_then(|()| out.write_all(&VERSION.to_le_bytes()))
            .and_then(|()| out.write_all(&(body.len() as u32).to_le_bytes()))
            .and_then(|()| out.write_all(&body))
            .and_then(|()| out.flush())
            // The header is made durable at once: a crash between the first
            // synced video fragment and the first index sync must still leave
            // an index whose header reads back.
            .and_then(|()| out.get_ref().sync_data())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Self {
            out,
            path: path.to_path_buf(),
            records: 0,
        })
    }

    /// Buffers one record (call [`IndexWriter::sync`] to make it durable).
    pub fn append(&mut self, record: &IndexRecord) -> anyhow::Result<()> {
        let body = postcard::to_allocvec(record).context("encoding an index record")?;
        let crc = crc32fast::hash(&body);
        self.out
            .write_all(&(body.len() as u32).to_le_bytes())
            .and_then(|()| self.out.write_all(&body))
            .and_then(|()| self.out.write_all(&crc.to_le_bytes()))
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.records += 1;
        Ok(())
    }

    /// Writes buffered records and `fdatasync`s the file.
    pub fn sync(&mut self) -> anyhow::Result<()> {
        self.out
            .flush()
            .and_then(|()| self.out.get_ref().sync_data())
            .with_context(|| format!("syncing {}", self.path.display()))
    }

    /// Records appended so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Syncs and closes the file.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.sync()
    }
}

/// A parsed index file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexFile {
    /// The header.
    pub header: IndexHeader,
    /// Every intact record, in file order.
    pub records: Vec<IndexRecord>,
    /// Bytes after the last intact record (a torn or corrupt tail), dropped.
    pub torn_tail_bytes: u64,
    /// Byte length of the intact prefix (header + intact records).
    pub valid_len: u64,
}

/// Reads an index file. A torn or corrupt record ends the list; it and
/// everything after it are counted in [`IndexFile::torn_tail_bytes`].
pub fn read_index(path: &Path) -> anyhow::Result<IndexFile> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .with_context(|| format!("reading {}", path.display()))?;
    parse_index(&data).with_context(|| format!("parsing index {}", path.display()))
}

/// Parses the bytes of an index file (see [`read_index`]).
pub fn parse_index(data: &[u8]) -> anyhow::Result<IndexFile> {
    if data.len() < 12 || &data[..6] != MAGIC {
        bail!("not an s6-edge index (bad magic or shorter than its header)");
    }
    let version = u16::from_le_bytes([data[6], data[7]]);
    if version != VERSION {
        bail!("index format version {version} is not supported (this build reads {VERSION})");
    }
    let header_len = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
    if header_len > MAX_CHUNK || 12 + header_len as usize > data.len() {
        bail!("index header is truncated or corrupt");
    }
    let header_end = 12 + header_len as usize;
    let header: IndexHeader =
        postcard::from_bytes(&data[12..header_end]).context("decoding the index header")?;
    let mut records = Vec::with_capacity((data.len() - header_end) / 24);
    let mut pos = header_end;
    while let Some((record, next)) = parse_record(data, pos) {
        records.push(record);
        pos = next;
    }
    Ok(IndexFile {
        header,
        records,
        torn_tail_bytes: (data.len() - pos) as u64,
        valid_len: pos as u64,
    })
}

/// Parses the record at `pos`; `None` when it is torn or fails its checksum.
fn parse_record(data: &[u8], pos: usize) -> Option<(IndexRecord, usize)> {
    let len_bytes = data.get(pos..pos + 4)?;
    let len = u32::from_le_bytes(len_bytes.try_into().ok()?);
    if len == 0 || len > MAX_CHUNK {
        return None;
    }
    let body_end = pos + 4 + len as usize;
    let body = data.get(pos + 4..body_end)?;
    let crc = u32::from_le_bytes(data.get(body_end..body_end + 4)?.try_into().ok()?);
    if crc32fast::hash(body) != crc {
        return None;
    }
    let record = postcard::from_bytes(body).ok()?;
    Some((record, body_end + 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> IndexHeader {
        IndexHeader {
            camera: "left".into(),
            width: 320,
            height: 240,
            fps_num: 30,
            fps_den: 1,
            codec: "av1".into(),
            created_unix_ns: 1_700_000_000_000_000_000,
        }
    }

    fn record(i: u64) -> IndexRecord {
        IndexRecord {
            frame_index: i,
            capture_ts_ns: 1_700_000_000_000_000_000 + i * 33_333_333,
            pts: i as i64,
            size: 1000 + i as u32,
            keyframe: i.is_multiple_of(2),
            spilled: i == 3,
            dropped: false,
        }
    }

    fn write(n: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ep/left.idx");
        let mut w = IndexWriter::create(&path, &header()).unwrap();
        for i in 0..n {
            w.append(&record(i)).unwrap();
        }
        w.sync().unwrap();
        assert_eq!(w.records(), n);
        w.finish().unwrap();
        (dir, path)
    }

    #[test]
    fn round_trip() {
        let (_dir, path) = write(10);
        let idx = read_index(&path).unwrap();
        assert_eq!(idx.header, header());
        assert_eq!(idx.records, (0..10).map(record).collect::<Vec<_>>());
        assert_eq!(idx.torn_tail_bytes, 0);
        assert_eq!(idx.valid_len, std::fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn torn_tail_is_dropped_at_every_cut() {
        let (_dir, path) = write(5);
        let full = std::fs::read(&path).unwrap();
        let four = parse_index(&full).unwrap();
        let last_start = {
            let mut d = full.clone();
            d.truncate(full.len() - 1);
            parse_index(&d).unwrap().valid_len as usize
        };
        for cut in last_start..full.len() {
            let idx = parse_index(&full[..cut]).unwrap();
            assert_eq!(idx.records.len(), 4, "cut at {cut}");
            assert_eq!(idx.records[..], four.records[..4]);
            assert_eq!(idx.torn_tail_bytes, (cut - last_start) as u64);
        }
    }

    #[test]
    fn bad_crc_drops_the_record_and_the_rest() {
        let (_dir, path) = write(5);
        let mut data = std::fs::read(&path).unwrap();
        // Flip a bit in the body of the third record.
        let header_end = 12 + u32::from_le_bytes(data[8..12].try_into().unwrap()) as usize;
        let mut pos = header_end;
        for _ in 0..2 {
            let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
            pos += 4 + len + 4;
        }
        data[pos + 5] ^= 0x01;
        let idx = parse_index(&data).unwrap();
        assert_eq!(idx.records.len(), 2);
        assert_eq!(idx.valid_len as usize, pos);
        assert_eq!(idx.torn_tail_bytes as usize, data.len() - pos);
    }

    #[test]
    fn rejects_foreign_files() {
        assert!(parse_index(b"not an index at all").is_err());
        let (_dir, path) = write(1);
        let mut data = std::fs::read(&path).unwrap();
        data[6] = 9;
        let err = parse_index(&data).unwrap_err().to_string();
        assert!(err.contains("version 9"), "{err}");
        data[6] = VERSION as u8;
        assert!(
            parse_index(&data[..14]).is_err(),
            "truncated header must fail"
        );
    }
}
