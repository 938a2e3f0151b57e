//! A tiny host for the plugin tests: drives the `PluginTable` returned by the
//! exported entry symbol exactly as the s6-edge host does, and writes IVF.
#![allow(dead_code)]

use s6_codec_abi::{EncoderConfig, ErrorBuf, Frame, Packet, PixelFormat, PluginTable, Session};
use std::ffi::{c_char, c_void, CStr, CString};

/// A packet copied out of the plugin's callback.
#[derive(Clone, Debug)]
pub struct Pkt {
    pub data: Vec<u8>,
    pub pts: i64,
    pub dts: i64,
    pub keyframe: bool,
}

/// The table, fetched through the exported entry function.
pub fn table() -> &'static PluginTable {
    let ptr = s6_codec_svtav1::s6_codec_plugin_entry();
    // SAFETY: the entry returns a pointer to a static table.
    let table = unsafe { &*ptr };
    assert_eq!(table.abi_version, s6_codec_abi::ABI_VERSION);
    table
}

unsafe extern "C" fn collect(user: *mut c_void, packet: *const Packet) {
    let out = unsafe { &mut *(user as *mut Vec<Pkt>) };
    let p = unsafe { &*packet };
    out.push(Pkt {
        data: unsafe { std::slice::from_raw_parts(p.data, p.len) }.to_vec(),
        pts: p.pts,
        dts: p.dts,
        keyframe: p.keyframe != 0,
    });
}

/// An error buffer and its storage.
pub struct Err {
    storage: Vec<c_char>,
    pub buf: ErrorBuf,
}

