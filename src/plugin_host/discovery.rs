//! Where codec plugins are looked for, and which files count as plugins.

use crate::cli::PluginDirArgs;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Environment variable with extra plugin directories (colon-separated).
pub const PLUGIN_PATH_ENV: &str = "S6_EDGE_PLUGIN_PATH";

/// The system-wide plugin directory, searched last.
pub const SYSTEM_PLUGIN_DIR: &str = "/usr/lib/s6-edge/plugins";

/// The plugin directories to search, in priority order: `--plugin-dir`
/// (each, in the order given), `S6_EDGE_PLUGIN_PATH`, `<exe dir>/plugins`,
/// `<exe dir>/../lib/s6-edge/plugins`, [`SYSTEM_PLUGIN_DIR`].
pub fn search_dirs(args: &PluginDirArgs) -> Vec<PathBuf> {
    let env = std::env::var_os(PLUGIN_PATH_ENV);
    let exe = std::env::current_exe().ok();
    search_dirs_from(&args.plugin_dirs, env.as_deref(), exe.as_deref())
}

/// [`search_dirs`] with its inputs made explicit (for tests).
pub fn search_dirs_from(
    cli_dirs: &[PathBuf],
    env_path: Option<&OsStr>,
    exe: Option<&Path>,
) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = cli_dirs.to_vec();
    if let Some(env_path) = env_path {
        dirs.extend(std::env::split_paths(env_path).filter(|p| !p.as_os_str().is_empty()));
    }
    if let Some(exe_dir) = exe.and_then(Path::parent) {
        dirs.push(exe_dir.join("plugins"));
        dirs.push(exe_dir.join("../lib/s6-edge/plugins"));
    }
    dirs.push(PathBuf::from(SYSTEM_PLUGIN_DIR));
    dirs
}

/// Every `*.so` file in `dirs`, directory by directory (file names sorted
/// within one directory), each physical file once: a file reached again
/// through another directory or a symlink (same canonical path) is skipped.
/// Missing directories are skipped silently; unreadable ones with a warning.
pub fn plugin_files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log::debug!("plugin directory {} does not exist", dir.display());
                continue;
            }
            Err(e) => {
                log::warn!("cannot read plugin directory {}: {e}", dir.display());
                continue;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension() == Some(OsStr::new("so")) && p.is_file())
            .collect();
        files.sort();
        for file in files {
            let canonical = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if seen.insert(canonical) {
                out.push(file);
            } else {
                log::debug!("{} already found under another path", file.display());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_order_is_cli_env_exe_then_system() {
        let dirs = search_dirs_from(
            &[PathBuf::from("/a"), PathBuf::from("/b")],
            Some(OsStr::new("/e1::/e2")),
            Some(Path::new("/opt/s6/bin/s6-edge")),
        );
        let expect: Vec<PathBuf> = [
            "/a",
            "/b",
            "/e1",
            "/e2",
            "/opt/s6/bin/plugins",
            "/opt/s6/bin/../lib/s6-edge/plugins",
            SYSTEM_PLUGIN_DIR,
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(dirs, expect);
        assert_eq!(
            search_dirs_from(&[], None, None),
            vec![PathBuf::from(SYSTEM_PLUGIN_DIR)]
        );
    }

    #[test]
    fn finds_so_files_in_order_and_deduplicates_by_canonical_path() {
        let root = tempfile::tempdir().unwrap();
        let first = root.path().join("first");
        let second = root.path().join("second");
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        std::fs::write(first.join("libz.so"), b"z").unwrap();
        std::fs::write(first.join("liba.so"), b"a").unwrap();
        std::fs::write(first.join("notes.txt"), b"x").unwrap();
        std::fs::create_dir(first.join("dir.so")).unwrap();
        std::fs::write(second.join("libb.so"), b"b").unwrap();
        // The same physical file again, through a symlink in the second dir.
        std::os::unix::fs::symlink(first.join("liba.so"), second.join("alias.so")).unwrap();
        let missing = root.path().join("missing");
        // The first directory listed twice (once via a `..` detour) counts once.
        let detour = second.join("../first");
        let files = plugin_files(&[first.clone(), missing, second.clone(), detour]);
        assert_eq!(
            files,
            vec![
                first.join("liba.so"),
                first.join("libz.so"),
                second.join("libb.so")
            ]
        );
    }
}
