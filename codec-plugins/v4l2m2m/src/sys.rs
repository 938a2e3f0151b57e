//! The few V4L2 UAPI types, constants and ioctls the plugin uses, written
//! from `linux/videodev2.h` (x86_64 and aarch64 share these layouts; sizes
//! are checked at compile time against the values the C compiler gives).

use std::os::fd::{AsRawFd, BorrowedFd};

/// `V4L2_CAP_VIDEO_M2M_MPLANE`.
pub const CAP_VIDEO_M2M_MPLANE: u32 = 0x0000_4000;
/// `V4L2_CAP_VIDEO_M2M`.
pub const CAP_VIDEO_M2M: u32 = 0x0000_8000;
/// `V4L2_CAP_STREAMING`.
pub const CAP_STREAMING: u32 = 0x0400_0000;
/// `V4L2_CAP_DEVICE_CAPS`: `device_caps` is valid.
pub const CAP_DEVICE_CAPS: u32 = 0x8000_0000;

/// `V4L2_BUF_TYPE_VIDEO_CAPTURE`.
pub const BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
/// `V4L2_BUF_TYPE_VIDEO_OUTPUT`.
pub const BUF_TYPE_VIDEO_OUTPUT: u32 = 2;
/// `V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE`.
pub const BUF_TYPE_VIDEO_CAPTURE_MPLANE: u32 = 9;
/// `V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE`.
pub const BUF_TYPE_VIDEO_OUTPUT_MPLANE: u32 = 10;

/// `V4L2_MEMORY_MMAP`.
pub const MEMORY_MMAP: u32 = 1;
/// `V4L2_FIELD_NONE`.
pub const FIELD_NONE: u32 = 1;
/// `V4L2_FMT_FLAG_COMPRESSED`.
pub const FMT_FLAG_COMPRESSED: u32 = 0x0001;

/// `V4L2_BUF_FLAG_KEYFRAME`.
pub const BUF_FLAG_KEYFRAME: u32 = 0x0000_0008;
/// `V4L2_BUF_FLAG_ERROR`.
pub const BUF_FLAG_ERROR: u32 = 0x0000_0040;
/// `V4L2_BUF_FLAG_LAST`: the last buffer of a drain.
pub const BUF_FLAG_LAST: u32 = 0x0010_0000;

/// `V4L2_ENC_CMD_START`.
pub const ENC_CMD_START: u32 = 0;
/// `V4L2_ENC_CMD_STOP`.
pub const ENC_CMD_STOP: u32 = 1;
/// `V4L2_DEC_CMD_START`.
pub const DEC_CMD_START: u32 = 0;
/// `V4L2_DEC_CMD_STOP`.
pub const DEC_CMD_STOP: u32 = 1;

/// `V4L2_CID_MPEG_VIDEO_GOP_SIZE`.
pub const CID_GOP_SIZE: u32 = 0x0099_09cb;
/// `V4L2_CID_MPEG_VIDEO_BITRATE` (bit/s).
pub const CID_BITRATE: u32 = 0x0099_09cf;
/// `V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER`.
pub const CID_REPEAT_SEQ_HEADER: u32 = 0x0099_09e2;
/// `V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME` (button).
pub const CID_FORCE_KEY_FRAME: u32 = 0x0099_09e5;
/// `V4L2_CID_MPEG_VIDEO_H264_I_PERIOD`.
pub const CID_H264_I_PERIOD: u32 = 0x0099_0a66;

/// Builds a V4L2 fourcc.
pub const fn fourcc(code: &[u8; 4]) -> u32 {
    (code[0] as u32) | (code[1] as u32) << 8 | (code[2] as u32) << 16 | (code[3] as u32) << 24
}

