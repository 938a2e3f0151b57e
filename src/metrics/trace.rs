//! Chrome trace-event recording (`perf.log.json`, loads in Perfetto and
//! chrome://tracing). Each thread owns its own bounded buffer, so recording
//! takes no lock and allocates nothing once the buffer is reserved.

use serde::Serialize;
use std::time::Instant;

/// One complete ("X") trace event.
#[derive(Clone, Debug, Serialize)]
pub struct TraceEvent {
    /// Stage name (`capture`, `encode`, ...).
    pub name: &'static str,
    /// Category: the camera name.
    pub cat: String,
    /// Phase: always "X" (complete event).
    pub ph: &'static str,
    /// Start, µs since the run started.
    pub ts: u64,
    /// Duration in µs.
    pub dur: u64,
    /// Process id (1).
    pub pid: u32,
    /// Thread lane.
    pub tid: u32,
    /// Extra fields (frame index).
    pub args: TraceArgs,
}

/// Arguments attached to an event.
#[derive(Clone, Debug, Serialize)]
pub struct TraceArgs {
    /// Episode number.
    pub episode: u32,
    /// Frame index within the episode.
    pub frame: u64,
}

/// A per-thread bounded event buffer.
pub struct TraceBuffer {
    origin: Instant,
    camera: String,
    tid: u32,
    events: Vec<TraceEvent>,
    dropped: u64,
}

impl TraceBuffer {
    /// A buffer for `camera`'s thread lane `tid`, holding at most `capacity` events.
    pub fn new(origin: Instant, camera: &str, tid: u32, capacity: usize) -> Self {
        Self {
            origin,
            camera: camera.to_string(),
            tid,
            events: Vec::with_capacity(capacity),
            dropped: 0,
        }
    }

    /// Records `name` from `start` to `end`. When the buffer is full the
    /// event is counted, not stored.
    pub fn span(
        &mut self,
        name: &'static str,
        start: Instant,
        end: Instant,
        episode: u32,
        frame: u64,
    ) {
        if self.events.len() == self.events.capacity() {
            self.dropped += 1;
            return;
        }
        let ts = start.saturating_duration_since(self.origin).as_micros() as u64;
        let dur = end.saturating_duration_since(start).as_micros() as u64;
        self.events.push(TraceEvent {
            name,
            cat: self.camera.clone(),
            ph: "X",
            ts,
            dur,
            pid: 1,
            tid: self.tid,
            args: TraceArgs { episode, frame },
        });
    }

    /// Events recorded and the number that did not fit.
    pub fn into_parts(self) -> (Vec<TraceEvent>, u64) {
        (self.events, self.dropped)
    }
}

/// The whole trace file.
#[derive(Serialize)]
pub struct TraceFile {
    /// All events of all threads.
    #[serde(rename = "traceEvents")]
    pub trace_events: Vec<TraceEvent>,
    /// Time unit shown by viewers.
    #[serde(rename = "displayTimeUnit")]
    pub display_time_unit: &'static str,
}
