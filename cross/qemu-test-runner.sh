#!/bin/sh
# Cargo's runner for aarch64-unknown-linux-gnu in cross/build-aarch64.sh:
# runs an aarch64 executable under qemu-aarch64-static -L <sysroot>.
#
# For test executables (target/.../deps/NAME-HASH) it appends a libtest
# `--skip FILTER` for every rule of cross/qemu-skips.txt naming NAME, and
# says so on stderr; every other executable runs unchanged.
#
# Env: S6_SYSROOT (default: cross/.sysroot next to this script),
#      S6_QEMU_SKIPS (default: cross/qemu-skips.txt; empty: skip nothing),
#      S6_QEMU_TEST_TIMEOUT (seconds per test executable, default 300),
#      RUST_TEST_THREADS (default 1 for test executables).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
sysroot="${S6_SYSROOT:-$here/.sysroot}"
skips="${S6_QEMU_SKIPS-$here/qemu-skips.txt}"
[ $# -ge 1 ] || { echo "usage: $0 EXECUTABLE [ARGS...]" >&2; exit 2; }
exe="$1"
shift

name="$(basename "$exe")"
stem=""
case "$exe" in
*/deps/*) stem="$(printf '%s\n' "$name" | sed -n 's/^\(.*\)-[0-9a-f]\{16\}$/\1/p')" ;;
esac

if [ -n "$stem" ] && [ -n "$skips" ] && [ -f "$skips" ]; then
    # Rules for this binary, in file order: "FILTER<TAB>REASON".
    rules="$(awk -v b="$stem" '$1 == b && NF >= 2 {
        reason = ""; for (i = 3; i <= NF; i++) reason = reason (i > 3 ? " " : "") $i
        print $2 "\t" reason }' "$skips")"
    if [ -n "$rules" ]; then
        tab="$(printf '\t')"
        # Read from a here-document, not a pipe: `set --` must change this shell.
        while IFS="$tab" read -r filter reason; do
            [ "$filter" = "*" ] && filter=""
            echo "[qemu-runner] $stem: not run under qemu: ${filter:-every test} ($reason)" >&2
            set -- "$@" --skip "$filter"
        done <<RULES
$rules
RULES
    fi
fi

# A test executable gets a wall-clock limit, so that a hang under emulation
# (seen: SVT-AV1's teardown, all threads in futex wait) fails the run instead
# of stalling CI until its own limit. Other executables run unbounded.
#
# Tests run one at a time (RUST_TEST_THREADS=1 unless set): emulated SVT-AV1
# recordings side by side starve each other and show up as capture gaps.
# A failing executable is run once more: recordings under TCG sometimes miss
# a real-time bound (verify's fps x duration check, a probe deadline) when
# the host is busy. A hang (the time limit; the slowest executable takes
# about 90 s here) is retried once too, and said loudly: it has only ever
# been seen under qemu-user (SVT-AV1 teardown with every thread in futex
# wait, about 1 run in 5 of the whole suite), never natively. A failure or
# hang that repeats fails the run. Both attempts' output stays in the log.
if [ -n "$stem" ]; then
    limit="${S6_QEMU_TEST_TIMEOUT:-300}"
    export RUST_TEST_THREADS="${RUST_TEST_THREADS:-1}"
    rc=0
    timeout --kill-after=10 "$limit" qemu-aarch64-static -L "$sysroot" "$exe" "$@" || rc=$?
    case "$rc" in
    0) exit 0 ;;
    124 | 137) echo "[qemu-runner] $stem: HUNG (killed after ${limit} s); running it once more" >&2 ;;
    *) echo "[qemu-runner] $stem: failed (exit $rc); running it once more (emulator timing)" >&2 ;;
    esac
    exec timeout --kill-after=10 "$limit" qemu-aarch64-static -L "$sysroot" "$exe" "$@"
fi
exec qemu-aarch64-static -L "$sysroot" "$exe" "$@"