/// Renders a fourcc for messages (`H264`).
pub fn fourcc_str(code: u32) -> String {
    code.to_le_bytes()
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// `V4L2_PIX_FMT_H264` (Annex-B byte stream).
pub const PIX_FMT_H264: u32 = fourcc(b"H264");
/// `V4L2_PIX_FMT_HEVC`.
pub const PIX_FMT_HEVC: u32 = fourcc(b"HEVC");
/// `V4L2_PIX_FMT_FWHT` (vicodec).
pub const PIX_FMT_FWHT: u32 = fourcc(b"FWHT");
/// `V4L2_PIX_FMT_NV12`: Y plane then interleaved UV, one buffer.
pub const PIX_FMT_NV12: u32 = fourcc(b"NV12");
/// `V4L2_PIX_FMT_YUV420` (`YU12`): Y, U, V planes, one buffer.
pub const PIX_FMT_YUV420: u32 = fourcc(b"YU12");
/// `V4L2_PIX_FMT_NV12M`: NV12 with Y and UV in separate buffers.
pub const PIX_FMT_NV12M: u32 = fourcc(b"NM12");
/// `V4L2_PIX_FMT_YUV420M`: I420 with three separate buffers.
pub const PIX_FMT_YUV420M: u32 = fourcc(b"YM12");

/// `struct v4l2_capability`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Capability {
    pub driver: [u8; 16],
    pub card: [u8; 32],
    pub bus_info: [u8; 32],
    pub version: u32,
    pub capabilities: u32,
    pub device_caps: u32,
    pub reserved: [u32; 3],
}

/// `struct v4l2_fmtdesc`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct FmtDesc {
    pub index: u32,
    pub type_: u32,
    pub flags: u32,
    pub description: [u8; 32],
    pub pixelformat: u32,
    pub mbus_code: u32,
    pub reserved: [u32; 3],
}

/// `struct v4l2_pix_format`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PixFormat {
    pub width: u32,
    pub height: u32,
    pub pixelformat: u32,
    pub field: u32,
    pub bytesperline: u32,
    pub sizeimage: u32,
    pub colorspace: u32,
    pub priv_: u32,
    pub flags: u32,
    pub ycbcr_enc: u32,
    pub quantization: u32,
    pub xfer_func: u32,
}

/// `struct v4l2_plane_pix_format` (packed in C; naturally aligned here).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PlanePixFormat {
    pub sizeimage: u32,
    pub bytesperline: u32,
    pub reserved: [u16; 6],
}

/// `struct v4l2_pix_format_mplane` (packed in C; every field is naturally
/// aligned, so `repr(C)` gives the same layout).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PixFormatMplane {
    pub width: u32,
    pub height: u32,
    pub pixelformat: u32,
    pub field: u32,
    pub colorspace: u32,
    pub plane_fmt: [PlanePixFormat; 8],
    pub num_planes: u8,
    pub flags: u8,
    pub ycbcr_enc: u8,
    pub quantization: u8,
    pub xfer_func: u8,
    pub reserved: [u8; 7],
}

/// The `fmt` union of `struct v4l2_format` (8-byte aligned on 64-bit).
#[repr(C)]
#[derive(Clone, Copy)]
pub union FormatUnion {
    pub pix: PixFormat,
    pub pix_mp: PixFormatMplane,
    pub raw: [u64; 25],
}

/// `struct v4l2_format`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Format {
    pub type_: u32,
    pub fmt: FormatUnion,
}

impl Format {
    /// A zeroed format of queue type `type_`.
    pub fn new(type_: u32) -> Self {
        Self {
            type_,
            fmt: FormatUnion { raw: [0; 25] },
        }
    }
}

/// `struct v4l2_requestbuffers`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct RequestBuffers {
    pub count: u32,
    pub type_: u32,
    pub memory: u32,
    pub capabilities: u32,
    pub flags: u8,
    pub reserved: [u8; 3],
}

/// `struct v4l2_timecode`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Timecode {
    pub type_: u32,
    pub flags: u32,
    pub frames: u8,
    pub seconds: u8,
    pub minutes: u8,
    pub hours: u8,
    pub userbits: [u8; 4],
}

