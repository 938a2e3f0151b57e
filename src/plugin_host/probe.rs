//! Probing plugins for real, each in its own child process, all in parallel,
//! each under a deadline.
//!
//! The parent runs `s6-edge __probe-plugin PATH --width W --height H` per
//! plugin. The child drops `CAP_SYS_NICE`, loads the plugin, checks its
//! ABI, calls its `probe` (which opens a session and encodes a test frame)
//! and prints one line `RESULT_MARKER {json}`. A plugin that hangs, crashes
//! or aborts only takes its child down; the parent reports why.

use super::library;
use super::report::{Availability, PluginReport, ReportJson};
use super::session::{check_status, make_config, EncoderSettings, ErrorMessage};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Prefix of the child's result line (so stray plugin output on stdout
/// cannot be mistaken for it).
pub const RESULT_MARKER: &str = "S6_EDGE_PROBE_RESULT";

/// Prefix of the line the child prints after loading, before probing: the
/// table's metadata, so a probe that then hangs or crashes is still reported
/// with its name.
pub const LOADED_MARKER: &str = "S6_EDGE_PROBE_LOADED";

/// Environment variable through which the parent passes the probe frame
/// rate (`num/den`) to the child.
pub const PROBE_FPS_ENV: &str = "S6_EDGE_PROBE_FPS";

/// Environment variable naming the `s6-edge` executable that runs probes.
/// Only needed when the plugin host is used from another program (tests);
/// defaults to the current executable.
pub const PROBE_EXE_ENV: &str = "S6_EDGE_PROBE_EXE";

/// Size and rate at which backends are probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeRequest {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frame rate numerator.
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
}

impl Default for ProbeRequest {
    /// 640x480 at 30 fps.
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            fps_num: 30,
            fps_den: 1,
        }
    }
}

/// Probes one plugin in this process (the child's job) and returns the
/// report. Never panics on a broken plugin file; a plugin that panics
/// without a guard aborts this process, which the parent reports.
///
/// `on_loaded` is called with the metadata once the ABI check passed, just
/// before the plugin's `probe` runs.
pub fn probe_in_process(
    path: &Path,
    req: &ProbeRequest,
    on_loaded: impl FnOnce(&ReportJson),
) -> ReportJson {
    let start = Instant::now();
    let mut report = ReportJson {
        path: path.to_path_buf(),
        ..ReportJson::default()
    };
    let plugin = match library::load(path) {
        Ok(p) => p,
        Err(e) => {
            report.abi_version = e.abi_version();
            report.reason = Some(e.to_string());
            report.probe_ms = start.elapsed().as_millis() as u64;
            return report;
        }
    };
    let info = &plugin.info;
    report.name = Some(info.name.clone());
    report.codec = Some(super::report::codec_str(info.codec).to_string());
    report.kind = Some(super::report::kind_str(info.kind).to_string());
    report.abi_version = Some(info.abi_version);
    report.description = Some(info.description.clone());
    on_loaded(&report);
    let outcome = make_config(
        req.width,
        req.height,
        req.fps_num,
        req.fps_den,
        info.preferred_input,
        &EncoderSettings::default(),
    )
    .and_then(|(config, _strings)| {
        let mut err = ErrorMessage::new();
        let mut ebuf = err.buf();
        // SAFETY: the table passed the ABI check; `config` (and the strings
        // it points to) and `ebuf` are valid for the call.
        let status = unsafe { (plugin.table().probe)(&config, &mut ebuf) };
        check_status(status, &err)
    });
    let outcome = outcome.and_then(|()| session_codec(&plugin, req));
    match outcome {
        Ok(real) => {
            report.available = true;
            if let Some(codec) = real {
                report.codec = Some(super::report::codec_str(codec).to_string());
            }
        }
        Err(e) => {
            let text = format!("{e:#}");
            report.reason = Some(text.strip_prefix("unavailable: ").unwrap_or(&text).into());
        }
    }
    report.probe_ms = start.elapsed().as_millis() as u64;
    // The library is intentionally never unloaded: the process exits next,
    // and a plugin may have left threads running.
    std::mem::forget(plugin);
    report
}

/// For a plugin exporting the optional session codec query: opens a session
/// as the probe did, asks what it really codes, closes it. `None` when the
/// plugin does not export the query (its table's codec is the truth).
fn session_codec(
    plugin: &library::LoadedPlugin,
    req: &ProbeRequest,
) -> anyhow::Result<Option<s6_codec_abi::CodecId>> {
    let Some(query) = plugin.session_codec_fn() else {
        return Ok(None);
    };
    let (config, _strings) = make_config(
        req.width,
        req.height,
        req.fps_num,
        req.fps_den,
        plugin.info.preferred_input,
        &EncoderSettings::default(),
    )?;
    let mut err = ErrorMessage::new();
    let mut ebuf = err.buf();
    let mut session: *mut s6_codec_abi::Session = std::ptr::null_mut();
    let table = plugin.table();
    // SAFETY: the table passed the ABI check; `config`, its strings, the
    // out-pointer and `ebuf` are valid for the call.
    let status = unsafe { (table.open)(&config, &mut session, &mut ebuf) };
    check_status(status, &err)?;
    if session.is_null() {
        anyhow::bail!("open succeeded but returned no session");
    }
    // SAFETY: `session` is the live session just opened; it is queried and
    // then closed exactly once, from this thread.
    let raw = unsafe { query(session) };
    // SAFETY: as above.
    unsafe { (table.close)(session) };
    Ok(s6_codec_abi::CodecId::from_raw(raw))
}

