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
//! being alive: the recorder's monitor calls [`Watchdog::tick`] about twice
//! per `WatchdogSec=` with its verdict on the cameras (every live camera
//! delivered a frame recently), and a tick sends `WATCHDOG=1` only for a
//! healthy verdict. A recorder with a stuck camera therefore stops petting
//! the watchdog and systemd restarts it (`Restart=on-failure`).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
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
///
/// Never blocks: when the receiver's queue is full (a service manager that
/// stopped reading) the send fails with `WouldBlock` instead of stalling the
/// recorder.
pub fn notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    let addr = socket_addr(socket)?;
    let sock = UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
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

/// Pets the systemd watchdog only while the recorder is healthy.
///
/// The health verdict comes from the caller (the recorder's monitor passes
/// "every live camera delivered a frame recently", see
/// `record::liveness`): [`tick`](Self::tick) sends `WATCHDOG=1` only for a
/// healthy verdict, so a stuck camera lets `WatchdogSec=` expire.
#[derive(Debug)]
pub struct Watchdog {
    socket: OsString,
    interval: Duration,
    /// The previous verdict, to log transitions once instead of every tick.
    was_healthy: AtomicBool,
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
            was_healthy: AtomicBool::new(true),
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

    /// Sends `WATCHDOG=1` when `health` is `Ok`; otherwise sends nothing and
    /// logs why (once per change). Returns whether it was sent.
    pub fn tick<E: std::fmt::Display>(&self, health: Result<(), E>) -> io::Result<bool> {
        match health {
            Ok(()) => {
                if !self.was_healthy.swap(true, Ordering::Relaxed) {
                    log::info!("watchdog: frames flow again; notifying systemd again");
                }
                notify_to(&self.socket, "WATCHDOG=1")?;
                Ok(true)
            }
            Err(why) => {
                if self.was_healthy.swap(false, Ordering::Relaxed) {
                    log::warn!(
                        "watchdog: {why}; not notifying systemd (it restarts the service after {:.1} s)",
                        self.interval.as_secs_f64()
                    );
                }
                Ok(false)
            }
        }
    }

    /// Calls [`tick`](Self::tick) with `check()` every
    /// [`tick_period`](Self::tick_period) until `stop` becomes true (checked
    /// at least every 100 ms). Send errors are logged, not fatal: the
    /// watchdog then fires, which is the point.
    pub fn supervise<E: std::fmt::Display>(
        &self,
        stop: &AtomicBool,
        mut check: impl FnMut() -> Result<(), E>,
    ) {
        let step = self.tick_period().min(Duration::from_millis(100));
        let mut next = Instant::now() + self.tick_period();
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= next {
                if let Err(e) = self.tick(check()) {
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
    fn a_full_receiver_queue_fails_instead_of_blocking() {
        let (_dir, path, _sock) = listener();
        let started = Instant::now();
        let err = (0..100_000)
            .find_map(|_| notify_to(path.as_os_str(), "WATCHDOG=1").err())
            .expect("the queue of a socket nobody reads fills up");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(started.elapsed() < Duration::from_secs(5));
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
    fn watchdog_is_petted_only_while_healthy() {
        let (_dir, path, sock) = listener();
        let wd = Watchdog::new(path.as_os_str(), Duration::from_secs(10));
        assert_eq!(wd.tick_period(), Duration::from_secs(5));

        assert!(wd.tick(Ok::<(), String>(())).expect("tick"));
        assert_eq!(recv(&sock), "WATCHDOG=1");
        assert!(nothing_pending(&sock));

        // A stalled camera: silence, however often it ticks.
        for _ in 0..3 {
            assert!(!wd.tick(Err("camera a: no frame for 2.0 s")).expect("tick"));
        }
        assert!(nothing_pending(&sock));

        // Flowing again: petted again.
        assert!(wd.tick(Ok::<(), String>(())).expect("tick"));
        assert_eq!(recv(&sock), "WATCHDOG=1");
    }

    #[test]
    fn supervise_ticks_while_healthy_and_stops_on_request() {
        let (_dir, path, sock) = listener();
        let wd = Arc::new(Watchdog::new(path.as_os_str(), Duration::from_millis(100)));
        let stop = Arc::new(AtomicBool::new(false));
        let healthy = Arc::new(AtomicBool::new(true));
        let supervisor = {
            let (wd, stop, healthy) = (Arc::clone(&wd), Arc::clone(&stop), Arc::clone(&healthy));
            std::thread::spawn(move || {
                wd.supervise(&stop, || {
                    if healthy.load(Ordering::Relaxed) {
                        Ok(())
                    } else {
                        Err("stalled")
                    }
                })
            })
        };
        assert_eq!(recv(&sock), "WATCHDOG=1");
        assert_eq!(recv(&sock), "WATCHDOG=1");
        healthy.store(false, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(120));
        while !nothing_pending(&sock) {}
        std::thread::sleep(Duration::from_millis(200));
        assert!(nothing_pending(&sock), "no ping while unhealthy");
        stop.store(true, Ordering::Relaxed);
        supervisor.join().expect("supervisor");
    }
}