/// `struct v4l2_plane`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Plane {
    pub bytesused: u32,
    pub length: u32,
    /// `m.mem_offset` (the union is 8 bytes: `unsigned long userptr`).
    pub m: u64,
    pub data_offset: u32,
    pub reserved: [u32; 11],
}

/// `struct v4l2_buffer`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Buffer {
    pub index: u32,
    pub type_: u32,
    pub bytesused: u32,
    pub flags: u32,
    pub field: u32,
    pub timestamp: libc::timeval,
    pub timecode: Timecode,
    pub sequence: u32,
    pub memory: u32,
    /// `m.offset` (single-planar, low 32 bits) or `m.planes` (multiplanar).
    pub m: u64,
    pub length: u32,
    pub reserved2: u32,
    pub request_fd: i32,
}

impl Buffer {
    /// A zeroed MMAP buffer descriptor of queue `type_`.
    pub fn new(type_: u32, index: u32) -> Self {
        Self {
            index,
            type_,
            bytesused: 0,
            flags: 0,
            field: 0,
            timestamp: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            timecode: Timecode::default(),
            sequence: 0,
            memory: MEMORY_MMAP,
            m: 0,
            length: 0,
            reserved2: 0,
            request_fd: 0,
        }
    }
}

/// `struct v4l2_encoder_cmd` / `struct v4l2_decoder_cmd` share this head;
/// the union is sized for the larger decoder command.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct EncoderCmd {
    pub cmd: u32,
    pub flags: u32,
    pub raw: [u32; 8],
}

/// `struct v4l2_decoder_cmd`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct DecoderCmd {
    pub cmd: u32,
    pub flags: u32,
    pub raw: [u32; 16],
}

/// `struct v4l2_control`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Control {
    pub id: u32,
    pub value: i32,
}

/// `struct v4l2_streamparm` with the `output` member spelled out.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StreamParm {
    pub type_: u32,
    pub capability: u32,
    pub mode: u32,
    pub timeperframe_num: u32,
    pub timeperframe_den: u32,
    pub rest: [u32; 46],
}

impl StreamParm {
    /// Output parameters with frame interval `num/den` seconds.
    pub fn output(type_: u32, num: u32, den: u32) -> Self {
        Self {
            type_,
            capability: 0,
            mode: 0,
            timeperframe_num: num,
            timeperframe_den: den,
            rest: [0; 46],
        }
    }
}

const _: () = {
    assert!(size_of::<Capability>() == 104);
    assert!(size_of::<FmtDesc>() == 64);
    assert!(size_of::<Format>() == 208);
    assert!(size_of::<PixFormat>() == 48);
    assert!(size_of::<PixFormatMplane>() == 192);
    assert!(size_of::<PlanePixFormat>() == 20);
    assert!(size_of::<RequestBuffers>() == 20);
    assert!(size_of::<Plane>() == 64);
    assert!(size_of::<EncoderCmd>() == 40);
    assert!(size_of::<DecoderCmd>() == 72);
    assert!(size_of::<Control>() == 8);
    assert!(size_of::<StreamParm>() == 204);
};
#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<Buffer>() == 88);

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;
const fn ioc<T>(dir: u32, nr: u32) -> u32 {
    (dir << 30) | ((size_of::<T>() as u32) << 16) | ((b'V' as u32) << 8) | nr
}

