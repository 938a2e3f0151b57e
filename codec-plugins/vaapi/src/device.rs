//! Finding a VA-API capable DRM render node, opening a VA display on it and
//! checking that its driver can encode H.264.

use crate::ffi::{
    VAConfigAttrib, VADisplay, VAEntrypoint, VAProfile, VaApi, VA_ENTRYPOINT_ENC_SLICE,
    VA_ENTRYPOINT_ENC_SLICE_LP, VA_PROFILE_H264_CONSTRAINED_BASELINE, VA_PROFILE_H264_HIGH,
    VA_PROFILE_H264_MAIN,
};
use crate::headers::Profile;
use s6_codec_abi::helpers::PluginError;
use std::ffi::CStr;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Reason given when no render node exists.
pub const NO_RENDER_NODE: &str =
    "no DRM render node (/dev/dri/renderD*): no GPU or driver not loaded";

/// The DRM render nodes (`renderD*`) in `dir`, sorted by name.
pub fn render_nodes(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut nodes: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("renderD"))
        .map(|e| e.path())
        .collect();
    nodes.sort();
    nodes
}

/// The nodes to try: the configured `device`, or every render node.
pub fn candidate_nodes(device: Option<&str>) -> Result<Vec<PathBuf>, PluginError> {
    match device {
        Some(d) if !d.is_empty() => Ok(vec![PathBuf::from(d)]),
        _ => {
            let nodes = render_nodes(Path::new("/dev/dri"));
            if nodes.is_empty() {
                Err(PluginError::unavailable(NO_RENDER_NODE))
            } else {
                Ok(nodes)
            }
        }
    }
}

/// The hint about which VA driver libva picks.
pub fn driver_hint() -> String {
    match std::env::var("LIBVA_DRIVER_NAME") {
        Ok(name) if !name.is_empty() => format!("driver LIBVA_DRIVER_NAME={name}"),
        _ => "driver auto-detected; set LIBVA_DRIVER_NAME (iHD, i965, radeonsi, nouveau) to choose one"
            .to_string(),
    }
}

/// An initialised VA display on an open render node. Terminated on drop.
pub struct Display {
    /// The loaded libva.
    pub api: VaApi,
    /// The VA display handle.
    pub dpy: VADisplay,
    /// The render node path.
    pub node: PathBuf,
    /// The driver's vendor string.
    pub vendor: String,
    _fd: File,
}

