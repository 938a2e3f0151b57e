#!/usr/bin/env bash
# CPU cost per 640x480 frame: the svtav1 plugin (through its PluginTable,
# examples/encode_raw.rs) versus ffmpeg's libsvtav1 on the same raw frames,
# same run, same machine. CPU = user + sys of the whole process (all SVT
# threads), measured with getrusage of the child.
#
# Usage: codec-plugins/svtav1/bench/encode_cost.sh [FRAMES] [WORKDIR]
set -euo pipefail
FRAMES=${1:-300}
WORK=${2:-$(mktemp -d)}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
SIZE=640x480
command -v ffmpeg >/dev/null || { echo "ffmpeg missing" >&2; exit 1; }
case "$(ffmpeg -hide_banner -encoders 2>/dev/null)" in
  *libsvtav1*) ;;
  *) echo "this ffmpeg has no libsvtav1 encoder" >&2; exit 1 ;;
esac

cargo build --release --quiet -p s6-codec-svtav1 --example encode_raw \
  --manifest-path "$ROOT/Cargo.toml"
ENC="$ROOT/target/release/examples/encode_raw"

gen() { # name lavfi-graph
  [ -s "$WORK/$1.yuv" ] || ffmpeg -hide_banner -loglevel error -f lavfi -i "$2" \
    -frames:v "$FRAMES" -pix_fmt yuv420p -f rawvideo -y "$WORK/$1.yuv"
}
gen testsrc2 "testsrc2=size=$SIZE:rate=30"
gen noisy "testsrc2=size=$SIZE:rate=30,noise=alls=40:allf=t"

# Runs a command, prints the CPU seconds (user+sys) of the child.
cpu() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if r.returncode != 0:
    sys.exit(f"command failed ({r.returncode}): {' '.join(sys.argv[1:])}")
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{u.ru_utime + u.ru_stime:.3f}")
PY
}

ff() { # input extra-svtav1-params
  local params=()
  [ -n "$2" ] && params=(-svtav1-params "$2")
  cpu ffmpeg -hide_banner -nostdin -f rawvideo -pix_fmt yuv420p -s $SIZE -r 30 \
    -i "$WORK/$1.yuv" -c:v libsvtav1 -preset 12 -crf 30 -g 2 "${params[@]}" -f null -
}

printf "%-10s %-34s %10s %12s\n" input encoder cpu_s ms/frame
for input in testsrc2 noisy; do
  for variant in plugin-ld plugin-ra ffmpeg-default ffmpeg-ld; do
    case $variant in
      plugin-ld) s=$(cpu "$ENC" "$WORK/$input.yuv" 640 480) ;;
      plugin-ra) s=$(cpu "$ENC" "$WORK/$input.yuv" 640 480 --options pred-struct=random-access) ;;
      ffmpeg-default) s=$(ff "$input" "") ;;
      ffmpeg-ld) s=$(ff "$input" "pred-struct=1:lookahead=0:enable-tpl-la=0:scd=0") ;;
    esac
    printf "%-10s %-34s %10s %12.3f\n" "$input" "$variant" "$s" \
      "$(python3 -c "print($s*1000/$FRAMES)")"
  done
done
