//! Keeps encoder threads off real-time scheduling.
//!
//! SVT-AV1 asks for `SCHED_FIFO` priority 99 for its worker threads when it
//! is allowed to. Running as root (common on robots) it is, and a busy
//! encoder at FIFO 99 starves the capture threads and the rest of the
//! robot. Two measures keep that from happening:
//!
//! * [`drop_realtime_privileges`] removes `CAP_SYS_NICE` from the calling
//!   **thread** (capabilities are per thread on Linux, and threads created
//!   afterwards inherit the creator's sets). With `RLIMIT_RTPRIO` at 0 the
//!   encoder's real-time request then fails with `EPERM` and it falls back
//!   to `SCHED_OTHER`. The rest of the process keeps its capabilities and
//!   `RLIMIT_RTPRIO` is left untouched, because it is per process.
//! * [`demote_realtime_threads`] is the safety net: it moves every thread of
//!   the process that runs at `SCHED_FIFO`/`SCHED_RR` back to `SCHED_OTHER`,
//!   except threads that declared themselves real-time with
//!   [`allow_realtime_current_thread`].

use anyhow::Context;
use caps::{CapSet, Capability};
use std::collections::HashSet;
use std::sync::Mutex;

/// `SCHED_FIFO` as reported in `/proc/<pid>/task/<tid>/stat`.
pub const SCHED_FIFO: u32 = 1;
/// `SCHED_RR` as reported in `/proc/<pid>/task/<tid>/stat`.
pub const SCHED_RR: u32 = 2;

/// Threads that asked to keep a real-time policy.
static REALTIME_ALLOWED: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// Removes `CAP_SYS_NICE` from the calling thread's effective, permitted and
/// inheritable sets (and the ambient set), so neither this thread nor any
/// thread it creates afterwards can raise itself to a real-time policy.
///
/// Irreversible for this thread. Call it in the encoder thread, not in a
/// thread that later spawns threads that need real-time scheduling.
pub fn drop_realtime_privileges() -> anyhow::Result<()> {
    let cap = Capability::CAP_SYS_NICE;
    // The ambient set cannot hold a capability that is not permitted, but it
    // is cleared first so the permitted drop below is not refused.
    if caps::has_cap(None, CapSet::Ambient, cap).unwrap_or(false) {
        caps::drop(None, CapSet::Ambient, cap)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("dropping CAP_SYS_NICE from the ambient set")?;
    }
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        let held = caps::has_cap(None, set, cap)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("reading the {set:?} capability set"))?;
        if held {
            caps::drop(None, set, cap)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("dropping CAP_SYS_NICE from the {set:?} set"))?;
        }
    }
    log::debug!(
        "thread {} dropped CAP_SYS_NICE (real-time scheduling now refused)",
        nix::unistd::gettid()
    );
    Ok(())
}

/// Marks the calling thread as allowed to run at a real-time policy, so
/// [`demote_realtime_threads`] leaves it alone (e.g. a capture thread the
/// recorder raised on purpose).
pub fn allow_realtime_current_thread() {
    let tid = nix::unistd::gettid().as_raw();
    let mut guard = REALTIME_ALLOWED.lock().unwrap_or_else(|p| p.into_inner());
    guard.get_or_insert_with(HashSet::new).insert(tid);
}

/// Scheduling policy of one thread, read from its `/proc` `stat` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadPolicy {
    /// Kernel thread id.
    pub tid: i32,
    /// Raw policy (0 = `SCHED_OTHER`, 1 = `SCHED_FIFO`, 2 = `SCHED_RR`, ...).
    pub policy: u32,
    /// Real-time priority (0 for non-real-time policies).
    pub rt_priority: u32,
}

impl ThreadPolicy {
    /// Whether the policy is `SCHED_FIFO` or `SCHED_RR`.
    pub fn is_realtime(&self) -> bool {
        self.policy == SCHED_FIFO || self.policy == SCHED_RR
    }
}

/// Parses the `policy` (field 41) and `rt_priority` (field 40) of a
/// `/proc/.../stat` line. The command name (field 2) is in parentheses and
/// may itself contain spaces and parentheses, so fields are counted from the
/// last `)`.
pub fn parse_stat_policy(stat: &str) -> Option<(u32, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); field N is at index N - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let rt_priority = fields.get(40 - 3)?.parse().ok()?;
    let policy = fields.get(41 - 3)?.parse().ok()?;
    Some((policy, rt_priority))
}

