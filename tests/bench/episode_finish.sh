#!/usr/bin/env bash
# Episode finish latency (end of episode -> episode.json durable) for short
# and long episodes, and peak RSS, from the recorder's own metrics.json.
# Usage: tests/bench/episode_finish.sh [SHORT_S LONG_S EPISODES]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHORT=${1:-10}; LONG=${2:-120}; EPS=${3:-3}
cargo build --release --workspace -q
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir -p "$T/plugins"; ln -s "$PWD/target/release/libs6_codec_svtav1.so" "$T/plugins/"
for len in "$SHORT" "$LONG"; do
  ./target/release/s6-edge record -i "synthetic#width=320,height=240,fps=15" -i "synthetic#name=b,width=320,height=240,fps=15" \
    --vcodec svtav1 --episodes "$EPS" --episode-time "$len" --plugin-dir "$T/plugins" -o "$T/ds$len" -x --log-dir "$T/logs$len" 2>/dev/null
  python3 - "$len" "$T"/logs$len/runs/*/metrics.json <<'PY'
import json, sys
m = json.load(open(sys.argv[2]))
lat = sorted(e["finish_latency_ms"] for e in m["episodes"])
print(f"{sys.argv[1]:>4} s episodes: finish latency ms {', '.join(f'{x:.1f}' for x in lat)} (max {lat[-1]:.1f}); peak RSS {m['max_rss_kib']} KiB")
PY
done
