//! A stateful V4L2 M2M encoder session: negotiate, stream, encode, drain.

use crate::layout::{write_frame, PlaneLoc, SourceFrame};
use crate::m2m::{query, video_nodes, M2m};
use crate::select::{choose, Choice};
use crate::{annexb, sys};

use anyhow::{bail, Context, Result};
use s6_codec_abi::CodecId;

/// How long a single wait for the device may take before it counts as hung.
const WAIT_MS: i32 = 5000;
/// Buffers per queue.
const BUFFERS: u32 = 4;

/// Encoder settings (from the ABI's `EncoderConfig`).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frame rate numerator / denominator.
    pub fps: (u32, u32),
    /// Keyframe interval in frames (0 = device default).
    pub gop: u32,
    /// Target bitrate in kbit/s (0 = device default).
    pub bitrate_kbps: u32,
    /// Explicit device path; `None` scans `/dev/video*`.
    pub device: Option<String>,
    /// Restrict to one codec (`codec=h264|fwht` option).
    pub codec: Option<CodecId>,
}

/// A compressed packet.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Bytes as produced by the device.
    pub data: Vec<u8>,
    /// Presentation time (frame units), carried through the buffer timestamp.
    pub pts: i64,
    /// Random access point.
    pub keyframe: bool,
}

/// Finds the encoder device to use for `settings`.
pub fn find_device(settings: &Settings) -> Result<Choice, String> {
    let nodes = match &settings.device {
        Some(d) => vec![d.clone()],
        None => video_nodes(),
    };
    let scanned: Vec<(String, Result<_, String>)> =
        nodes.into_iter().map(|p| (p.clone(), query(&p))).collect();
    choose(&scanned, settings.codec)
}

/// An open encoder session.
pub struct Encoder {
    dev: M2m,
    /// What was chosen.
    pub choice: Choice,
    map: Vec<PlaneLoc>,
    free_outputs: Vec<u32>,
    config: Option<Vec<u8>>,
    width: u32,
    height: u32,
}

impl Encoder {
    /// Opens, negotiates formats, sets controls, allocates and starts streaming.
    pub fn open(settings: &Settings) -> Result<Self> {
        let choice = find_device(settings).map_err(anyhow::Error::msg)?;
        let dev = M2m::open(&choice.path, choice.mplane)?;
        let (out_t, cap_t) = dev.types();
        let (w, h) = (settings.width, settings.height);
        if w == 0 || h == 0 {
            bail!("invalid frame size {w}x{h}");
        }
        // The stateful encoder interface: CAPTURE (coded) format first.
        dev.set_format(cap_t, w, h, choice.coded, w * h * 3 / 2 + 4096)?;
        let raw = dev.set_format(out_t, w, h, choice.raw, 0)?;
        if raw.width < w || raw.height < h {
            bail!(
                "{}: the device cannot code {w}x{h} frames (the driver shrank them to {}x{})",
                choice.path,
                raw.width,
                raw.height
            );
        }
        let map = raw.plane_map()?;
        dev.set_frame_rate(settings.fps.0, settings.fps.1);
        if settings.gop > 0 {
            dev.set_control(sys::CID_GOP_SIZE, settings.gop as i32)?;
            if choice.codec == CodecId::H264 {
                dev.set_control(sys::CID_H264_I_PERIOD, settings.gop as i32)?;
            }
        }
        if settings.bitrate_kbps > 0 {
            dev.set_control(
                sys::CID_BITRATE,
                (settings.bitrate_kbps.saturating_mul(1000)).min(i32::MAX as u32) as i32,
            )?;
        }
        if choice.codec == CodecId::H264 {
            // SPS/PPS in front of every IDR, so each fragment can start cleanly.
            dev.set_control(sys::CID_REPEAT_SEQ_HEADER, 1)?;
        }
        let mut enc = Self {
            dev,
            choice,
            map,
            free_outputs: Vec::new(),
            config: None,
            width: w,
            height: h,
        };
        let output = enc.dev.alloc(out_t, BUFFERS)?;
        let capture = enc.dev.alloc(cap_t, BUFFERS)?;
        enc.free_outputs = (0..M2m::count(&output)).collect();
        for i in 0..M2m::count(&capture) {
            enc.dev.qbuf(&capture, i, &[0], 0)?;
        }
        enc.dev.output = Some(output);
        enc.dev.capture = Some(capture);
        enc.dev.stream(out_t, true)?;
        enc.dev.stream(cap_t, true)?;
        Ok(enc)
    }

