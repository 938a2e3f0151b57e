//! Probes the plugin through its exported C table, as the host does. On a
//! machine without a DRM render node the probe must answer "unavailable"
//! with the precise reason, quickly and without crashing.

use s6_codec_abi::{
    EncoderConfig, ErrorBuf, PixelFormat, ABI_VERSION, STATUS_OK, STATUS_UNAVAILABLE,
};
use std::ffi::{c_char, CStr};
use std::time::{Duration, Instant};

fn config(device: Option<&CStr>) -> EncoderConfig {
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
        device: device.map_or(std::ptr::null(), CStr::as_ptr),
        options: std::ptr::null(),
    }
}

fn probe(cfg: &EncoderConfig) -> (i32, String) {
    let table = s6_codec_vaapi::s6_codec_plugin_entry();
    // SAFETY: the entry returns a pointer to the plugin's static table.
    let table = unsafe { &*table };
    assert_eq!(table.abi_version, ABI_VERSION);
    let mut storage = [0 as c_char; 512];
    let mut err = ErrorBuf {
        ptr: storage.as_mut_ptr(),
        cap: storage.len(),
    };
    // SAFETY: valid config and error buffer for the duration of the call.
    let status = unsafe { (table.probe)(cfg, &mut err) };
    // SAFETY: the plugin NUL-terminates what it writes; the buffer starts zeroed.
    let msg = unsafe { CStr::from_ptr(storage.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    (status, msg)
}

#[test]
fn table_describes_an_h264_hardware_backend() {
    // SAFETY: static table.
    let t = unsafe { &*s6_codec_vaapi::s6_codec_plugin_entry() };
    // SAFETY: static NUL-terminated strings.
    assert_eq!(unsafe { CStr::from_ptr(t.name) }.to_str().unwrap(), "vaapi");
    assert_eq!(t.codec, s6_codec_abi::CodecId::H264 as u32);
    assert_eq!(t.kind, s6_codec_abi::BackendKind::Hardware as u32);
    assert_eq!(t.preferred_input, PixelFormat::Nv12 as u32);
}

#[test]
fn probe_reports_why_it_is_unavailable_without_a_render_node() {
    let started = Instant::now();
    let (status, msg) = probe(&config(None));
    println!("vaapi probe: status {status}: {msg}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "probe took {:?}",
        started.elapsed()
    );
    let has_node =
        !s6_codec_vaapi::device::render_nodes(std::path::Path::new("/dev/dri")).is_empty();
    if has_node {
        // A real GPU: either it works or it says why.
        assert!(
            status == STATUS_OK || (status == STATUS_UNAVAILABLE && !msg.is_empty()),
            "{status} {msg}"
        );
    } else {
        assert_eq!(status, STATUS_UNAVAILABLE);
        assert_eq!(
            msg,
            "no DRM render node (/dev/dri/renderD*): no GPU or driver not loaded"
        );
    }
}

#[test]
fn probe_on_a_missing_configured_device_names_it() {
    let (status, msg) = probe(&config(Some(c"/nonexistent/renderD128")));
    println!("vaapi probe (device override): {msg}");
    assert_eq!(status, STATUS_UNAVAILABLE);
    assert!(
        msg.starts_with("cannot open /nonexistent/renderD128:"),
        "{msg}"
    );
}

#[test]
fn probe_rejects_formats_it_cannot_take() {
    let mut cfg = config(None);
    cfg.pixel_format = PixelFormat::Rgb24 as u32;
    let (status, msg) = probe(&cfg);
    assert_eq!(status, STATUS_UNAVAILABLE);
    assert!(msg.contains("NV12 or I420"), "{msg}");
}
