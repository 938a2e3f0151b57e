//! Probes the plugin through its exported C table. Without the NVIDIA
//! driver the probe must answer "unavailable" with the precise reason.

use s6_codec_abi::{
    EncoderConfig, ErrorBuf, PixelFormat, ABI_VERSION, STATUS_OK, STATUS_UNAVAILABLE,
};
use std::ffi::{c_char, CStr};
use std::time::{Duration, Instant};

fn config() -> EncoderConfig {
    EncoderConfig {
        struct_size: std::mem::size_of::<EncoderConfig>() as u32,
        width: 640,
        height: 480,
        fps_num: 30,
        fps_den: 1,
        pixel_format: PixelFormat::Nv12 as u32,
        gop: 30,
        crf: -1,
        preset: -1,
        threads: 0,
        bitrate_kbps: 0,
        device: std::ptr::null(),
        options: std::ptr::null(),
    }
}

fn probe(cfg: &EncoderConfig) -> (i32, String) {
    // SAFETY: the entry returns the plugin's static table.
    let table = unsafe { &*s6_codec_nvenc::s6_codec_plugin_entry() };
    assert_eq!(table.abi_version, ABI_VERSION);
    let mut storage = [0 as c_char; 512];
    let mut err = ErrorBuf {
        ptr: storage.as_mut_ptr(),
        cap: storage.len(),
    };
    // SAFETY: valid config and error buffer.
    let status = unsafe { (table.probe)(cfg, &mut err) };
    // SAFETY: NUL-terminated by the plugin; zeroed buffer otherwise.
    let msg = unsafe { CStr::from_ptr(storage.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    (status, msg)
}

fn have(lib: &str) -> bool {
    // SAFETY: loading a system library only to check it exists.
    unsafe { libloading::Library::new(lib) }.is_ok()
}

#[test]
fn table_describes_an_h264_hardware_backend() {
    // SAFETY: static table and strings.
    let t = unsafe { &*s6_codec_nvenc::s6_codec_plugin_entry() };
    assert_eq!(unsafe { CStr::from_ptr(t.name) }.to_str().unwrap(), "nvenc");
    assert_eq!(t.codec, s6_codec_abi::CodecId::H264 as u32);
    assert_eq!(t.kind, s6_codec_abi::BackendKind::Hardware as u32);
    assert_eq!(t.preferred_input, PixelFormat::Nv12 as u32);
}

#[test]
fn probe_reports_the_missing_driver_precisely() {
    let started = Instant::now();
    let (status, msg) = probe(&config());
    println!("nvenc probe: status {status}: {msg}");
    assert!(started.elapsed() < Duration::from_secs(20));
    if !have("libcuda.so.1") {
        assert_eq!(status, STATUS_UNAVAILABLE);
        assert!(
            msg.starts_with("no NVIDIA driver: libcuda.so.1 not found"),
            "{msg}"
        );
    } else if !have("libnvidia-encode.so.1") {
        assert_eq!(status, STATUS_UNAVAILABLE);
        assert!(msg.starts_with("libnvidia-encode.so.1 not found"), "{msg}");
    } else {
        assert!(
            status == STATUS_OK || (status == STATUS_UNAVAILABLE && !msg.is_empty()),
            "{status} {msg}"
        );
    }
}

#[test]
fn probe_rejects_non_nv12_input_and_bad_options() {
    let mut cfg = config();
    cfg.pixel_format = PixelFormat::I420 as u32;
    let (status, msg) = probe(&cfg);
    assert_eq!(status, STATUS_UNAVAILABLE);
    assert!(msg.contains("NV12"), "{msg}");
    let mut cfg = config();
    cfg.options = c"preset=p9".as_ptr();
    let (status, msg) = probe(&cfg);
    assert_eq!(status, s6_codec_abi::STATUS_ERROR);
    assert!(msg.contains("p1..p7"), "{msg}");
}
