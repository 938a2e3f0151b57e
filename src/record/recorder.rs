//! The record controller: opens cameras and the encoder backend, creates the
//! dataset, runs the episode schedule and writes `episode.json` and metrics.

use super::capture_thread::{CaptureReport, CaptureThread};
use super::config::RecordConfig;
use super::control::Control;
use super::control_socket::{error_reply, Command, ControlServer, Request};
use super::disk_guard::DiskGuard;
use super::encode_thread::{now_unix_ns, EncodeThread, EncoderEvent, EncoderReport};
use super::liveness::Liveness;
use super::monitor::{Health, Monitor};
use super::pool::frame_ring;
use super::status::{CameraView, RecState, StatusBoard};
use crate::capture::{CameraSpec, CaptureSource};
use crate::dataset::layout::Dataset;
use crate::dataset::meta::{
    CameraMeta, DatasetMeta, EncoderMeta, EpisodeCameraMeta, EpisodeMeta, EpisodeStatus,
};
use crate::frame::{pixel_format_str, VideoFormat};
use crate::metrics::trace::TraceBuffer;
use crate::metrics::{self, CameraCounters, CameraMetrics, EpisodeMetrics, RunMetrics};
use crate::plugin_host::{self, ProbeRequest};
use anyhow::Context;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Trace events kept per thread.
const TRACE_CAPACITY: usize = 200_000;

/// One running camera.
struct Camera {
    name: String,
    format: VideoFormat,
    ring_frames: u32,
    counters: Arc<CameraCounters>,
    ring_stats: Arc<super::pool::RingStats>,
    spill_stats: Arc<super::spill::SpillStats>,
    capture: Option<JoinHandle<CaptureReport>>,
    encoder: Option<JoinHandle<EncoderReport>>,
    backlog: Vec<(f64, u64)>,
}