/// `s6-edge __probe-plugin PATH`: probe one plugin and print the result line.
pub fn probe_child_command(
    args: crate::cli::ProbePluginArgs,
) -> anyhow::Result<std::process::ExitCode> {
    if let Err(e) = crate::rt_guard::drop_realtime_privileges() {
        log::warn!("could not drop real-time privileges: {e:#}");
    }
    let (fps_num, fps_den) = std::env::var(PROBE_FPS_ENV)
        .ok()
        .and_then(|v| {
            let (n, d) = v.split_once('/')?;
            Some((n.parse().ok()?, d.parse().ok()?))
        })
        .unwrap_or((30, 1));
    let req = ProbeRequest {
        width: args.width,
        height: args.height,
        fps_num,
        fps_den,
    };
    let report = probe_in_process(&args.path, &req, |loaded| {
        if let Ok(line) = serde_json::to_string(loaded) {
            // Stdout is line-buffered: the line is out before probe runs.
            println!("{LOADED_MARKER} {line}");
        }
    });
    let line = serde_json::to_string(&report)?;
    println!("{RESULT_MARKER} {line}");
    Ok(std::process::ExitCode::SUCCESS)
}

/// The executable that runs probe children.
fn probe_exe() -> std::io::Result<PathBuf> {
    match std::env::var_os(PROBE_EXE_ENV) {
        Some(p) => Ok(PathBuf::from(p)),
        None => std::env::current_exe(),
    }
}

/// Probes every plugin in `paths` in parallel child processes, each with
/// `timeout`; reports come back in the order of `paths`.
pub fn probe_all(paths: &[PathBuf], req: &ProbeRequest, timeout: Duration) -> Vec<PluginReport> {
    let exe = match probe_exe() {
        Ok(exe) => exe,
        Err(e) => {
            return paths
                .iter()
                .map(|p| PluginReport::failed(p.clone(), format!("cannot find s6-edge: {e}"), 0))
                .collect();
        }
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .iter()
            .map(|path| {
                let exe = &exe;
                scope.spawn(move || probe_in_child(exe, path, req, timeout))
            })
            .collect();
        handles
            .into_iter()
            .zip(paths)
            .map(|(h, path)| {
                h.join().unwrap_or_else(|_| {
                    PluginReport::failed(path.clone(), "internal error: probe thread panicked", 0)
                })
            })
            .collect()
    })
}

/// Reads a pipe to its end on a helper thread; the bytes arrive on the
/// returned channel (the last `keep` bytes only).
fn drain(mut pipe: impl Read + Send + 'static, keep: usize) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    kept.extend_from_slice(&chunk[..n]);
                    if kept.len() > 2 * keep {
                        // Keep a bit more than `keep` so the final cut can
                        // still align on a line start.
                        kept.drain(..kept.len() - keep - 1024);
                    }
                }
            }
        }
        if kept.len() > keep {
            kept.drain(..kept.len() - keep);
            // Drop the partial first line left by the cut.
            let first_newline = kept.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
            kept.drain(..first_newline);
        }
        let _ = tx.send(kept);
    });
    rx
}

