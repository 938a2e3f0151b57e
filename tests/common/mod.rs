//! Helpers shared by the integration tests: the real binary, a plugin
//! directory holding the real SVT-AV1 plugin, and ffmpeg/ffprobe checks.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The s6-edge executable cargo built for these tests.
pub fn real_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_s6-edge"))
}

/// What the tests run as s6-edge: the real binary natively. Under
/// `$S6_EDGE_TEST_RUNNER` (qemu-user) it is a generated `#!/bin/sh` wrapper
/// that execs the runner with the real binary, so `Command::new(bin())`
/// works unchanged there: an emulated process can exec a native script but
/// not a foreign ELF, and `exec` keeps the pid, so signals still reach it.
pub fn bin() -> PathBuf {
    static WRAPPER: OnceLock<PathBuf> = OnceLock::new();
    match runner_words() {
        None => real_bin(),
        Some(words) => WRAPPER
            .get_or_init(|| write_runner_wrapper(&words, &real_bin()))
            .clone(),
    }
}

/// The words of `$S6_EDGE_TEST_RUNNER`, if it is set and not blank.
fn runner_words() -> Option<Vec<String>> {
    let words: Vec<String> = std::env::var(TEST_RUNNER_ENV)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    (!words.is_empty()).then_some(words)
}

/// Writes `<exe>.test-runner.sh` (atomically: concurrent test processes
/// write the same content) running `exe` under `runner`.
fn write_runner_wrapper(runner: &[String], exe: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let quote = |w: &str| format!("'{}'", w.replace('\'', "'\\''"));
    let mut line: Vec<String> = runner.iter().map(|w| quote(w)).collect();
    line.push(quote(&exe.to_string_lossy()));
    let script = format!(
        "#!/bin/sh\n# Written by tests/common: s6-edge under $S6_EDGE_TEST_RUNNER.\nexec {} \"$@\"\n",
        line.join(" ")
    );
    let path = exe.with_extension("test-runner.sh");
    let tmp = exe.with_extension(format!("test-runner.sh.{}", std::process::id()));
    std::fs::write(&tmp, script).expect("write the runner wrapper");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .expect("make the runner wrapper executable");
    std::fs::rename(&tmp, &path).expect("install the runner wrapper");
    path
}

/// `target/<profile>`, where the plugin cdylibs are built.
pub fn target_dir() -> PathBuf {
    real_bin()
        .parent()
        .expect("binary has a parent directory")
        .to_path_buf()
}

/// A temporary plugin directory holding only the named plugins (symlinks to
/// `target/<profile>/lib<crate>.so`).
pub fn plugin_dir(tmp: &Path, crates: &[&str]) -> PathBuf {
    let dir = tmp.join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    for c in crates {
        let file = format!("lib{}.so", c.replace('-', "_"));
        let src = target_dir().join(&file);
        assert!(
            src.exists(),
            "{} is missing: run `cargo build --workspace` first",
            src.display()
        );
        std::os::unix::fs::symlink(&src, dir.join(&file)).unwrap();
    }
    dir
}

/// A plugin directory with only the SVT-AV1 plugin.
pub fn svtav1_dir(tmp: &Path) -> PathBuf {
    plugin_dir(tmp, &["s6-codec-svtav1"])
}

/// The SVT-AV1 preset the stamp-checking tests record with unless they set
/// one: SVT-AV1 1.4.1 at presets 10-12 (the default is 12) sometimes codes a
/// superblock row of a frame as a copy of its reference (the stamp of frame n
/// then reads n-4), depending on content and GOP position; preset 8 never did
/// in 260 scanned episode starts (tests/svtav1_stamps.rs).
pub const STAMP_EXACT_PRESET: &str = "8";

