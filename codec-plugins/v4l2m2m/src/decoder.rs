//! A stateful V4L2 M2M decoder, used by tests to decode what the encoder
//! produced (vicodec's `stateful-decoder` for FWHT).

use crate::layout::PlaneLoc;
use crate::m2m::{query, video_nodes, M2m};
use crate::sys;
use anyhow::{bail, Context, Result};

/// A decoder session producing tightly packed I420 frames.
pub struct Decoder {
    dev: M2m,
    map: Vec<PlaneLoc>,
    free_outputs: Vec<u32>,
    width: usize,
    height: usize,
}

/// The first decoder node that takes `coded` input.
pub fn find_decoder(coded: u32) -> Result<(String, bool)> {
    for path in video_nodes() {
        let Ok(f) = query(&path) else { continue };
        let mplane = f.caps & sys::CAP_VIDEO_M2M_MPLANE != 0;
        if f.caps & (sys::CAP_VIDEO_M2M | sys::CAP_VIDEO_M2M_MPLANE) != 0
            && f.output_formats
                .iter()
                .any(|&(c, fl)| c == coded && fl & sys::FMT_FLAG_COMPRESSED != 0)
            && f.capture_formats
                .iter()
                .any(|&(c, _)| c == sys::PIX_FMT_YUV420)
        {
            return Ok((path, mplane));
        }
    }
    bail!("no V4L2 decoder for {} found", sys::fourcc_str(coded))
}

impl Decoder {
    /// Opens `path` for `coded` input of `width`x`height`, YU12 output.
    pub fn open(path: &str, mplane: bool, coded: u32, width: u32, height: u32) -> Result<Self> {
        let dev = M2m::open(path, mplane)?;
        let (out_t, cap_t) = dev.types();
        let _ = cap_t;
        dev.set_format(out_t, width, height, coded, width * height * 3 + 4096)?;
        let mut d = Self {
            dev,
            map: Vec::new(),
            free_outputs: Vec::new(),
            width: width as usize,
            height: height as usize,
        };
        let output = d.dev.alloc(out_t, 4)?;
        d.free_outputs = (0..M2m::count(&output)).collect();
        d.dev.output = Some(output);
        d.dev.stream(out_t, true)?;
        Ok(d)
    }

    /// Stateful decoder initialisation: once the first compressed buffer is
    /// queued the driver parsed the stream header, and G_FMT on CAPTURE
    /// reports the decoded format; then CAPTURE is set up and started.
    fn start_capture(&mut self) -> Result<()> {
        let (_, cap_t) = self.dev.types();
        let mut fmt = self.dev.get_format(cap_t)?;
        if fmt.fourcc != sys::PIX_FMT_YUV420 {
            fmt = self
                .dev
                .set_format(cap_t, fmt.width, fmt.height, sys::PIX_FMT_YUV420, 0)?;
        }
        if (fmt.width as usize) < self.width || (fmt.height as usize) < self.height {
            bail!(
                "decoder reports {}x{}, stream is {}x{}",
                fmt.width,
                fmt.height,
                self.width,
                self.height
            );
        }
        self.map = fmt.plane_map()?;
        let capture = self.dev.alloc(cap_t, 4)?;
        for i in 0..M2m::count(&capture) {
            self.dev.qbuf(&capture, i, &[0], 0)?;
        }
        self.dev.capture = Some(capture);
        self.dev.stream(cap_t, true)
    }

    fn collect(&mut self, frames: &mut Vec<(i64, Vec<u8>)>) -> Result<bool> {
        let Some(capture) = self.dev.capture.as_ref() else {
            return Ok(false);
        };
        let mut last = false;
        while let Some(d) = self.dev.dqbuf(capture)? {
            if d.flags & sys::BUF_FLAG_ERROR != 0 {
                bail!("decoder flagged frame {} as failed", d.sequence);
            }
            if d.bytesused.iter().any(|&b| b > 0) {
                let planes = M2m::planes(capture, d.index, &d.bytesused);
                frames.push((
                    d.timestamp_us,
                    crate::layout::read_i420(&self.map, &planes, self.width, self.height)?,
                ));
            }
            if d.flags & sys::BUF_FLAG_LAST != 0 {
                last = true;
                break;
            }
            self.dev.qbuf(capture, d.index, &[0], 0)?;
        }
        let output = self.dev.output.as_ref().context("output queue missing")?;
        while let Some(d) = self.dev.dqbuf(output)? {
            self.free_outputs.push(d.index);
        }
        Ok(last)
    }

    /// Decodes one compressed frame; decoded (timestamp, I420) frames are appended.
    pub fn decode(&mut self, data: &[u8], ts: i64, frames: &mut Vec<(i64, Vec<u8>)>) -> Result<()> {
        let mut tries = 0;
        while self.free_outputs.is_empty() {
            self.dev.wait(1000)?;
            self.collect(frames)?;
            tries += 1;
            if tries > 10 {
                bail!("decoder returned no input buffer within 10 s");
            }
        }
        let index = self.free_outputs.pop().context("no free input buffer")?;
        let output = self.dev.output.as_mut().context("output queue missing")?;
        let mut planes = M2m::planes_mut(output, index);
        if planes[0].len() < data.len() {
            bail!(
                "packet of {} bytes does not fit a {}-byte decoder buffer",
                data.len(),
                planes[0].len()
            );
        }
        planes[0][..data.len()].copy_from_slice(data);
        let output = self.dev.output.as_ref().context("output queue missing")?;
        self.dev.qbuf(output, index, &[data.len()], ts)?;
        if self.dev.capture.is_none() {
            self.start_capture()?;
        }
        self.collect(frames).map(|_| ())
    }

    /// Drains the decoder with DECODER_CMD STOP.
    pub fn flush(&mut self, frames: &mut Vec<(i64, Vec<u8>)>) -> Result<()> {
        self.dev.decoder_cmd(sys::DEC_CMD_STOP)?;
        for _ in 0..50 {
            if self.collect(frames)? {
                return Ok(());
            }
            self.dev.wait(200)?;
        }
        bail!("decoder drain did not finish within 10 s")
    }
}
