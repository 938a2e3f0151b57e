#!/usr/bin/env bash
# Recorder overhead: CPU time per frame of `s6-edge record` (synthetic camera,
# svtav1 defaults: GOP 2, CRF 30, preset 12) vs ffmpeg's libsvtav1 encoding the
# very same raw frames with the same settings, in the same run.
# Also prints episode finish latency and peak RSS from metrics.json.
# Usage: tests/bench/record_overhead.sh [WIDTH HEIGHT FRAMES]
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-640}; H=${2:-480}; N=${3:-300}
cargo build --release --workspace -q && cargo build --release --example synthetic_raw -q
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir -p "$T/plugins"; ln -s "$PWD/target/release/libs6_codec_svtav1.so" "$T/plugins/"
cpu() { awk '{print $1+$2}' "$1"; }

# s6-edge: frames produced as fast as possible (realtime=false), one episode.
/usr/bin/time -f "%U %S %M" -o "$T/s6.time" ./target/release/s6-edge record \
  -i "synthetic#width=$W,height=$H,fps=30,frames=$N,realtime=false" --vcodec svtav1 \
  --plugin-dir "$T/plugins" -o "$T/ds" -x --log-dir "$T/logs" 2>"$T/s6.log" || { cat "$T/s6.log"; exit 1; }
frames=$(ffprobe -v error -count_frames -show_entries stream=nb_read_frames -of csv=p=0 "$T"/ds/episodes/000000/cam0.mp4 | tr -d ,)

# ffmpeg on the same raw frames.
./target/release/examples/synthetic_raw "$W" "$H" "$N" > "$T/frames.yuv"
/usr/bin/time -f "%U %S %M" -o "$T/ff.time" ffmpeg -v error -f rawvideo -pix_fmt yuv420p -s "${W}x${H}" -r 30 \
  -i "$T/frames.yuv" -c:v libsvtav1 -preset 12 -crf 30 -g 2 -f mp4 -y "$T/ff.mp4"

s6_ms=$(awk -v c="$(cpu "$T/s6.time")" -v n="$frames" 'BEGIN{printf "%.2f", 1000*c/n}')
ff_ms=$(awk -v c="$(cpu "$T/ff.time")" -v n="$N" 'BEGIN{printf "%.2f", 1000*c/n}')
echo "frames: s6-edge $frames, ffmpeg $N (${W}x${H})"
echo "CPU per frame: s6-edge record ${s6_ms} ms, ffmpeg libsvtav1 ${ff_ms} ms, ratio $(awk -v a="$s6_ms" -v b="$ff_ms" 'BEGIN{printf "%.3f", a/b}')"
echo "peak RSS: s6-edge $(awk '{print $3}' "$T/s6.time") KiB, ffmpeg $(awk '{print $3}' "$T/ff.time") KiB"
python3 - "$T"/logs/runs/*/metrics.json <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
for e in m["episodes"]:
    print(f"episode {e['index']}: {e['duration_s']:.1f} s, finish latency {e['finish_latency_ms']:.1f} ms")
PY