/// Records according to `config` until the episodes are done or a signal
/// arrives.
pub fn record(config: RecordConfig) -> anyhow::Result<ExitCode> {
    let started_wall = chrono::Local::now();
    let origin = Instant::now();

    // 1. Open every camera before anything is written, so a bad source
    //    leaves no partial dataset behind.
    let mut sources: Vec<(CameraSpec, Box<dyn CaptureSource>)> = Vec::new();
    for spec in &config.cameras {
        let source = crate::capture::open(spec)
            .with_context(|| format!("camera {:?} ({})", spec.name, spec.uri))?;
        let f = source.format();
        log::info!(
            "camera {}: {} {}x{} @ {:.2} fps {}",
            spec.name,
            spec.uri,
            f.width,
            f.height,
            f.fps(),
            pixel_format_str(f.pixel_format)
        );
        sources.push((spec.clone(), source));
    }

    // 2. Pick the encoder backend with a real probe at the first camera's size.
    let first = sources[0].1.format();
    let request = ProbeRequest {
        width: first.width,
        height: first.height,
        fps_num: first.fps_num,
        fps_den: first.fps_den,
    };
    let (backend, _reports) =
        plugin_host::select_backend(&config.plugins, &config.vcodec, &request)?;
    log::info!("encoder: {} ({})", backend.name(), backend.path().display());

    // 3. Create (or continue) the dataset.
    let meta = DatasetMeta {
        format_version: crate::dataset::meta::FORMAT_VERSION,
        s6_edge_version: env!("CARGO_PKG_VERSION").to_string(),
        created: started_wall.to_rfc3339(),
        cameras: sources
            .iter()
            .map(|(spec, src)| {
                let f = src.format();
                CameraMeta {
                    name: spec.name.clone(),
                    source: spec.uri.clone(),
                    width: f.width,
                    height: f.height,
                    fps_num: f.fps_num,
                    fps_den: f.fps_den,
                    pixel_format: pixel_format_str(f.pixel_format).to_string(),
                }
            })
            .collect(),
        codec: crate::plugin_host::report::codec_str(backend.codec()).to_string(),
        backend: backend.name().to_string(),
        encoder: EncoderMeta {
            gop: config.encoder.gop,
            crf: config.encoder.crf,
            preset: config.encoder.preset,
            threads: config.encoder.threads,
        },
    };
    let dataset = Dataset::create_or_open(&config.output, &meta)?;
    // Held until recording ends: `recover` refuses to touch a dataset in use.
    let _dataset_lock = dataset.lock()?;
    let unfinished: Vec<u32> = dataset
        .list_episodes()?
        .into_iter()
        .filter(|e| e.meta.is_none())
        .map(|e| e.index)
        .collect();
    if !unfinished.is_empty() && config.recover {
        let options = crate::dataset::recover::RecoverOptions {
            dry_run: false,
            plugins: config.plugins.clone(),
        };
        let report = crate::dataset::recover::recover_dataset(&dataset, &options)?;
        for line in report.render(&config.output).lines() {
            log::info!("recover: {line}");
        }
        if report.failures() > 0 {
            return Err(anyhow::anyhow!(
                "dataset {}: {} unfinished episode(s) could not be recovered (see above); fix or move them, then record again",
                config.output.display(),
                report.failures()
            ));
        }
    } else if !unfinished.is_empty() {
        return Err(anyhow::anyhow!(
            "dataset {} has unfinished episode(s) {:?} from an earlier crash: run `s6-edge recover {}` first, or record with --recover",
            config.output.display(),
            unfinished,
            config.output.display()
        ));
    }
    log::info!("dataset: {}", config.output.display());

    // 4. Start the camera threads, each stamping its frames into the
    //    liveness record that the systemd watchdog and `status` read.
    let watchdog = crate::sd_notify::Watchdog::from_env();
    let silence_allowed = watchdog
        .as_ref()
        .map_or(Duration::from_secs(2), |w| w.tick_period());
    let liveness = Liveness::new(sources.iter().map(|(spec, src)| {
        let frame = Duration::from_nanos(src.format().frame_interval_ns());
        (spec.name.clone(), silence_allowed.max(3 * frame))
    }));
    let control = Arc::new(Control::default());
    let stop_requests = super::signals::install(control.clone())?;
    let (events_tx, events_rx) = mpsc::channel::<EncoderEvent>();
    let mut cameras = Vec::new();
    for (i, (spec, source)) in sources.into_iter().enumerate() {
        let format = source.format();
        let (mut capture_end, encoder_end) =
            frame_ring(config.ring_frames as usize, format.frame_bytes());
        let counters = Arc::new(CameraCounters::default());
        let ring_stats = capture_end.stats().clone();
        let (spill_tx, spill_rx) = mpsc::channel();
        let spill_stats = Arc::new(super::spill::SpillStats::default());
        let encoder = EncodeThread {
            camera: spec.name.clone(),
            format,
            backend: backend.clone(),
            settings: config.encoder.clone(),
            ring: encoder_end,
            control: control.clone(),
            counters: counters.clone(),
            episodes_dir: dataset.episodes_dir(),
            done: events_tx.clone(),
            spill_rx,
            spill_stats: spill_stats.clone(),
            streaming_encoding: config.streaming_encoding,
            trace: TraceBuffer::new(
                origin,
                &spec.name,
                (2 * i + 2) as u32,
                if config.log_dir.is_some() {
                    TRACE_CAPACITY
                } else {
                    0
                },
            ),
        };
        let encoder_handle = std::thread::Builder::new()
            .name(format!("enc-{}", spec.name))
            .spawn(move || encoder.run())
            .context("cannot start an encoder thread")?;
        capture_end.set_encoder_thread(encoder_handle.thread().clone());
        let capture = CaptureThread {
            camera: spec.name.clone(),
            source,
            ring: capture_end,
            spill: super::spill::Spiller::new(
                &spec.name,
                format,
                dataset.episodes_dir(),
                spill_tx,
                spill_stats.clone(),
                config.streaming_encoding,
            ),
            control: control.clone(),
            counters: counters.clone(),
            on_frame: Some(liveness.feeder(i)),
            trace: TraceBuffer::new(
                origin,
                &spec.name,
                (2 * i + 1) as u32,
                if config.log_dir.is_some() {
                    TRACE_CAPACITY
                } else {
                    0
                },
            ),
        };
        let capture_handle = std::thread::Builder::new()
            .name(format!("cap-{}", spec.name))
            .spawn({
                let liveness = Arc::clone(&liveness);
                move || {
                    let report = capture.run();
                    liveness.ended(i, report.error.is_some());
                    report
                }
            })
            .context("cannot start a capture thread")?;
        cameras.push(Camera {
            name: spec.name.clone(),
            format,
            ring_frames: config.ring_frames,
            counters,
            ring_stats,
            spill_stats,
            capture: Some(capture_handle),
            encoder: Some(encoder_handle),
            backlog: Vec::new(),
        });
    }
    drop(events_tx);

    // 5. Health (frame flow, disk space, watchdog), the status board and
    //    the control socket; then tell systemd we are up.
    let monitor = Monitor::start(
        Arc::clone(&liveness),
        config
            .min_free
            .map(|min| DiskGuard::new(&config.output, min)),
        watchdog,
    )?;
    let board = StatusBoard::new(
        cameras
            .iter()
            .map(|c| CameraView {
                name: c.name.clone(),
                counters: Arc::clone(&c.counters),
                ring: Arc::clone(&c.ring_stats),
            })
            .collect(),
        Arc::clone(monitor.health()),
    );
    let (control_server, commands) = match &config.control {
        Some(path) => {
            let (server, rx) = ControlServer::start(path, Arc::clone(&board))?;
            (Some(server), Some(rx))
        }
        None => (None, None),
    };
    if let Some(why) = monitor.health().disk_low() {
        log::error!(
            "{why} on {}: recording stays paused until space is freed (--min-free)",
            config.output.display()
        );
    }
    let ready = format!(
        "READY=1\nSTATUS={} camera(s) into {}",
        cameras.len(),
        config.output.display()
    );
    if let Err(e) = crate::sd_notify::notify(&ready) {
        log::warn!("sd_notify READY=1: {e}");
    }

    // 6. The episode schedule: on its own, or driven by the control socket.
    let mut schedule = Schedule {
        config: &config,
        dataset: &dataset,
        control: &control,
        events: &events_rx,
        origin,
        closed: HashMap::new(),
        early_done: Vec::new(),
        episode_metrics: Vec::new(),
        failures: Vec::new(),
        board: &board,
        health: monitor.health(),
        commands,
        auto: config.control.is_none()
            || config.episodes.is_some()
            || config.episode_time.is_some(),
        resume: None,
        quit: false,
    };
    let mut recorded = 0u32;
    let mut not_before = None;
    loop {
        if stop_requests.count() > 0
            || schedule.quit
            || schedule.all_closed(&cameras)
            || config.episodes.is_some_and(|n| recorded >= n)
        {
            break;
        }
        let Some(start) = schedule.wait_for_start(&mut cameras, &stop_requests, not_before) else {
            break;
        };
        let end = schedule.run_episode(&mut cameras, start)?;
        recorded += u32::from(end.completed);
        if config.episodes.is_some_and(|n| recorded >= n)
            || stop_requests.count() > 0
            || schedule.quit
            || schedule.all_closed(&cameras)
        {
            break;
        }
        not_before = (schedule.auto && config.reset_time > 0.0).then(|| {
            log::info!("reset: {:.1} s before the next episode", config.reset_time);
            Instant::now() + Duration::from_secs_f64(config.reset_time)
        });
    }

    // 7. Shut down and collect reports.
    monitor.health().shutting_down();
    schedule.answer_pending_commands();
    drop(control_server);
    control.stop();
    let mut run_metrics = RunMetrics {
        s6_edge_version: env!("CARGO_PKG_VERSION").to_string(),
        started: started_wall.to_rfc3339(),
        backend: backend.name().to_string(),
        ..Default::default()
    };
    let mut trace_events = Vec::new();
    let elapsed = origin.elapsed().as_secs_f64();
    for cam in &mut cameras {
        let capture = cam
            .capture
            .take()
            .and_then(|h| join_with_timeout(h, Duration::from_secs(5)));
        let encoder = cam
            .encoder
            .take()
            .and_then(|h| join_with_timeout(h, Duration::from_secs(30)));
        let mut cm = CameraMetrics {
            frames_captured: metrics::load(&cam.counters.captured),
            frames_encoded: metrics::load(&cam.counters.encoded),
            frames_spilled: metrics::load(&cam.counters.spilled),
            frames_dropped: metrics::load(&cam.counters.dropped),
            ring_frames: u64::from(cam.ring_frames),
            ring_high_water: cam.ring_stats.high_water.load(Ordering::Relaxed) as u64,
            fps_nominal: cam.format.fps(),
            backlog: std::mem::take(&mut cam.backlog),
            spill_backlog_high_water: cam.spill_stats.backlog_high_water.load(Ordering::Relaxed),
            ..Default::default()
        };
        let recorded_s: f64 = schedule.episode_metrics.iter().map(|e| e.duration_s).sum();
        if recorded_s > 0.0 {
            cm.fps_achieved = cm.frames_captured as f64 / recorded_s;
        }
        if let Some(mut enc) = encoder {
            if let Some(c) = &capture {
                enc.stages.capture = c.capture_latency.clone();
                enc.stages.spill = c.spill_latency.clone();
            }
            cm.stages = enc.stages.summaries();
            let (events, _) = enc.trace.into_parts();
            trace_events.extend(events);
            if let Some(e) = enc.error {
                schedule.failures.push(e);
            }
        }
        if let Some(c) = capture {
            let (events, _) = c.trace.into_parts();
            trace_events.extend(events);
            if let Some(e) = c.error {
                schedule.failures.push(format!("camera {}: {e}", cam.name));
            }
        }
        run_metrics.cameras.insert(cam.name.clone(), cm);
    }
    run_metrics.duration_s = elapsed;
    (run_metrics.cpu_time_s, run_metrics.max_rss_kib) = metrics::process_usage();
    run_metrics.episodes = std::mem::take(&mut schedule.episode_metrics);
    if let Some(log_dir) = &config.log_dir {
        let run_dir = metrics::create_run_dir(log_dir)?;
        metrics::write_metrics(&run_dir, &run_metrics)?;
        metrics::write_trace(&run_dir, trace_events)?;
        log::info!("metrics: {}", run_dir.join("metrics.json").display());
    }
    for (name, cm) in &run_metrics.cameras {
        log::info!(
            "camera {name}: {} captured, {} encoded, {} spilled, {} dropped",
            cm.frames_captured,
            cm.frames_encoded,
            cm.frames_spilled,
            cm.frames_dropped
        );
    }
    if schedule.failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for f in &schedule.failures {
            log::error!("{f}");
        }
        Err(anyhow::anyhow!("recording finished with {} camera failure(s); completed episodes are intact, run `s6-edge verify {}`", schedule.failures.len(), config.output.display()))
    }
}

