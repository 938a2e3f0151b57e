#!/usr/bin/env bash
# Docker-free aarch64 cross build and test of the whole workspace.
#
# Links with Debian's aarch64-linux-gnu-gcc against an arm64 bookworm sysroot
# (GStreamer 1.22, SVT-AV1 1.4; made by cross/setup-sysroot.sh) and runs the
# test binaries under qemu-aarch64-static -L <sysroot>.
#
# Usage: cross/build-aarch64.sh [STEP...] [-- EXTRA CARGO TEST ARGS]
# Steps (default: setup build test smoke):
#   setup    run cross/setup-sysroot.sh (idempotent, quick when done)
#   build    cargo build --workspace --target aarch64-unknown-linux-gnu
#   test     cargo test  --workspace --target aarch64-unknown-linux-gnu (under qemu)
#   smoke    the aarch64 binary records a synthetic episode; `verify` must pass
#   release  --release builds for aarch64 and x86_64, with and without default
#            features, then prints the stripped binary sizes
#   env      print the environment as `export` lines (eval "$(... env)")
#
# Env: S6_SYSROOT (default cross/.sysroot), CARGO_TARGET_DIR (default
# target/aarch64-cross, kept apart from the native target dir so a cross
# build never invalidates or blocks it), NICE (default 19).
#
# Child processes: the tests (and the plugin host's probe children) start
# aarch64 executables. Without binfmt_misc the kernel cannot exec them, and
# qemu-user does not follow execve into foreign binaries, so the tests must
# prefix such spawns with $S6_EDGE_TEST_RUNNER (exported here as
# "qemu-aarch64-static -L <sysroot>"; unset on native builds). The plugin
# host's own probe children go through S6_EDGE_PROBE_EXE, a generated native
# wrapper script that re-enters qemu (a script with a native interpreter is
# exec'able from inside qemu; a foreign ELF is not).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
target=aarch64-unknown-linux-gnu
sysroot="${S6_SYSROOT:-$here/.sysroot}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target/aarch64-cross}"
nice_level="${NICE:-19}"

log() { printf '[build-aarch64] %s\n' "$*" >&2; }

steps=()
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
    --) shift; extra=("$@"); break ;;
    *) steps+=("$1"); shift ;;
    esac
done
[ "${#steps[@]}" -gt 0 ] || steps=(setup build test smoke)

# Cargo: Debian's rustc-web fallback when rustup has no aarch64 std.
cargo=(cargo)
if ! command -v rustup >/dev/null 2>&1 || ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    if [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/$target ]; then
        log "using Debian's rustc with libstd-rust-web-dev:arm64"
        export RUSTC=/usr/bin/rustc
        cargo=(/usr/bin/cargo)
    fi
fi

