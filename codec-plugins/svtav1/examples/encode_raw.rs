//! Encodes raw I420 frames from a file through the svtav1 plugin's
//! `PluginTable`, the way the s6-edge host drives it, and reports the CPU
//! time (user + sys of the whole process, all SVT threads included).
//!
//! ```text
//! cargo run --release -p s6-codec-svtav1 --example encode_raw -- \
//!     frames.yuv 640 480 [--preset 12] [--crf 30] [--gop 2] [--threads 0] \
//!     [--options "pred-struct=random-access"] [--out packets.obu]
//! ```

use s6_codec_abi::{EncoderConfig, ErrorBuf, Frame, Packet, PixelFormat, PluginTable};
use std::ffi::{c_char, c_void, CStr, CString};
use std::io::Read;

#[derive(Default)]
struct Stats {
    packets: u64,
    keyframes: u64,
    bytes: u64,
    out: Vec<u8>,
    keep: bool,
}

unsafe extern "C" fn on_packet(user: *mut c_void, packet: *const Packet) {
    // SAFETY: `user` is the `Stats` passed below; the packet is valid for the call.
    let (stats, p) = unsafe { (&mut *(user as *mut Stats), &*packet) };
    stats.packets += 1;
    stats.keyframes += u64::from(p.keyframe != 0);
    stats.bytes += p.len as u64;
    if stats.keep {
        // SAFETY: `data` is valid for `len` bytes during the callback.
        stats
            .out
            .extend_from_slice(unsafe { std::slice::from_raw_parts(p.data, p.len) });
    }
}

fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct; RUSAGE_SELF covers all threads.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    // SAFETY: initialised by getrusage (or zeroed).
    let u = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn check(status: i32, err: &[c_char], what: &str) {
    if status != 0 {
        // SAFETY: the plugin NUL-terminates the buffer.
        let msg = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy();
        eprintln!("{what} failed ({status}): {msg}");
        std::process::exit(1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: encode_raw FILE.yuv WIDTH HEIGHT [--preset N] [--crf N] [--gop N] [--threads N] [--options S] [--out F]");
        std::process::exit(2);
    }
    let path = &args[1];
    let width: u32 = args[2].parse().expect("width");
    let height: u32 = args[3].parse().expect("height");
    let (mut preset, mut crf, mut gop, mut threads) = (12, 30, 2, 0);
    let mut options = String::new();
    let mut out_path = None;
    let mut i = 4;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        match args[i].as_str() {
            "--preset" => preset = v.parse().expect("preset"),
            "--crf" => crf = v.parse().expect("crf"),
            "--gop" => gop = v.parse().expect("gop"),
            "--threads" => threads = v.parse().expect("threads"),
            "--options" => options = v.clone(),
            "--out" => out_path = Some(v.clone()),
            other => panic!("unknown flag {other}"),
        }
        i += 2;
    }

    let table: &PluginTable = {
        let ptr = s6_codec_svtav1::s6_codec_plugin_entry();
        // SAFETY: the entry returns a pointer to a static table.
        unsafe { &*ptr }
    };
    let c_options = CString::new(options).expect("options");
    let config = EncoderConfig {
        struct_size: std::mem::size_of::<EncoderConfig>() as u32,
        width,
        height,
        fps_num: 30,
        fps_den: 1,
        pixel_format: PixelFormat::I420 as u32,
        gop,
        crf,
        preset,
        threads,
        bitrate_kbps: 0,
        device: std::ptr::null(),
        options: c_options.as_ptr(),
    };
    let mut err_storage = vec![0 as c_char; 512];
    let mut err = ErrorBuf {
        ptr: err_storage.as_mut_ptr(),
        cap: err_storage.len(),
    };
    let mut session = std::ptr::null_mut();
    // SAFETY: valid config, out-pointer and error buffer.
    let status = unsafe { (table.open)(&config, &mut session, &mut err) };
    check(status, &err_storage, "open");

    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let frame_size = w * h + 2 * cw * ch;
    let mut file = std::fs::File::open(path).expect("open input");
    let mut buf = vec![0u8; frame_size];
    let mut stats = Stats {
        keep: out_path.is_some(),
        ..Stats::default()
    };
    let user = &mut stats as *mut Stats as *mut c_void;
    let mut frames = 0i64;
    while file.read_exact(&mut buf).is_ok() {
        let frame = Frame {
            pixel_format: PixelFormat::I420 as u32,
            width,
            height,
            plane_count: 3,
            planes: [
                buf.as_ptr(),
                buf[w * h..].as_ptr(),
                buf[w * h + cw * ch..].as_ptr(),
                std::ptr::null(),
            ],
            strides: [width, cw as u32, cw as u32, 0],
            pts: frames,
            force_keyframe: 0,
        };
        // SAFETY: session from open; frame planes live in `buf` for the call.
        let status = unsafe { (table.encode)(session, &frame, on_packet, user, &mut err) };
        check(status, &err_storage, "encode");
        frames += 1;
    }
    // SAFETY: as above.
    let status = unsafe { (table.flush)(session, on_packet, user, &mut err) };
    check(status, &err_storage, "flush");
    // SAFETY: session from open, closed once.
    unsafe { (table.close)(session) };
    let cpu = cpu_seconds();
    if let Some(p) = out_path {
        std::fs::write(p, &stats.out).expect("write output");
    }
    println!(
        "frames={frames} packets={} keyframes={} bytes={} cpu_s={cpu:.3} cpu_ms_per_frame={:.3}",
        stats.packets,
        stats.keyframes,
        stats.bytes,
        cpu * 1000.0 / frames.max(1) as f64
    );
}
