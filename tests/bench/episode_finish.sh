#!/usr/bin/env bash
# Episode finish latency: from the end of an episode (its deadline) to its
# episode.json being durable (written, fsynced, renamed, directory fsynced),
# as the recorder measures it (metrics.json `episodes[].finish_latency_ms`).
# Target: p99 ≤ 50 ms, flat in episode length.
#
# Two real-time synthetic cameras (320x240 @ FPS, svtav1 defaults). Three
# runs: many 1 s episodes for the distribution, then 10 s and 120 s episodes
# to show it does not grow with the length (the video is encoded while
# recording; finishing flushes the encoder's last frames and syncs files).
# Latencies are wall-clock: the load average is printed with each run.
#
# Usage: tests/bench/episode_finish.sh [N_1S N_10S N_120S FPS]
#   defaults: 100 × 1 s, 10 × 10 s, 3 × 120 s, 15 fps (about 10 minutes).
#   S6_BENCH_NO_BUILD=1 skips `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/../.."
N1=${1:-100}; N10=${2:-10}; N120=${3:-3}; FPS=${4:-15}
[ -n "${S6_BENCH_NO_BUILD:-}" ] || cargo build --release --workspace -q
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
# S6_EDGE_BIN / S6_EDGE_PLUGIN: measure a copy while the tree is rebuilt.
BIN=${S6_EDGE_BIN:-./target/release/s6-edge}
mkdir -p "$T/plugins"; ln -s "${S6_EDGE_PLUGIN:-$PWD/target/release/libs6_codec_svtav1.so}" "$T/plugins/"
run() { # episodes seconds
  [ "$1" -gt 0 ] || return 0
  local before after
  before=$(cut -d' ' -f1-3 /proc/loadavg)
  "$BIN" record \
    -i "synthetic#width=320,height=240,fps=$FPS" -i "synthetic#name=b,width=320,height=240,fps=$FPS" \
    --vcodec svtav1 --episodes "$1" --episode-time "$2" --plugin-dir "$T/plugins" \
    -o "$T/ds$2" -x --log-dir "$T/logs$2" 2>"$T/log$2" || { tail -20 "$T/log$2"; exit 1; }
  after=$(cut -d' ' -f1-3 /proc/loadavg)
  python3 - "$2" "$T"/logs"$2"/runs/*/metrics.json "$before" "$after" <<'PY'
import json, math, sys
m = json.load(open(sys.argv[2]))
lat = sorted(e["finish_latency_ms"] for e in m["episodes"])
q = lambda p: lat[min(len(lat) - 1, max(0, math.ceil(p * len(lat)) - 1))]
print(f"{sys.argv[1]:>4} s episodes: n={len(lat)}  finish latency ms  p50 {q(0.5):.1f}  p90 {q(0.9):.1f}"
      f"  p99 {q(0.99):.1f}  max {lat[-1]:.1f}   (load {sys.argv[3]} -> {sys.argv[4]})")
PY
}
echo "cameras: 2 x synthetic 320x240 @ $FPS fps, svtav1 defaults; $(nproc) CPUs"
run "$N1" 1
run "$N10" 10
run "$N120" 120