/// State of the episode loop.
struct Schedule<'a> {
    config: &'a RecordConfig,
    dataset: &'a Dataset,
    control: &'a Control,
    events: &'a Receiver<EncoderEvent>,
    origin: Instant,
    closed: HashMap<String, Option<String>>,
    /// Episode reports that arrived before their episode's end.
    early_done: Vec<super::encode_thread::EpisodeDone>,
    episode_metrics: Vec<EpisodeMetrics>,
    failures: Vec<String>,
    /// Published state (`status`, systemd `STATUS=`).
    board: &'a StatusBoard,
    /// Frame flow and disk space.
    health: &'a Health,
    /// Commands from the control socket (`--control`), if it listens.
    commands: Option<Receiver<Request>>,
    /// Episodes follow the schedule on their own (no `--control`, or
    /// `--control` with `--episodes`/`--episode-time`); otherwise they start
    /// only on `start`.
    auto: bool,
    /// Command-driven mode: the task of an episode cut short by the disk
    /// guard, to be resumed (as a new episode) when space returns.
    resume: Option<Option<String>>,
    /// A `quit` command arrived.
    quit: bool,
}

/// What starts an episode.
struct Start {
    /// Task text stored in `episode.json`.
    task: Option<String>,
    /// The `start` command to answer once recording runs.
    request: Option<Request>,
}

