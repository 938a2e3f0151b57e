//! The crash-safe fragmented MP4 writer.
//!
//! The init segment (`ftyp` + `moov`) is written and synced when the file is
//! created; after that every fragment (`moof` + `mdat`) goes out in one write
//! followed by `fdatasync`. A killed process therefore leaves a file whose
//! complete fragments all play; only a torn trailing fragment can be lost,
//! and [`super::reader`] finds where it starts.

use super::{av1, h264, init, MuxSummary, TrackConfig, TRACK_ID};
use crate::frame::{CodecId, EncodedPacket};
use anyhow::{bail, Context};
use mp4_atom::Encode;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `sample_flags` of a sync sample: depends on no other sample.
pub const FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: depends on others, `is_non_sync_sample`.
pub const FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// `sample_flags` of a keyframe (sync) or another sample.
pub fn sample_flags(keyframe: bool) -> u32 {
    if keyframe {
        FLAGS_SYNC
    } else {
        FLAGS_NON_SYNC
    }
}

/// Encodes the `moof` of fragment `sequence` of the single track: samples
/// `entries` from `base_media_decode_time`, their data in the `mdat` that
/// follows with a header of `mdat_header` bytes (8, or 16 for a 64-bit
/// size). The caller appends that `mdat` to the returned buffer, which has
/// room for `payload` more bytes.
pub fn encode_moof(
    sequence: u32,
    base_media_decode_time: u64,
    entries: Vec<mp4_atom::TrunEntry>,
    mdat_header: usize,
    payload: usize,
) -> anyhow::Result<Vec<u8>> {
    let mut moof = mp4_atom::Moof {
        mfhd: mp4_atom::Mfhd {
            sequence_number: sequence,
        },
        traf: vec![mp4_atom::Traf {
            tfhd: mp4_atom::Tfhd {
                track_id: TRACK_ID,
                default_base_is_moof: true,
                ..Default::default()
            },
            tfdt: Some(mp4_atom::Tfdt {
                base_media_decode_time,
            }),
            trun: vec![mp4_atom::Trun {
                data_offset: Some(0),
                samples: mp4_atom::TrunSamples::Explicit(entries),
            }],
            ..Default::default()
        }],
    };
    let mut buf = Vec::with_capacity(payload + 512);
    moof.encode(&mut buf).context("encoding moof")?;
    let data_offset = i32::try_from(buf.len() + mdat_header).context("moof too large")?;
    moof.traf[0].trun[0].data_offset = Some(data_offset);
    buf.clear();
    moof.encode(&mut buf).context("encoding moof")?;
    Ok(buf)
}

/// When fragments are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentPolicy {
    /// A keyframe arriving once this much is buffered starts a new fragment,
    /// so fragments normally begin with a keyframe.
    pub min_fragment: Duration,
    /// A fragment is written as soon as this much is buffered, keyframe or
    /// not: the most video a crash can lose.
    pub max_fragment: Duration,
}

impl Default for FragmentPolicy {
    fn default() -> Self {
        Self {
            min_fragment: Duration::from_millis(500),
            max_fragment: Duration::from_secs(1),
        }
    }
}

/// One sample waiting for its fragment.
struct Pending {
    data: Vec<u8>,
    /// Decode time in frame units, shifted to be non-negative.
    dts: i64,
    /// Presentation time in frame units (same shift).
    pts: i64,
    keyframe: bool,
}

/// Writes one video track as fragmented MP4. See the module docs.
pub struct Fmp4Writer {
    file: Option<File>,
    path: PathBuf,
    codec: CodecId,
    fps_num: u32,
    fps_den: u32,
    frame_duration: u32,
    policy: FragmentPolicy,
    pending: Vec<Pending>,
    /// Added to every packet timestamp so the first decode time is ≥ 0.
    dts_shift: Option<i64>,
    last_dts: Option<i64>,
    sequence: u32,
    samples_durable: u64,
    fragments: u64,
    bytes: u64,
}

