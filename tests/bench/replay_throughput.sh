#!/usr/bin/env bash
# Replay throughput at maximum speed vs the bare decoder on the same file:
#   s6-edge replay DS --cameras cam        (dav1d, frames copied out as packed I420)
#   ffmpeg -i DS/episodes/000000/cam.mp4 -f null -   (libdav1d, nothing copied)
# Release build; a synthetic WxH clip of N frames recorded with SVT-AV1 at
# GOP 2 (training setting) and GOP 30 (field setting). Each command runs
# RUNS times; the best wall time counts (the machine is shared). Target: the
# replay/ffmpeg throughput ratio >= 0.9.
# Usage: tests/bench/replay_throughput.sh [WIDTH HEIGHT FRAMES RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-640}; H=${2:-480}; N=${3:-300}; RUNS=${4:-5}
command -v ffmpeg >/dev/null || { echo "ffmpeg is missing (apt-get install ffmpeg)"; exit 1; }
cargo build --release --workspace -q
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir -p "$T/plugins"; ln -s "$PWD/target/release/libs6_codec_svtav1.so" "$T/plugins/"
BIN=./target/release/s6-edge

best() { # best wall seconds of RUNS runs of "$@"
  python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
best = None
for _ in range(runs):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = time.perf_counter() - t
    best = d if best is None else min(best, d)
print(f"{best:.4f}")
PY
}

echo "replay throughput, ${W}x${H}, $N frames, best of $RUNS ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
for gop in 2 30; do
  DS="$T/gop$gop"
  $BIN record -i "synthetic#name=cam,width=$W,height=$H,fps=30,realtime=false,frames=$N" \
    --vcodec svtav1 --gop "$gop" --plugin-dir "$T/plugins" -o "$DS" 2>/dev/null
  MP4="$DS/episodes/000000/cam.mp4"
  frames=$($BIN replay "$DS" --hash 2>/dev/null | awk '{print $3}')
  [ "$frames" = "$N" ] || { echo "replay delivered $frames frames, expected $N"; exit 1; }
  ff=$(best ffmpeg -v error -threads 0 -i "$MP4" -f null -)
  s6=$(best "$BIN" replay "$DS" --cameras cam)
  python3 - "$gop" "$N" "$ff" "$s6" "$(stat -c %s "$MP4")" <<'PY'
import sys
gop, n, ff, s6, size = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
print(f"GOP {gop:>2} ({size/1024:.0f} KiB): ffmpeg -f null {n/ff:7.1f} fps ({ff:.3f} s), "
      f"s6-edge replay {n/s6:7.1f} fps ({s6:.3f} s), ratio {ff/s6:.2f}x (target >= 0.9)")
PY
done
