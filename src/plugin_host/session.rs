//! A loaded backend and a safe wrapper around one encoder session.

use super::library::{self, LoadedPlugin, PluginInfo};
use super::planes::packed_planes;
use crate::frame::{frame_bytes, EncodedPacket, PixelFormat};
use anyhow::{anyhow, Context};
use s6_codec_abi::{
    BackendKind, CodecId, EncoderConfig, ErrorBuf, Frame, Packet, Session, Status, STATUS_ERROR,
    STATUS_OK, STATUS_PANIC, STATUS_UNAVAILABLE,
};
use std::ffi::{c_char, c_void, CString};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

/// Encoder settings chosen by the user (CLI/config) for one camera.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncoderSettings {
    /// Keyframe interval in frames.
    pub gop: u32,
    /// Constant-quality factor; `None` = plugin default.
    pub crf: Option<i32>,
    /// Speed preset; `None` = plugin default.
    pub preset: Option<i32>,
    /// Encoder worker threads; 0 = plugin default.
    pub threads: u32,
    /// Target bitrate for rate-controlled hardware; 0 = plugin default.
    pub bitrate_kbps: u32,
    /// Device node (e.g. `/dev/video11`); `None` = auto.
    pub device: Option<String>,
    /// Backend-specific `key=value;key=value` options.
    pub options: String,
}

impl Default for EncoderSettings {
    /// GOP 2 (what training loaders expect); everything else plugin defaults.
    fn default() -> Self {
        Self {
            gop: 2,
            crf: None,
            preset: None,
            threads: 0,
            bitrate_kbps: 0,
            device: None,
            options: String::new(),
        }
    }
}

/// The C strings an [`EncoderConfig`] points into; must outlive its use.
pub(crate) struct ConfigStrings {
    device: Option<CString>,
    options: Option<CString>,
}

/// Builds the ABI config for `settings`. The returned strings must be kept
/// alive while the config is in use.
pub(crate) fn make_config(
    width: u32,
    height: u32,
    fps_num: u32,
    fps_den: u32,
    pixel_format: PixelFormat,
    settings: &EncoderSettings,
) -> anyhow::Result<(EncoderConfig, ConfigStrings)> {
    let device = settings
        .device
        .as_deref()
        .map(CString::new)
        .transpose()
        .context("encoder device path contains a NUL byte")?;
    let options = (!settings.options.is_empty())
        .then(|| CString::new(settings.options.as_str()))
        .transpose()
        .context("encoder options contain a NUL byte")?;
    let strings = ConfigStrings { device, options };
    let config = EncoderConfig {
        struct_size: std::mem::size_of::<EncoderConfig>() as u32,
        width,
        height,
        fps_num,
        fps_den: fps_den.max(1),
        pixel_format: pixel_format as u32,
        gop: settings.gop,
        crf: settings.crf.unwrap_or(-1),
        preset: settings.preset.unwrap_or(-1),
        threads: settings.threads,
        bitrate_kbps: settings.bitrate_kbps,
        device: strings
            .device
            .as_ref()
            .map_or(std::ptr::null(), |s| s.as_ptr()),
        options: strings
            .options
            .as_ref()
            .map_or(std::ptr::null(), |s| s.as_ptr()),
    };
    Ok((config, strings))
}

/// A buffer for the plugin's error messages.
pub(crate) struct ErrorMessage {
    storage: Vec<c_char>,
}

impl ErrorMessage {
    /// An empty 1 KiB buffer.
    pub(crate) fn new() -> Self {
        Self {
            storage: vec![0; 1024],
        }
    }
    /// The ABI view of the buffer, valid while `self` is borrowed.
    pub(crate) fn buf(&mut self) -> ErrorBuf {
        self.storage[0] = 0;
        ErrorBuf {
            ptr: self.storage.as_mut_ptr(),
            cap: self.storage.len(),
        }
    }
    /// The message the plugin wrote (lossy UTF-8), or a placeholder.
    pub(crate) fn text(&self) -> String {
        let bytes: Vec<u8> = self
            .storage
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        if text.is_empty() {
            "(no reason given)".into()
        } else {
            text
        }
    }
}

/// Turns a plugin status into a result carrying the plugin's message.
pub(crate) fn check_status(status: Status, err: &ErrorMessage) -> anyhow::Result<()> {
    match status {
        STATUS_OK => Ok(()),
        STATUS_UNAVAILABLE => Err(anyhow!("unavailable: {}", err.text())),
        STATUS_ERROR => Err(anyhow!("{}", err.text())),
        STATUS_PANIC => Err(anyhow!("{}", err.text())),
        other => Err(anyhow!("unknown status {other}: {}", err.text())),
    }
}

struct BackendInner {
    plugin: LoadedPlugin,
    path: PathBuf,
}

