//! What scheduling policy SVT-AV1 1.4 gives its worker threads, with and
//! without CAP_SYS_NICE in the thread that opens the session, and how many
//! threads `threads` (SVT `logical_processors`) leads to.
//!
//! SVT 1.4 creates every worker with an explicit `SCHED_FIFO` priority 99
//! attribute and retries with default attributes when `pthread_create`
//! fails with EPERM. Capabilities are per thread and inherited by the
//! threads it creates, so dropping CAP_SYS_NICE in the opening thread is
//! enough to keep the workers at `SCHED_OTHER` (unless RLIMIT_RTPRIO >= 99).
//!
//! One test only: it compares /proc/self/task snapshots, which parallel
//! tests in the same process would disturb.

mod common;

use caps::{CapSet, Capability};
use common::*;
use std::collections::BTreeSet;

const SCHED_OTHER: u32 = 0;
const SCHED_FIFO: u32 = 1;

fn tids() -> BTreeSet<u32> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Field 41 (`policy`) of /proc/self/task/TID/stat.
fn policy(tid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields after the command start at field 3 (state).
    rest.split_whitespace().nth(41 - 3)?.parse().ok()
}

/// Opens a session on a fresh thread (optionally dropping CAP_SYS_NICE from
/// that thread's effective set first) and returns the policies of the
/// threads the open created.
fn policies_of_new_threads(threads: u32, drop_nice: bool) -> Vec<u32> {
    std::thread::spawn(move || {
        if drop_nice {
            caps::drop(None, CapSet::Effective, Capability::CAP_SYS_NICE).unwrap();
            assert!(!caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_NICE).unwrap());
        }
        let before = tids();
        let enc = Enc::open(&config(640, 480, 2, threads, None)).expect("open");
        let created: Vec<u32> = tids().difference(&before).copied().collect();
        let policies = created.iter().filter_map(|&t| policy(t)).collect();
        drop(enc);
        policies
    })
    .join()
    .unwrap()
}

#[test]
fn worker_thread_policy_and_count() {
    let have_nice = caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_NICE).unwrap();

    let with_caps = policies_of_new_threads(1, false);
    let fifo = with_caps.iter().filter(|&&p| p == SCHED_FIFO).count();
    eprintln!(
        "CAP_SYS_NICE={have_nice}: logical_processors=1 created {} threads, {fifo} SCHED_FIFO",
        with_caps.len()
    );
    assert!(!with_caps.is_empty(), "SVT creates worker threads at open");
    if !have_nice {
        assert_eq!(fifo, 0, "no RT threads without CAP_SYS_NICE");
    }

    let all = policies_of_new_threads(0, false);
    eprintln!(
        "logical_processors=0 (default) created {} threads",
        all.len()
    );
    assert!(
        with_caps.len() <= all.len(),
        "threads=1 bounds SVT's thread count"
    );

    let dropped = policies_of_new_threads(1, true);
    eprintln!(
        "after dropping CAP_SYS_NICE in the opening thread: {} threads, policies {:?}",
        dropped.len(),
        dropped.iter().collect::<BTreeSet<_>>()
    );
    assert!(!dropped.is_empty());
    assert!(
        dropped.iter().all(|&p| p == SCHED_OTHER),
        "dropping CAP_SYS_NICE keeps SVT workers at SCHED_OTHER: {dropped:?}"
    );
    // The drop was confined to the helper thread.
    assert_eq!(
        caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_NICE).unwrap(),
        have_nice
    );
}
