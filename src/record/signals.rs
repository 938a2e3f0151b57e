//! SIGINT/SIGTERM handling: the first signal finishes the current episode
//! cleanly, a second SIGINT aborts fast (queued frames are skipped, files
//! still closed consistently).

use super::control::Control;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Counts stop requests; shared with the controller.
#[derive(Debug, Default)]
pub struct StopRequests(AtomicU32);

impl StopRequests {
    /// Number of stop signals received so far.
    pub fn count(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }
}

/// Installs the handlers and starts the thread that acts on them.
pub fn install(control: Arc<Control>) -> anyhow::Result<Arc<StopRequests>> {
    let requests = Arc::new(StopRequests::default());
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| anyhow::anyhow!("cannot install signal handlers: {e}"))?;
    let r = requests.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let n = r.0.fetch_add(1, Ordering::AcqRel) + 1;
                if n == 1 {
                    log::info!(
                        "{}: finishing the current episode (signal again to abort fast)",
                        name(sig)
                    );
                    control.stop();
                } else {
                    log::warn!(
                        "{}: aborting: queued frames are skipped, files are closed consistently",
                        name(sig)
                    );
                    control.abort();
                }
            }
        })
        .map_err(|e| anyhow::anyhow!("cannot start the signal thread: {e}"))?;
    Ok(requests)
}

fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "signal",
    }
}
