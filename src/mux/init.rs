//! The fragmented MP4 init segment (`ftyp` + `moov` with `mvex`/`trex`).

use super::{av1, h264, TrackConfig, TRACK_ID};
use crate::frame::CodecId;
use anyhow::{bail, Context};
use mp4_atom::{Encode, FourCC};

/// Media timescale and per-frame duration for a frame rate. Timescales below
/// 1000 are scaled up (15 fps → 15000, duration 1000) so that players and
/// editors that assume millisecond resolution behave.
pub fn timing(fps_num: u32, fps_den: u32) -> anyhow::Result<(u32, u32)> {
    if fps_num == 0 || fps_den == 0 {
        bail!("invalid frame rate {fps_num}/{fps_den}");
    }
    let scale = if fps_num < 1000 { 1000 } else { 1 };
    let timescale = fps_num
        .checked_mul(scale)
        .context("frame rate numerator too large")?;
    let duration = fps_den
        .checked_mul(scale)
        .context("frame rate denominator too large")?;
    Ok((timescale, duration))
}

/// Builds the sample entry (`av01` or `avc1`) for `track`.
fn sample_entry(track: &TrackConfig) -> anyhow::Result<mp4_atom::Codec> {
    let width = u16::try_from(track.width).context("width does not fit an MP4 sample entry")?;
    let height = u16::try_from(track.height).context("height does not fit an MP4 sample entry")?;
    let visual = mp4_atom::Visual {
        data_reference_index: 1,
        width,
        height,
        horizresolution: 72.into(),
        vertresolution: 72.into(),
        frame_count: 1,
        compressor: "".into(),
        depth: 24,
    };
    Ok(match track.codec {
        CodecId::Av1 => {
            let (av1c, _) = av1::build_av1c(&track.config_record)?;
            mp4_atom::Av01 {
                visual,
                av1c,
                ..Default::default()
            }
            .into()
        }
        CodecId::H264 => mp4_atom::Avc1 {
            visual,
            avcc: h264::build_avcc(&track.config_record)?,
            ..Default::default()
        }
        .into(),
        other => bail!("codec {other:?} cannot be muxed into MP4 (only AV1 and H.264)"),
    })
}

/// Encodes `ftyp` + `moov` for one video track with empty sample tables and
/// an `mvex` that announces movie fragments.
pub fn init_segment(track: &TrackConfig) -> anyhow::Result<Vec<u8>> {
    let (timescale, frame_duration) = timing(track.fps_num, track.fps_den)?;
    let codec_brand: FourCC = match track.codec {
        CodecId::Av1 => b"av01".into(),
        _ => b"avc1".into(),
    };
    let ftyp = mp4_atom::Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"iso5".into(), b"mp41".into(), codec_brand],
    };
    let entry = sample_entry(track)?;
    let moov = mp4_atom::Moov {
        mvhd: mp4_atom::Mvhd {
            timescale,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: TRACK_ID + 1,
            ..Default::default()
        },
        mvex: Some(mp4_atom::Mvex {
            mehd: None,
            trex: vec![mp4_atom::Trex {
                track_id: TRACK_ID,
                default_sample_description_index: 1,
                default_sample_duration: frame_duration,
                default_sample_size: 0,
                default_sample_flags: 0,
            }],
        }),
        trak: vec![mp4_atom::Trak {
            tkhd: mp4_atom::Tkhd {
                track_id: TRACK_ID,
                enabled: true,
                in_movie: true,
                width: (track.width as u16).into(),
                height: (track.height as u16).into(),
                ..Default::default()
            },
            mdia: mp4_atom::Mdia {
                mdhd: mp4_atom::Mdhd {
                    timescale,
                    language: "und".into(),
                    ..Default::default()
                },
                hdlr: mp4_atom::Hdlr {
                    handler: b"vide".into(),
                    name: "s6-edge video".into(),
                },
                minf: mp4_atom::Minf {
                    vmhd: Some(mp4_atom::Vmhd::default()),
                    dinf: mp4_atom::Dinf {
                        dref: mp4_atom::Dref {
                            entries: vec![mp4_atom::Url {
                                location: "".into(),
                            }
                            .into()],
                        },
                    },
                    stbl: mp4_atom::Stbl {
                        stsd: mp4_atom::Stsd {
                            codecs: vec![entry],
                        },
                        stco: Some(mp4_atom::Stco::default()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            },
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut buf = Vec::with_capacity(1024);
    ftyp.encode(&mut buf).context("encoding ftyp")?;
    moov.encode(&mut buf).context("encoding moov")?;
    Ok(buf)
}
