//! A tiny, dependency-free implementation of systemd's notification protocol
//! (`sd_notify(3)`), for running `s6-edge record` as a `Type=notify` service
//! with a watchdog (see `configs/s6-edge.service`).
//!
//! Messages are `KEY=VALUE` lines sent as one datagram to the Unix socket
//! named by `$NOTIFY_SOCKET`: a filesystem path, or an abstract socket name
//! written with a leading `@`. Outside systemd the variable is unset and every
//! call is a cheap no-op that returns `Ok(false)`.
//!
//! The watchdog is tied to data actually flowing, not to the process merely
//! being alive: capture threads call [`Watchdog::frame_flowed`] for every
//! frame, and a supervisor thread calls [`Watchdog::tick`] about twice per
//! `WatchdogSec=`; a tick sends `WATCHDOG=1` only when a frame arrived since
//! the previous tick. A recorder whose cameras all stalled therefore stops
//! petting the watchdog and systemd restarts it (`Restart=on-failure`).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Environment variable naming the notification socket.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";
/// Environment variable with the watchdog timeout in microseconds.
pub const WATCHDOG_USEC_ENV: &str = "WATCHDOG_USEC";
/// Environment variable with the PID the watchdog applies to.
pub const WATCHDOG_PID_ENV: &str = "WATCHDOG_PID";

/// Sends `state` (e.g. `"READY=1"`, `"STATUS=recording episode 3"`,
/// `"STOPPING=1"`) to the service manager.
///
/// Returns `Ok(false)` when `$NOTIFY_SOCKET` is unset or empty (not running
/// under systemd), `Ok(true)` when the datagram was sent.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os(NOTIFY_SOCKET_ENV) {
        Some(socket) if !socket.is_empty() => notify_to(&socket, state).map(|()| true),
        _ => Ok(false),
    }
}

/// Tells the service manager that start-up finished (`READY=1`).
pub fn ready() -> io::Result<bool> {
    notify("READY=1")
}

/// Tells the service manager that the service is shutting down (`STOPPING=1`).
pub fn stopping() -> io::Result<bool> {
    notify("STOPPING=1")
}

/// Sets the one-line status shown by `systemctl status` (`STATUS=...`).
/// Newlines in `text` are replaced by spaces so they cannot start a new
/// assignment.
pub fn status(text: &str) -> io::Result<bool> {
    notify(&format!("STATUS={}", text.replace('\n', " ")))
}

/// Sends `state` as one datagram to the notification socket `socket`: an
/// absolute path, or `@name` for a Linux abstract socket.
pub fn notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    let addr = socket_addr(socket)?;
    let sock = UnixDatagram::unbound()?;
    let sent = sock.send_to_addr(state.as_bytes(), &addr)?;
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sd_notify: sent {sent} of {} bytes", state.len()),
        ));
    }
    Ok(())
}

/// Parses `$NOTIFY_SOCKET` syntax into a socket address.
fn socket_addr(socket: &OsStr) -> io::Result<SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = socket.as_bytes();
    match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(socket),
        Some(b'@') => abstract_addr(&bytes[1..]),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{NOTIFY_SOCKET_ENV}={} is neither an absolute path nor an @abstract name",
                socket.to_string_lossy()
            ),
        )),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract Unix sockets exist only on Linux",
    ))
}

/// The watchdog timeout systemd expects us to honour (`WatchdogSec=`), from
/// `$WATCHDOG_USEC`; `None` when unset, invalid, zero, or meant for another
/// process (`$WATCHDOG_PID` differs from ours).
pub fn watchdog_interval() -> Option<Duration> {
    parse_watchdog(
        std::env::var_os(WATCHDOG_USEC_ENV).as_deref(),
        std::env::var_os(WATCHDOG_PID_ENV).as_deref(),
        std::process::id(),
    )
}

