//! Writes N frames of the built-in synthetic camera as raw I420 to stdout, so
//! benchmarks can feed the very same frames to `ffmpeg`.
//!
//! `cargo run --release --example synthetic_raw -- WIDTH HEIGHT FRAMES [NOISE]`

use std::io::Write;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: u64| -> anyhow::Result<u64> {
        args.get(i).map_or(Ok(default), |s| {
            s.parse()
                .map_err(|e| anyhow::anyhow!("argument {}: {e}", i + 1))
        })
    };
    let (w, h, n, noise) = (
        num(0, 640)? as u32,
        num(1, 480)? as u32,
        num(2, 300)?,
        num(3, 0)? as u8,
    );
    let mut frame = vec![0u8; s6_edge::frame::frame_bytes(s6_edge::frame::PixelFormat::I420, w, h)];
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..n {
        s6_edge::capture::synthetic::draw_i420(&mut frame, w, h, i, noise);
        s6_edge::capture::stamp_i420(&mut frame, w, h, i);
        out.write_all(&frame)?;
    }
    out.flush()?;
    Ok(())
}
