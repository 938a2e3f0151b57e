//! Rescues the complete samples of a torn trailing MP4 fragment: their bytes
//! are read, the file is cut back to its last complete fragment, and the
//! rescued samples are appended again as one complete, synced fragment.

use crate::mux::reader::{read_sample, Mp4Scan, SampleInfo};
use crate::mux::writer::{encode_moof, sample_flags};
use anyhow::Context;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// Samples (with their bytes) to be written back as one fragment.
pub struct Rescued {
    /// Sample facts from the torn fragment's `moof`.
    pub samples: Vec<SampleInfo>,
    /// Their bytes, in the same order.
    pub data: Vec<Vec<u8>>,
}

/// Reads the bytes of `samples` from `path` (before the file is cut).
pub fn read_rescued(path: &Path, samples: &[SampleInfo]) -> anyhow::Result<Rescued> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let data = samples
        .iter()
        .map(|s| read_sample(&mut file, s))
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("reading the torn fragment of {}", path.display()))?;
    Ok(Rescued {
        samples: samples.to_vec(),
        data,
    })
}

/// Cuts `path` to `scan.valid_len` and, when `rescued` holds samples,
/// appends them as one fragment; syncs the file. Idempotent in effect: the
/// result scans clean.
pub fn trim_and_append(path: &Path, scan: &Mp4Scan, rescued: &Rescued) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("opening {} for writing", path.display()))?;
    file.set_len(scan.valid_len)
        .with_context(|| format!("truncating {}", path.display()))?;
    if !rescued.samples.is_empty() {
        let sequence = scan.fragments.len() as u32 + 1;
        let bytes = encode_fragment(sequence, rescued)?;
        file.seek(SeekFrom::Start(scan.valid_len))
            .and_then(|_| file.write_all(&bytes))
            .with_context(|| format!("writing the rescued fragment to {}", path.display()))?;
    }
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))
}

/// `moof` + `mdat` holding `rescued`, timed as the torn `moof` said.
fn encode_fragment(sequence: u32, rescued: &Rescued) -> anyhow::Result<Vec<u8>> {
    let first = rescued.samples.first().context("no sample to write")?;
    let entries: Vec<mp4_atom::TrunEntry> = rescued
        .samples
        .iter()
        .map(|s| mp4_atom::TrunEntry {
            duration: Some(s.duration),
            size: Some(s.size),
            flags: Some(sample_flags(s.keyframe)),
            cts: Some(s.pts - s.dts),
        })
        .collect();
    let payload: usize = rescued.data.iter().map(Vec::len).sum();
    let base = u64::try_from(first.dts).context("negative decode time")?;
    // Always the 64-bit mdat header: simple, and valid for any size.
    let mut buf = encode_moof(sequence, base, entries, 16, payload)?;
    buf.extend_from_slice(&1u32.to_be_bytes());
    buf.extend_from_slice(b"mdat");
    buf.extend_from_slice(&((payload + 16) as u64).to_be_bytes());
    for d in &rescued.data {
        buf.extend_from_slice(d);
    }
    Ok(buf)
}