/// [`watchdog_interval`] on given values (testable without touching the
/// process environment).
fn parse_watchdog(usec: Option<&OsStr>, pid: Option<&OsStr>, my_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.to_str()?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(pid) = pid {
        let pid: u32 = pid.to_str()?.trim().parse().ok()?;
        if pid != my_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

/// Pets the systemd watchdog only while frames keep flowing.
///
/// Share it (e.g. in an `Arc`) between the capture threads, which call
/// [`frame_flowed`](Self::frame_flowed), and one supervisor thread, which
/// calls [`tick`](Self::tick) every [`tick_period`](Self::tick_period) or
/// simply runs [`supervise`](Self::supervise).
#[derive(Debug)]
pub struct Watchdog {
    socket: OsString,
    interval: Duration,
    /// Frames seen so far, by all capture threads together.
    frames: AtomicU64,
    /// `frames` at the previous tick.
    frames_at_last_tick: AtomicU64,
}

impl Watchdog {
    /// The watchdog systemd asked for, when running as a service with
    /// `WatchdogSec=` and a notification socket; `None` otherwise.
    pub fn from_env() -> Option<Self> {
        let socket = std::env::var_os(NOTIFY_SOCKET_ENV).filter(|s| !s.is_empty())?;
        Some(Self::new(socket, watchdog_interval()?))
    }

    /// A watchdog that notifies `socket` (path or `@abstract`) and must be
    /// petted at least every `interval`.
    pub fn new(socket: impl Into<OsString>, interval: Duration) -> Self {
        Self {
            socket: socket.into(),
            interval,
            frames: AtomicU64::new(0),
            frames_at_last_tick: AtomicU64::new(0),
        }
    }

    /// The watchdog timeout (`WatchdogSec=`).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How often to call [`tick`](Self::tick): half the timeout, as
    /// `sd_watchdog_enabled(3)` recommends.
    pub fn tick_period(&self) -> Duration {
        self.interval / 2
    }

    /// Records that a frame arrived. One relaxed atomic add: cheap enough for
    /// every frame of every capture thread.
    pub fn frame_flowed(&self) {
        self.frames.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends `WATCHDOG=1` if at least one frame flowed since the previous
    /// tick. Returns whether it was sent.
    pub fn tick(&self) -> io::Result<bool> {
        let now = self.frames.load(Ordering::Relaxed);
        let before = self.frames_at_last_tick.swap(now, Ordering::Relaxed);
        if now == before {
            log::warn!("watchdog: no frame since the last tick; not notifying systemd");
            return Ok(false);
        }
        notify_to(&self.socket, "WATCHDOG=1")?;
        Ok(true)
    }

    /// Calls [`tick`](Self::tick) every [`tick_period`](Self::tick_period)
    /// until `stop` becomes true (checked at least every 100 ms). Send errors
    /// are logged, not fatal: the watchdog then fires, which is the point.
    pub fn supervise(&self, stop: &AtomicBool) {
        let step = self.tick_period().min(Duration::from_millis(100));
        let mut next = Instant::now() + self.tick_period();
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= next {
                if let Err(e) = self.tick() {
                    log::warn!("watchdog: cannot notify systemd: {e}");
                }
                next = now + self.tick_period();
            }
            std::thread::sleep(step.min(next.saturating_duration_since(now)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A real datagram socket standing in for systemd's notification socket.
    fn listener() -> (tempfile::TempDir, std::path::PathBuf, UnixDatagram) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        (dir, path, sock)
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("datagram");
        String::from_utf8(buf[..n].to_vec()).expect("utf-8")
    }

    fn nothing_pending(sock: &UnixDatagram) -> bool {
        sock.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 64];
        let r = sock.recv(&mut buf);
        sock.set_nonblocking(false).expect("blocking");
        matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    #[test]
    fn sends_ready_to_a_path_socket() {
        let (_dir, path, sock) = listener();
        notify_to(path.as_os_str(), "READY=1").expect("notify");
        assert_eq!(recv(&sock), "READY=1");
        notify_to(path.as_os_str(), "STATUS=recording\nMAINPID=1").expect("notify");
        assert_eq!(recv(&sock), "STATUS=recording\nMAINPID=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("s6-edge-test-{}-{:?}", std::process::id(), Instant::now());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract addr");
        let sock = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        notify_to(OsStr::new(&format!("@{name}")), "READY=1").expect("notify");
        assert_eq!(recv(&sock), "READY=1");
    }

    #[test]
    fn rejects_relative_socket_names_and_reports_missing_sockets() {
        let err = notify_to(OsStr::new("relative.sock"), "READY=1").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nobody-listens");
        assert!(notify_to(missing.as_os_str(), "READY=1").is_err());
    }

    #[test]
    fn watchdog_interval_honours_usec_and_pid() {
        let s = |v: &'static str| Some(OsStr::new(v));
        assert_eq!(
            parse_watchdog(s("10000000"), None, 42),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_watchdog(s("500000"), s("42"), 42),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_watchdog(s("500000"), s("43"), 42), None);
        assert_eq!(parse_watchdog(s("0"), None, 42), None);
        assert_eq!(parse_watchdog(s("ten"), None, 42), None);
        assert_eq!(parse_watchdog(None, s("42"), 42), None);
    }

    #[test]
    fn watchdog_is_petted_only_while_frames_flow() {
        let (_dir, path, sock) = listener();
        let wd = Watchdog::new(path.as_os_str(), Duration::from_secs(10));
        assert_eq!(wd.tick_period(), Duration::from_secs(5));

        // No frame yet: silence.
        assert!(!wd.tick().expect("tick"));
        assert!(nothing_pending(&sock));

        // Frames from several capture threads: exactly one WATCHDOG=1 per tick.
        let wd = Arc::new(wd);
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let wd = Arc::clone(&wd);
                std::thread::spawn(move || (0..100).for_each(|_| wd.frame_flowed()))
            })
            .collect();
        threads
            .into_iter()
            .for_each(|t| t.join().expect("capture thread"));
        assert!(wd.tick().expect("tick"));
        assert_eq!(recv(&sock), "WATCHDOG=1");
        assert!(nothing_pending(&sock));

        // Capture stalled since the last tick: no notification.
        assert!(!wd.tick().expect("tick"));
        assert!(nothing_pending(&sock));

        // Flowing again: petted again.
        wd.frame_flowed();
        assert!(wd.tick().expect("tick"));
        assert_eq!(recv(&sock), "WATCHDOG=1");
    }

    #[test]
    fn supervise_ticks_while_frames_flow_and_stops_on_request() {
        let (_dir, path, sock) = listener();
        let wd = Arc::new(Watchdog::new(path.as_os_str(), Duration::from_millis(100)));
        let stop = Arc::new(AtomicBool::new(false));
        let supervisor = {
            let (wd, stop) = (Arc::clone(&wd), Arc::clone(&stop));
            std::thread::spawn(move || wd.supervise(&stop))
        };
        // Frames flow for a while: the supervisor pets the watchdog.
        let until = Instant::now() + Duration::from_millis(400);
        while Instant::now() < until {
            wd.frame_flowed();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(recv(&sock), "WATCHDOG=1");
        stop.store(true, Ordering::Relaxed);
        supervisor.join().expect("supervisor");
    }
}
