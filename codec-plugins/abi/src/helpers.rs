//! Helpers for plugins written in Rust: panic guards, error writing and the
//! export macro. Plugins in other languages implement the same contract by
//! hand.

use crate::{ErrorBuf, Packet, PacketFn, Session, Status, STATUS_ERROR, STATUS_OK, STATUS_PANIC};
use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// An error returned by a plugin entry point implementation.
#[derive(Debug)]
pub struct PluginError {
    /// One of the `STATUS_*` codes (not `STATUS_OK`).
    pub status: Status,
    /// Human-readable reason.
    pub message: String,
}

impl PluginError {
    /// The backend cannot work here.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: crate::STATUS_UNAVAILABLE,
            message: message.into(),
        }
    }
    /// A run-time failure.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            status: STATUS_ERROR,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Writes `message` into `err` (truncated on a UTF-8 boundary, NUL-terminated).
///
/// # Safety
/// `err` is null or points to a valid [`ErrorBuf`] whose `ptr` is writable
/// for `cap` bytes.
pub unsafe fn write_error(err: *mut ErrorBuf, message: &str) {
    // SAFETY: the caller guarantees `err` is null or valid.
    let Some(buf) = (unsafe { err.as_mut() }) else {
        return;
    };
    if buf.ptr.is_null() || buf.cap == 0 {
        return;
    }
    let mut n = message.len().min(buf.cap - 1);
    while n > 0 && !message.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: `ptr` is writable for `cap` bytes and `n < cap`.
    unsafe {
        std::ptr::copy_nonoverlapping(message.as_ptr(), buf.ptr.cast::<u8>(), n);
        *buf.ptr.add(n) = 0;
    }
}

/// Runs `body`, turning an error or a panic into a status code and a message
/// in `err`. Every `extern "C"` entry point of a Rust plugin wraps its body in
/// this, so no panic ever unwinds into the host.
///
/// # Safety
/// `err` is null or a valid [`ErrorBuf`].
pub unsafe fn guard(err: *mut ErrorBuf, body: impl FnOnce() -> Result<(), PluginError>) -> Status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => STATUS_OK,
        Ok(Err(e)) => {
            // SAFETY: forwarded caller guarantee.
            unsafe { write_error(err, &e.message) };
            e.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            // SAFETY: forwarded caller guarantee.
            unsafe { write_error(err, &format!("plugin panicked: {what}")) };
            STATUS_PANIC
        }
    }
}

/// Passes `bytes` to the host's packet callback.
///
/// # Safety
/// `sink`/`user` are the pair the host passed to the entry point.
pub unsafe fn emit(
    sink: PacketFn,
    user: *mut c_void,
    bytes: &[u8],
    pts: i64,
    dts: i64,
    keyframe: bool,
) {
    let packet = Packet {
        data: bytes.as_ptr(),
        len: bytes.len(),
        pts,
        dts,
        keyframe: u8::from(keyframe),
    };
    // SAFETY: the host guarantees `sink` accepts `user` and a packet valid for the call.
    unsafe { sink(user, &packet) };
}

/// Reads an optional NUL-terminated string from the ABI.
///
/// # Safety
/// `ptr` is null or a valid NUL-terminated string.
pub unsafe fn opt_str<'a>(ptr: *const std::ffi::c_char) -> Option<&'a str> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: caller guarantees a valid C string.
    unsafe { CStr::from_ptr(ptr) }.to_str().ok()
}

/// Parses the `key=value;key=value` option string of an [`crate::EncoderConfig`].
pub fn parse_options(options: Option<&str>) -> Vec<(String, String)> {
    options
        .unwrap_or("")
        .split(';')
        .filter(|kv| !kv.trim().is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (kv.trim().to_string(), String::new()),
        })
        .collect()
}