cross_env() {
    local libdirs="$sysroot/lib/aarch64-linux-gnu:$sysroot/usr/lib/aarch64-linux-gnu"
    # Linker: Debian's cross gcc, told to take libraries from the sysroot.
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=--sysroot=$sysroot -C link-arg=-Wl,-rpath-link=$libdirs"
    # C code built by build scripts (cc crate) and bindgen (v4l2-sys-mit).
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
    export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
    export CFLAGS_aarch64_unknown_linux_gnu="--sysroot=$sysroot"
    export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--sysroot=$sysroot"
    # pkg-config, scoped to the target so host build scripts keep the host's.
    export PKG_CONFIG_ALLOW_CROSS=1
    export PKG_CONFIG_SYSROOT_DIR_aarch64_unknown_linux_gnu="$sysroot"
    export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu="$sysroot/usr/lib/aarch64-linux-gnu/pkgconfig:$sysroot/usr/share/pkgconfig"
    export PKG_CONFIG_PATH_aarch64_unknown_linux_gnu=""
    # Running: qemu-user with the sysroot's own glibc (not -L /usr/aarch64-linux-gnu:
    # mixing glibc builds hangs on the first thread). QEMU_LD_PREFIX makes
    # nested `qemu-aarch64-static` spawns find it too.
    export QEMU_CPU="${QEMU_CPU:-cortex-a72}"
    export QEMU_LD_PREFIX="$sysroot"
    # Cargo's runner: qemu with the sysroot, plus the few libtest --skip
    # filters of cross/qemu-skips.txt (each with its reason).
    export S6_SYSROOT="$sysroot"
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$here/qemu-test-runner.sh"
    export S6_EDGE_TEST_RUNNER="qemu-aarch64-static -L $sysroot"
    # Time limits in the tests (probe deadlines, ...) are multiplied by this:
    # under TCG every process starts and computes several times slower.
    export S6_EDGE_TEST_TIME_SCALE="${S6_EDGE_TEST_TIME_SCALE:-8}"
    # The plugin host re-executes its own binary (current_exe) for each probe;
    # from inside qemu that exec fails, but a native shell script that
    # re-enters qemu works. S6_EDGE_PROBE_EXE points the host at one.
    local wrapper="$CARGO_TARGET_DIR/s6-edge-qemu"
    mkdir -p "$CARGO_TARGET_DIR"
    # shellcheck disable=SC2016 # "$@" and ${S6_EDGE_QEMU_BIN} belong to the wrapper
    printf '#!/bin/sh\n# Generated by cross/build-aarch64.sh: run the aarch64 s6-edge under qemu.\nexec qemu-aarch64-static -L "%s" "${S6_EDGE_QEMU_BIN:-%s}" "$@"\n' \
        "$sysroot" "$CARGO_TARGET_DIR/$target/debug/s6-edge" >"$wrapper"
    chmod +x "$wrapper"
    export S6_EDGE_PROBE_EXE="$wrapper"
    # GStreamer under qemu: scan plugins in-process (the scanner helper is an
    # aarch64 executable the kernel cannot exec). qemu's -L prefix redirects
    # the default plugin directory (/usr/lib/aarch64-linux-gnu/gstreamer-1.0)
    # into the sysroot, and the registry cache is per architecture, so the
    # native gst-launch-1.0 peers the tests start keep working unchanged.
    export GST_REGISTRY_FORK=no
}

run_cargo() {
    log "${cargo[*]} $*"
    nice -n "$nice_level" "${cargo[@]}" "$@"
}

# Finds the built binary and plugin directory of one profile.
bin_dir() { echo "$CARGO_TARGET_DIR/$target/$1"; }

step_setup() { "$here/setup-sysroot.sh"; }

step_build() {
    run_cargo build --workspace --target "$target"
}

# Extra arguments (after `--`) go to `cargo test`, e.g.
# `-- -p s6-edge --test record`. Tests that cannot run under emulation are
# listed, with the reason, in cross/qemu-skips.txt (S6_QEMU_SKIPS= runs all).
step_test() {
    run_cargo test --workspace --target "$target" --no-fail-fast ${extra[@]+"${extra[@]}"}
}

step_smoke() {
    local dir bin out mp4 frames
    dir="$(bin_dir debug)"
    bin="$dir/s6-edge"
    [ -x "$bin" ] || run_cargo build --workspace --target "$target"
    log "smoke: $(file -b "$bin" | cut -d, -f1-2)"
    file -b "$bin" | grep -q 'ARM aarch64' || {
        log "smoke: $bin is not an aarch64 executable"
        return 1
    }
    $S6_EDGE_TEST_RUNNER "$bin" --version
    # Every plugin probed in a child process (through S6_EDGE_PROBE_EXE).
    # Probe deadlines: each probe child starts a fresh qemu, which can take
    # seconds on a loaded machine (the default is 3 s).
    local probe=(--probe-timeout-ms 20000)
    $S6_EDGE_TEST_RUNNER "$bin" encoders --plugin-dir "$dir" "${probe[@]}" --width 320 --height 240 || {
        log "smoke: 'encoders' failed"
        return 1
    }
    out="$(mktemp -d /tmp/s6-aarch64-smoke.XXXXXX)"
    # shellcheck disable=SC2064 # expand $out now
    trap "rm -rf '$out'; trap - RETURN" RETURN
    # One 2 s synthetic episode encoded by the aarch64 SVT-AV1 plugin.
    $S6_EDGE_TEST_RUNNER "$bin" record -i 'synthetic#name=cam0,width=320,height=240,fps=15' \
        -o "$out/ds" --episodes 1 --episode-time 2 --vcodec svtav1 --plugin-dir "$dir" "${probe[@]}"
    # The aarch64 verify decodes every frame (dav1d from the sysroot) ...
    $S6_EDGE_TEST_RUNNER "$bin" verify "$out/ds"
    # ... and the host's ffprobe decodes the same file.
    mp4="$(find "$out/ds" -name cam0.mp4 | head -n1)"
    [ -n "$mp4" ] || {
        log "smoke: no cam0.mp4 under $out/ds"
        return 1
    }
    frames="$(ffprobe -v error -count_frames -select_streams v:0 \
        -show_entries stream=nb_read_frames -of csv=p=0 "$mp4" | tr -d ',[:space:]')"
    if ! [ "${frames:-0}" -ge 25 ] 2>/dev/null; then
        log "smoke: ffprobe decoded '${frames}' frames of $mp4, expected about 30"
        return 1
    fi
    log "smoke: aarch64 record + verify passed; ffprobe decodes $frames frames"
}

