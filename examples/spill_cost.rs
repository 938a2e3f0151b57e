//! CPU cost of writing spill files: reads raw frames from a file and writes
//! each one as a spill PNG (exactly the recorder's spill path), then prints
//! CPU milliseconds per frame (user + system of this process) and the mean
//! file size. Used by `tests/bench/spill_cost.sh`.
//!
//! `spill_cost RAW_FILE WIDTH HEIGHT OUT_DIR [FORMAT=i420]`

use s6_edge::frame::{parse_pixel_format, FrameMeta, VideoFormat};
use std::io::Read;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 4,
        "usage: spill_cost RAW_FILE WIDTH HEIGHT OUT_DIR [FORMAT]"
    );
    let format = VideoFormat {
        width: args[1].parse()?,
        height: args[2].parse()?,
        fps_num: 30,
        fps_den: 1,
        pixel_format: parse_pixel_format(args.get(4).map_or("i420", |s| s))
            .ok_or_else(|| anyhow::anyhow!("unknown pixel format"))?,
    };
    let out = std::path::PathBuf::from(&args[3]);
    std::fs::create_dir_all(&out)?;
    let mut raw = Vec::new();
    std::fs::File::open(&args[0])?.read_to_end(&mut raw)?;
    let n = format.frame_bytes();
    let frames: Vec<&[u8]> = raw.chunks_exact(n).collect();
    anyhow::ensure!(!frames.is_empty(), "no whole frame in {}", args[0]);
    let mut scratch = Vec::new();
    let mut bytes = 0u64;
    let t0 = cpu_seconds();
    for (i, f) in frames.iter().enumerate() {
        let meta = FrameMeta {
            capture_ts_ns: i as u64 * 33_333_333,
            ..Default::default()
        };
        bytes +=
            s6_edge::record::spill::write_spill(&out, f, &format, i as u64, &meta, &mut scratch)?;
    }
    let cpu = cpu_seconds() - t0;
    println!(
        "{:.3} ms/frame {:.0} bytes/frame {} frames",
        cpu * 1e3 / frames.len() as f64,
        bytes as f64 / frames.len() as f64,
        frames.len()
    );
    Ok(())
}
