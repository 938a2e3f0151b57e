//! The record controller: opens cameras and the encoder backend, creates the
//! dataset, runs the episode schedule and writes `episode.json` and metrics.

use super::capture_thread::{CaptureReport, CaptureThread};
use super::config::RecordConfig;
use super::control::Control;
use super::encode_thread::{now_unix_ns, EncodeThread, EncoderEvent, EncoderReport};
use super::pool::frame_ring;
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

    // 4. Start the camera threads.
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
            control: control.clone(),
            counters: counters.clone(),
            on_frame: None,
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
            .spawn(move || capture.run())
            .context("cannot start a capture thread")?;
        cameras.push(Camera {
            name: spec.name.clone(),
            format,
            ring_frames: config.ring_frames,
            counters,
            ring_stats,
            capture: Some(capture_handle),
            encoder: Some(encoder_handle),
            backlog: Vec::new(),
        });
    }
    drop(events_tx);

    // 5. The episode schedule.
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
    };
    let mut recorded = 0u32;
    loop {
        if stop_requests.count() > 0 || schedule.all_closed(&cameras) {
            break;
        }
        schedule.run_episode(&mut cameras)?;
        recorded += 1;
        if config.episodes.is_some_and(|n| recorded >= n)
            || stop_requests.count() > 0
            || schedule.all_closed(&cameras)
        {
            break;
        }
        if config.reset_time > 0.0 {
            log::info!("reset: {:.1} s before the next episode", config.reset_time);
            schedule.sleep_unless_stopped(
                Duration::from_secs_f64(config.reset_time),
                &stop_requests,
                &mut cameras,
            );
        }
    }

    // 6. Shut down and collect reports.
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
            ..Default::default()
        };
        let recorded_s: f64 = schedule.episode_metrics.iter().map(|e| e.duration_s).sum();
        if recorded_s > 0.0 {
            cm.fps_achieved = cm.frames_captured as f64 / recorded_s;
        }
        if let Some(mut enc) = encoder {
            if let Some(c) = &capture {
                enc.stages.capture = c.capture_latency.clone();
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
}

impl Schedule<'_> {
    fn all_closed(&self, cameras: &[Camera]) -> bool {
        cameras.iter().all(|c| self.closed.contains_key(&c.name))
    }

    /// Samples every camera's ring backlog (once per call).
    fn sample_backlog(&self, cameras: &mut [Camera]) {
        let t = self.origin.elapsed().as_secs_f64();
        for cam in cameras {
            cam.backlog
                .push((t, cam.ring_stats.depth.load(Ordering::Relaxed) as u64));
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

    fn sleep_unless_stopped(
        &mut self,
        total: Duration,
        stops: &super::signals::StopRequests,
        cameras: &mut [Camera],
    ) {
        let end = Instant::now() + total;
        let mut next_sample = Instant::now();
        while Instant::now() < end && stops.count() == 0 && !self.all_closed(cameras) {
            if Instant::now() >= next_sample {
                self.sample_backlog(cameras);
                next_sample += Duration::from_secs(1);
            }
            self.drain_events();
            std::thread::sleep(
                Duration::from_millis(10).min(end.saturating_duration_since(Instant::now())),
            );
        }
    }

    /// Records one episode and writes its `episode.json`.
    fn run_episode(&mut self, cameras: &mut [Camera]) -> anyhow::Result<()> {
        let episode = self.dataset.new_episode()?;
        let index = episode.index;
        let started_unix_ns = now_unix_ns();
        log::info!(
            "episode {index}: recording{}",
            self.config
                .episode_time
                .map(|t| format!(" for {t:.1} s"))
                .unwrap_or_default()
        );
        self.control.start_episode(index);
        let started = Instant::now();
        let deadline = self
            .config
            .episode_time
            .map(|t| started + Duration::from_secs_f64(t));
        let mut next_sample = Instant::now();
        loop {
            if self.control.get().stopping()
                || deadline.is_some_and(|d| Instant::now() >= d)
                || self.all_closed(cameras)
            {
                break;
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
        }
        let ended = Instant::now();
        let ended_unix_ns = now_unix_ns();
        self.control.end_episode();

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
        let wait_until = Instant::now() + wait_limit;
        while cameras
            .iter()
            .any(|c| !done.contains_key(&c.name) && !self.closed.contains_key(&c.name))
        {
            match self
                .events
                .recv_timeout(wait_until.saturating_duration_since(Instant::now()))
            {
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
                Err(RecvTimeoutError::Timeout) => {
                    let missing: Vec<_> = cameras
                        .iter()
                        .filter(|c| {
                            !done.contains_key(&c.name) && !self.closed.contains_key(&c.name)
                        })
                        .map(|c| c.name.clone())
                        .collect();
                    errors.push(format!("episode {index}: camera(s) {missing:?} did not finish within {:.1} s (stuck camera?)", wait_limit.as_secs_f64()));
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let total_frames: u64 = done.values().map(|d| d.frames).sum();
        if total_frames == 0 && errors.is_empty() {
            log::info!("episode {index}: no frame was recorded; removing the empty episode");
            std::fs::remove_dir_all(&episode.dir).with_context(|| {
                format!("cannot remove empty episode {}", episode.dir.display())
            })?;
            return Ok(());
        }
        if !errors.is_empty() {
            self.failures.extend(errors.iter().cloned());
            log::error!(
                "episode {index} is left unfinished (no episode.json): {}",
                errors.join("; ")
            );
            return Ok(());
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
            task: self.config.task.clone(),
            started_unix_ns,
            ended_unix_ns,
            recovery: None,
            cameras: done
                .values()
                .map(|d| {
                    let spilled = 0;
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
        crate::dataset::layout::write_episode_meta_atomic(&episode.dir, &meta)?;
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
        Ok(())
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