/// `VIDIOC_QUERYCAP`.
pub const VIDIOC_QUERYCAP: u32 = ioc::<Capability>(IOC_READ, 0);
/// `VIDIOC_ENUM_FMT`.
pub const VIDIOC_ENUM_FMT: u32 = ioc::<FmtDesc>(IOC_READ | IOC_WRITE, 2);
/// `VIDIOC_G_FMT`.
pub const VIDIOC_G_FMT: u32 = ioc::<Format>(IOC_READ | IOC_WRITE, 4);
/// `VIDIOC_S_FMT`.
pub const VIDIOC_S_FMT: u32 = ioc::<Format>(IOC_READ | IOC_WRITE, 5);
/// `VIDIOC_REQBUFS`.
pub const VIDIOC_REQBUFS: u32 = ioc::<RequestBuffers>(IOC_READ | IOC_WRITE, 8);
/// `VIDIOC_QUERYBUF`.
pub const VIDIOC_QUERYBUF: u32 = ioc::<Buffer>(IOC_READ | IOC_WRITE, 9);
/// `VIDIOC_QBUF`.
pub const VIDIOC_QBUF: u32 = ioc::<Buffer>(IOC_READ | IOC_WRITE, 15);
/// `VIDIOC_DQBUF`.
pub const VIDIOC_DQBUF: u32 = ioc::<Buffer>(IOC_READ | IOC_WRITE, 17);
/// `VIDIOC_STREAMON`.
pub const VIDIOC_STREAMON: u32 = ioc::<i32>(IOC_WRITE, 18);
/// `VIDIOC_STREAMOFF`.
pub const VIDIOC_STREAMOFF: u32 = ioc::<i32>(IOC_WRITE, 19);
/// `VIDIOC_S_PARM`.
pub const VIDIOC_S_PARM: u32 = ioc::<StreamParm>(IOC_READ | IOC_WRITE, 22);
/// `VIDIOC_S_CTRL`.
pub const VIDIOC_S_CTRL: u32 = ioc::<Control>(IOC_READ | IOC_WRITE, 28);
/// `VIDIOC_ENCODER_CMD`.
pub const VIDIOC_ENCODER_CMD: u32 = ioc::<EncoderCmd>(IOC_READ | IOC_WRITE, 77);
/// `VIDIOC_DECODER_CMD`.
pub const VIDIOC_DECODER_CMD: u32 = ioc::<DecoderCmd>(IOC_READ | IOC_WRITE, 96);

/// Issues ioctl `request` with argument `arg`, retrying on `EINTR`.
///
/// # Safety
/// `T` must be the exact argument type the kernel expects for `request`
/// (the request number encodes its size, see the constants above).
pub unsafe fn ioctl<T>(fd: BorrowedFd<'_>, request: u32, arg: &mut T) -> std::io::Result<()> {
    loop {
        // SAFETY: `arg` is a valid, exclusively borrowed `T` for the call and
        // the caller guarantees `T` matches `request`.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg as *mut T) };
        if rc >= 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        // Values printed by a C program including <linux/videodev2.h> on x86_64.
        assert_eq!(VIDIOC_QUERYCAP, 0x8068_5600);
        assert_eq!(VIDIOC_ENUM_FMT, 0xc040_5602);
        assert_eq!(VIDIOC_S_FMT, 0xc0d0_5605);
        assert_eq!(VIDIOC_G_FMT, 0xc0d0_5604);
        assert_eq!(VIDIOC_REQBUFS, 0xc014_5608);
        assert_eq!(VIDIOC_QUERYBUF, 0xc058_5609);
        assert_eq!(VIDIOC_QBUF, 0xc058_560f);
        assert_eq!(VIDIOC_DQBUF, 0xc058_5611);
        assert_eq!(VIDIOC_STREAMON, 0x4004_5612);
        assert_eq!(VIDIOC_STREAMOFF, 0x4004_5613);
        assert_eq!(VIDIOC_S_PARM, 0xc0cc_5616);
        assert_eq!(VIDIOC_S_CTRL, 0xc008_561c);
        assert_eq!(VIDIOC_ENCODER_CMD, 0xc028_564d);
        assert_eq!(VIDIOC_DECODER_CMD, 0xc048_5660);
    }

    #[test]
    fn fourcc_round_trips() {
        assert_eq!(PIX_FMT_H264, 0x3436_3248);
        assert_eq!(fourcc_str(PIX_FMT_FWHT), "FWHT");
    }
}
