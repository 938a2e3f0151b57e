#!/usr/bin/env bash
# Peak RSS of a long recording, and whether it stays flat: `s6-edge record`
# with CAMS synthetic cameras (real-time, WxH @ FPS, svtav1 defaults) for
# DURATION seconds in episodes of EPISODE seconds (every episode opens a new
# encoder session and new files, so a leak per episode shows too). VmRSS is
# sampled from /proc/PID/status every STEP seconds.
# Target: peak ≤ ring pool (cameras × ring frames × frame bytes) + 64 MiB,
# and flat: the last minute's mean within 5 % (or 4 MiB) of the second minute's.
#
# Usage: tests/bench/rss_flat.sh [DURATION CAMS W H FPS EPISODE STEP RING]
#   defaults: 600 s, 2 cameras 640x480 @ 15 fps, 60 s episodes, 5 s, 64 frames.
#   S6_BENCH_NO_BUILD=1 skips `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-600}; CAMS=${2:-2}; W=${3:-640}; H=${4:-480}; FPS=${5:-15}; EP=${6:-60}; STEP=${7:-5}; RING=${8:-64}
[ -n "${S6_BENCH_NO_BUILD:-}" ] || cargo build --release --workspace -q
T=$(mktemp -d); trap 'kill "$PID" 2>/dev/null || true; rm -rf "$T"' EXIT
# S6_EDGE_BIN / S6_EDGE_PLUGIN: measure a copy while the tree is rebuilt.
BIN=${S6_EDGE_BIN:-./target/release/s6-edge}
mkdir -p "$T/plugins"; ln -s "${S6_EDGE_PLUGIN:-$PWD/target/release/libs6_codec_svtav1.so}" "$T/plugins/"
inputs=()
for i in $(seq 0 $((CAMS - 1))); do inputs+=(-i "synthetic#name=cam$i,width=$W,height=$H,fps=$FPS"); done
# -x (metrics.json + the Chrome trace, which keeps up to 200k events per
# thread in memory) only with S6_BENCH_METRICS=1.
XLOG=(); [ "${S6_BENCH_METRICS:-0}" = 1 ] && XLOG=(-x --log-dir "$T/logs")
echo "load before: $(uptime)"
"$BIN" record "${inputs[@]}" --vcodec svtav1 --ring-frames "$RING" \
  --episode-time "$EP" --plugin-dir "$T/plugins" -o "$T/ds" "${XLOG[@]}" 2>"$T/log" &
PID=$!
start=$(date +%s.%N)
: > "$T/rss"
while kill -0 "$PID" 2>/dev/null; do
  now=$(date +%s.%N)
  t=$(awk -v a="$start" -v b="$now" 'BEGIN{printf "%.0f", b - a}')
  rss=$(awk '/^VmRSS/{print $2}' "/proc/$PID/status" 2>/dev/null || true)
  hwm=$(awk '/^VmHWM/{print $2}' "/proc/$PID/status" 2>/dev/null || true)
  [ -n "$rss" ] && echo "$t $rss $hwm" >> "$T/rss"
  if [ "$t" -ge "$DUR" ]; then kill -INT "$PID"; break; fi
  sleep "$STEP"
done
wait "$PID" || { tail -20 "$T/log"; exit 1; }
echo "load after: $(uptime)"
frame_bytes=$((W * H * 3 / 2))
python3 - "$T/rss" "$((CAMS * RING * frame_bytes))" "$STEP" "$T/logs" <<'PY'
import glob, json, statistics, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
pool = int(sys.argv[2]) / 1024  # KiB
step = int(sys.argv[3])
t = [r[0] for r in rows]; rss = [r[1] for r in rows]; hwm = max(r[2] for r in rows)
second_min = [r for (tt, r) in zip(t, rss) if 60 <= tt < 120] or [r for (tt, r) in zip(t, rss) if tt >= t[-1] // 4][:5]
last_min = [r for (tt, r) in zip(t, rss) if tt >= t[-1] - 60]
a, b = statistics.mean(second_min), statistics.mean(last_min)
limit = pool + 64 * 1024
flat = abs(b - a) <= max(0.05 * a, 4096)
runs = glob.glob(sys.argv[4] + "/runs/*/metrics.json")
if runs:
    m = json.load(open(runs[0]))
    frames = {k: (c["frames_captured"], c["frames_encoded"], c.get("frames_spilled", 0)) for k, c in m["cameras"].items()}
    print(f"episodes {len(m['episodes'])}; frames (captured, encoded, spilled) {frames}")
print(f"{len(rows)} samples over {t[-1]} s, every {step} s")
print(f"VmRSS MiB: first {rss[0]/1024:.1f}, at 60-120 s {a/1024:.1f}, last minute {b/1024:.1f}, "
      f"min {min(rss)/1024:.1f}, max {max(rss)/1024:.1f}; peak (VmHWM) {hwm/1024:.1f}")
print(f"ring pool {pool/1024:.1f} MiB + 64 MiB = {limit/1024:.1f} MiB: peak {'within' if hwm <= limit else 'OVER'} "
      f"({hwm/1024:.1f}); flat: {'yes' if flat else 'NO'} ({(b - a)/1024:+.1f} MiB from the 2nd to the last minute)")
print("series (s:MiB): " + " ".join(f"{tt}:{r/1024:.0f}" for tt, r in list(zip(t, rss))[:: max(1, len(rows) // 24)]))
PY
