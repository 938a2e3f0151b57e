//! A V4L2 memory-to-memory device: both queues, MMAP buffers, QBUF/DQBUF
//! and poll. Shared by the encoder and the test decoder.

use crate::layout::{plane_map, PlaneLoc};
use crate::select::DeviceFacts;
use crate::sys;
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

/// Opens a device node non-blocking (waits go through [`M2m::wait`]).
pub fn open_node(path: &str) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Formats of one queue type via VIDIOC_ENUM_FMT: (fourcc, flags).
pub fn enum_formats(fd: BorrowedFd<'_>, type_: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for index in 0..64 {
        let mut d = sys::FmtDesc {
            index,
            type_,
            ..Default::default()
        };
        // SAFETY: FmtDesc is `struct v4l2_fmtdesc`, the type of VIDIOC_ENUM_FMT.
        if unsafe { sys::ioctl(fd, sys::VIDIOC_ENUM_FMT, &mut d) }.is_err() {
            break;
        }
        out.push((d.pixelformat, d.flags));
    }
    out
}

/// QUERYCAP + ENUM_FMT of the node at `path`.
pub fn query(path: &str) -> Result<DeviceFacts, String> {
    let file = open_node(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut cap = sys::Capability::default();
    // SAFETY: Capability is `struct v4l2_capability`, the type of VIDIOC_QUERYCAP.
    unsafe { sys::ioctl(file.as_fd(), sys::VIDIOC_QUERYCAP, &mut cap) }
        .map_err(|e| format!("VIDIOC_QUERYCAP failed: {e}"))?;
    let caps = if cap.capabilities & sys::CAP_DEVICE_CAPS != 0 {
        cap.device_caps
    } else {
        cap.capabilities
    };
    let mplane = caps & sys::CAP_VIDEO_M2M_MPLANE != 0;
    let (out_t, cap_t) = queue_types(mplane);
    let m2m = caps & (sys::CAP_VIDEO_M2M | sys::CAP_VIDEO_M2M_MPLANE) != 0;
    Ok(DeviceFacts {
        path: path.to_string(),
        driver: cstr(&cap.driver),
        card: cstr(&cap.card),
        caps,
        output_formats: if m2m {
            enum_formats(file.as_fd(), out_t)
        } else {
            Vec::new()
        },
        capture_formats: if m2m {
            enum_formats(file.as_fd(), cap_t)
        } else {
            Vec::new()
        },
    })
}

/// Lists `/dev/video*` nodes in numeric order.
pub fn video_nodes() -> Vec<String> {
    let mut nodes: Vec<(u32, String)> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("video")?.parse::<u32>().ok()?;
            Some((n, format!("/dev/{name}")))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, p)| p).collect()
}

/// (OUTPUT, CAPTURE) queue types for the single- or multiplanar API.
pub fn queue_types(mplane: bool) -> (u32, u32) {
    if mplane {
        (
            sys::BUF_TYPE_VIDEO_OUTPUT_MPLANE,
            sys::BUF_TYPE_VIDEO_CAPTURE_MPLANE,
        )
    } else {
        (sys::BUF_TYPE_VIDEO_OUTPUT, sys::BUF_TYPE_VIDEO_CAPTURE)
    }
}

/// A negotiated format.
#[derive(Clone, Debug)]
pub struct Negotiated {
    /// Width as the driver set it.
    pub width: u32,
    /// Height as the driver set it (may be padded).
    pub height: u32,
    /// Fourcc.
    pub fourcc: u32,
    /// (bytesperline, sizeimage) per V4L2 plane.
    pub planes: Vec<(u32, u32)>,
}

impl Negotiated {
    /// Plane map of a raw format.
    pub fn plane_map(&self) -> Result<Vec<PlaneLoc>> {
        let bpl: Vec<u32> = self.planes.iter().map(|p| p.0).collect();
        plane_map(self.fourcc, self.height, &bpl)
    }
}

/// One mmapped V4L2 buffer plane.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len come from a successful mmap and are unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

// SAFETY: the mapping is plain memory owned by this value.
unsafe impl Send for Mapping {}

/// One queue's MMAP buffers.
pub struct Queue {
    type_: u32,
    mplane: bool,
    buffers: Vec<Vec<Mapping>>,
}

/// A dequeued buffer.
#[derive(Clone, Debug)]
pub struct Dequeued {
    /// Buffer index.
    pub index: u32,
    /// Bytes used per plane.
    pub bytesused: Vec<usize>,
    /// `V4L2_BUF_FLAG_*`.
    pub flags: u32,
    /// Timestamp in microseconds (we store the pts there).
    pub timestamp_us: i64,
    /// Driver sequence number.
    pub sequence: u32,
}