/// A loaded, ABI-checked codec backend. Cheap to clone; the shared library
/// stays loaded while any clone or session lives.
#[derive(Clone)]
pub struct Backend {
    inner: Arc<BackendInner>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name())
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Backend {
    /// Loads the plugin at `path` into this process and checks its ABI.
    /// (Probing happens separately, in a child process.)
    pub fn load(path: &Path) -> anyhow::Result<Backend> {
        let plugin = library::load(path)
            .with_context(|| format!("loading codec plugin {}", path.display()))?;
        Ok(Backend {
            inner: Arc::new(BackendInner {
                plugin,
                path: path.to_path_buf(),
            }),
        })
    }
    /// What the plugin's table says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.plugin.info
    }
    /// Backend name (`svtav1`, ...).
    pub fn name(&self) -> &str {
        &self.inner.plugin.info.name
    }
    /// Codec it produces.
    pub fn codec(&self) -> CodecId {
        self.inner.plugin.info.codec
    }
    /// Hardware or software.
    pub fn kind(&self) -> BackendKind {
        self.inner.plugin.info.kind
    }
    /// The raw layout `encode` expects.
    pub fn preferred_input(&self) -> PixelFormat {
        self.inner.plugin.info.preferred_input
    }
    /// The plugin file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Opens a session in the calling thread. First drops this thread's
    /// `CAP_SYS_NICE` ([`crate::rt_guard::drop_realtime_privileges`]) so the
    /// encoder's own threads cannot go real-time, then opens, then demotes
    /// any thread that went real-time anyway
    /// ([`crate::rt_guard::demote_realtime_threads`]). Call it from the
    /// encoder thread.
    pub fn open(
        &self,
        width: u32,
        height: u32,
        fps_num: u32,
        fps_den: u32,
        settings: &EncoderSettings,
    ) -> anyhow::Result<EncoderSession> {
        if let Err(e) = crate::rt_guard::drop_realtime_privileges() {
            log::warn!("could not drop real-time privileges before opening the encoder: {e:#}");
        }
        let format = self.preferred_input();
        let (config, _strings) = make_config(width, height, fps_num, fps_den, format, settings)?;
        let mut err = ErrorMessage::new();
        let mut ebuf = err.buf();
        let mut raw: *mut Session = std::ptr::null_mut();
        let table = self.inner.plugin.table();
        // SAFETY: `config` and the strings it points to live across the call;
        // `raw` and `ebuf` are valid out-pointers, as the ABI requires.
        let status = unsafe { (table.open)(&config, &mut raw, &mut ebuf) };
        check_status(status, &err).with_context(|| {
            format!(
                "{}: cannot open an encoder at {width}x{height} {fps_num}/{fps_den} fps",
                self.name()
            )
        })?;
        let session = NonNull::new(raw)
            .ok_or_else(|| anyhow!("{}: open succeeded but returned no session", self.name()))?;
        crate::rt_guard::demote_realtime_threads();
        Ok(EncoderSession {
            backend: self.clone(),
            session,
            width,
            height,
            format,
        })
    }
}

/// One open encoder session. `Send` (it may move to another thread), not
/// `Sync`; closed on drop.
pub struct EncoderSession {
    backend: Backend,
    session: NonNull<Session>,
    width: u32,
    height: u32,
    format: PixelFormat,
}

// SAFETY: a session is used by one thread at a time (`&mut self` on every
// call, not `Sync`); the ABI allows moving a session between threads.
unsafe impl Send for EncoderSession {}

/// Packet callback: copies each packet into the `Vec<EncodedPacket>` behind `user`.
///
/// # Safety
/// `user` is the `&mut Vec<EncodedPacket>` the host passed along; `packet`
/// is valid for the duration of the call.
unsafe extern "C" fn collect_packet(user: *mut c_void, packet: *const Packet) {
    // SAFETY: guaranteed by the caller (the host passes a live Vec).
    let (Some(out), Some(p)) = (
        unsafe { user.cast::<Vec<EncodedPacket>>().as_mut() },
        unsafe { packet.as_ref() },
    ) else {
        return;
    };
    let data = if p.data.is_null() || p.len == 0 {
        Vec::new()
    } else {
        // SAFETY: the plugin guarantees `data` holds `len` bytes during the call.
        unsafe { std::slice::from_raw_parts(p.data, p.len) }.to_vec()
    };
    out.push(EncodedPacket {
        data,
        pts: p.pts,
        dts: p.dts,
        keyframe: p.keyframe != 0,
    });
}