size_of() { stat -c %s "$1"; }

# Release builds, lean (no default features: no GStreamer, no dav1d) and
# full, for aarch64 and x86_64; the stripped binaries are copied to
# $CARGO_TARGET_DIR/dist/ and their sizes printed. Each architecture keeps
# one release target dir, so the second feature set rebuilds only s6-edge.
step_release() {
    local dist="$CARGO_TARGET_DIR/dist" x86_dir="$CARGO_TARGET_DIR-x86_64"
    mkdir -p "$dist"
    local report=() feat fargs out
    for feat in default no-default; do
        fargs=()
        [ "$feat" = no-default ] && fargs=(--no-default-features)
        run_cargo build --release --target "$target" -p s6-edge ${fargs[@]+"${fargs[@]}"}
        out="$dist/s6-edge-aarch64-$feat"
        cp "$CARGO_TARGET_DIR/$target/release/s6-edge" "$out"
        report+=("aarch64 $feat $(size_of "$out") $out")
        # x86_64 in a target dir of its own: the fat-LTO release profile must
        # neither wait for nor block the team's builds in the shared one.
        run_cargo build --release -p s6-edge ${fargs[@]+"${fargs[@]}"} --target-dir "$x86_dir"
        out="$dist/s6-edge-x86_64-$feat"
        cp "$x86_dir/release/s6-edge" "$out"
        report+=("x86_64 $feat $(size_of "$out") $out")
    done
    # The software AV1 plugin ships next to the binary.
    run_cargo build --release --target "$target" -p s6-codec-svtav1
    out="$dist/libs6_codec_svtav1-aarch64.so"
    cp "$CARGO_TARGET_DIR/$target/release/libs6_codec_svtav1.so" "$out"
    report+=("aarch64 svtav1-plugin $(size_of "$out") $out")
    printf '%-8s %-14s %10s  %s\n' arch features bytes path
    printf '%s\n' "${report[@]}" | awk '{printf "%-8s %-14s %10s  %s\n", $1, $2, $3, $4}'
    file "$dist"/* | sed 's/, BuildID[^,]*//'
}

cross_env
cd "$repo"
for s in "${steps[@]}"; do
    case "$s" in
    env)
        env | grep -E '^(CARGO_TARGET_|CC_aarch64|AR_aarch64|CFLAGS_aarch64|BINDGEN_EXTRA|PKG_CONFIG|QEMU_|S6_EDGE_TEST_|S6_EDGE_PROBE_EXE|S6_SYSROOT|GST_REGISTRY|RUSTC=)' |
            sed -e "s/'/'\\\\''/g" -e "s/=\(.*\)/='\1'/" -e 's/^/export /'
        ;;
    setup | build | test | smoke | release)
        start=$(date +%s)
        "step_$s"
        log "step $s took $(($(date +%s) - start)) s"
        ;;
    *)
        log "unknown step '$s' (setup build test smoke release env)"
        exit 2
        ;;
    esac
done
