//! Encoder threads must never run at a real-time policy, even as root:
//! SVT-AV1 asks for `SCHED_FIFO` 99 for its workers whenever it may, which
//! would starve capture threads. Only meaningful as root (skipped, with a
//! note, otherwise). Needs `cargo build --workspace` (the svtav1 plugin).

use s6_codec_abi::{
    EncoderConfig, EntryFn, ErrorBuf, Frame, Packet, PixelFormat, Session, ENTRY_SYMBOL, STATUS_OK,
};
use s6_edge::plugin_host::{Backend, EncoderSettings};
use std::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};

const BIN: &str = env!("CARGO_BIN_EXE_s6-edge");
const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;

fn svtav1_plugin() -> PathBuf {
    let p = Path::new(BIN)
        .parent()
        .expect("binary directory")
        .join("libs6_codec_svtav1.so");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace` before `cargo test`",
        p.display()
    );
    p
}

/// One thread of this process with a real-time policy.
#[derive(Debug)]
#[allow(dead_code)] // fields are read through Debug in assertion messages
struct RtThread {
    tid: String,
    comm: String,
    policy: u32,
    rt_priority: u32,
}

/// Every thread of this process at `SCHED_FIFO` (1) or `SCHED_RR` (2), read
/// from `/proc/self/task/*/stat`: `rt_priority` is field 40 and `policy`
/// field 41, counted after the command name, which sits in parentheses and
/// may itself contain spaces or parentheses (hence the last `)`).
fn realtime_threads() -> Vec<RtThread> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").expect("list /proc/self/task") {
        let entry = entry.expect("task entry");
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue; // the thread exited meanwhile
        };
        let open = stat.find('(').expect("comm start");
        let close = stat.rfind(')').expect("comm end");
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // fields[0] is field 3 (state).
        let rt_priority: u32 = fields[40 - 3].parse().expect("rt_priority");
        let policy: u32 = fields[41 - 3].parse().expect("policy");
        if policy == 1 || policy == 2 {
            out.push(RtThread {
                tid: entry.file_name().to_string_lossy().into_owned(),
                comm: stat[open + 1..close].to_string(),
                policy,
                rt_priority,
            });
        }
    }
    out
}

fn gray_frame() -> Vec<u8> {
    vec![128u8; (WIDTH * HEIGHT * 3 / 2) as usize]
}

/// Control experiment: opens an SVT-AV1 session straight through the C ABI,
/// bypassing the host's guard, on a thread that keeps `CAP_SYS_NICE`, and
/// counts the real-time threads while it is open.
fn realtime_threads_without_guard(path: &Path) -> usize {
    unsafe extern "C" fn ignore(_user: *mut c_void, _packet: *const Packet) {}
    // SAFETY: loading the workspace's own plugin.
    let lib = unsafe { libloading::Library::new(path) }.expect("dlopen svtav1");
    // SAFETY: the ABI declares the entry symbol with this signature.
    let entry = unsafe { lib.get::<EntryFn>(ENTRY_SYMBOL) }.expect("entry symbol");
    // SAFETY: the entry returns the plugin's static table (ABI checked by the host tests).
    let table = unsafe { &*entry() };
    let config = EncoderConfig {
        struct_size: std::mem::size_of::<EncoderConfig>() as u32,
        width: WIDTH,
        height: HEIGHT,
        fps_num: 30,
        fps_den: 1,
        pixel_format: PixelFormat::I420 as u32,
        gop: 2,
        crf: -1,
        preset: -1,
        threads: 0,
        bitrate_kbps: 0,
        device: std::ptr::null(),
        options: std::ptr::null(),
    };
    let mut storage = [0 as c_char; 512];
    let mut err = ErrorBuf {
        ptr: storage.as_mut_ptr(),
        cap: storage.len(),
    };
    let mut session: *mut Session = std::ptr::null_mut();
    // SAFETY: valid config, out pointer and error buffer for the call.
    let status = unsafe { (table.open)(&config, &mut session, &mut err) };
    assert_eq!(status, STATUS_OK, "unguarded open failed");
    let data = gray_frame();
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let frame = Frame {
        pixel_format: PixelFormat::I420 as u32,
        width: WIDTH,
        height: HEIGHT,
        plane_count: 3,
        planes: [
            data.as_ptr(),
            data[w * h..].as_ptr(),
            data[w * h + w * h / 4..].as_ptr(),
            std::ptr::null(),
        ],
        strides: [WIDTH, WIDTH / 2, WIDTH / 2, 0],
        pts: 0,
        force_keyframe: 0,
    };
    // SAFETY: open session, a frame pointing into `data`, a no-op sink.
    let status = unsafe { (table.encode)(session, &frame, ignore, std::ptr::null_mut(), &mut err) };
    assert_eq!(status, STATUS_OK, "unguarded encode failed");
    let realtime = realtime_threads();
    eprintln!("without the guard: {realtime:?}");
    // SAFETY: the session came from `open` and is closed once.
    unsafe { (table.close)(session) };
    // Keep the library mapped: the process ends soon anyway.
    std::mem::forget(lib);
    realtime.len()
}

#[test]
fn svtav1_encoder_threads_never_run_realtime_even_as_root() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: only meaningful as root (non-root cannot use SCHED_FIFO anyway)");
        return;
    }
    let path = svtav1_plugin();
    let backend = Backend::load(&path).expect("load svtav1");

    // Through the host, in an encoder thread, as the recorder does it.
    let seen = std::thread::spawn(move || {
        let mut session = backend
            .open(WIDTH, HEIGHT, 30, 1, &EncoderSettings::default())
            .expect("open svtav1 through the host");
        let mut packets = Vec::new();
        let frame = gray_frame();
        for pts in 0..5 {
            session
                .encode(&frame, pts, false, &mut packets)
                .expect("encode");
        }
        // Checked while the encoder's worker threads are alive and busy.
        let realtime = realtime_threads();
        session.flush(&mut packets).expect("flush");
        assert_eq!(packets.len(), 5);
        realtime
    })
    .join()
    .expect("encoder thread");
    assert!(
        seen.is_empty(),
        "threads at a real-time policy while encoding: {seen:?}"
    );

    // Control: the same encoder without the guard must go real-time here,
    // or the assertion above proves nothing.
    let may_go_realtime = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_NICE,
    )
    .unwrap_or(false);
    let unguarded = std::thread::spawn(move || realtime_threads_without_guard(&path))
        .join()
        .expect("control thread");
    if may_go_realtime {
        assert!(
            unguarded > 0,
            "SVT-AV1 created no real-time thread even with CAP_SYS_NICE: the control failed"
        );
    } else {
        eprintln!("this root has no CAP_SYS_NICE: control skipped ({unguarded} real-time threads)");
    }
    assert!(
        realtime_threads().is_empty(),
        "real-time threads left after the control session closed"
    );
}