impl Fmp4Writer {
    /// Creates `path`, writes the init segment and syncs file and directory
    /// ("header first"). Fragments are cut by [`FragmentPolicy::default`].
    pub fn create(path: &Path, track: TrackConfig) -> anyhow::Result<Self> {
        Self::create_with_policy(path, track, FragmentPolicy::default())
    }

    /// Like [`Fmp4Writer::create`] with an explicit fragment policy.
    pub fn create_with_policy(
        path: &Path,
        track: TrackConfig,
        policy: FragmentPolicy,
    ) -> anyhow::Result<Self> {
        let (_, frame_duration) = init::timing(track.fps_num, track.fps_den)?;
        let header = init::init_segment(&track)
            .with_context(|| format!("building the MP4 header for {}", path.display()))?;
        let mut file =
            File::create(path).with_context(|| format!("creating {}", path.display()))?;
        file.write_all(&header)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing the MP4 header of {}", path.display()))?;
        sync_parent_dir(path)?;
        Ok(Self {
            file: Some(file),
            path: path.to_path_buf(),
            codec: track.codec,
            fps_num: track.fps_num,
            fps_den: track.fps_den,
            frame_duration,
            policy,
            pending: Vec::new(),
            dts_shift: None,
            last_dts: None,
            sequence: 0,
            samples_durable: 0,
            fragments: 0,
            bytes: header.len() as u64,
        })
    }