/// `s6-edge record` arguments that encode with the real SVT-AV1 plugin in
/// `plugins` (see [`svtav1_dir`]) into the dataset `ds`, followed by `extra`
/// (cameras, sizes, schedule); `--preset` [`STAMP_EXACT_PRESET`] unless
/// `extra` names a preset.
pub fn svtav1_record_args<'a>(plugins: &'a Path, ds: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "record",
        "--vcodec",
        "svtav1",
        "--plugin-dir",
        plugins.to_str().unwrap(),
        "-o",
        ds.to_str().unwrap(),
    ];
    if !extra.contains(&"--preset") {
        args.extend_from_slice(&["--preset", STAMP_EXACT_PRESET]);
    }
    args.extend_from_slice(extra);
    args
}

/// Environment variable holding a command prefix that runs this workspace's
/// own executables, e.g. `qemu-aarch64-static -L cross/.sysroot` when the
/// tests run under qemu-user (set by `cross/build-aarch64.sh`; unset on native
/// runs). Peers such as ffmpeg or gst-launch-1.0 are host programs and never
/// take it.
pub const TEST_RUNNER_ENV: &str = "S6_EDGE_TEST_RUNNER";

/// A `Command` for one of this workspace's executables given by path (an
/// example, `env!("CARGO_BIN_EXE_...")`), prefixed with
/// `$S6_EDGE_TEST_RUNNER` when that is set: an aarch64 test process under
/// qemu-user cannot exec an aarch64 binary directly (no binfmt_misc). For
/// s6-edge itself, `bin()` / `s6_command()` already take care of it.
pub fn our_command(exe: impl AsRef<OsStr>) -> Command {
    match runner_words() {
        Some(words) => {
            let mut cmd = Command::new(&words[0]);
            cmd.args(&words[1..]).arg(exe);
            cmd
        }
        None => Command::new(exe),
    }
}

/// Environment variable: a whole-number factor for the tests' time limits
/// (probe deadlines and the like). `cross/build-aarch64.sh` sets it for the
/// run under qemu-user, where every process starts and computes several
/// times slower; unset or invalid means 1.
pub const TIME_SCALE_ENV: &str = "S6_EDGE_TEST_TIME_SCALE";

/// `ms` multiplied by `$S6_EDGE_TEST_TIME_SCALE`.
pub fn scaled_ms(ms: u64) -> u64 {
    let scale = std::env::var(TIME_SCALE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s >= 1)
        .unwrap_or(1);
    ms * scale
}

/// A `Command` for the s6-edge binary under test (see [`bin`]).
pub fn s6_command() -> Command {
    Command::new(bin())
}

/// Runs s6-edge with `args`, returning its output.
pub fn s6(args: &[&str]) -> Output {
    s6_command()
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .expect("run s6-edge")
}