/// Why an episode ended.
enum EndReason {
    /// `--episode-time` elapsed.
    Deadline,
    /// A signal, or every camera closed.
    Shutdown,
    /// Free space fell below `--min-free`.
    DiskLow(String),
    /// `stop`, `discard` or `quit` from the control socket.
    Command(Request),
}

/// How an episode went.
struct EpisodeEnd {
    /// `episode.json` was written.
    completed: bool,
}

impl Schedule<'_> {
    /// The next command from the control socket, if one is waiting.
    fn next_command(&self) -> Option<Request> {
        self.commands.as_ref().and_then(|rx| rx.try_recv().ok())
    }

    /// Answers commands that arrived while shutting down.
    fn answer_pending_commands(&self) {
        while let Some(req) = self.next_command() {
            req.answer(error_reply("the recorder is shutting down"));
        }
    }

    /// Waits until an episode should start: on its own schedule (at
    /// `not_before`, after the reset time) when the schedule runs on its
    /// own; on `start`, or to resume an episode the disk guard cut, when
    /// command-driven. Never while the disk guard says the disk is too
    /// full (state paused); otherwise the state is idle meanwhile.
    /// `None`: shut down instead.
    fn wait_for_start(
        &mut self,
        cameras: &mut [Camera],
        stops: &super::signals::StopRequests,
        not_before: Option<Instant>,
    ) -> Option<Start> {
        let mut next_sample = Instant::now();
        loop {
            if stops.count() > 0
                || self.quit
                || self.control.get().stopping()
                || self.all_closed(cameras)
            {
                return None;
            }
            let low = self.health.disk_low();
            match &low {
                Some(why) => {
                    let task = self.resume.as_ref().and_then(|t| t.as_deref());
                    self.board.set(RecState::Paused, None, task, Some(why));
                }
                None if self.auto && not_before.is_none_or(|t| Instant::now() >= t) => {
                    return Some(Start {
                        task: self.config.task.clone(),
                        request: None,
                    });
                }
                None => {
                    if let Some(task) = self.resume.take() {
                        log::info!("disk: space is back; resuming recording with a new episode");
                        return Some(Start {
                            task,
                            request: None,
                        });
                    }
                    self.board.set(RecState::Idle, None, None, None);
                }
            }
            if let Some(req) = self.next_command() {
                match (&req.command, &low) {
                    (Command::Start { task }, None) => {
                        return Some(Start {
                            task: task.clone().or_else(|| self.config.task.clone()),
                            request: Some(req),
                        });
                    }
                    (Command::Start { .. }, Some(why)) => req.answer(error_reply(format!(
                        "paused: {why}; start again once space is freed"
                    ))),
                    (Command::Stop | Command::Discard, _) if self.resume.is_some() => {
                        self.resume = None;
                        req.answer(json!({ "ok": true, "episode": null,
                            "note": "the episode cut by the disk guard was already finished; it will not resume" }));
                    }
                    (Command::Stop | Command::Discard, _) => {
                        req.answer(error_reply("not recording: no episode to end"))
                    }
                    (Command::Quit, _) => {
                        self.quit = true;
                        req.answer(json!({ "ok": true, "episode": null }));
                        return None;
                    }
                }
            }
            if Instant::now() >= next_sample {
                self.sample_backlog(cameras);
                next_sample += Duration::from_secs(1);
            }
            self.drain_events();
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn all_closed(&self, cameras: &[Camera]) -> bool {
        cameras.iter().all(|c| self.closed.contains_key(&c.name))
    }

    /// Samples every camera's backlog, ring + spill (once per call).
    fn sample_backlog(&self, cameras: &mut [Camera]) {
        let t = self.origin.elapsed().as_secs_f64();
        for cam in cameras {
            let queued =
                cam.ring_stats.depth.load(Ordering::Relaxed) as u64 + cam.spill_stats.backlog();
            cam.backlog.push((t, queued));
        }
    }

    /// Handles encoder events that arrive while no episode is finishing.
    fn drain_events(&mut self) {
        while let Ok(ev) = self.events.try_recv() {
            match ev {
                EncoderEvent::Closed { camera, error } => {
                    self.closed.insert(camera, error);
                }
                // A camera that ended (source finished or failed) mid-episode
                // reports its part before the episode ends: keep it for the
                // episode's finish, which would otherwise see no frames.
                EncoderEvent::EpisodeDone(d) => self.early_done.push(d),
            }
        }
    }

    /// Why the current episode should end now, if it should (besides a
    /// shutdown): its time is up, the disk guard says so, or a command.
    fn end_requested(&mut self, index: u32, deadline: Option<Instant>) -> Option<EndReason> {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Some(EndReason::Deadline);
        }
        if let Some(why) = self.health.disk_low() {
            return Some(EndReason::DiskLow(why));
        }
        let req = self.next_command()?;
        match req.command {
            Command::Start { .. } => {
                req.answer(error_reply(format!(
                    "already recording episode {index}: stop or discard it first"
                )));
                None
            }
            Command::Quit => {
                self.quit = true;
                self.health.shutting_down();
                Some(EndReason::Command(req))
            }
            Command::Stop | Command::Discard => Some(EndReason::Command(req)),
        }
    }

    /// Records one episode and writes its `episode.json` (or, on
    /// `discard`, removes it), then answers the commands that started and
    /// ended it.
    fn run_episode(&mut self, cameras: &mut [Camera], start: Start) -> anyhow::Result<EpisodeEnd> {
        let episode = match self.dataset.new_episode() {
            Ok(e) => e,
            Err(e) => {
                if let Some(req) = start.request {
                    req.answer(error_reply(format!("{e:#}")));
                }
                return Err(e);
            }
        };
        let index = episode.index;
        let task = start.task;
        let started_unix_ns = now_unix_ns();
        log::info!(
            "episode {index}: recording{}",
            self.config
                .episode_time
                .map(|t| format!(" for {t:.1} s"))
                .unwrap_or_default()
        );
        self.control.start_episode(index);
        self.board
            .set(RecState::Recording, Some(index), task.as_deref(), None);
        if let Some(req) = start.request {
            req.answer(json!({ "ok": true, "episode": index, "task": task }));
        }
        let started = Instant::now();
        let deadline = self
            .config
            .episode_time
            .map(|t| started + Duration::from_secs_f64(t));
        let mut next_sample = Instant::now();
        // A camera reports an episode only once it captured a frame of it,
        // so an episode asked to end at once (`start` then `stop`, a disk
        // that fills right away) ends when every live camera has one frame
        // in it, or after `first_frame_grace` (a stuck camera: reported).
        let captured_at_start: Vec<u64> = cameras
            .iter()
            .map(|c| metrics::load(&c.counters.captured))
            .collect();
        let first_frame_grace = Duration::from_secs(1).max(
            cameras
                .iter()
                .map(|c| Duration::from_nanos(3 * c.format.frame_interval_ns()))
                .max()
                .unwrap_or_default(),
        );
        let mut wanted: Option<EndReason> = None;
        let reason = loop {
            if self.control.get().stopping() || self.all_closed(cameras) {
                self.health.shutting_down();
                break EndReason::Shutdown;
            }
            if wanted.is_none() {
                wanted = self.end_requested(index, deadline);
            }
            if let Some(r) = wanted.take() {
                let fed = cameras.iter().zip(&captured_at_start).all(|(c, &at)| {
                    self.closed.contains_key(&c.name) || metrics::load(&c.counters.captured) > at
                });
                if fed || started.elapsed() >= first_frame_grace {
                    if let EndReason::DiskLow(why) = &r {
                        log::warn!("episode {index}: {why}: finishing the episode and pausing");
                    }
                    break r;
                }
                wanted = Some(r);
            }
            if Instant::now() >= next_sample {
                self.sample_backlog(cameras);
                next_sample += Duration::from_secs(1);
            }
            self.drain_events();
            let nap = deadline.map_or(Duration::from_millis(10), |d| {
                d.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(10))
            });
            std::thread::sleep(nap);
        };
        let ended = Instant::now();
        let ended_unix_ns = now_unix_ns();
        self.control.end_episode();
        // Encoders idle on an empty ring park for up to 5 ms: wake them so
        // the episode closes at once.
        for cam in cameras.iter() {
            if let Some(h) = &cam.encoder {
                h.thread().unpark();
            }
        }
        let why = match &reason {
            EndReason::DiskLow(why) => Some(why.as_str()),
            _ => None,
        };
        self.board
            .set(RecState::Draining, Some(index), task.as_deref(), why);

        // Wait for every live camera to finish its MP4 and index.
        let mut done = BTreeMap::new();
        let mut errors = Vec::new();
        for d in std::mem::take(&mut self.early_done) {
            if d.episode != index {
                log::warn!("camera {}: late report for episode {}", d.camera, d.episode);
                continue;
            }
            if let Some(e) = &d.error {
                errors.push(e.clone());
            }
            done.insert(d.camera.clone(), d);
        }
        let wait_limit = Duration::from_secs(10)
            + cameras
                .iter()
                .map(|c| Duration::from_nanos(3 * c.format.frame_interval_ns()))
                .max()
                .unwrap_or_default();
        // A camera with a backlog (ring, spill files) may take long: it is
        // stuck only when it encodes nothing for `wait_limit`.
        let mut wait_until = Instant::now() + wait_limit;
        let mut drain = super::drain::DrainProgress::new();
        let mut next_sample = Instant::now();
        while cameras
            .iter()
            .any(|c| !done.contains_key(&c.name) && !self.closed.contains_key(&c.name))
        {
            let backlog: u64 = cameras
                .iter()
                .map(|c| {
                    c.ring_stats.depth.load(Ordering::Relaxed) as u64 + c.spill_stats.backlog()
                })
                .sum();
            let encoded: u64 = cameras
                .iter()
                .map(|c| metrics::load(&c.counters.encoded))
                .sum();
            if drain.update(backlog, encoded) {
                wait_until = Instant::now() + wait_limit;
            }
            if Instant::now() >= next_sample {
                self.sample_backlog(cameras);
                next_sample += Duration::from_secs(1);
            }
            match self.events.recv_timeout(
                wait_until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(200)),
            ) {
                Ok(EncoderEvent::EpisodeDone(d)) if d.episode == index => {
                    if let Some(e) = &d.error {
                        errors.push(e.clone());
                    }
                    done.insert(d.camera.clone(), d);
                }
                Ok(EncoderEvent::EpisodeDone(d)) => {
                    log::warn!("camera {}: late report for episode {}", d.camera, d.episode)
                }
                Ok(EncoderEvent::Closed { camera, error }) => {
                    self.closed.insert(camera, error);
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() < wait_until => {}
                Err(RecvTimeoutError::Timeout) => {
                    let missing: Vec<_> = cameras
                        .iter()
                        .filter(|c| {
                            !done.contains_key(&c.name) && !self.closed.contains_key(&c.name)
                        })
                        .map(|c| c.name.clone())
                        .collect();
                    errors.push(format!("episode {index}: camera(s) {missing:?} encoded nothing for {:.1} s (stuck camera?)", wait_limit.as_secs_f64()));
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        drain.finish();
        let request = match reason {
            EndReason::Command(req) => Some(req),
            EndReason::DiskLow(_) => {
                if !self.auto {
                    self.resume = Some(task.clone());
                }
                None
            }
            EndReason::Deadline | EndReason::Shutdown => None,
        };
        let discard = request
            .as_ref()
            .is_some_and(|r| r.command == Command::Discard);
        let total_frames: u64 = done.values().map(|d| d.frames).sum();
        let not_completed = EpisodeEnd { completed: false };
        if discard {
            // Camera errors do not matter here: the episode is unwanted.
            let removed = std::fs::remove_dir_all(&episode.dir)
                .with_context(|| {
                    format!("cannot remove discarded episode {}", episode.dir.display())
                })
                .and_then(|()| crate::dataset::layout::sync_dir(&self.dataset.episodes_dir()));
            if let Some(req) = request {
                req.answer(match &removed {
                    Ok(()) => json!({ "ok": true, "episode": index, "discarded": true }),
                    Err(e) => error_reply(format!("{e:#}")),
                });
            }
            removed?;
            log::info!("episode {index}: discarded ({total_frames} frames deleted)");
            return Ok(not_completed);
        }
        if total_frames == 0 && errors.is_empty() {
            log::info!("episode {index}: no frame was recorded; removing the empty episode");
            let removed = std::fs::remove_dir_all(&episode.dir)
                .with_context(|| format!("cannot remove empty episode {}", episode.dir.display()));
            if let Some(req) = request {
                req.answer(json!({ "ok": true, "episode": index, "complete": false,
                    "note": "no frame was recorded; the empty episode was removed" }));
            }
            removed?;
            return Ok(not_completed);
        }
        if !errors.is_empty() {
            self.failures.extend(errors.iter().cloned());
            let why = format!(
                "episode {index} is left unfinished (no episode.json): {}",
                errors.join("; ")
            );
            log::error!("{why}");
            if let Some(req) = request {
                req.answer(error_reply(why));
            }
            return Ok(not_completed);
        }
        // A second stop signal skipped this episode's queued frames: what was
        // written is consistent, but the episode ends before its schedule.
        let status = if self.control.get().aborting() {
            EpisodeStatus::Aborted
        } else {
            EpisodeStatus::Complete
        };
        let meta = EpisodeMeta {
            index,
            status,
            task,
            started_unix_ns,
            ended_unix_ns,
            recovery: None,
            cameras: done
                .values()
                .map(|d| {
                    let spilled = d.spilled;
                    (
                        d.camera.clone(),
                        EpisodeCameraMeta {
                            frames: d.frames,
                            spilled,
                            dropped: d.dropped,
                            first_capture_ns: d.first_capture_ns,
                            last_capture_ns: d.last_capture_ns,
                        },
                    )
                })
                .collect(),
        };
        if let Err(e) = crate::dataset::layout::write_episode_meta_atomic(&episode.dir, &meta) {
            if let Some(req) = request {
                req.answer(error_reply(format!("{e:#}")));
            }
            return Err(e);
        }
        let finish_latency_ms = ended.elapsed().as_secs_f64() * 1e3;
        log::info!(
            "episode {index}: {}, {total_frames} frames; finished {finish_latency_ms:.1} ms after its end",
            if status == EpisodeStatus::Aborted { "aborted (queued frames skipped)" } else { "complete" }
        );
        self.episode_metrics.push(EpisodeMetrics {
            index,
            finish_latency_ms,
            duration_s: ended.duration_since(started).as_secs_f64(),
        });
        self.board.episode_completed();
        if let Some(req) = request {
            let frames: BTreeMap<&str, u64> = meta
                .cameras
                .iter()
                .map(|(name, c)| (name.as_str(), c.frames))
                .collect();
            req.answer(json!({ "ok": true, "episode": index, "complete": true,
                "status": meta.status, "frames": frames }));
        }
        Ok(EpisodeEnd { completed: true })
    }
}

/// Joins `handle`, giving up (and leaving the thread detached) after `limit`.
fn join_with_timeout<T: Send + 'static>(handle: JoinHandle<T>, limit: Duration) -> Option<T> {
    let until = Instant::now() + limit;
    while !handle.is_finished() {
        if Instant::now() >= until {
            log::warn!(
                "thread {:?} did not finish within {:.0} s; leaving it",
                handle.thread().name(),
                limit.as_secs_f64()
            );
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.join().ok()
}