/// An open M2M device with its two queues.
pub struct M2m {
    file: File,
    /// Device path (for messages).
    pub path: String,
    /// Multiplanar API.
    pub mplane: bool,
    /// OUTPUT queue (raw frames for an encoder).
    pub output: Option<Queue>,
    /// CAPTURE queue (compressed data for an encoder).
    pub capture: Option<Queue>,
}

impl M2m {
    /// Opens `path` using the single- or multiplanar API.
    pub fn open(path: &str, mplane: bool) -> Result<Self> {
        let file = open_node(path).with_context(|| format!("cannot open {path}"))?;
        Ok(Self {
            file,
            path: path.to_string(),
            mplane,
            output: None,
            capture: None,
        })
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// (OUTPUT, CAPTURE) queue types.
    pub fn types(&self) -> (u32, u32) {
        queue_types(self.mplane)
    }

    /// VIDIOC_S_FMT on queue `type_`; returns what the driver chose.
    pub fn set_format(
        &self,
        type_: u32,
        width: u32,
        height: u32,
        fourcc: u32,
        sizeimage: u32,
    ) -> Result<Negotiated> {
        let mut f = sys::Format::new(type_);
        if self.mplane {
            let mut pix = sys::PixFormatMplane {
                width,
                height,
                pixelformat: fourcc,
                field: sys::FIELD_NONE,
                num_planes: 1,
                ..Default::default()
            };
            pix.plane_fmt[0].sizeimage = sizeimage;
            f.fmt.pix_mp = pix;
        } else {
            f.fmt.pix = sys::PixFormat {
                width,
                height,
                pixelformat: fourcc,
                field: sys::FIELD_NONE,
                sizeimage,
                ..Default::default()
            };
        }
        // SAFETY: Format is `struct v4l2_format`, the type of VIDIOC_S_FMT.
        unsafe { sys::ioctl(self.fd(), sys::VIDIOC_S_FMT, &mut f) }.with_context(|| {
            format!(
                "{}: VIDIOC_S_FMT {} {width}x{height}",
                self.path,
                sys::fourcc_str(fourcc)
            )
        })?;
        let n = self.parse_format(&f);
        if n.fourcc != fourcc {
            bail!(
                "{}: asked for {}, driver chose {}",
                self.path,
                sys::fourcc_str(fourcc),
                sys::fourcc_str(n.fourcc)
            );
        }
        Ok(n)
    }

    /// VIDIOC_G_FMT on queue `type_`.
    pub fn get_format(&self, type_: u32) -> Result<Negotiated> {
        let mut f = sys::Format::new(type_);
        // SAFETY: Format is `struct v4l2_format`, the type of VIDIOC_G_FMT.
        unsafe { sys::ioctl(self.fd(), sys::VIDIOC_G_FMT, &mut f) }
            .with_context(|| format!("{}: VIDIOC_G_FMT type {type_}", self.path))?;
        Ok(self.parse_format(&f))
    }

    fn parse_format(&self, f: &sys::Format) -> Negotiated {
        if self.mplane {
            // SAFETY: the driver filled the `pix_mp` member for a multiplanar type.
            let p = unsafe { f.fmt.pix_mp };
            let count = usize::from(p.num_planes).clamp(1, 8);
            Negotiated {
                width: p.width,
                height: p.height,
                fourcc: p.pixelformat,
                planes: p.plane_fmt[..count]
                    .iter()
                    .map(|pl| (pl.bytesperline, pl.sizeimage))
                    .collect(),
            }
        } else {
            // SAFETY: the driver filled the `pix` member for a single-planar type.
            let p = unsafe { f.fmt.pix };
            Negotiated {
                width: p.width,
                height: p.height,
                fourcc: p.pixelformat,
                planes: vec![(p.bytesperline, p.sizeimage)],
            }
        }
    }

    /// Sets a control; `Ok(false)` when the device does not have it.
    pub fn set_control(&self, id: u32, value: i32) -> Result<bool> {
        let mut c = sys::Control { id, value };
        // SAFETY: Control is `struct v4l2_control`, the type of VIDIOC_S_CTRL.
        match unsafe { sys::ioctl(self.fd(), sys::VIDIOC_S_CTRL, &mut c) } {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOTTY)) => {
                Ok(false)
            }
            Err(e) => {
                Err(e).with_context(|| format!("{}: VIDIOC_S_CTRL {id:#x}={value}", self.path))
            }
        }
    }

    /// Sets the OUTPUT frame interval (best effort; many encoders ignore it).
    pub fn set_frame_rate(&self, num: u32, den: u32) {
        let mut p = sys::StreamParm::output(self.types().0, den.max(1), num.max(1));
        // SAFETY: StreamParm mirrors `struct v4l2_streamparm` (type + 200-byte union).
        let _ = unsafe { sys::ioctl(self.fd(), sys::VIDIOC_S_PARM, &mut p) };
    }

    /// VIDIOC_REQBUFS + QUERYBUF + mmap of `count` buffers on queue `type_`.
    pub fn alloc(&self, type_: u32, count: u32) -> Result<Queue> {
        let mut req = sys::RequestBuffers {
            count,
            type_,
            memory: sys::MEMORY_MMAP,
            ..Default::default()
        };
        // SAFETY: RequestBuffers is `struct v4l2_requestbuffers`, the type of VIDIOC_REQBUFS.
        unsafe { sys::ioctl(self.fd(), sys::VIDIOC_REQBUFS, &mut req) }
            .with_context(|| format!("{}: VIDIOC_REQBUFS type {type_}", self.path))?;
        if req.count == 0 {
            bail!(
                "{}: the driver granted no buffers on queue type {type_}",
                self.path
            );
        }
        let mut buffers = Vec::new();
        for index in 0..req.count {
            let mut planes = [sys::Plane::default(); 8];
            let mut b = sys::Buffer::new(type_, index);
            if self.mplane {
                b.m = planes.as_mut_ptr() as u64;
                b.length = planes.len() as u32;
            }
            // SAFETY: Buffer is `struct v4l2_buffer`; for multiplanar types
            // `m.planes` points at 8 valid `struct v4l2_plane` that outlive the call.
            unsafe { sys::ioctl(self.fd(), sys::VIDIOC_QUERYBUF, &mut b) }
                .with_context(|| format!("{}: VIDIOC_QUERYBUF {index}", self.path))?;
            let spans: Vec<(u64, usize)> = if self.mplane {
                planes[..b.length.min(8) as usize]
                    .iter()
                    .map(|p| (p.m & 0xffff_ffff, p.length as usize))
                    .collect()
            } else {
                vec![(b.m & 0xffff_ffff, b.length as usize)]
            };
            let mut maps = Vec::new();
            for (offset, len) in spans {
                // SAFETY: mapping a driver buffer at the offset QUERYBUF
                // returned, with its length; checked for MAP_FAILED below.
                let ptr = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        len,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_SHARED,
                        std::os::fd::AsRawFd::as_raw_fd(&self.file),
                        offset as libc::off_t,
                    )
                };
                if ptr == libc::MAP_FAILED {
                    return Err(std::io::Error::last_os_error())
                        .with_context(|| format!("{}: mmap buffer {index}", self.path));
                }
                maps.push(Mapping {
                    ptr: ptr.cast(),
                    len,
                });
            }
            buffers.push(maps);
        }
        Ok(Queue {
            type_,
            mplane: self.mplane,
            buffers,
        })
    }

    /// Mutable views of the planes of buffer `index` of `queue`.
    pub fn planes_mut(queue: &mut Queue, index: u32) -> Vec<&mut [u8]> {
        queue.buffers[index as usize]
            .iter_mut()
            // SAFETY: the mapping is valid for `len` bytes for as long as the
            // queue lives, and the buffer is not queued (owned by user space).
            .map(|m| unsafe { std::slice::from_raw_parts_mut(m.ptr, m.len) })
            .collect()
    }

    /// Read-only views of the first `used[i]` bytes of each plane.
    pub fn planes<'q>(queue: &'q Queue, index: u32, used: &[usize]) -> Vec<&'q [u8]> {
        queue.buffers[index as usize]
            .iter()
            .zip(used)
            // SAFETY: as in `planes_mut`; `used` is clamped to the mapping.
            .map(|(m, &u)| unsafe { std::slice::from_raw_parts(m.ptr, u.min(m.len)) })
            .collect()
    }

    /// Number of buffers in `queue`.
    pub fn count(queue: &Queue) -> u32 {
        queue.buffers.len() as u32
    }

    /// Queues buffer `index` with `bytesused` per plane and timestamp `ts_us`.
    pub fn qbuf(&self, queue: &Queue, index: u32, bytesused: &[usize], ts_us: i64) -> Result<()> {
        let mut planes = [sys::Plane::default(); 8];
        let mut b = sys::Buffer::new(queue.type_, index);
        b.field = sys::FIELD_NONE;
        b.timestamp = libc::timeval {
            tv_sec: (ts_us.div_euclid(1_000_000)) as libc::time_t,
            tv_usec: (ts_us.rem_euclid(1_000_000)) as libc::suseconds_t,
        };
        let n = queue.buffers[index as usize].len();
        if queue.mplane {
            for (i, p) in planes.iter_mut().take(n).enumerate() {
                p.bytesused = bytesused.get(i).copied().unwrap_or(0) as u32;
                p.length = queue.buffers[index as usize][i].len as u32;
            }
            b.m = planes.as_mut_ptr() as u64;
            b.length = n as u32;
        } else {
            b.bytesused = bytesused.first().copied().unwrap_or(0) as u32;
        }
        // SAFETY: Buffer is `struct v4l2_buffer`; `m.planes` (multiplanar)
        // points at `n` valid planes that outlive the call.
        unsafe { sys::ioctl(self.fd(), sys::VIDIOC_QBUF, &mut b) }.with_context(|| {
            format!(
                "{}: VIDIOC_QBUF type {} index {index}",
                self.path, queue.type_
            )
        })
    }

    /// Dequeues a done buffer; `Ok(None)` when none is ready (EAGAIN) or the
    /// queue was drained (EPIPE after the last buffer).
    pub fn dqbuf(&self, queue: &Queue) -> Result<Option<Dequeued>> {
        let mut planes = [sys::Plane::default(); 8];
        let mut b = sys::Buffer::new(queue.type_, 0);
        if queue.mplane {
            b.m = planes.as_mut_ptr() as u64;
            b.length = planes.len() as u32;
        }
        // SAFETY: as in `qbuf`; the driver writes at most `length` planes.
        match unsafe { sys::ioctl(self.fd(), sys::VIDIOC_DQBUF, &mut b) } {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EPIPE)) => {
                return Ok(None)
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("{}: VIDIOC_DQBUF type {}", self.path, queue.type_))
            }
        }
        let bytesused = if queue.mplane {
            planes[..b.length.min(8) as usize]
                .iter()
                .map(|p| (p.bytesused.saturating_sub(p.data_offset)) as usize)
                .collect()
        } else {
            vec![b.bytesused as usize]
        };
        Ok(Some(Dequeued {
            index: b.index,
            bytesused,
            flags: b.flags,
            // `time_t`/`suseconds_t` are 32-bit on some targets.
            #[allow(clippy::useless_conversion)]
            timestamp_us: i64::from(b.timestamp.tv_sec) * 1_000_000
                + i64::from(b.timestamp.tv_usec),
            sequence: b.sequence,
        }))
    }

    /// VIDIOC_STREAMON / STREAMOFF on queue type `type_`.
    pub fn stream(&self, type_: u32, on: bool) -> Result<()> {
        let mut t = type_ as i32;
        let req = if on {
            sys::VIDIOC_STREAMON
        } else {
            sys::VIDIOC_STREAMOFF
        };
        // SAFETY: STREAMON/STREAMOFF take a pointer to the int queue type.
        unsafe { sys::ioctl(self.fd(), req, &mut t) }.with_context(|| {
            format!(
                "{}: VIDIOC_STREAM{} type {type_}",
                self.path,
                if on { "ON" } else { "OFF" }
            )
        })
    }

    /// VIDIOC_ENCODER_CMD.
    pub fn encoder_cmd(&self, cmd: u32) -> Result<()> {
        let mut c = sys::EncoderCmd {
            cmd,
            ..Default::default()
        };
        // SAFETY: EncoderCmd is `struct v4l2_encoder_cmd`.
        unsafe { sys::ioctl(self.fd(), sys::VIDIOC_ENCODER_CMD, &mut c) }
            .with_context(|| format!("{}: VIDIOC_ENCODER_CMD {cmd}", self.path))
    }

    /// VIDIOC_DECODER_CMD.
    pub fn decoder_cmd(&self, cmd: u32) -> Result<()> {
        let mut c = sys::DecoderCmd {
            cmd,
            ..Default::default()
        };
        // SAFETY: DecoderCmd is `struct v4l2_decoder_cmd`.
        unsafe { sys::ioctl(self.fd(), sys::VIDIOC_DECODER_CMD, &mut c) }
            .with_context(|| format!("{}: VIDIOC_DECODER_CMD {cmd}", self.path))
    }

    /// Waits up to `timeout_ms` for the device; returns (capture ready,
    /// output buffer reclaimable).
    pub fn wait(&self, timeout_ms: i32) -> Result<(bool, bool)> {
        let mut p = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&self.file),
            events: libc::POLLIN | libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok((false, false));
            }
            return Err(e).context("poll");
        }
        if p.revents & libc::POLLERR != 0 && p.revents & (libc::POLLIN | libc::POLLOUT) == 0 {
            bail!("{}: device reported POLLERR", self.path);
        }
        Ok((
            p.revents & libc::POLLIN != 0,
            p.revents & libc::POLLOUT != 0,
        ))
    }
}

impl Drop for M2m {
    fn drop(&mut self) {
        let (o, c) = self.types();
        if self.output.is_some() {
            let _ = self.stream(o, false);
        }
        if self.capture.is_some() {
            let _ = self.stream(c, false);
        }
        // Unmap before the fd closes (the kernel keeps buffers alive while mapped).
        self.output = None;
        self.capture = None;
    }
}