    /// The codec this session produces.
    pub fn codec(&self) -> CodecId {
        self.choice.codec
    }

    /// Annex-B SPS/PPS (H.264) once the first keyframe was produced.
    pub fn codec_config(&self) -> Option<&[u8]> {
        self.config.as_deref()
    }

    /// Takes every finished CAPTURE buffer (and reclaims OUTPUT buffers);
    /// returns whether a LAST buffer was seen.
    fn collect(&mut self, out: &mut Vec<Packet>) -> Result<bool> {
        let mut last = false;
        let Some(capture) = self.dev.capture.as_ref() else {
            bail!("capture queue missing");
        };
        while let Some(d) = self.dev.dqbuf(capture)? {
            let bytes = M2m::planes(capture, d.index, &d.bytesused)[0].to_vec();
            if d.flags & sys::BUF_FLAG_ERROR != 0 {
                bail!(
                    "{}: the encoder flagged buffer {} as failed",
                    self.dev.path,
                    d.sequence
                );
            }
            if !bytes.is_empty() {
                let keyframe = d.flags & sys::BUF_FLAG_KEYFRAME != 0
                    || (self.choice.codec == CodecId::Fwht && crate::fwht::is_intra(&bytes));
                if keyframe && self.config.is_none() && self.choice.codec == CodecId::H264 {
                    self.config = annexb::parameter_sets(&bytes, false);
                }
                out.push(Packet {
                    data: bytes,
                    pts: d.timestamp_us,
                    keyframe,
                });
            }
            if d.flags & sys::BUF_FLAG_LAST != 0 {
                last = true;
                // Keep the buffer for after a restart.
                self.dev.qbuf(capture, d.index, &[0], 0).ok();
                break;
            }
            self.dev.qbuf(capture, d.index, &[0], 0)?;
        }
        if let Some(output) = self.dev.output.as_ref() {
            while let Some(d) = self.dev.dqbuf(output)? {
                self.free_outputs.push(d.index);
            }
        }
        Ok(last)
    }

    /// Encodes one frame; finished packets are appended to `out`.
    pub fn encode(
        &mut self,
        frame: &SourceFrame<'_>,
        pts: i64,
        force_keyframe: bool,
        out: &mut Vec<Packet>,
    ) -> Result<()> {
        if frame.width != self.width as usize || frame.height != self.height as usize {
            bail!(
                "frame is {}x{}, session is {}x{}",
                frame.width,
                frame.height,
                self.width,
                self.height
            );
        }
        self.collect(out)?;
        while self.free_outputs.is_empty() {
            let (_, _) = self.dev.wait(WAIT_MS)?;
            let before = out.len();
            self.collect(out)?;
            if self.free_outputs.is_empty() && out.len() == before {
                // Nothing came back within the wait: the device is stuck.
                let (r, w) = self.dev.wait(WAIT_MS)?;
                if !r && !w {
                    bail!(
                        "{}: no buffer returned within {} ms",
                        self.dev.path,
                        2 * WAIT_MS
                    );
                }
            }
        }
        let index = self.free_outputs.pop().context("no free output buffer")?;
        if force_keyframe {
            self.dev.set_control(sys::CID_FORCE_KEY_FRAME, 1)?;
        }
        let output = self.dev.output.as_mut().context("output queue missing")?;
        let used = {
            let mut planes = M2m::planes_mut(output, index);
            write_frame(frame, &self.map, &mut planes)?
        };
        let output = self.dev.output.as_ref().context("output queue missing")?;
        self.dev.qbuf(output, index, &used, pts)?;
        self.collect(out).map(|_| ())
    }

    /// Drains the encoder (ENCODER_CMD STOP until the LAST buffer), then
    /// restarts it so the session can go on.
    pub fn flush(&mut self, out: &mut Vec<Packet>) -> Result<()> {
        self.dev.encoder_cmd(sys::ENC_CMD_STOP)?;
        let mut waited = 0;
        loop {
            if self.collect(out)? {
                break;
            }
            let (r, w) = self.dev.wait(200)?;
            if !r && !w {
                waited += 200;
                if waited >= 2 * WAIT_MS {
                    bail!(
                        "{}: drain did not finish within {} ms",
                        self.dev.path,
                        2 * WAIT_MS
                    );
                }
            }
        }
        self.dev.encoder_cmd(sys::ENC_CMD_START)?;
        Ok(())
    }
}