/// Scheduling policies of every thread of this process.
pub fn thread_policies() -> anyhow::Result<Vec<ThreadPolicy>> {
    let mut out = Vec::new();
    let dir = std::fs::read_dir("/proc/self/task").context("listing /proc/self/task")?;
    for entry in dir {
        let entry = entry.context("reading /proc/self/task")?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // A thread may exit between listing and reading: skip it.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((policy, rt_priority)) = parse_stat_policy(&stat) {
            out.push(ThreadPolicy {
                tid,
                policy,
                rt_priority,
            });
        }
    }
    Ok(out)
}

/// Moves every unexpected `SCHED_FIFO`/`SCHED_RR` thread of this process to
/// `SCHED_OTHER` and returns how many were demoted (a warning is logged when
/// any were). Lowering a policy needs no privilege.
pub fn demote_realtime_threads() -> usize {
    let policies = match thread_policies() {
        Ok(p) => p,
        Err(e) => {
            log::warn!("cannot check encoder threads for real-time scheduling: {e:#}");
            return 0;
        }
    };
    let allowed = REALTIME_ALLOWED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_default();
    let mut demoted = 0;
    for t in policies
        .iter()
        .filter(|t| t.is_realtime() && !allowed.contains(&t.tid))
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: plain syscall wrapper; `param` is a valid sched_param for the call.
        let rc = unsafe { libc::sched_setscheduler(t.tid, libc::SCHED_OTHER, &param) };
        if rc == 0 {
            demoted += 1;
        } else {
            log::warn!(
                "could not move thread {} off real-time policy {}: {}",
                t.tid,
                t.policy,
                std::io::Error::last_os_error()
            );
        }
    }
    if demoted > 0 {
        log::warn!(
            "moved {demoted} real-time thread(s) back to SCHED_OTHER (an encoder asked for real-time priority)"
        );
    }
    demoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_policy_after_a_comm_with_spaces_and_parens() {
        // 52 fields; comm contains ") (" to trip naive parsers.
        let mut fields: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
        fields[40 - 3] = "99".into(); // rt_priority
        fields[41 - 3] = "1".into(); // policy
        let line = format!("1234 (svt (a) b) {}", fields.join(" "));
        assert_eq!(parse_stat_policy(&line), Some((1, 99)));
        assert_eq!(parse_stat_policy("1 (x) S 2"), None);
    }

    #[test]
    fn reads_own_threads_as_non_realtime() {
        let policies = thread_policies().expect("read /proc/self/task");
        let me = nix::unistd::gettid().as_raw();
        let mine = policies
            .iter()
            .find(|t| t.tid == me)
            .expect("own thread listed");
        assert!(!mine.is_realtime());
    }

    #[test]
    fn dropped_thread_cannot_become_realtime_and_others_keep_the_capability() {
        let had_cap =
            caps::has_cap(None, CapSet::Permitted, Capability::CAP_SYS_NICE).unwrap_or(false);
        std::thread::spawn(|| {
            drop_realtime_privileges().expect("drop CAP_SYS_NICE");
            assert!(!caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_NICE).unwrap());
            assert!(!caps::has_cap(None, CapSet::Permitted, Capability::CAP_SYS_NICE).unwrap());
            let param = libc::sched_param { sched_priority: 10 };
            // SAFETY: plain syscall on the calling thread with a valid param.
            let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
            let rlimit_allows =
                nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_RTPRIO)
                    .map(|(soft, _)| soft >= 10)
                    .unwrap_or(false);
            if !rlimit_allows {
                assert_eq!(rc, -1, "SCHED_FIFO must be refused without CAP_SYS_NICE");
            }
        })
        .join()
        .unwrap();
        // The drop is per thread: this one keeps what it had.
        assert_eq!(
            caps::has_cap(None, CapSet::Permitted, Capability::CAP_SYS_NICE).unwrap_or(false),
            had_cap
        );
    }

    #[test]
    fn demote_moves_a_fifo_thread_back_to_other() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            let param = libc::sched_param { sched_priority: 1 };
            // SAFETY: plain syscall on the calling thread with a valid param.
            let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
            tx.send((nix::unistd::gettid().as_raw(), rc == 0)).unwrap();
            let _ = done_rx.recv();
        });
        let (tid, became_fifo) = rx.recv().unwrap();
        if became_fifo {
            assert!(demote_realtime_threads() >= 1);
            let me = thread_policies().unwrap();
            let t = me.iter().find(|t| t.tid == tid).expect("worker listed");
            assert_eq!(t.policy, 0, "worker must be SCHED_OTHER after demotion");
        } else {
            eprintln!("skipping: this process may not use SCHED_FIFO (not root / no CAP_SYS_NICE)");
        }
        done_tx.send(()).unwrap();
        worker.join().unwrap();
    }
}
