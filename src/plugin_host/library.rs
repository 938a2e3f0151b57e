//! Loading one plugin shared library and checking its ABI.

use s6_codec_abi::{
    BackendKind, CodecId, EntryFn, PixelFormat, PluginTable, SessionCodecFn, ABI_VERSION,
};
use std::ffi::{c_char, CStr};
use std::path::Path;

/// Name of the entry symbol without its NUL, for messages.
fn entry_name() -> &'static str {
    std::str::from_utf8(&s6_codec_abi::ENTRY_SYMBOL[..s6_codec_abi::ENTRY_SYMBOL.len() - 1])
        .unwrap_or("s6_codec_plugin_entry")
}

/// Why a file could not be used as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// `dlopen` refused the file (not a shared library, missing dependency...).
    #[error("{0}")]
    Open(String),
    /// The library lacks the entry symbol.
    #[error("not an s6-edge plugin: no symbol {}", entry_name())]
    NoEntry,
    /// The entry function returned a null table.
    #[error("broken plugin: {} returned no table", entry_name())]
    NullTable,
    /// The table speaks another ABI version.
    #[error("ABI version {found}, this s6-edge speaks {ABI_VERSION}: rebuild the plugin")]
    AbiMismatch {
        /// Version the plugin's table claims.
        found: u32,
    },
    /// The table has the right version but invalid contents.
    #[error("broken plugin table: {0}")]
    BadTable(String),
}

impl LoadError {
    /// The ABI version the plugin claimed, when it got that far.
    pub fn abi_version(&self) -> Option<u32> {
        match self {
            LoadError::AbiMismatch { found } => Some(*found),
            LoadError::BadTable(_) => Some(ABI_VERSION),
            _ => None,
        }
    }
}

/// What a plugin's table says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginInfo {
    /// Backend name (`svtav1`, `vaapi`, ...).
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Codec it produces.
    pub codec: CodecId,
    /// Hardware or software.
    pub kind: BackendKind,
    /// Raw layout it wants as input.
    pub preferred_input: PixelFormat,
    /// ABI version of its table (equals [`ABI_VERSION`] once loaded).
    pub abi_version: u32,
}

/// A loaded plugin whose table passed the ABI check.
pub struct LoadedPlugin {
    /// Borrows from `_lib`: valid for as long as this value lives, which is
    /// why it is private and only handed out with `&self`'s lifetime.
    table: &'static PluginTable,
    /// The optional `s6_codec_session_codec` export (same lifetime rule as `table`).
    session_codec: Option<SessionCodecFn>,
    /// What the table says.
    pub info: PluginInfo,
    /// Keeps the shared object mapped. Declared last so it is dropped last.
    _lib: libloading::Library,
}

impl LoadedPlugin {
    /// The plugin's function table.
    pub fn table(&self) -> &PluginTable {
        self.table
    }

    /// The plugin's optional per-session codec query
    /// ([`s6_codec_abi::SESSION_CODEC_SYMBOL`]), if it exports one.
    pub fn session_codec_fn(&self) -> Option<SessionCodecFn> {
        self.session_codec
    }
}

/// Reads a required NUL-terminated UTF-8 string from the table.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string that outlives the call.
unsafe fn table_str(ptr: *const c_char, what: &str) -> Result<String, LoadError> {
    if ptr.is_null() {
        return Err(LoadError::BadTable(format!("{what} is null")));
    }
    // SAFETY: non-null and NUL-terminated per the caller's guarantee.
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str()
        .map(str::to_owned)
        .map_err(|_| LoadError::BadTable(format!("{what} is not UTF-8")))
}

