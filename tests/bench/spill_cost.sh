#!/usr/bin/env bash
# Spill cost per 640x480 frame: CPU (user + sys) of writing each frame as a
# spill file (examples/spill_cost.rs calls the recorder's own
# record::spill::write_spill: I420 bytes as an 8-bit gray PNG of 640x720,
# fdeflate ultra-fast + Up filter, tmp file + rename) versus, on the very
# same frames in the same run:
#   - ffmpeg -c:v png at compression level 1, from RGB24 (the peers' way: the
#     frame is converted to RGB first) and from the same gray 640x720 layout;
#   - SVT-AV1 through our plugin at the recorder's defaults (preset 12,
#     CRF 30, GOP 2, low delay; codec-plugins/svtav1/examples/encode_raw.rs).
# Target: spill ÷ SVT-AV1 ≤ 0.25 on a clean test pattern and on a noisy,
# camera-like frame. Inputs: ffmpeg testsrc2 (clean), testsrc2 + temporal
# noise alls=40 (noisy), and the synthetic camera without/with noise=24.
# Start-up costs are removed: every tool runs on N1 and N2 frames and the
# marginal CPU per frame (cpu(N2) - cpu(N1)) / (N2 - N1) is reported.
#
# Usage: tests/bench/spill_cost.sh [N1 N2 [WORKDIR]]
set -euo pipefail
cd "$(dirname "$0")/../.."
N1=${1:-30}; N2=${2:-180}
WORK=${3:-$(mktemp -d)}
mkdir -p "$WORK"
W=640; H=480
command -v ffmpeg >/dev/null || { echo "ffmpeg missing" >&2; exit 1; }
[ -n "${S6_BENCH_NO_BUILD:-}" ] || {
  cargo build --release -q --example spill_cost --example synthetic_raw
  cargo build --release -q -p s6-codec-svtav1 --example encode_raw
}
SPILL=target/release/examples/spill_cost
RAW=target/release/examples/synthetic_raw
ENC=target/release/examples/encode_raw

gen_lavfi() { # name graph
  [ -s "$WORK/$1.yuv" ] || ffmpeg -hide_banner -loglevel error -f lavfi -i "$2" \
    -frames:v "$N2" -pix_fmt yuv420p -f rawvideo -y "$WORK/$1.yuv"
}
gen_lavfi testsrc2 "testsrc2=size=${W}x${H}:rate=30"
gen_lavfi noisy "testsrc2=size=${W}x${H}:rate=30,noise=alls=40:allf=t"
[ -s "$WORK/synthetic.yuv" ] || "$RAW" $W $H "$N2" 0 > "$WORK/synthetic.yuv"
[ -s "$WORK/synthetic_noise.yuv" ] || "$RAW" $W $H "$N2" 24 > "$WORK/synthetic_noise.yuv"
FB=$((W * H * 3 / 2))
for n in testsrc2 noisy synthetic synthetic_noise; do
  head -c $((FB * N1)) "$WORK/$n.yuv" > "$WORK/$n.n1.yuv"
done

# CPU seconds (user + sys) of a command and its children.
cpu() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if r.returncode != 0:
    sys.exit(f"command failed ({r.returncode}): {' '.join(sys.argv[1:])}")
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{u.ru_utime + u.ru_stime:.4f}")
PY
}

# Marginal ms per frame of "$@" with the input file name substituted for @IN@
# and the output directory for @OUT@.
per_frame() { # name cmd...
  local name=$1; shift
  local a b
  run_on() { # input
    local out="$WORK/out"; rm -rf "$out"; mkdir -p "$out"
    local args=(); for x in "$@"; do args+=("${x//@OUT@/$out}"); done
    local final=(); for x in "${args[@]}"; do final+=("${x//@IN@/$INPUT}"); done
    cpu "${final[@]}"
  }
  INPUT="$WORK/$name.n1.yuv"; a=$(run_on "$@")
  INPUT="$WORK/$name.yuv"; b=$(run_on "$@")
  python3 -c "print(f'{($b - $a) * 1000 / ($N2 - $N1):.3f}')"
}

ff_png() { # pix_fmt-in size-in pix_fmt-out
  echo ffmpeg -hide_banner -nostdin -f rawvideo -pix_fmt "$1" -s "$2" -r 30 -i @IN@ \
    -pix_fmt "$3" -c:v png -compression_level 1 -f image2 @OUT@/%06d.png
}

printf "%-16s %10s %10s %12s %12s %10s %10s %10s\n" input spill_ms png_kB ffpng_rgb_ms ffpng_gray_ms svt_ms spill/svt spill/ffrgb
for n in testsrc2 noisy synthetic synthetic_noise; do
  spill=$(per_frame $n "$SPILL" @IN@ $W $H @OUT@)
  rm -rf "$WORK/out"; mkdir -p "$WORK/out"
  kb=$("$SPILL" "$WORK/$n.yuv" $W $H "$WORK/out" | awk '{printf "%.0f", $3/1024}')
  # shellcheck disable=SC2046
  ffrgb=$(per_frame $n $(ff_png yuv420p ${W}x${H} rgb24))
  # shellcheck disable=SC2046
  ffgray=$(per_frame $n $(ff_png gray ${W}x$((H * 3 / 2)) gray))
  svt=$(per_frame $n "$ENC" @IN@ $W $H)
  printf "%-16s %10s %10s %12s %12s %10s %10s %10s\n" "$n" "$spill" "$kb" "$ffrgb" "$ffgray" "$svt" \
    "$(python3 -c "print(f'{$spill / $svt:.3f}')")" "$(python3 -c "print(f'{$spill / $ffrgb:.3f}')")"
done
rm -rf "$WORK/out"