impl Display {
    /// Opens `node` and initialises VA-API on it.
    pub fn open(api: VaApi, node: &Path) -> Result<Self, PluginError> {
        let fd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(node)
            .map_err(|e| {
                PluginError::unavailable(format!("cannot open {}: {e}", node.display()))
            })?;
        // SAFETY: the fd is a valid open file descriptor that outlives the display.
        let dpy = unsafe { (api.vaGetDisplayDRM)(fd.as_raw_fd()) };
        if dpy.is_null() {
            return Err(PluginError::unavailable(format!(
                "vaGetDisplayDRM({}) returned no display ({})",
                node.display(),
                driver_hint()
            )));
        }
        let (mut major, mut minor) = (0, 0);
        // SAFETY: dpy is a display from vaGetDisplayDRM; out-pointers are valid.
        let st = unsafe { (api.vaInitialize)(dpy, &mut major, &mut minor) };
        if st != crate::ffi::VA_STATUS_SUCCESS {
            let reason = api.error_str(st);
            // SAFETY: vaTerminate releases a display whose initialisation failed.
            unsafe { (api.vaTerminate)(dpy) };
            return Err(PluginError::unavailable(format!(
                "vaInitialize on {} failed: {reason} ({})",
                node.display(),
                driver_hint()
            )));
        }
        // SAFETY: initialised display; the string is owned by libva.
        let vendor_ptr = unsafe { (api.vaQueryVendorString)(dpy) };
        let vendor = if vendor_ptr.is_null() {
            "unknown VA driver".to_string()
        } else {
            // SAFETY: non-null NUL-terminated string owned by the display.
            unsafe { CStr::from_ptr(vendor_ptr) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(Self {
            api,
            dpy,
            node: node.to_path_buf(),
            vendor,
            _fd: fd,
        })
    }

    /// Entry points the driver offers for `profile`.
    pub fn entrypoints(&self, profile: VAProfile) -> Vec<VAEntrypoint> {
        // SAFETY: initialised display.
        let max = unsafe { (self.api.vaMaxNumEntrypoints)(self.dpy) }.clamp(0, 64);
        let mut list = vec![0 as VAEntrypoint; max as usize];
        let mut n = 0;
        // SAFETY: `list` holds vaMaxNumEntrypoints entries as libva requires.
        let st = unsafe {
            (self.api.vaQueryConfigEntrypoints)(self.dpy, profile, list.as_mut_ptr(), &mut n)
        };
        if st != crate::ffi::VA_STATUS_SUCCESS {
            return Vec::new(); // VA_STATUS_ERROR_UNSUPPORTED_PROFILE and friends
        }
        list.truncate(usize::try_from(n).unwrap_or(0).min(list.len()));
        list
    }

    /// Picks an H.264 encode profile and entry point: the requested profile
    /// or High, Main, Constrained Baseline in that order; `EncSlice` unless
    /// `low_power` prefers `EncSliceLP`.
    pub fn find_h264_encoder(
        &self,
        wanted: Option<Profile>,
        low_power: bool,
    ) -> Result<(Profile, VAProfile, VAEntrypoint), PluginError> {
        let all = [
            (Profile::High, VA_PROFILE_H264_HIGH),
            (Profile::Main, VA_PROFILE_H264_MAIN),
            (
                Profile::ConstrainedBaseline,
                VA_PROFILE_H264_CONSTRAINED_BASELINE,
            ),
        ];
        let order = if low_power {
            [VA_ENTRYPOINT_ENC_SLICE_LP, VA_ENTRYPOINT_ENC_SLICE]
        } else {
            [VA_ENTRYPOINT_ENC_SLICE, VA_ENTRYPOINT_ENC_SLICE_LP]
        };
        for (profile, va_profile) in all.iter().filter(|(p, _)| wanted.is_none_or(|w| w == *p)) {
            let eps = self.entrypoints(*va_profile);
            if let Some(ep) = order.iter().find(|e| eps.contains(e)) {
                return Ok((*profile, *va_profile, *ep));
            }
        }
        let which = wanted.map_or("H.264".to_string(), |p| format!("H.264 {p:?}"));
        Err(PluginError::unavailable(format!(
            "driver {} on {} has no {which} encode entrypoint (VAEntrypointEncSlice/EncSliceLP)",
            self.vendor,
            self.node.display()
        )))
    }

    /// Reads the given config attributes for `profile`/`entrypoint`.
    pub fn config_attributes(
        &self,
        profile: VAProfile,
        entrypoint: VAEntrypoint,
        types: &[i32],
    ) -> Result<Vec<VAConfigAttrib>, PluginError> {
        let mut attrs: Vec<VAConfigAttrib> = types
            .iter()
            .map(|&t| VAConfigAttrib { type_: t, value: 0 })
            .collect();
        // SAFETY: `attrs` is a valid array of `attrs.len()` attributes.
        let st = unsafe {
            (self.api.vaGetConfigAttributes)(
                self.dpy,
                profile,
                entrypoint,
                attrs.as_mut_ptr(),
                attrs.len() as i32,
            )
        };
        self.api
            .check("vaGetConfigAttributes", st)
            .map_err(PluginError::unavailable)?;
        Ok(attrs)
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        // SAFETY: the display was initialised and is terminated exactly once;
        // every object created on it was destroyed by its owner first.
        unsafe { (self.api.vaTerminate)(self.dpy) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_nodes_are_filtered_and_sorted() {
        let dir = std::env::temp_dir().join(format!("s6-vaapi-nodes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for name in ["renderD129", "card0", "renderD128", "controlD64"] {
            std::fs::write(dir.join(name), b"").expect("touch");
        }
        let nodes = render_nodes(&dir);
        assert_eq!(nodes, vec![dir.join("renderD128"), dir.join("renderD129")]);
        std::fs::remove_dir_all(&dir).ok();
        assert!(render_nodes(Path::new("/nonexistent/dri")).is_empty());
    }

    #[test]
    fn configured_device_overrides_the_scan() {
        let nodes = candidate_nodes(Some("/dev/dri/renderD200")).expect("override");
        assert_eq!(nodes, vec![PathBuf::from("/dev/dri/renderD200")]);
    }

    #[test]
    fn driver_hint_names_the_variable() {
        assert!(driver_hint().contains("LIBVA_DRIVER_NAME"));
    }
}
