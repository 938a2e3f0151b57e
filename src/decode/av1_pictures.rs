//! AV1 pictures through libdav1d (frame-threaded, automatic thread count).

use super::pictures::{pack_i420, Picture, PictureDecoder};
use crate::mux::reader::TrackInfo;
use anyhow::{bail, Context};
use dav1d::{PixelLayout, PlanarImageComponent};
use std::collections::VecDeque;

/// dav1d with a queue of the pictures it has already produced.
pub struct Dav1dPictures {
    decoder: dav1d::Decoder,
    /// The sequence header from `av1C`, prepended to the first sample.
    config: Option<Vec<u8>>,
    ready: VecDeque<dav1d::Picture>,
    finished: bool,
}

impl Dav1dPictures {
    /// A decoder for `track` (must be AV1).
    pub fn new(track: &TrackInfo) -> anyhow::Result<Self> {
        let mut settings = dav1d::Settings::new();
        // 0 = one thread per core; frame threading gives full speed on
        // the long runs replay decodes.
        settings.set_n_threads(0);
        let decoder = dav1d::Decoder::with_settings(&settings)
            .map_err(|e| anyhow::anyhow!("dav1d failed to open: {e:?}"))?;
        Ok(Self {
            decoder,
            config: Some(track.config_record.clone()).filter(|c| !c.is_empty()),
            ready: VecDeque::new(),
            finished: false,
        })
    }

    /// Asks dav1d for one picture. Only at the end of the stream is it
    /// called in a loop: repeated calls drain the frame threads.
    fn take_one(&mut self) -> anyhow::Result<bool> {
        match self.decoder.get_picture() {
            Ok(p) => {
                self.ready.push_back(p);
                Ok(true)
            }
            Err(dav1d::Error::Again) => Ok(false),
            Err(e) => bail!("dav1d decoding error: {e:?}"),
        }
    }
}

impl PictureDecoder for Dav1dPictures {
    fn push(&mut self, mut data: Vec<u8>, pts: i64, _keyframe: bool) -> anyhow::Result<()> {
        if let Some(mut config) = self.config.take() {
            config.append(&mut data);
            data = config;
        }
        let mut result = self.decoder.send_data(data, None, Some(pts), None);
        loop {
            match result {
                Ok(()) => break,
                Err(dav1d::Error::Again) => {
                    self.take_one()?;
                    result = self.decoder.send_pending_data();
                }
                Err(e) => bail!("dav1d rejected the sample with pts {pts}: {e:?}"),
            }
        }
        self.take_one().map(|_| ())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.finished = true;
        Ok(())
    }

    fn pull(&mut self) -> anyhow::Result<Option<Picture>> {
        if self.ready.is_empty() && self.finished {
            // Drains the frame threads one picture at a time.
            self.take_one()?;
        }
        let Some(p) = self.ready.pop_front() else {
            return Ok(None);
        };
        to_i420(&p).map(Some).context("dav1d picture")
    }

    fn name(&self) -> &str {
        "dav1d"
    }
}

/// Copies a dav1d picture into a tightly packed I420 buffer.
fn to_i420(p: &dav1d::Picture) -> anyhow::Result<Picture> {
    if p.bit_depth() != 8 || p.pixel_layout() != PixelLayout::I420 {
        bail!(
            "{}-bit {:?} pictures are not supported (replay delivers 8-bit I420)",
            p.bit_depth(),
            p.pixel_layout()
        );
    }
    let (y, u, v) = (
        p.plane(PlanarImageComponent::Y),
        p.plane(PlanarImageComponent::U),
        p.plane(PlanarImageComponent::V),
    );
    let stride = |c| p.stride(c) as usize;
    let data = pack_i420(
        [
            (&y, stride(PlanarImageComponent::Y)),
            (&u, stride(PlanarImageComponent::U)),
            (&v, stride(PlanarImageComponent::V)),
        ],
        p.width() as usize,
        p.height() as usize,
    )?;
    Ok(Picture {
        pts: p.timestamp(),
        data,
    })
}