/// Loads `path` (resolving all its symbols now), finds the entry symbol,
/// checks the ABI version and only then reads the rest of the table.
pub fn load(path: &Path) -> Result<LoadedPlugin, LoadError> {
    let flags = libc::RTLD_NOW | libc::RTLD_LOCAL;
    // SAFETY: loading a shared object runs its initialisers; plugins are
    // trusted code chosen by the operator. Probing does this in a child
    // process so a misbehaving initialiser cannot take the recorder down.
    let lib = unsafe { libloading::os::unix::Library::open(Some(path), flags) }
        .map_err(|e| LoadError::Open(e.to_string()))?;
    let lib = libloading::Library::from(lib);
    // SAFETY: the symbol is declared by the ABI with exactly this signature.
    let entry: libloading::Symbol<EntryFn> =
        unsafe { lib.get(s6_codec_abi::ENTRY_SYMBOL) }.map_err(|_| LoadError::NoEntry)?;
    // SAFETY: calling the plugin's entry function as the ABI prescribes.
    let table_ptr = unsafe { entry() };
    if table_ptr.is_null() {
        return Err(LoadError::NullTable);
    }
    // SAFETY: a non-null result points to the plugin's static table.
    // `abi_version` is the first field in every version of the table, so it
    // is the only field read (through the raw pointer) before the check.
    let found = unsafe { std::ptr::addr_of!((*table_ptr).abi_version).read() };
    if found != ABI_VERSION {
        return Err(LoadError::AbiMismatch { found });
    }
    // SAFETY: the version matches, so the pointee has this exact layout; it
    // is static data of the library, which stays mapped while `lib` lives
    // (kept in the returned value next to this reference).
    let table: &'static PluginTable = unsafe { &*table_ptr };
    let expected_size = std::mem::size_of::<PluginTable>();
    if table.struct_size as usize != expected_size {
        return Err(LoadError::BadTable(format!(
            "table size {} bytes, expected {expected_size}",
            table.struct_size
        )));
    }
    // SAFETY: the version matched, so the table's string fields are valid
    // C strings per the ABI.
    let name = unsafe { table_str(table.name, "name") }?;
    // SAFETY: as above.
    let description = unsafe { table_str(table.description, "description") }?;
    if name.is_empty() {
        return Err(LoadError::BadTable("empty backend name".into()));
    }
    let codec = CodecId::from_raw(table.codec)
        .ok_or_else(|| LoadError::BadTable(format!("unknown codec id {}", table.codec)))?;
    let kind = match table.kind {
        0 => BackendKind::Software,
        1 => BackendKind::Hardware,
        other => return Err(LoadError::BadTable(format!("unknown backend kind {other}"))),
    };
    let preferred_input = PixelFormat::from_raw(table.preferred_input)
        .filter(|f| *f != PixelFormat::Mjpeg)
        .ok_or_else(|| {
            LoadError::BadTable(format!(
                "unusable preferred input pixel format {}",
                table.preferred_input
            ))
        })?;
    // SAFETY: the optional extension symbol has exactly this signature per
    // the ABI; the function pointer stays valid while `lib` is loaded, which
    // the returned value guarantees.
    let session_codec = unsafe { lib.get::<SessionCodecFn>(s6_codec_abi::SESSION_CODEC_SYMBOL) }
        .ok()
        .map(|sym| *sym);
    Ok(LoadedPlugin {
        table,
        session_codec,
        info: PluginInfo {
            name,
            description,
            codec,
            kind,
            preferred_input,
            abi_version: found,
        },
        _lib: lib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A workspace fixture plugin next to this test binary (target/debug/deps/..).
    fn fixture(stem: &str) -> PathBuf {
        let exe = std::env::current_exe().expect("test binary path");
        let dir = exe.parent().and_then(Path::parent).expect("target/debug");
        let p = dir.join(format!("lib{stem}.so"));
        assert!(
            p.is_file(),
            "{} is missing: run `cargo build --workspace` before `cargo test`",
            p.display()
        );
        p
    }

    #[test]
    fn wrong_abi_version_is_refused_with_both_versions() {
        let err = load(&fixture("s6_fixture_wrong_abi"))
            .err()
            .expect("must refuse");
        assert!(matches!(err, LoadError::AbiMismatch { found: 999 }));
        assert_eq!(err.abi_version(), Some(999));
        assert_eq!(
            err.to_string(),
            format!("ABI version 999, this s6-edge speaks {ABI_VERSION}: rebuild the plugin")
        );
    }

    #[test]
    fn missing_entry_and_non_library_are_told_apart() {
        let err = load(&fixture("s6_fixture_no_entry"))
            .err()
            .expect("must refuse");
        assert_eq!(
            err.to_string(),
            "not an s6-edge plugin: no symbol s6_codec_plugin_entry"
        );
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text.so");
        std::fs::write(&text, vec![b'x'; 4096]).unwrap();
        let err = load(&text).err().expect("must refuse");
        assert!(matches!(err, LoadError::Open(_)));
        assert!(err.to_string().contains("text.so"), "{err}");
    }

    #[test]
    fn a_good_table_is_read_after_the_check() {
        let p = load(&fixture("s6_fixture_test_ok")).expect("test-ok loads");
        assert_eq!(p.info.name, "test-ok");
        assert_eq!(p.info.codec, CodecId::Fwht);
        assert_eq!(p.info.kind, BackendKind::Software);
        assert_eq!(p.info.preferred_input, PixelFormat::I420);
        assert_eq!(p.info.abi_version, ABI_VERSION);
        assert_eq!(p.table().abi_version, ABI_VERSION);
    }
}