/// Hands a new session to the host: stores the raw pointer of the boxed
/// `session` in `*out`. `plugin` names the plugin in the error.
///
/// # Safety
/// `out` is null or valid for a write. The host later passes the stored
/// pointer back to entry points of this plugin, and to
/// [`drop_session`]`::<E>` exactly once.
pub unsafe fn store_session<E>(
    out: *mut *mut Session,
    session: Box<E>,
    plugin: &str,
) -> Result<(), PluginError> {
    // SAFETY: the caller guarantees `out` is null or valid for a write.
    let out = unsafe { out.as_mut() }
        .ok_or_else(|| PluginError::error(format!("{plugin}: null session out-pointer")))?;
    *out = Box::into_raw(session).cast::<Session>();
    Ok(())
}

/// Borrows the `E` behind a session pointer from [`store_session`].
///
/// # Safety
/// `session` is null or a pointer stored by [`store_session`]`::<E>` and
/// not yet dropped, used by one thread at a time.
pub unsafe fn session_mut<'a, E>(
    session: *mut Session,
    plugin: &str,
) -> Result<&'a mut E, PluginError> {
    // SAFETY: caller guarantee: null or a live `Box<E>` pointer.
    unsafe { session.cast::<E>().as_mut() }
        .ok_or_else(|| PluginError::error(format!("{plugin}: null session")))
}

/// Drops the `E` behind a session pointer (a plugin's `close`). Null is
/// ignored; a panic in `E`'s destructor never crosses the C ABI.
///
/// # Safety
/// `session` is null or a pointer stored by [`store_session`]`::<E>`, dropped
/// exactly once.
pub unsafe fn drop_session<E>(session: *mut Session) {
    if session.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: caller guarantee: the `Box<E>` from `store_session`, once.
        drop(unsafe { Box::from_raw(session.cast::<E>()) });
    }));
}

/// Exports `$table` (an expression of type `&'static PluginTable`) under
/// [`crate::ENTRY_SYMBOL`].
#[macro_export]
macro_rules! export_plugin {
    ($table:expr) => {
        /// The plugin's entry symbol, looked up by the s6-edge host.
        #[no_mangle]
        pub extern "C" fn s6_codec_plugin_entry() -> *const $crate::PluginTable {
            $table as *const $crate::PluginTable
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_error_truncates_on_char_boundary_and_terminates() {
        let mut storage = [0x7f_i8 as std::ffi::c_char; 6];
        let mut buf = ErrorBuf {
            ptr: storage.as_mut_ptr(),
            cap: storage.len(),
        };
        // "ab€" is 5 bytes; with cap 6 all 5 fit.
        unsafe { write_error(&mut buf, "ab€x") };
        let s = unsafe { CStr::from_ptr(storage.as_ptr()) }
            .to_str()
            .unwrap();
        assert_eq!(s, "ab€");
    }

    #[test]
    fn guard_turns_panic_into_status_and_message() {
        let mut storage = [0 as std::ffi::c_char; 128];
        let mut buf = ErrorBuf {
            ptr: storage.as_mut_ptr(),
            cap: storage.len(),
        };
        let status = unsafe { guard(&mut buf, || panic!("boom")) };
        assert_eq!(status, STATUS_PANIC);
        let s = unsafe { CStr::from_ptr(storage.as_ptr()) }
            .to_str()
            .unwrap();
        assert_eq!(s, "plugin panicked: boom");
    }

    #[test]
    fn guard_passes_error_status_through() {
        let mut storage = [0 as std::ffi::c_char; 64];
        let mut buf = ErrorBuf {
            ptr: storage.as_mut_ptr(),
            cap: storage.len(),
        };
        let status = unsafe { guard(&mut buf, || Err(PluginError::unavailable("no device"))) };
        assert_eq!(status, crate::STATUS_UNAVAILABLE);
        let s = unsafe { CStr::from_ptr(storage.as_ptr()) }
            .to_str()
            .unwrap();
        assert_eq!(s, "no device");
    }

    #[test]
    fn options_parse_pairs_and_flags() {
        let o = parse_options(Some("a=1; b = two ;flag;;"));
        assert_eq!(
            o,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "two".into()),
                ("flag".into(), String::new())
            ]
        );
        assert!(parse_options(None).is_empty());
    }
}