    /// Reopens a file this writer made, to append fragments after its last
    /// complete one (`encode-pending`): a torn tail beyond `scan.valid_len`
    /// is cut off first. `dts_shift` is the shift (in frames) the original
    /// writer added to packet timestamps, so new packets continue its timeline.
    pub fn append(
        path: &Path,
        scan: &super::Mp4Scan,
        fps_num: u32,
        fps_den: u32,
        dts_shift: i64,
    ) -> anyhow::Result<Self> {
        let (_, frame_duration) = init::timing(fps_num, fps_den)?;
        if frame_duration != scan.track.frame_duration {
            bail!(
                "{}: frame duration {} in the file, {frame_duration} expected at {fps_num}/{fps_den} fps",
                path.display(),
                scan.track.frame_duration
            );
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {} to append", path.display()))?;
        file.set_len(scan.valid_len)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cutting the torn tail of {}", path.display()))?;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::End(0))
            .with_context(|| format!("seeking {}", path.display()))?;
        let fd = i64::from(frame_duration.max(1));
        Ok(Self {
            file: Some(file),
            path: path.to_path_buf(),
            codec: scan.track.codec,
            fps_num,
            fps_den,
            frame_duration,
            policy: FragmentPolicy::default(),
            pending: Vec::new(),
            dts_shift: Some(dts_shift),
            last_dts: scan.samples.last().map(|s| s.dts / fd),
            sequence: scan.fragments.len() as u32,
            samples_durable: scan.samples.len() as u64,
            fragments: scan.fragments.len() as u64,
            bytes: scan.valid_len,
        })
    }

    /// Queues one packet; writes a fragment when the policy says so.
    /// Packets must come in decode order with increasing `dts`.
    pub fn write_packet(&mut self, pkt: &EncodedPacket) -> anyhow::Result<()> {
        let shift = *self.dts_shift.get_or_insert((-pkt.dts).max(0));
        let dts = pkt.dts + shift;
        let pts = pkt.pts + shift;
        if let Some(last) = self.last_dts {
            if dts <= last {
                bail!(
                    "packet dts {} does not increase (previous {}) in {}",
                    pkt.dts,
                    last - shift,
                    self.path.display()
                );
            }
        }
        if dts < 0 {
            bail!("packet dts {} is before the first packet's", pkt.dts);
        }
        let data = match self.codec {
            CodecId::Av1 => av1::packet_to_sample(&pkt.data),
            CodecId::H264 => h264::packet_to_sample(&pkt.data),
            other => bail!("codec {other:?} cannot be muxed into MP4"),
        }
        .with_context(|| format!("packet dts {} for {}", pkt.dts, self.path.display()))?;

        if pkt.keyframe && self.buffered() >= self.policy.min_fragment {
            self.write_fragment(Some(dts))?;
        }
        self.last_dts = Some(dts);
        self.pending.push(Pending {
            data,
            dts,
            pts,
            keyframe: pkt.keyframe,
        });
        if self.buffered() >= self.policy.max_fragment {
            self.write_fragment(None)?;
        }
        Ok(())
    }

    /// Writes everything buffered as one fragment and syncs it.
    pub fn flush_fragment(&mut self) -> anyhow::Result<()> {
        self.write_fragment(None)
    }

    /// Flushes the last fragment, syncs the file and closes it.
    pub fn finish(mut self) -> anyhow::Result<MuxSummary> {
        self.write_fragment(None)?;
        if let Some(file) = self.file.take() {
            file.sync_all()
                .with_context(|| format!("syncing {}", self.path.display()))?;
        }
        Ok(self.summary())
    }

    /// Samples in fragments already written and synced.
    pub fn samples_durable(&self) -> u64 {
        self.samples_durable
    }

    /// Samples buffered, not yet on disk.
    pub fn samples_pending(&self) -> usize {
        self.pending.len()
    }

    /// Counts so far (durable samples only).
    pub fn summary(&self) -> MuxSummary {
        MuxSummary {
            samples: self.samples_durable,
            fragments: self.fragments,
            bytes: self.bytes,
        }
    }

    /// Media time span of the buffered samples.
    fn buffered(&self) -> Duration {
        let (Some(first), Some(last)) = (self.pending.first(), self.pending.last()) else {
            return Duration::ZERO;
        };
        let frames = (last.dts - first.dts + 1).max(0) as u64;
        Duration::from_nanos(
            frames.saturating_mul(1_000_000_000) * u64::from(self.fps_den)
                / u64::from(self.fps_num),
        )
    }

    /// Writes the pending samples as `moof` + `mdat` in one write, then
    /// `fdatasync`. `next_dts` (frame units) sets the last sample's duration.
    fn write_fragment(&mut self, next_dts: Option<i64>) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            bail!("{} is already finished", self.path.display());
        };
        let fd = i64::from(self.frame_duration);
        let entries: Vec<mp4_atom::TrunEntry> = self
            .pending
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let next = self.pending.get(i + 1).map(|n| n.dts).or(next_dts);
                let duration = next.map_or(fd, |n| (n - s.dts) * fd);
                mp4_atom::TrunEntry {
                    duration: Some(u32::try_from(duration).unwrap_or(u32::MAX)),
                    size: Some(s.data.len() as u32),
                    flags: Some(sample_flags(s.keyframe)),
                    cts: Some((s.pts - s.dts) * fd),
                }
            })
            .collect();
        let payload: usize = self.pending.iter().map(|s| s.data.len()).sum();
        let mdat_header = if payload + 8 <= u32::MAX as usize {
            8
        } else {
            16
        };
        let base = (self.pending[0].dts * fd) as u64;
        let mut buf = encode_moof(self.sequence + 1, base, entries, mdat_header, payload)?;
        if mdat_header == 8 {
            buf.extend_from_slice(&((payload + 8) as u32).to_be_bytes());
            buf.extend_from_slice(b"mdat");
        } else {
            buf.extend_from_slice(&1u32.to_be_bytes());
            buf.extend_from_slice(b"mdat");
            buf.extend_from_slice(&((payload + 16) as u64).to_be_bytes());
        }
        for s in &self.pending {
            buf.extend_from_slice(&s.data);
        }
        file.write_all(&buf)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("writing a fragment to {}", self.path.display()))?;
        self.sequence += 1;
        self.fragments += 1;
        self.bytes += buf.len() as u64;
        self.samples_durable += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }
}

impl Drop for Fmp4Writer {
    /// A writer dropped without [`Fmp4Writer::finish`] (an error path, a
    /// panic) still writes what it buffered, best effort.
    fn drop(&mut self) {
        if self.file.is_some() && !self.pending.is_empty() {
            if let Err(err) = self.write_fragment(None) {
                log::warn!("last fragment of {} lost: {err:#}", self.path.display());
            }
        }
    }
}

/// Fsyncs the directory holding `path`, so that a new file's name is durable.
pub fn sync_parent_dir(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}