/// Prints an output's streams (shown when a test fails).
pub fn dump(label: &str, out: &Output) {
    eprintln!(
        "--- {label}: status {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs s6-edge with `args` (see [`s6`]), prints its output under `label`
/// and asserts that it succeeded.
pub fn s6_ok(label: &str, args: &[&str]) -> Output {
    let out = s6(args);
    dump(label, &out);
    assert!(out.status.success());
    out
}

/// A tmpfs mounted on a directory (needs root), unmounted on drop: a
/// small disk that fills up.
pub struct Tmpfs(/** The mount point. */ pub PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`) on `dir`, creating it;
    /// the error is mount's message.
    pub fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Tmpfs(dir.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

impl Tmpfs {
    /// Writes a file `filler` taking all but `leave` bytes of the free
    /// space; returns its path.
    pub fn fill_leaving(&self, leave: u64) -> PathBuf {
        let filler = self.0.join("filler");
        let fill = free_bytes(&self.0) - leave;
        std::fs::write(&filler, vec![0x5au8; fill as usize]).unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Bytes available in the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(dir).unwrap();
    st.blocks_available() as u64 * st.fragment_size() as u64
}

/// Stamps of every decoded frame of a `width`x`height` video, one per
/// sample as stored (`-fps_mode passthrough`: no frame duplicated to fill
/// a presentation-time gap, unlike ffmpeg's constant-rate default).
pub fn decoded_stamps_passthrough(path: &Path, width: u32, height: u32) -> Vec<Option<u64>> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks((width * height) as usize)
        .map(|luma| s6_edge::capture::stamp::read_stamp(luma, width, height, width as usize))
        .collect()
}

/// Starts a live `gst-launch-1.0` RTP/JPEG sender of a `width`x`height`
/// 15 fps test pattern to 127.0.0.1:`port` (kill it when done).
pub fn spawn_rtp_jpeg_sender(port: u16, width: u32, height: u32) -> std::process::Child {
    Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "is-live=true",
            "!",
            &format!("video/x-raw,format=I420,width={width},height={height},framerate=15/1"),
            "!",
            "jpegenc",
            "!",
            "rtpjpegpay",
            "!",
            "udpsink",
            "host=127.0.0.1",
            &format!("port={port}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start gst-launch-1.0 sender")
}

/// The `-i` spec receiving [`spawn_rtp_jpeg_sender`]'s stream on `port`
/// as camera `net` at 15 fps.
pub fn rtp_jpeg_source(port: u16) -> String {
    format!("gst:udpsrc port={port} caps=\"application/x-rtp,media=video,encoding-name=JPEG,payload=26,clock-rate=90000\" ! rtpjpegdepay ! jpegdec#name=net,fps=15")
}

/// Encodes `frames` frames of ffmpeg's `testsrc2` (320x240 at 15 fps,
/// yuv420p) with the encoder arguments `args` into `out`; returns the file.
pub fn ffmpeg_testsrc2(args: &[&str], frames: u32, out: &Path) -> Vec<u8> {
    let status = Command::new("ffmpeg")
        .env("SVT_LOG", "1")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=15",
        ])
        .args(["-frames:v", &frames.to_string(), "-pix_fmt", "yuv420p"])
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg must be installed");
    assert!(status.success(), "ffmpeg encode failed");
    std::fs::read(out).unwrap()
}

/// Frames ffprobe counts by decoding the whole file.
pub fn ffprobe_frames(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .trim_end_matches(',')
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe output {text:?}"))
}

/// Decodes `path` with ffmpeg to 8-bit gray frames and reads the stamped
/// frame number of each.
pub fn decoded_stamps(path: &Path, width: u32, height: u32) -> Vec<Option<u64>> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let frame = (width * height) as usize;
    assert_eq!(
        out.stdout.len() % frame,
        0,
        "decoded size is not a whole number of frames"
    );
    out.stdout
        .chunks(frame)
        .map(|luma| s6_edge::capture::stamp::read_stamp(luma, width, height, width as usize))
        .collect()
}

/// Episode directories of a dataset, sorted.
pub fn episode_dirs(dataset: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dataset.join("episodes"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Rows of a camera index.
pub fn index_rows(path: &Path) -> Vec<s6_edge::dataset::index::IndexRecord> {
    s6_edge::dataset::index::read_index(path)
        .unwrap_or_else(|e| panic!("read {}: {e:#}", path.display()))
        .records
}

/// The only run directory under `logs/runs`.
pub fn only_run(logs: &Path) -> PathBuf {
    let runs: Vec<_> = std::fs::read_dir(logs.join("runs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    assert_eq!(runs.len(), 1, "one run directory: {runs:?}");
    runs[0].clone()
}

/// Parses a JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
    )
    .unwrap()
}

/// Asserts that stamps are present and consecutive: frame k of the file
/// carries source frame number `first + k`. The synthetic camera keeps
/// counting between episodes, so an episode starts at whatever number the
/// source had reached; consecutive numbers prove no frame was lost,
/// duplicated or reordered. Returns the first stamp.
pub fn assert_consecutive_stamps(stamps: &[Option<u64>], what: &str) -> u64 {
    let first = stamps
        .first()
        .copied()
        .flatten()
        .unwrap_or_else(|| panic!("{what}: first frame has no readable stamp"));
    let want: Vec<Option<u64>> = (0..stamps.len() as u64).map(|k| Some(first + k)).collect();
    assert_eq!(
        stamps,
        want.as_slice(),
        "{what}: stamped frame numbers are consecutive, in order"
    );
    first
}