/// Runs one probe child and turns whatever happened into a report.
fn probe_in_child(exe: &Path, path: &Path, req: &ProbeRequest, timeout: Duration) -> PluginReport {
    let start = Instant::now();
    let elapsed_ms = |start: Instant| start.elapsed().as_millis() as u64;
    let spawned = Command::new(exe)
        .arg("__probe-plugin")
        .arg(path)
        .arg("--width")
        .arg(req.width.to_string())
        .arg("--height")
        .arg(req.height.to_string())
        .env(PROBE_FPS_ENV, format!("{}/{}", req.fps_num, req.fps_den))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return PluginReport::failed(
                path.to_path_buf(),
                format!("cannot start the probe process {}: {e}", exe.display()),
                elapsed_ms(start),
            )
        }
    };
    let stdout = child.stdout.take().map(|p| drain(p, 64 * 1024));
    let stderr = child.stderr.take().map(|p| drain(p, 64 * 1024));
    let waited = wait_with_deadline(&mut child, start + timeout);
    let probe_ms = elapsed_ms(start);
    // A grandchild could keep a pipe open: do not wait for it for long.
    let collect = |rx: Option<mpsc::Receiver<Vec<u8>>>| {
        rx.and_then(|rx| rx.recv_timeout(Duration::from_millis(500)).ok())
            .unwrap_or_default()
    };
    let out = collect(stdout);
    let err = collect(stderr);
    let stdout_text = String::from_utf8_lossy(&out);
    let last_line = |marker: &str| -> Option<Result<ReportJson, serde_json::Error>> {
        stdout_text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(marker))
            .map(|json| serde_json::from_str::<ReportJson>(json.trim()))
    };
    // What the child learnt before things went wrong (name, codec, ...).
    let failed = |reason: String| -> PluginReport {
        let mut report: PluginReport = match last_line(LOADED_MARKER) {
            Some(Ok(loaded)) => loaded.into(),
            _ => PluginReport::failed(path.to_path_buf(), "", 0),
        };
        report.path = path.to_path_buf();
        report.probe_ms = probe_ms;
        report.status = Availability::Unavailable(reason);
        report
    };
    let status = match waited {
        Ok(Some(status)) => status,
        Ok(None) => {
            return failed(format!(
                "probe did not finish within {} ms: driver hung?",
                timeout.as_millis()
            ))
        }
        Err(e) => return failed(format!("waiting for the probe process failed: {e}")),
    };
    match last_line(RESULT_MARKER) {
        Some(Ok(mut wire)) => {
            wire.path = path.to_path_buf();
            wire.probe_ms = probe_ms;
            return wire.into();
        }
        Some(Err(e)) => return failed(format!("probe process printed an unreadable result: {e}")),
        None => {}
    }
    let tail = stderr_tail(&err);
    let what = describe_exit(status);
    if tail.is_empty() {
        failed(format!("probe {what}"))
    } else {
        failed(format!("probe {what}; stderr: {tail}"))
    }
}

/// Waits for `child` until `deadline`; kills it (and reaps it) when it
/// overruns and returns `Ok(None)` then.
fn wait_with_deadline(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
    }
}

/// "crashed: killed by signal 6 (SIGABRT)" or "exited with status 3".
fn describe_exit(status: ExitStatus) -> String {
    if let Some(sig) = status.signal() {
        let name = nix::sys::signal::Signal::try_from(sig)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| "unknown signal".into());
        let core = if status.core_dumped() {
            ", core dumped"
        } else {
            ""
        };
        format!("crashed: killed by signal {sig} ({name}{core})")
    } else {
        match status.code() {
            Some(code) => format!("process exited with status {code} without a result"),
            None => "process ended without a result".into(),
        }
    }
}

/// Backtrace frames and hints, which would push the panic message itself
/// out of a short tail (Rust prints a backtrace for every non-unwinding panic).
fn is_backtrace_noise(line: &str) -> bool {
    let frame = line
        .split_once(':')
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    frame
        || line.starts_with("at ")
        || line == "stack backtrace:"
        || line.starts_with("note: run with `RUST_BACKTRACE")
        || line.starts_with("note: Some details are omitted")
}

/// The last few meaningful lines of a child's stderr, joined with ` | `.
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_backtrace_noise(l))
        .collect();
    let tail = lines[lines.len().saturating_sub(6)..].join(" | ");
    if tail.chars().count() > 800 {
        let skip = tail.chars().count() - 800;
        format!("...{}", tail.chars().skip(skip).collect::<String>())
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_descriptions_name_the_signal() {
        let aborted = ExitStatus::from_raw(6); // killed by SIGABRT, no core
        assert_eq!(
            describe_exit(aborted),
            "crashed: killed by signal 6 (SIGABRT)"
        );
        let exited = ExitStatus::from_raw(3 << 8);
        assert_eq!(
            describe_exit(exited),
            "process exited with status 3 without a result"
        );
    }

    #[test]
    fn stderr_tail_keeps_last_lines() {
        let s = b"a\n\nb\nc\nnote: run with `RUST_BACKTRACE=1` ...\nd\ne\nf\ng\n";
        assert_eq!(stderr_tail(s), "b | c | d | e | f | g");
        let s = b"thread 'x' panicked at lib.rs:3:1:\nboom\nstack backtrace:\n   0: 0x1 - f\n             at /src/lib.rs:3:1\n  12: 0x2 - _start\nthread caused non-unwinding panic. aborting.\n";
        assert_eq!(
            stderr_tail(s),
            "thread 'x' panicked at lib.rs:3:1: | boom | thread caused non-unwinding panic. aborting."
        );
    }

    #[test]
    fn in_process_probe_reports_a_non_library() {
        let dir = tempfile::tempdir().unwrap();
        let bogus = dir.path().join("bogus.so");
        std::fs::write(&bogus, "not an ELF file\n").unwrap();
        let r = probe_in_process(&bogus, &ProbeRequest::default(), |_| {
            panic!("a non-library never gets loaded")
        });
        assert!(!r.available);
        assert!(r.name.is_none());
        let reason = r.reason.unwrap();
        assert!(reason.contains("bogus.so"), "dlopen's message: {reason}");
    }
}