impl Err {
    pub fn new() -> Box<Self> {
        let mut e = Box::new(Self {
            storage: vec![0; 512],
            buf: ErrorBuf {
                ptr: std::ptr::null_mut(),
                cap: 512,
            },
        });
        e.buf.ptr = e.storage.as_mut_ptr();
        e
    }
    pub fn message(&self) -> String {
        unsafe { CStr::from_ptr(self.storage.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Owned config (keeps the options string alive).
pub struct Config {
    pub raw: EncoderConfig,
    _options: Option<CString>,
}

pub fn config(w: u32, h: u32, gop: u32, threads: u32, options: Option<&str>) -> Config {
    let opts = options.map(|o| CString::new(o).unwrap());
    Config {
        raw: EncoderConfig {
            struct_size: std::mem::size_of::<EncoderConfig>() as u32,
            width: w,
            height: h,
            fps_num: 30,
            fps_den: 1,
            pixel_format: PixelFormat::I420 as u32,
            gop,
            crf: -1,
            preset: -1,
            threads,
            bitrate_kbps: 0,
            device: std::ptr::null(),
            options: opts.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        },
        _options: opts,
    }
}

/// An open session.
pub struct Enc {
    pub session: *mut Session,
}

impl Enc {
    pub fn open(cfg: &Config) -> Result<Self, (i32, String)> {
        let t = table();
        let mut session = std::ptr::null_mut();
        let mut err = Err::new();
        let status = unsafe { (t.open)(&cfg.raw, &mut session, &mut err.buf) };
        if status != 0 {
            return Err((status, err.message()));
        }
        Ok(Self { session })
    }

    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<Pkt>) -> Result<(), (i32, String)> {
        let mut err = Err::new();
        let status = unsafe {
            (table().encode)(
                self.session,
                frame,
                collect,
                out as *mut Vec<Pkt> as *mut c_void,
                &mut err.buf,
            )
        };
        if status != 0 {
            return Err((status, err.message()));
        }
        Ok(())
    }

    pub fn flush(&mut self, out: &mut Vec<Pkt>) -> Result<(), (i32, String)> {
        let mut err = Err::new();
        let status = unsafe {
            (table().flush)(
                self.session,
                collect,
                out as *mut Vec<Pkt> as *mut c_void,
                &mut err.buf,
            )
        };
        if status != 0 {
            return Err((status, err.message()));
        }
        Ok(())
    }

    pub fn codec_config(&mut self) -> Result<Vec<u8>, (i32, String)> {
        let mut err = Err::new();
        let mut out: Vec<Pkt> = Vec::new();
        let status = unsafe {
            (table().codec_config)(
                self.session,
                collect,
                &mut out as *mut Vec<Pkt> as *mut c_void,
                &mut err.buf,
            )
        };
        if status != 0 {
            return Err((status, err.message()));
        }
        assert_eq!(out.len(), 1, "codec_config delivers exactly one record");
        Ok(out.remove(0).data)
    }
}

impl Drop for Enc {
    fn drop(&mut self) {
        unsafe { (table().close)(self.session) };
    }
}

/// One I420 picture in three tightly packed planes.
pub struct Picture {
    pub w: u32,
    pub h: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl Picture {
    /// A moving pattern: diagonal gradient scrolling by `i`, a bright box
    /// sliding across, chroma ramps.
    pub fn pattern(w: u32, h: u32, i: u32) -> Self {
        let (wu, hu) = (w as usize, h as usize);
        let (cw, ch) = (wu.div_ceil(2), hu.div_ceil(2));
        let mut y = vec![0u8; wu * hu];
        for r in 0..hu {
            for c in 0..wu {
                let mut v = ((r + c + 3 * i as usize) % 256) as u8;
                let bx = (i as usize * 7) % wu.saturating_sub(32).max(1);
                if c >= bx && c < bx + 32 && r >= hu / 3 && r < hu / 3 + 32 {
                    v = 235;
                }
                y[r * wu + c] = v;
            }
        }
        let u = (0..cw * ch).map(|k| ((k % cw) * 255 / cw) as u8).collect();
        let v = (0..cw * ch)
            .map(|k| (((k / cw) + i as usize) * 255 / ch.max(1)) as u8)
            .collect();
        Self { w, h, y, u, v }
    }

    pub fn frame(&self, pts: i64) -> Frame {
        let cw = self.w.div_ceil(2);
        Frame {
            pixel_format: PixelFormat::I420 as u32,
            width: self.w,
            height: self.h,
            plane_count: 3,
            planes: [
                self.y.as_ptr(),
                self.u.as_ptr(),
                self.v.as_ptr(),
                std::ptr::null(),
            ],
            strides: [self.w, cw, cw, 0],
            pts,
            force_keyframe: 0,
        }
    }
}

/// Writes packets as an IVF file, putting a temporal delimiter OBU back in
/// front of each (the plugin strips them, as MP4 samples require).
pub fn write_ivf(path: &std::path::Path, w: u32, h: u32, packets: &[Pkt]) {
    let mut out = Vec::new();
    out.extend_from_slice(b"DKIF");
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(b"AV01");
    out.extend_from_slice(&(w as u16).to_le_bytes());
    out.extend_from_slice(&(h as u16).to_le_bytes());
    out.extend_from_slice(&30u32.to_le_bytes()); // timebase denominator (fps)
    out.extend_from_slice(&1u32.to_le_bytes()); // timebase numerator
    out.extend_from_slice(&(packets.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(out.len(), 32);
    for p in packets {
        let size = p.data.len() + 2;
        out.extend_from_slice(&(size as u32).to_le_bytes());
        out.extend_from_slice(&(p.pts as u64).to_le_bytes());
        out.extend_from_slice(&[0x12, 0x00]);
        out.extend_from_slice(&p.data);
    }
    std::fs::write(path, out).unwrap();
}

/// Type of the first OBU in `data`.
pub fn first_obu_type(data: &[u8]) -> u8 {
    (data[0] >> 3) & 0x0f
}

/// Number of frames `ffprobe -count_frames` decodes from `path`.
pub fn ffprobe_frames(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "default=nokey=1:noprint_wrappers=1",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("ffprobe output {:?}: {e}", out.stdout))
}

/// Decodes `path` with ffmpeg to the null muxer; returns the decoded frame
/// count from `-progress`, asserting ffmpeg reported no decode error.
pub fn ffmpeg_decode_frames(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i"])
        .arg(path)
        .args(["-f", "null", "-progress", "pipe:1", "-"])
        .output()
        .expect("ffmpeg runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffmpeg complained: {stderr}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("frame="))
        .and_then(|v| v.trim().parse().ok())
        .expect("ffmpeg progress has frame=")
}
