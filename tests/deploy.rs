//! Running on a robot: the systemd notify protocol with a data-flow
//! watchdog, episode control through `record --control` + `s6-edge ctl`, and
//! the `--min-free` disk guard. Everything runs the real binary against real
//! peers: a datagram socket standing in for systemd, a `gst-launch-1.0` RTP
//! sender that is killed to stall a camera, a size-limited tmpfs.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A recorder running in the background; killed if the test ends early.
struct Recorder {
    child: Child,
    log: PathBuf,
}

impl Recorder {
    /// Starts `s6-edge` with `args` (a `record` command line), its stderr
    /// to `log`, with extra environment `env`.
    fn spawn(args: &[&str], log: &Path, env: &[(&str, &str)]) -> Recorder {
        let file = std::fs::File::create(log).unwrap();
        // The encoder probe's deadline scales with the machine (qemu-user).
        let probe_ms = scaled_ms(3000).to_string();
        let child = s6_command()
            .args(args)
            .args(["--probe-timeout-ms", &probe_ms])
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start s6-edge record");
        Recorder {
            child,
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the exit status (panics after `limit`).
    fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= until {
                panic!("recorder did not exit within {limit:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn sigint(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.alive() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `record -i INPUT` with the SVT-AV1 plugin (under `tmp`), writing
/// to `ds`, controlled through `sock`, plus `extra` arguments; returns once
/// the control socket is there.
fn spawn_controlled(tmp: &Path, ds: &Path, sock: &Path, input: &str, extra: &[&str]) -> Recorder {
    let plugins = svtav1_dir(tmp);
    let mut args = svtav1_record_args(
        &plugins,
        ds,
        &["-i", input, "--control", sock.to_str().unwrap()],
    );
    args.extend_from_slice(extra);
    let mut rec = Recorder::spawn(&args, &tmp.join("record.log"), &[]);
    wait_for_socket(&mut rec, sock);
    rec
}

/// Runs `s6-edge ctl SOCKET ARGS...`: (exit success, reply JSON).
fn ctl(socket: &Path, args: &[&str]) -> (bool, Value) {
    let out = s6_command()
        .arg("ctl")
        .arg(socket)
        .args(args)
        .output()
        .expect("run s6-edge ctl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reply: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        dump("ctl", &out);
        panic!("ctl {args:?}: reply is not JSON ({e}): {stdout:?}")
    });
    assert_eq!(
        out.status.success(),
        reply["ok"] == Value::Bool(true),
        "exit status follows the reply's ok: {reply}"
    );
    (out.status.success(), reply)
}

/// `ctl` that must succeed.
fn ctl_ok(socket: &Path, args: &[&str]) -> Value {
    let (ok, reply) = ctl(socket, args);
    assert!(ok, "ctl {args:?} failed: {reply}");
    reply
}

/// Waits until the control socket accepts connections (cameras opened,
/// encoder probed, dataset created).
fn wait_for_socket(rec: &mut Recorder, socket: &Path) {
    let until = Instant::now() + Duration::from_secs(60);
    while UnixStream::connect(socket).is_err() {
        assert!(rec.alive(), "recorder exited early:\n{}", rec.log());
        assert!(
            Instant::now() < until,
            "no control socket after 60 s:\n{}",
            rec.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `status` until `pred` holds (panics after `limit`); returns it.
fn wait_status(
    rec: &mut Recorder,
    socket: &Path,
    limit: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let until = Instant::now() + limit;
    loop {
        let s = ctl_ok(socket, &["status"]);
        if pred(&s) {
            return s;
        }
        assert!(rec.alive(), "recorder exited early:\n{}", rec.log());
        assert!(
            Instant::now() < until,
            "{what}: not reached within {limit:?}; last status {s}\n{}",
            rec.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

const SMALL: &str = "synthetic#width=160,height=120,fps=15";

#[test]
fn ctl_start_stop_discard_status_drive_episodes_of_a_running_recorder() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    let sock = tmp.path().join("control.sock");
    let mut rec = spawn_controlled(tmp.path(), &ds, &sock, SMALL, &["--task", "default task"]);

    // Command-driven: nothing is recorded before `start`, but the camera runs.
    let s = wait_status(
        &mut rec,
        &sock,
        Duration::from_secs(10),
        "camera rate",
        |s| s["cameras"]["cam0"]["fps"].as_f64().unwrap_or(0.0) > 10.0,
    );
    assert_eq!(s["state"], "idle", "{s}");
    assert_eq!(s["episode"], Value::Null);
    assert_eq!(s["episodes_completed"], 0);
    assert_eq!(s["stall"], Value::Null, "{s}");
    assert_eq!(
        s["cameras"]["cam0"]["captured"], 0,
        "no frame outside episodes: {s}"
    );
    assert!(episode_dirs(&ds).is_empty());

    // Idle: stop and discard have nothing to end.
    for cmd in ["stop", "discard"] {
        let (ok, r) = ctl(&sock, &[cmd]);
        assert!(
            !ok && r["error"].as_str().unwrap().contains("not recording"),
            "{r}"
        );
    }

    // Episode 0: start with a task, status while recording, stop.
    let r = ctl_ok(&sock, &["start", "--task", "pick the red cube"]);
    assert_eq!(
        (r["episode"].as_u64(), r["task"].as_str()),
        (Some(0), Some("pick the red cube"))
    );
    std::thread::sleep(Duration::from_millis(1500));
    let s = ctl_ok(&sock, &["status"]);
    assert_eq!(
        (s["state"].as_str(), s["episode"].as_u64()),
        (Some("recording"), Some(0)),
        "{s}"
    );
    assert_eq!(s["task"], "pick the red cube");
    let cam = &s["cameras"]["cam0"];
    assert!(cam["fps"].as_f64().unwrap() > 5.0, "{s}");
    assert!(cam["captured"].as_u64().unwrap() >= 15, "{s}");
    assert_eq!(cam["drops"], 0);
    assert!(cam["backlog"].as_u64().is_some(), "{s}");
    let (ok, r) = ctl(&sock, &["start"]);
    assert!(
        !ok && r["error"]
            .as_str()
            .unwrap()
            .contains("already recording episode 0"),
        "{r}"
    );
    let r = ctl_ok(&sock, &["stop"]);
    assert_eq!(
        (r["episode"].as_u64(), r["complete"].as_bool()),
        (Some(0), Some(true)),
        "{r}"
    );
    let frames0 = r["frames"]["cam0"].as_u64().unwrap();
    assert!(
        frames0 >= 5,
        "1.5 s at 15 fps (~22; fewer on a loaded machine): {r}"
    );
    // `stop` answers once episode.json is on disk.
    let ep0 = ds.join("episodes/000000");
    let meta = json(&ep0.join("episode.json"));
    assert_eq!(meta["status"], "complete");
    assert_eq!(meta["task"], "pick the red cube");
    assert_eq!(meta["cameras"]["cam0"]["frames"].as_u64(), Some(frames0));
    assert_eq!(ffprobe_frames(&ep0.join("cam0.mp4")), frames0);

    // Episode 1: started, then discarded: nothing of it is left anywhere.
    let before = tree(&ds);
    let r = ctl_ok(&sock, &["start"]);
    assert_eq!(r["episode"], 1);
    assert_eq!(r["task"], "default task", "--task is the default: {r}");
    std::thread::sleep(Duration::from_millis(1000));
    assert!(ds.join("episodes/000001/cam0.mp4").exists());
    let r = ctl_ok(&sock, &["discard"]);
    assert_eq!(
        (r["episode"].as_u64(), r["discarded"].as_bool()),
        (Some(1), Some(true)),
        "{r}"
    );
    assert_eq!(
        tree(&ds),
        before,
        "a discarded episode leaves nothing behind"
    );

    // The raw line protocol, several commands on one connection.
    let mut conn = UnixStream::connect(&sock).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut lines = BufReader::new(conn.try_clone().unwrap()).lines();
    let mut say = |line: &str| -> Value {
        conn.write_all(format!("{line}\n").as_bytes()).unwrap();
        serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap()
    };
    let r = say("bogus");
    assert!(
        r["ok"] == false && r["error"].as_str().unwrap().contains("unknown command"),
        "{r}"
    );
    let r = say("start place it on the shelf");
    assert_eq!(
        (r["ok"].as_bool(), r["episode"].as_u64()),
        (Some(true), Some(1)),
        "{r}"
    );
    std::thread::sleep(Duration::from_millis(1000));
    let r = say("status");
    assert_eq!(
        (r["state"].as_str(), r["episode"].as_u64()),
        (Some("recording"), Some(1)),
        "{r}"
    );
    let r = say("stop");
    assert_eq!(
        (r["ok"].as_bool(), r["complete"].as_bool()),
        (Some(true), Some(true)),
        "{r}"
    );
    let r = say("status");
    assert_eq!(
        (r["state"].as_str(), r["episodes_completed"].as_u64()),
        (Some("idle"), Some(2)),
        "{r}"
    );
    // `stop` right after `start`: the episode still gets its first frame
    // and completes (no camera is left without a report for it).
    let r = say("start");
    assert_eq!(r["episode"], 2, "{r}");
    let r = say("stop");
    assert_eq!(
        (r["ok"].as_bool(), r["complete"].as_bool()),
        (Some(true), Some(true)),
        "{r}"
    );
    assert!(r["frames"]["cam0"].as_u64().unwrap() >= 1, "{r}");

    // quit ends the recorder cleanly and removes the socket.
    let r = ctl_ok(&sock, &["quit"]);
    assert_eq!(r["ok"], true);
    let status = rec.wait(Duration::from_secs(30));
    assert!(status.success(), "{}", rec.log());
    assert!(!sock.exists(), "control socket removed on exit");
    let meta1 = json(&ds.join("episodes/000001/episode.json"));
    assert_eq!(meta1["task"], "place it on the shelf");
    assert_eq!(episode_dirs(&ds).len(), 3);
    s6_ok("verify", &["verify", ds.to_str().unwrap()]);

    // The client on a dead socket: a clear error, exit 1.
    let out = s6(&["ctl", sock.to_str().unwrap(), "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is `s6-edge record --control"));
}

#[test]
fn sd_notify_ready_then_watchdog_only_while_every_camera_delivers() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = svtav1_dir(tmp.path());
    let ds = tmp.path().join("ds");
    let notify_path = tmp.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();

    // Camera "net": RTP/JPEG from a real gst-launch-1.0 sender, killed later
    // to stall that camera while camera "syn" keeps delivering.
    let port = 21000 + (std::process::id() % 20000) as u16;
    let mut sender = spawn_rtp_jpeg_sender(port, 160, 120);
    let net = rtp_jpeg_source(port);
    let mut rec = Recorder::spawn(
        &svtav1_record_args(
            &plugins,
            &ds,
            &[
                "-i",
                "synthetic#name=syn,width=160,height=120,fps=15",
                "-i",
                &net,
                "--episode-time",
                "60",
            ],
        ),
        &tmp.path().join("record.log"),
        &[
            ("NOTIFY_SOCKET", notify_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );

    // Datagrams received, with the time they arrived.
    let mut got: Vec<(Instant, String)> = Vec::new();
    let collect = |until: Instant, got: &mut Vec<(Instant, String)>| {
        let mut buf = [0u8; 4096];
        while Instant::now() < until {
            if let Ok(n) = notify.recv(&mut buf) {
                got.push((
                    Instant::now(),
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                ));
            }
        }
    };
    let pings = |got: &[(Instant, String)], from: Instant| {
        got.iter()
            .filter(|(t, m)| *t >= from && m == "WATCHDOG=1")
            .count()
    };

    // READY=1 (with a STATUS=) once cameras are open and the encoder probed.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !got.iter().any(|(_, m)| m.contains("READY=1")) {
        assert!(Instant::now() < deadline, "no READY=1:\n{}", rec.log());
        assert!(rec.alive(), "recorder exited:\n{}", rec.log());
        collect(Instant::now() + Duration::from_millis(200), &mut got);
    }
    let ready = got.iter().find(|(_, m)| m.contains("READY=1")).unwrap();
    assert!(ready.1.contains("STATUS="), "{}", ready.1);

    // Both cameras deliver: WATCHDOG=1 about every 200 ms (WatchdogSec/2).
    let t0 = Instant::now();
    collect(t0 + Duration::from_secs(2), &mut got);
    let flowing = pings(&got, t0);
    eprintln!("{flowing} WATCHDOG=1 in 2 s while both cameras deliver");
    // ~10 expected; fewer when a loaded machine (or qemu-user) delays a
    // frame past the allowed silence, never more than one per tick.
    assert!(
        (3..=12).contains(&flowing),
        "{flowing} pings in 2 s while frames flow (expected ~10):\n{}",
        rec.log()
    );
    assert!(
        got.iter()
            .any(|(_, m)| m.starts_with("STATUS=recording episode 0")),
        "{got:?}"
    );

    // Kill the sender: camera "net" stalls, camera "syn" still delivers.
    sender.kill().unwrap();
    sender.wait().unwrap();
    let t1 = Instant::now();
    // Allowed silence: max(WatchdogSec/2, 3 frames) = 200 ms, plus one tick.
    collect(t1 + Duration::from_millis(700), &mut got);
    let t2 = Instant::now();
    collect(t2 + Duration::from_secs(2), &mut got);
    assert_eq!(
        pings(&got, t2),
        0,
        "no WATCHDOG=1 while camera net is stuck: {:?}",
        &got[got.len().saturating_sub(5)..]
    );
    assert!(
        rec.alive(),
        "the process is still alive: only systemd may kill it now"
    );
    assert!(
        rec.log().contains("watchdog: camera net: no frame for"),
        "the log names the stuck camera:\n{}",
        rec.log()
    );

    // Shutdown says STOPPING=1.
    rec.sigint();
    let t3 = Instant::now();
    collect(t3 + Duration::from_secs(1), &mut got);
    assert!(
        got.iter().any(|(t, m)| *t >= t3 && m == "STOPPING=1"),
        "no STOPPING=1: {got:?}"
    );
    // The stalled camera ends the run with an error after its stall timeout
    // (10 s); the episode of the camera that kept delivering is intact.
    rec.wait(Duration::from_secs(40));
    let ep = ds.join("episodes/000000");
    assert!(
        index_rows(&ep.join("syn.idx")).len() >= 45,
        "camera syn recorded 3+ s"
    );
}

#[test]
fn min_free_pauses_before_the_disk_fills_and_resumes_when_space_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    let fs = match Tmpfs::mount(&mnt, "8M") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIP min_free test: cannot mount a tmpfs here ({why}); needs root");
            return;
        }
    };
    let ds = mnt.join("ds");
    let sock = tmp.path().join("control.sock");
    // Leave min-free + 1.5 MiB: room for a few episodes of noisy 160x120
    // (~100 KB/s natively).
    let min_free: u64 = 2 << 20;
    let filler = fs.fill_leaving(min_free + (3 << 19));

    let mut rec = spawn_controlled(
        tmp.path(),
        &ds,
        &sock,
        "synthetic#width=160,height=120,fps=15,noise=60",
        &["--episode-time", "1.5", "--min-free", "2M"],
    );

    // The schedule runs on its own (--episode-time). Once an episode is
    // complete, take most of the remaining headroom away (another writer on
    // the card) but leave 384 KiB above min-free: the recorder's own writes
    // must cross the threshold (also where encoding is slow, e.g. qemu-user).
    let limit = Duration::from_millis(scaled_ms(60_000));
    let s = wait_status(&mut rec, &sock, limit, "first episode", |s| {
        s["episodes_completed"].as_u64() >= Some(1) || s["state"] == "paused"
    });
    if s["state"] != "paused" {
        let free = free_bytes(&mnt);
        let more = free.saturating_sub(min_free + (384 << 10));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&filler)
            .unwrap();
        f.write_all(&vec![0xa5u8; more as usize]).unwrap();
    }
    let s = wait_status(&mut rec, &sock, limit, "pause", |s| s["state"] == "paused");
    let reason = s["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("disk: ") && reason.contains("free < min-free 2.00 MiB"),
        "{s}"
    );
    assert_eq!(s["episode"], Value::Null, "no episode while paused: {s}");
    let free_at_pause = free_bytes(&mnt);
    assert!(
        free_at_pause > min_free / 2,
        "paused well before the disk filled: {free_at_pause} bytes free"
    );
    // Every episode so far is complete (the cut one too) and verifies.
    let eps = episode_dirs(&ds);
    eprintln!(
        "paused after {} episode(s) with {free_at_pause} bytes free (min-free {min_free}): {reason}",
        eps.len()
    );
    assert!(!eps.is_empty(), "episodes before the pause: {eps:?}");
    for ep in &eps {
        assert_eq!(
            json(&ep.join("episode.json"))["status"],
            "complete",
            "{}",
            ep.display()
        );
    }
    s6_ok("verify while paused", &["verify", ds.to_str().unwrap()]);
    // While paused nothing is written and `start` is refused with the reason.
    let (ok, r) = ctl(&sock, &["start"]);
    assert!(
        !ok && r["error"].as_str().unwrap().contains("paused: disk: "),
        "{r}"
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(episode_dirs(&ds), eps, "no new episode while paused");
    assert!(rec.log().contains("pausing recording"), "{}", rec.log());

    // Free space: recording resumes on its own with a new episode.
    std::fs::remove_file(&filler).unwrap();
    let limit = Duration::from_millis(scaled_ms(20_000));
    let s = wait_status(&mut rec, &sock, limit, "resume", |s| {
        s["state"] == "recording"
    });
    assert_eq!(s["episode"].as_u64(), Some(eps.len() as u64), "{s}");
    assert_eq!(s["reason"], Value::Null);

    let (ok, r) = ctl(&sock, &["quit"]);
    assert!(ok, "quit: {r}\n{}", rec.log());
    assert!(rec.wait(Duration::from_secs(30)).success(), "{}", rec.log());
    let all = episode_dirs(&ds);
    assert_eq!(all.len(), eps.len() + 1, "{all:?}");
    s6_ok("verify at the end", &["verify", ds.to_str().unwrap()]);
}

#[test]
fn min_free_already_below_at_start_pauses_instead_of_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    let sock = tmp.path().join("control.sock");
    let mut rec = spawn_controlled(
        tmp.path(),
        &ds,
        &sock,
        SMALL,
        &["--episode-time", "5", "--min-free", "1000T"],
    );
    let s = ctl_ok(&sock, &["status"]);
    assert_eq!(s["state"], "paused", "{s}");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("min-free 1000.0 TiB"),
        "{s}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(episode_dirs(&ds).is_empty(), "nothing recorded");
    rec.sigint();
    assert!(rec.wait(Duration::from_secs(30)).success(), "{}", rec.log());
    assert!(
        rec.log()
            .contains("recording stays paused until space is freed"),
        "{}",
        rec.log()
    );
}

#[test]
fn bad_min_free_and_ctl_usage_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = s6(&[
        "record",
        "-i",
        SMALL,
        "-o",
        tmp.path().join("ds").to_str().unwrap(),
        "--min-free",
        "5X",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--min-free") && err.contains("500M, 2G"),
        "{err}"
    );
    assert!(!tmp.path().join("ds").exists());

    let out = s6(&["ctl", "/nonexistent.sock", "start", "--task", "two\nlines"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s6(&["ctl", "/nonexistent.sock", "pause"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn control_with_a_schedule_records_on_its_own_and_a_discarded_episode_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    let sock = tmp.path().join("control.sock");
    let mut rec = spawn_controlled(
        tmp.path(),
        &ds,
        &sock,
        SMALL,
        &["--episodes", "2", "--episode-time", "1.5"],
    );
    // --episodes/--episode-time: the schedule starts episode 0 by itself.
    wait_status(&mut rec, &sock, Duration::from_secs(10), "recording", |s| {
        s["state"] == "recording" && s["episode"] == 0
    });
    std::thread::sleep(Duration::from_millis(500));
    let r = ctl_ok(&sock, &["discard"]);
    assert_eq!(r["discarded"], true, "{r}");
    // The discarded episode does not count: two complete ones follow, then
    // the recorder exits on its own.
    let status = rec.wait(Duration::from_secs(60));
    assert!(status.success(), "{}", rec.log());
    let eps = episode_dirs(&ds);
    assert_eq!(eps.len(), 2, "{eps:?}");
    for ep in &eps {
        let meta = json(&ep.join("episode.json"));
        assert_eq!(meta["status"], "complete");
        let frames = meta["cameras"]["cam0"]["frames"].as_u64().unwrap();
        assert!(
            (15..=30).contains(&frames),
            "a full 1.5 s episode: {frames}"
        );
    }
    assert!(!sock.exists());
    s6_ok("verify", &["verify", ds.to_str().unwrap()]);
}