impl EncoderSession {
    /// The backend this session belongs to.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Encodes one tightly packed frame in `backend().preferred_input()`
    /// layout (see [`crate::frame::frame_bytes`]); packets that come out are
    /// appended to `out`.
    pub fn encode(
        &mut self,
        data: &[u8],
        pts: i64,
        force_keyframe: bool,
        out: &mut Vec<EncodedPacket>,
    ) -> anyhow::Result<()> {
        let expected = frame_bytes(self.format, self.width, self.height);
        if data.len() != expected {
            anyhow::bail!(
                "{}: frame has {} bytes, a packed {}x{} {:?} frame has {expected}",
                self.backend.name(),
                data.len(),
                self.width,
                self.height,
                self.format
            );
        }
        let planes = packed_planes(self.format, self.width, self.height);
        let mut frame = Frame {
            pixel_format: self.format as u32,
            width: self.width,
            height: self.height,
            plane_count: planes.len() as u32,
            planes: [std::ptr::null(); 4],
            strides: [0; 4],
            pts,
            force_keyframe: u8::from(force_keyframe),
        };
        for (i, p) in planes.iter().enumerate() {
            // The planes tile `data` exactly (length checked above).
            frame.planes[i] = data[p.offset..].as_ptr();
            frame.strides[i] = p.stride as u32;
        }
        let mut err = ErrorMessage::new();
        let mut ebuf = err.buf();
        let table = self.backend.inner.plugin.table();
        // SAFETY: the session is open; `frame` points into `data`, alive for
        // the call; the callback gets `out` as its user pointer.
        let status = unsafe {
            (table.encode)(
                self.session.as_ptr(),
                &frame,
                collect_packet,
                (out as *mut Vec<EncodedPacket>).cast(),
                &mut ebuf,
            )
        };
        check_status(status, &err)
            .with_context(|| format!("{}: encoding frame {pts} failed", self.backend.name()))
    }

    /// The codec this session really produces: what the plugin's optional
    /// `s6_codec_session_codec` export answers (a V4L2 M2M device may code
    /// FWHT although the table says H.264), else the table's codec.
    pub fn codec(&mut self) -> CodecId {
        let table_codec = self.backend.codec();
        let Some(query) = self.backend.inner.plugin.session_codec_fn() else {
            return table_codec;
        };
        // SAFETY: the session is open and used by this thread only; the
        // function has the ABI's signature and the library is loaded.
        let raw = unsafe { query(self.session.as_ptr()) };
        CodecId::from_raw(raw).unwrap_or(table_codec)
    }

    /// Drains the encoder; remaining packets are appended to `out`.
    pub fn flush(&mut self, out: &mut Vec<EncodedPacket>) -> anyhow::Result<()> {
        let mut err = ErrorMessage::new();
        let mut ebuf = err.buf();
        let table = self.backend.inner.plugin.table();
        // SAFETY: the session is open; the callback gets `out` as its user pointer.
        let status = unsafe {
            (table.flush)(
                self.session.as_ptr(),
                collect_packet,
                (out as *mut Vec<EncodedPacket>).cast(),
                &mut ebuf,
            )
        };
        check_status(status, &err)
            .with_context(|| format!("{}: flushing the encoder failed", self.backend.name()))
    }

    /// The codec configuration record (AV1 sequence header OBU, H.264
    /// SPS+PPS in Annex-B); `None` while the backend cannot tell yet.
    pub fn codec_config(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        let mut err = ErrorMessage::new();
        let mut ebuf = err.buf();
        let mut packets: Vec<EncodedPacket> = Vec::new();
        let table = self.backend.inner.plugin.table();
        // SAFETY: the session is open; the callback gets `packets` as its user pointer.
        let status = unsafe {
            (table.codec_config)(
                self.session.as_ptr(),
                collect_packet,
                (&mut packets as *mut Vec<EncodedPacket>).cast(),
                &mut ebuf,
            )
        };
        if status == STATUS_UNAVAILABLE {
            return Ok(None);
        }
        check_status(status, &err).with_context(|| {
            format!(
                "{}: reading the codec configuration failed",
                self.backend.name()
            )
        })?;
        Ok(packets
            .into_iter()
            .map(|p| p.data)
            .reduce(|mut a, b| {
                a.extend_from_slice(&b);
                a
            })
            .filter(|d| !d.is_empty()))
    }
}

impl Drop for EncoderSession {
    fn drop(&mut self) {
        let table = self.backend.inner.plugin.table();
        // SAFETY: the session came from `open` and is closed exactly once.
        unsafe { (table.close)(self.session.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}

    #[test]
    fn backend_is_shareable_and_sessions_can_move() {
        assert_send_sync::<Backend>();
        assert_send::<EncoderSession>();
    }

    #[test]
    fn config_maps_defaults_and_strings() {
        let settings = EncoderSettings {
            device: Some("/dev/video11".into()),
            options: "a=1".into(),
            ..EncoderSettings::default()
        };
        let (config, strings) = make_config(320, 240, 30, 0, PixelFormat::Nv12, &settings).unwrap();
        assert_eq!((config.crf, config.preset, config.gop), (-1, -1, 2));
        assert_eq!(config.fps_den, 1, "a zero denominator is clamped");
        assert_eq!(config.pixel_format, PixelFormat::Nv12 as u32);
        // SAFETY: the pointers refer to `strings`, alive here.
        let device = unsafe { std::ffi::CStr::from_ptr(config.device) };
        assert_eq!(device.to_str().unwrap(), "/dev/video11");
        drop(strings);
        let (config, _s) =
            make_config(1, 1, 1, 1, PixelFormat::I420, &EncoderSettings::default()).unwrap();
        assert!(config.device.is_null() && config.options.is_null());
        let bad = EncoderSettings {
            options: "a\0b".into(),
            ..EncoderSettings::default()
        };
        assert!(make_config(1, 1, 1, 1, PixelFormat::I420, &bad).is_err());
    }
}
