//! `record --control SOCKET`: a Unix stream socket through which robot code
//! drives episodes. Line protocol: one command per line, one JSON object per
//! reply line (see README, "Episode control").
//!
//! ```text
//! start [TASK...]   begin an episode (TASK: the rest of the line, optional)
//! stop              finish the current episode cleanly (episode.json)
//! discard           end the current episode and delete it entirely
//! status            state, episode, reason, per-camera fps/backlog/drops
//! quit              finish the current episode and end the recorder
//! ```
//!
//! Every reply carries `"ok": true|false`; failures carry `"error"`.
//! `status` is answered by the socket thread itself (also while an episode
//! is being finished); the other commands go to the episode loop, which
//! replies once the command took effect (`stop`: after `episode.json` was
//! written; `discard`: after the directory was removed).

use super::status::StatusBoard;
use anyhow::Context;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest accepted command line, in bytes.
pub const MAX_LINE: u64 = 4096;

/// Permissions of the socket file: owner and group read/write.
pub const SOCKET_MODE: u32 = 0o660;

/// A command for the episode loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Begin an episode, optionally with its own task text.
    Start {
        /// Task text (overrides `--task` for this episode).
        task: Option<String>,
    },
    /// Finish the current episode cleanly.
    Stop,
    /// End the current episode and delete it.
    Discard,
    /// Finish the current episode and end the recorder.
    Quit,
}

/// A parsed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// `status`.
    Status,
    /// Anything for the episode loop.
    Command(Command),
}

/// Parses one protocol line.
pub fn parse_line(line: &str) -> Result<Line, String> {
    let line = line.trim();
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let no_args = |l: Line| {
        if rest.is_empty() {
            Ok(l)
        } else {
            Err(format!("`{word}` takes no argument"))
        }
    };
    match word.to_ascii_lowercase().as_str() {
        "start" => Ok(Line::Command(Command::Start {
            task: (!rest.is_empty()).then(|| rest.to_string()),
        })),
        "stop" => no_args(Line::Command(Command::Stop)),
        "discard" => no_args(Line::Command(Command::Discard)),
        "quit" => no_args(Line::Command(Command::Quit)),
        "status" => no_args(Line::Status),
        "" => Err("empty command: expected start [TASK], stop, discard, status or quit".into()),
        other => Err(format!(
            "unknown command {other:?}: expected start [TASK], stop, discard, status or quit"
        )),
    }
}

/// A command with the way back to its client.
#[derive(Debug)]
pub struct Request {
    /// What to do.
    pub command: Command,
    /// Where the one reply goes.
    pub reply: Sender<Value>,
}

impl Request {
    /// Sends the reply (a client that went away is not an error).
    pub fn answer(self, reply: Value) {
        let _ = self.reply.send(reply);
    }
}

/// An error reply.
pub fn error_reply(message: impl std::fmt::Display) -> Value {
    json!({ "ok": false, "error": message.to_string() })
}

/// The listening socket; removes its file when dropped.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Binds `path` and starts accepting clients. A stale socket file (no
    /// one listening) is replaced; a live one is an error. Returns the
    /// server and the receiver of the episode loop's commands.
    pub fn start(
        path: &Path,
        board: Arc<StatusBoard>,
    ) -> anyhow::Result<(Self, Receiver<Request>)> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                anyhow::bail!(
                    "control socket path {} exists and is not a socket: choose another path",
                    path.display()
                );
            }
            if UnixStream::connect(path).is_ok() {
                anyhow::bail!(
                    "control socket {} is in use by another process (another recorder?)",
                    path.display()
                );
            }
            std::fs::remove_file(path).with_context(|| {
                format!("cannot remove the stale control socket {}", path.display())
            })?;
        }
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot listen on control socket {}", path.display()))?;
        // Owner and group may connect (robot code runs in the service's
        // group), whatever the umask; others may not.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
            .with_context(|| format!("cannot chmod control socket {}", path.display()))?;
        listener
            .set_nonblocking(true)
            .context("control socket: set_nonblocking")?;
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("control".into())
                .spawn(move || accept_loop(&listener, &stop, &tx, &board))
                .context("cannot start the control socket thread")?
        };
        log::info!("control: listening on {}", path.display());
        Ok((
            Self {
                path: path.to_path_buf(),
                stop,
                thread: Some(thread),
            },
            rx,
        ))
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(
    listener: &UnixListener,
    stop: &AtomicBool,
    tx: &Sender<Request>,
    board: &Arc<StatusBoard>,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (tx, board) = (tx.clone(), Arc::clone(board));
                let spawned = std::thread::Builder::new()
                    .name("control-client".into())
                    .spawn(move || {
                        if let Err(e) = serve(stream, &tx, &board) {
                            log::debug!("control client: {e}");
                        }
                    });
                if let Err(e) = spawned {
                    log::warn!("control: cannot serve a client: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                log::warn!("control: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Serves one client: a reply line for every command line, until EOF.
fn serve(stream: UnixStream, tx: &Sender<Request>, board: &StatusBoard) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut reader).take(MAX_LINE + 1).read_line(&mut line)?;
        if n == 0 {
            return Ok(());
        }
        let reply = if n as u64 > MAX_LINE {
            error_reply(format!("command line longer than {MAX_LINE} bytes"))
        } else {
            handle(&line, tx, board)
        };
        let mut text = reply.to_string();
        text.push('\n');
        out.write_all(text.as_bytes())?;
        if n as u64 > MAX_LINE {
            return Ok(());
        }
    }
}

