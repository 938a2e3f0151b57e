//! Decoders that hand out pictures (not just counts): samples go in, in
//! decode order, with their presentation time; tightly packed 8-bit I420
//! pictures come out in presentation order, each with the time it went in
//! with. Used by `s6-edge replay` and the `replay:` capture source.

use crate::mux::reader::TrackInfo;

/// One decoded picture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Picture {
    /// Presentation time (in frame units) the decoder carried through from
    /// the sample; `None` when the decoder lost it.
    pub pts: Option<i64>,
    /// Tightly packed I420, `width * height` luma then the two chroma planes.
    pub data: Vec<u8>,
}

/// A streaming decoder of one track.
pub trait PictureDecoder: Send {
    /// Feeds one sample (decode order) with its presentation time in frames.
    fn push(&mut self, data: Vec<u8>, pts: i64, keyframe: bool) -> anyhow::Result<()>;
    /// No more samples: the decoder drains what it still holds.
    fn finish(&mut self) -> anyhow::Result<()>;
    /// The next picture in presentation order. `Ok(None)` means none is
    /// ready yet (push more) or, after [`PictureDecoder::finish`], the end.
    fn pull(&mut self) -> anyhow::Result<Option<Picture>>;
    /// Decoder name for messages (`dav1d`, `gstreamer/avdec_h264`).
    fn name(&self) -> &str;
}

/// Opens the best decoder for `track`: dav1d for AV1 (feature `dav1d`),
/// GStreamer for H.264 (feature `gst`), or GStreamer for AV1 when dav1d is
/// not built in.
pub fn open(track: &TrackInfo) -> anyhow::Result<Box<dyn PictureDecoder>> {
    match track.codec {
        #[cfg(feature = "dav1d")]
        crate::frame::CodecId::Av1 => Ok(Box::new(super::av1_pictures::Dav1dPictures::new(track)?)),
        #[cfg(feature = "gst")]
        crate::frame::CodecId::H264 => Ok(Box::new(super::gst_pictures::GstPictures::new(track)?)),
        #[cfg(all(feature = "gst", not(feature = "dav1d")))]
        crate::frame::CodecId::Av1 => Ok(Box::new(super::gst_pictures::GstPictures::new(track)?)),
        #[allow(unreachable_patterns)]
        other => anyhow::bail!(
            "this build has no {other:?} decoder (cargo features `dav1d` for AV1, `gst` for H.264)"
        ),
    }
}

/// Copies three strided planes (Y, U, V) into a tightly packed I420 buffer
/// of `width` x `height`.
pub fn pack_i420(
    planes: [(&[u8], usize); 3],
    width: usize,
    height: usize,
) -> anyhow::Result<Vec<u8>> {
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    let mut data = vec![0u8; width * height + 2 * cw * ch];
    let (y, rest) = data.split_at_mut(width * height);
    let (u, v) = rest.split_at_mut(cw * ch);
    for ((src, stride), (dst, w, h)) in
        planes
            .into_iter()
            .zip([(y, width, height), (u, cw, ch), (v, cw, ch)])
    {
        crate::convert::copy_plane(src, stride, w, h, dst)?;
    }
    Ok(data)
}
