//! `s6-edge ctl SOCKET COMMAND`: the client of `record --control SOCKET`.
//! Sends one command line, prints the JSON reply line, and exits 0 when the
//! reply says `"ok": true`, 1 otherwise.

use crate::cli::{CtlArgs, CtlCommand};
use crate::exit::usage;
use anyhow::Context;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// The protocol line for `command`.
pub fn command_line(command: &CtlCommand) -> anyhow::Result<String> {
    Ok(match command {
        CtlCommand::Start { task: None } => "start".to_string(),
        CtlCommand::Start { task: Some(t) } => {
            if t.contains(['\n', '\r']) {
                return Err(usage("--task must be a single line"));
            }
            format!("start {t}")
        }
        CtlCommand::Stop => "stop".into(),
        CtlCommand::Discard => "discard".into(),
        CtlCommand::Status => "status".into(),
        CtlCommand::Quit => "quit".into(),
    })
}

/// Sends `line` to the control socket at `socket` and returns the reply.
pub fn request(socket: &Path, line: &str, timeout: Duration) -> anyhow::Result<serde_json::Value> {
    let stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot connect to control socket {}: is `s6-edge record --control {}` running?",
            socket.display(),
            socket.display()
        )
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .context("control socket: set timeout")?;
    (&stream)
        .write_all(format!("{line}\n").as_bytes())
        .context("control socket: send")?;
    let mut reply = String::new();
    BufReader::new(&stream)
        .read_line(&mut reply)
        .with_context(|| {
            format!(
                "control socket: no reply within {:.0} s",
                timeout.as_secs_f64()
            )
        })?;
    if reply.is_empty() {
        anyhow::bail!("control socket: the recorder closed the connection without a reply");
    }
    serde_json::from_str(reply.trim_end())
        .with_context(|| format!("control socket: reply is not JSON: {reply:?}"))
}

/// Runs `s6-edge ctl`.
pub fn run(args: CtlArgs) -> anyhow::Result<ExitCode> {
    let line = command_line(&args.command)?;
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| usage("--timeout must be a positive number of seconds"))?;
    let reply = request(&args.socket, &line, timeout)?;
    println!("{reply}");
    if reply.get("ok").and_then(|v| v.as_bool()) == Some(true) {
        Ok(ExitCode::SUCCESS)
    } else {
        if let Some(e) = reply.get("error").and_then(|v| v.as_str()) {
            log::error!("{e}");
        }
        Ok(ExitCode::FAILURE)
    }
}