fn handle(line: &str, tx: &Sender<Request>, board: &StatusBoard) -> Value {
    match parse_line(line) {
        Err(e) => error_reply(e),
        Ok(Line::Status) => board.to_json(),
        Ok(Line::Command(command)) => {
            let (reply_tx, reply_rx) = mpsc::channel();
            let sent = tx.send(Request {
                command,
                reply: reply_tx,
            });
            match sent.ok().and_then(|()| reply_rx.recv().ok()) {
                Some(v) => v,
                None => error_reply("the recorder is shutting down"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> Arc<StatusBoard> {
        let liveness = super::super::liveness::Liveness::new([]);
        let monitor = super::super::monitor::Monitor::start(liveness, None, None).expect("monitor");
        StatusBoard::new(Vec::new(), Arc::clone(monitor.health()))
    }

    #[test]
    fn refuses_a_live_socket_and_a_non_socket_replaces_a_stale_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.sock");
        let (server, _rx) = ControlServer::start(&path, board()).expect("first server");
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, SOCKET_MODE);
        let err = ControlServer::start(&path, board()).err().expect("in use");
        assert!(format!("{err:#}").contains("in use"), "{err:#}");
        drop(server);
        assert!(!path.exists(), "removed on drop");

        // A stale socket file (its listener gone without cleanup) is replaced.
        drop(UnixListener::bind(&path).expect("stale listener"));
        assert!(path.exists());
        let (_server, _rx) = ControlServer::start(&path, board()).expect("replaces stale");

        let file = dir.path().join("precious.txt");
        std::fs::write(&file, "keep me").expect("write");
        let err = ControlServer::start(&file, board())
            .err()
            .expect("not a socket");
        assert!(format!("{err:#}").contains("not a socket"), "{err:#}");
        assert_eq!(std::fs::read_to_string(&file).expect("kept"), "keep me");
    }

    #[test]
    fn status_is_answered_and_commands_reach_the_episode_loop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.sock");
        let (_server, rx) = ControlServer::start(&path, board()).expect("server");
        let loop_side = std::thread::spawn(move || {
            let req = rx.recv().expect("a command");
            assert_eq!(
                req.command,
                Command::Start {
                    task: Some("t".into())
                }
            );
            req.answer(json!({ "ok": true, "episode": 0 }));
        });
        let conn = UnixStream::connect(&path).expect("connect");
        let mut lines = BufReader::new(conn.try_clone().expect("clone")).lines();
        let mut say = |l: &str| -> Value {
            (&conn)
                .write_all(format!("{l}\n").as_bytes())
                .expect("send");
            serde_json::from_str(&lines.next().expect("reply").expect("line")).expect("json")
        };
        assert_eq!(say("status")["state"], "idle");
        assert_eq!(say("start t")["episode"], 0);
        loop_side.join().expect("loop side");
        let r = say("stop");
        assert_eq!(r["ok"], false, "{r}");
        assert!(
            r["error"]
                .as_str()
                .expect("error")
                .contains("shutting down"),
            "{r}"
        );
        let long = "x".repeat(MAX_LINE as usize + 10);
        assert!(say(&long)["error"]
            .as_str()
            .expect("error")
            .contains("longer than"));
    }

    #[test]
    fn lines_parse() {
        assert_eq!(
            parse_line("start\n"),
            Ok(Line::Command(Command::Start { task: None }))
        );
        assert_eq!(
            parse_line("  START pick the red cube  \r\n"),
            Ok(Line::Command(Command::Start {
                task: Some("pick the red cube".into())
            }))
        );
        assert_eq!(parse_line("stop"), Ok(Line::Command(Command::Stop)));
        assert_eq!(parse_line("discard"), Ok(Line::Command(Command::Discard)));
        assert_eq!(parse_line("quit"), Ok(Line::Command(Command::Quit)));
        assert_eq!(parse_line("status"), Ok(Line::Status));
        assert!(parse_line("stop now")
            .unwrap_err()
            .contains("takes no argument"));
        assert!(parse_line("").unwrap_err().contains("empty command"));
        assert!(parse_line("pause").unwrap_err().contains("unknown command"));
    }
}
