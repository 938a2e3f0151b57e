//! Progress while the encoders drain a backlog (ring + spill files) at the
//! end of an episode: a progress bar on a terminal, log lines otherwise, and
//! the "still making progress" test that replaces a fixed finish timeout.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often a log line is written when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(2);

/// Tracks one drain.
pub struct DrainProgress {
    bar: Option<indicatif::ProgressBar>,
    tty: bool,
    last_log: Instant,
    last_encoded: Option<u64>,
    started: Instant,
    shown: bool,
}

impl Default for DrainProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl DrainProgress {
    /// Starts tracking (shows nothing until there is a backlog).
    pub fn new() -> Self {
        Self {
            bar: None,
            tty: std::io::stderr().is_terminal(),
            last_log: Instant::now(),
            last_encoded: None,
            started: Instant::now(),
            shown: false,
        }
    }

    /// Reports `backlog` frames still to encode and `encoded` frames
    /// encoded so far; returns whether frames were encoded since the last call.
    pub fn update(&mut self, backlog: u64, encoded: u64) -> bool {
        let progressed = self.last_encoded.is_some_and(|e| encoded > e);
        self.last_encoded = Some(encoded);
        if backlog == 0 && !self.shown {
            return progressed;
        }
        if self.tty {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = indicatif::ProgressBar::new(backlog);
                if let Ok(style) = indicatif::ProgressStyle::default_bar()
                    .template("encoding backlog {bar:30} {pos}/{len} frames, {per_sec}, eta {eta}")
                {
                    bar.set_style(style);
                }
                bar
            });
            let total = bar.length().unwrap_or(0).max(bar.position() + backlog);
            bar.set_length(total);
            bar.set_position(total - backlog);
        } else if !self.shown || self.last_log.elapsed() >= LOG_EVERY {
            log::info!(
                "encoding the backlog: {backlog} frame(s) still to encode ({:.0} s so far)",
                self.started.elapsed().as_secs_f64()
            );
            self.last_log = Instant::now();
        }
        self.shown = true;
        progressed
    }

    /// Clears the bar and says how long the drain took.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        if self.shown {
            log::info!(
                "backlog encoded in {:.1} s",
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}
