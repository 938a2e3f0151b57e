#!/usr/bin/env bash
# Maximum sustained cameras at 640x480@30 (synthetic cameras, SVT-AV1 at the
# recorder's defaults, default ring of 64 frames), one episode of SECONDS
# per camera count, release build. One run per count answers both modes:
#   streaming only     : every frame went through the ring (0 spilled) — the
#                        encoders alone kept up;
#   streaming + spill  : 0 dropped, every captured frame is in the MP4s
#                        (verify passes, decoding included), and capture
#                        kept real time: ≥ 98 % of SECONDS × 30 frames per
#                        camera and no capture interval above 4 frame
#                        intervals (what a 4-buffer V4L2 queue survives).
# The drain column is how long `record` kept encoding the spill backlog
# after the episode ended. Other processes on the machine share the CPU:
# note the load when quoting figures.
#
# Usage: tests/bench/max_cameras.sh [MAX_CAMERAS [SECONDS]]
set -euo pipefail
cd "$(dirname "$0")/../.."
MAX=${1:-6}; SECS=${2:-60}
[ -n "${S6_BENCH_NO_BUILD:-}" ] || cargo build --release --workspace -q
BIN=$PWD/target/release/s6-edge
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/plugins"
ln -s "$PWD/target/release/libs6_codec_svtav1.so" "$WORK/plugins/"

printf "%-5s %-10s %-9s %-8s %-7s %-10s %-8s %-7s %-10s %-10s\n" \
  cams captured spilled dropped verify max_ivl_ms drain_s load1 streaming stream+spill
for n in $(seq 1 "$MAX"); do
  ds="$WORK/ds$n"; logs="$WORK/logs$n"
  inputs=(); for i in $(seq 1 "$n"); do inputs+=(-i "synthetic#name=c$i"); done
  load=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(date +%s.%N)
  "$BIN" record "${inputs[@]}" --width 640 --height 480 --fps 30 --vcodec svtav1 \
    --plugin-dir "$WORK/plugins" --episodes 1 --episode-time "$SECS" \
    -x --log-dir "$logs" -o "$ds" >"$WORK/rec$n.log" 2>&1 || true
  t1=$(date +%s.%N)
  "$BIN" verify --json "$ds" >"$WORK/verify$n.json" 2>/dev/null || true
  python3 - "$n" "$SECS" "$logs" "$WORK/verify$n.json" "$t0" "$t1" "$load" <<'PY'
import glob, json, sys
n, secs, logs, vpath, t0, t1, load = sys.argv[1:]
n, secs = int(n), float(secs)
m = json.load(open(glob.glob(f"{logs}/runs/*/metrics.json")[0]))
cams = m["cameras"].values()
captured = sum(c["frames_captured"] for c in cams)
spilled = sum(c["frames_spilled"] for c in cams)
dropped = sum(c["frames_dropped"] for c in cams)
v = json.load(open(vpath))
ivl = max((c["timing"]["max_interval_ms"] for e in v["episodes"] for c in e["cameras"] if c.get("timing")), default=0)
ep = m["episodes"][0]["duration_s"] if m["episodes"] else secs
drain = float(t1) - float(t0) - ep
on_time = all(c["frames_captured"] >= 0.98 * secs * 30 for c in cams) and ivl <= 4 * 1000 / 30
spill_ok = dropped == 0 and v["ok"] and on_time
stream_ok = spill_ok and spilled == 0
print(f"{n:<5} {captured // n:<10} {spilled:<9} {dropped:<8} {'ok' if v['ok'] else 'FAIL':<7} {ivl:<10.1f} {max(drain, 0):<8.1f} {load:<7} {'yes' if stream_ok else 'no':<10} {'yes' if spill_ok else 'no':<10}")
PY
done
