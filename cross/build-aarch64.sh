#!/usr/bin/env bash
# Docker-free aarch64 cross build and test of the whole workspace.
#
# Links with Debian's aarch64-linux-gnu-gcc against an arm64 bookworm sysroot
# (GStreamer 1.22, SVT-AV1 1.4; made by cross/setup-sysroot.sh) and runs the
# test binaries under qemu-aarch64-static -L <sysroot>.
#
# Usage: cross/build-aarch64.sh [STEP...] [-- EXTRA CARGO ARGS]
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
# "qemu-aarch64-static -L <sysroot>"; unset on native builds).
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
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -L $sysroot"
    export S6_EDGE_TEST_RUNNER="qemu-aarch64-static -L $sysroot"
    # GStreamer under qemu: scan plugins in-process (the scanner helper is an
    # aarch64 executable the kernel cannot exec) from the sysroot, into a
    # registry of its own.
    export GST_REGISTRY_FORK=no
    export GST_PLUGIN_SYSTEM_PATH_1_0="$sysroot/usr/lib/aarch64-linux-gnu/gstreamer-1.0"
    export GST_REGISTRY_1_0="$CARGO_TARGET_DIR/gst-registry-aarch64.bin"
}

run_cargo() {
    log "${cargo[*]} $*"
    nice -n "$nice_level" "${cargo[@]}" "$@"
}

# Finds the built binary and plugin directory of one profile.
bin_dir() { echo "$CARGO_TARGET_DIR/$target/$1"; }

step_setup() { "$here/setup-sysroot.sh"; }

step_build() {
    run_cargo build --workspace --target "$target" ${extra[@]+"${extra[@]}"}
}

step_test() {
    run_cargo test --workspace --target "$target" ${extra[@]+"${extra[@]}"}
}

step_smoke() {
    local dir bin out
    dir="$(bin_dir debug)"
    bin="$dir/s6-edge"
    [ -x "$bin" ] || run_cargo build --workspace --target "$target"
    log "smoke: $(file -b "$bin" | cut -d, -f1-2)"
    $S6_EDGE_TEST_RUNNER "$bin" --version
    $S6_EDGE_TEST_RUNNER "$bin" encoders --plugin-dir "$dir" --width 320 --height 240 || {
        log "smoke: 'encoders' failed"
        return 1
    }
    out="$(mktemp -d /tmp/s6-aarch64-smoke.XXXXXX)"
    trap 'rm -rf "$out"' RETURN
    if ! $S6_EDGE_TEST_RUNNER "$bin" record --help >/dev/null 2>&1; then
        log "smoke: no 'record' command yet; skipping the record/verify round trip"
        return 0
    fi
    $S6_EDGE_TEST_RUNNER "$bin" record -i 'synthetic#name=cam0,width=320,height=240,fps=15' \
        -o "$out/ds" --episodes 1 --episode-time 2 --vcodec svtav1 --plugin-dir "$dir"
    $S6_EDGE_TEST_RUNNER "$bin" verify "$out/ds"
    log "smoke: aarch64 record + verify passed"
}

size_of() { stat -c %s "$1"; }

step_release() {
    local x86_dir="${CARGO_TARGET_DIR}-x86_64-release"
    local report=()
    for feat in default no-default; do
        local fargs=()
        [ "$feat" = no-default ] && fargs=(--no-default-features)
        # aarch64
        run_cargo build --release --target "$target" -p s6-edge ${fargs[@]+"${fargs[@]}"} \
            --target-dir "$CARGO_TARGET_DIR/release-$feat"
        local a="$CARGO_TARGET_DIR/release-$feat/$target/release/s6-edge"
        # x86_64 (its own target dir: the release profile is heavy and must not
        # fight with the team's debug builds over the shared one)
        (
            unset CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER
            run_cargo build --release -p s6-edge ${fargs[@]+"${fargs[@]}"} --target-dir "$x86_dir-$feat"
        )
        local x="$x86_dir-$feat/release/s6-edge"
        report+=("aarch64 $feat $(size_of "$a") $a")
        report+=("x86_64  $feat $(size_of "$x") $x")
    done
    # The codec plugins (cdylibs) ship next to the binary.
    run_cargo build --release --target "$target" -p s6-codec-svtav1 \
        --target-dir "$CARGO_TARGET_DIR/release-default"
    local p="$CARGO_TARGET_DIR/release-default/$target/release/libs6_codec_svtav1.so"
    [ -f "$p" ] && report+=("aarch64 plugin-svtav1 $(size_of "$p") $p")
    printf '%-8s %-14s %10s  %s\n' arch features bytes path
    printf '%s\n' "${report[@]}" | awk '{printf "%-8s %-14s %10s  %s\n", $1, $2, $3, $4}'
}

cross_env
cd "$repo"
for s in "${steps[@]}"; do
    case "$s" in
    env)
        env | grep -E '^(CARGO_TARGET_|CC_aarch64|AR_aarch64|CFLAGS_aarch64|BINDGEN_EXTRA|PKG_CONFIG|QEMU_|S6_EDGE_TEST_RUNNER|GST_REGISTRY|GST_PLUGIN_SYSTEM|RUSTC=)' |
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
