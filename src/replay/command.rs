//! `s6-edge replay DIR`: plays a dataset to the chosen outputs.

use super::frame::ReplayFrame;
use super::hash::FrameHasher;
use super::metrics::ReplayMetrics;
use super::pacing::Pacer;
use super::png_out::PngWriter;
use super::raw_out::RawWriter;
use super::reader::Replay;
use super::select::{parse_cameras, EpisodeSelection};
use super::sink::Sink;
use crate::cli::ReplayArgs;
use crate::metrics::histogram::Histogram;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

/// Frames decoded ahead of delivery in realtime playback.
const READ_AHEAD: usize = 4;

/// Runs `s6-edge replay`.
pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let mut replay = Replay::open(&args.dir)?;
    if let Some(spec) = &args.episodes {
        replay = replay.episodes(EpisodeSelection::parse(spec)?);
    }
    if let Some(spec) = &args.cameras {
        replay = replay.cameras(parse_cameras(spec)?);
    }
    // Fail on bad filters before any output is created.
    replay.camera_names()?;
    replay.plan()?;
    let passes = match args.repeat {
        None => Some(1),
        Some(None) => None,
        Some(Some(0)) => return Err(crate::exit::usage("--repeat N needs N >= 1")),
        Some(Some(n)) => Some(n),
    };
    let raw_to_stdout = args
        .raw_out
        .as_deref()
        .is_some_and(|p| p.as_os_str() == "-");
    let mut raw = match &args.raw_out {
        Some(path) => Some(RawWriter::create(
            path,
            args.realtime_playback || raw_to_stdout,
        )?),
        None => None,
    };
    let mut png = match &args.png_dir {
        Some(dir) => Some(PngWriter::create(dir)?),
        None => None,
    };
    let mut sink = match &args.sink {
        Some(desc) => Some(Sink::new(desc)?),
        None => None,
    };
    let mut pacer = args.realtime_playback.then(Pacer::new);
    let mut lateness = Histogram::new();
    let mut metrics = args.output_log.then(ReplayMetrics::new);
    let started = Instant::now();
    let mut total = 0u64;
    let mut pass = 0u64;
    while passes.is_none_or(|n| pass < n) {
        pass += 1;
        let mut hasher = args.hash.then(FrameHasher::new);
        let mut episode = None;
        if let Some(s) = sink.as_mut() {
            s.new_pass();
        }
        let mut frames_this_pass = 0u64;
        let mut frames = frames_of_pass(&replay, args.realtime_playback)?;
        loop {
            let t0 = Instant::now();
            let Some(frame) = frames.next() else { break };
            let frame = frame?;
            let decode = t0.elapsed();
            let mut late = None;
            if let Some(p) = pacer.as_mut() {
                if episode != Some(frame.episode) {
                    p.restart();
                }
                let l = p.wait(frame.capture_ts_ns);
                lateness.record_us(l.as_micros() as u64);
                late = Some(l);
            }
            let t1 = Instant::now();
            let meta = metrics.as_ref().map(|_| frame.clone_meta());
            episode = Some(frame.episode);
            if let Some(h) = hasher.as_mut() {
                h.update(&frame);
            }
            if let Some(w) = raw.as_mut() {
                w.write(&frame)?;
            }
            if let Some(w) = png.as_mut() {
                w.write(&frame)?;
            }
            if let Some(s) = sink.as_mut() {
                s.push(frame)?;
            }
            if let (Some(m), Some(f)) = (metrics.as_mut(), meta.as_ref()) {
                m.frame(f, decode, t1.elapsed(), late);
            }
            frames_this_pass += 1;
        }
        total += frames_this_pass;
        if frames_this_pass == 0 {
            log::warn!("the selection holds no frame to replay");
            break;
        }
        if let Some(h) = hasher {
            print_digests(&h, pass, passes != Some(1), raw_to_stdout)?;
        }
    }
    if let Some(w) = raw.as_mut() {
        w.finish()?;
    }
    if let Some(s) = sink {
        for (camera, n) in s.finish()? {
            log::info!("--sink: camera {camera}: {n} frames delivered");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    log::info!(
        "replayed {total} frames in {pass} pass(es) in {secs:.2} s ({:.1} frames/s)",
        total as f64 / secs.max(1e-9)
    );
    if pacer.is_some() && lateness.count() > 0 {
        let s = lateness.summary();
        log::info!(
            "realtime playback: wake-up lateness p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
            s.p50_ms,
            s.p95_ms,
            s.max_ms
        );
    }
    if let Some(m) = metrics {
        let dir = m.write(&args.log_dir)?;
        log::info!("metrics: {}", dir.join("metrics.json").display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The frames of one pass. With realtime playback they are decoded on a
/// thread of their own a few frames ahead, so decoding never delays a
/// delivery deadline.
fn frames_of_pass(
    replay: &Replay,
    read_ahead: bool,
) -> anyhow::Result<Box<dyn Iterator<Item = anyhow::Result<ReplayFrame>>>> {
    let frames = replay.frames()?;
    if !read_ahead {
        return Ok(Box::new(frames));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(READ_AHEAD);
    std::thread::Builder::new()
        .name("replay-decode".into())
        .spawn(move || {
            for f in frames {
                if tx.send(f).is_err() {
                    break;
                }
            }
        })?;
    Ok(Box::new(rx.into_iter()))
}

/// Prints `blake3:<hex>  <camera>  <n> frames` per camera (stdout, or
/// stderr when raw frames go to stdout).
fn print_digests(h: &FrameHasher, pass: u64, multi: bool, to_stderr: bool) -> anyhow::Result<()> {
    let mut text = String::new();
    for (camera, digest, n) in h.digests() {
        if multi {
            text.push_str(&format!("pass {pass}  "));
        }
        text.push_str(&format!("blake3:{digest}  {camera}  {n} frames\n"));
    }
    if to_stderr {
        eprint!("{text}");
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
    }
    Ok(())
}
