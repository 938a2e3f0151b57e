#!/usr/bin/env bash
# Entry point of the V4L2 VM tests (called by .ci/run).
#
#   tests/vm/run.sh            install what is missing, build, boot, judge
#
# Boots Debian's amd64 kernel under QEMU (TCG) with the kernel's virtual
# V4L2 drivers: vivid (a capture device) and vicodec (a stateful FWHT
# encoder/decoder, built out-of-tree together with v4l2-mem2mem). A 9p share
# carries the test binaries in and the results out. Pass/fail comes only from
# the "S6VM RESULT:" line the guest writes, never from QEMU's exit status.
#
# Environment:
#   S6VM_TIMEOUT   seconds QEMU may run (default 420: the guest needs ~130 s
#                  on an idle 2-core host, ~270 s when the host is overloaded)
#   S6VM_NO_APT=1  do not apt-get install (fail if something is missing)
#   S6VM_NO_BUILD=1  do not run cargo; use what is already in the target dir
#   S6VM_PROFILE   cargo profile dir to use: debug (default) or release
#   S6VM_CACHE     cache directory (default tests/vm/.cache)
#   S6VM_KVER      kernel ABI version (default: what linux-image-amd64 depends on)
# Exit: 0 all guest checks passed (skips allowed), 1 otherwise.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
T0=$(date +%s)

# --- packages -----------------------------------------------------------------
install_packages() {
    local kver="$1" missing=() p
    local want=(qemu-system-x86 "linux-image-$kver" "linux-headers-$kver" linux-source-6.1
        busybox-static build-essential bc flex bison libelf-dev libssl-dev kmod cpio xz-utils
        v4l-utils file)
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return
    [[ "${S6VM_NO_APT:-}" == 1 ]] && die "missing packages: ${missing[*]}"
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    nice -n 10 apt-get install -y -q -o DPkg::Lock::Timeout=900 --no-install-recommends "${missing[@]}" >"$CACHE/apt.log" 2>&1 ||
        {
            apt-get update -q -o DPkg::Lock::Timeout=900 >>"$CACHE/apt.log" 2>&1
            nice -n 10 apt-get install -y -q -o DPkg::Lock::Timeout=900 --no-install-recommends "${missing[@]}" >>"$CACHE/apt.log" 2>&1
        } || { tail -n 30 "$CACHE/apt.log" >&2; die "apt-get install failed"; }
}

if ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
    [[ "${S6VM_NO_APT:-}" == 1 ]] || apt-get update -q -o DPkg::Lock::Timeout=900 >/dev/null
fi
KVER="$(kernel_version)"
install_packages "$KVER"
T_APT=$(date +%s)

# --- kernel modules + initramfs ---------------------------------------------
"$VM_DIR/build-modules.sh" "$KVER"
"$VM_DIR/build-initramfs.sh" "$KVER"
T_IMG=$(date +%s)

# --- test binaries -------------------------------------------------------------
PROFILE="${S6VM_PROFILE:-debug}"
TARGET="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
if [[ "${S6VM_NO_BUILD:-}" != 1 ]]; then
    cargo_flags=()
    [[ "$PROFILE" == release ]] && cargo_flags+=(--release)
    log "cargo build ($PROFILE): s6-edge, plugins, v4l2m2m-roundtrip"
    (cd "$REPO_ROOT" &&
        nice -n 10 cargo build -q "${cargo_flags[@]}" -p s6-edge -p s6-codec-svtav1 -p s6-codec-v4l2m2m &&
        nice -n 10 cargo build -q "${cargo_flags[@]}" -p s6-codec-v4l2m2m --example v4l2m2m-roundtrip) ||
        die "cargo build failed"
fi
T_CARGO=$(date +%s)

# --- the share -------------------------------------------------------------------
SHARE="$CACHE/share"
rm -rf "$SHARE"
mkdir -p "$SHARE"/{bin,plugins,lib,out}
cp "$VM_DIR/guest-test.sh" "$SHARE/"
copy_if() { [[ -f "$1" ]] && cp "$1" "$2" || log "not in the share (not built): $1"; }
copy_if "$TARGET/$PROFILE/s6-edge" "$SHARE/bin/"
copy_if "$TARGET/$PROFILE/examples/v4l2m2m-roundtrip" "$SHARE/bin/"
for p in svtav1 v4l2m2m vaapi nvenc; do
    [[ -f "$TARGET/$PROFILE/libs6_codec_$p.so" ]] && cp "$TARGET/$PROFILE/libs6_codec_$p.so" "$SHARE/plugins/"
done
command -v v4l2-ctl >/dev/null && cp "$(command -v v4l2-ctl)" "$SHARE/bin/"
# glibc, the loader and every shared library the binaries and plugins need
# (the initramfs links /lib64/ld-linux-x86-64.so.2 to lib/ in the share).
for elf in "$SHARE"/bin/* "$SHARE"/plugins/*; do
    [[ -f "$elf" ]] || continue
    ldd "$elf" 2>/dev/null | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}'
done | sort -u | while read -r lib; do
    cp -L "$lib" "$SHARE/lib/"
done
[[ -f "$SHARE/lib/ld-linux-x86-64.so.2" ]] || cp -L /lib64/ld-linux-x86-64.so.2 "$SHARE/lib/"
log "share: $(ls "$SHARE/bin" | tr '\n' ' ')| plugins: $(ls "$SHARE/plugins" | tr '\n' ' ')| $(ls "$SHARE/lib" | wc -l) libs, $(du -sh "$SHARE" | cut -f1)"
T_SHARE=$(date +%s)

# --- boot ------------------------------------------------------------------------
LOGDIR="$CACHE/logs"
mkdir -p "$LOGDIR"
CONSOLE="$LOGDIR/console.log"
TIMEOUT="${S6VM_TIMEOUT:-420}"
log "booting $KVER under QEMU TCG (timeout ${TIMEOUT}s), console: $CONSOLE"
set +e
nice -n 10 timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -m 1024 -smp 2 \
    -nographic -no-reboot -monitor none -serial "file:$CONSOLE" \
    -kernel "/boot/vmlinuz-$KVER" -initrd "$CACHE/initramfs-$KVER.cpio.gz" \
    -append "console=ttyS0 panic=-1 loglevel=4 rdinit=/init" \
    -virtfs "local,path=$SHARE,mount_tag=s6,security_model=none,id=s6" \
    </dev/null >"$LOGDIR/qemu.out" 2>&1
QEMU_RC=$?
set -e
T_BOOT=$(date +%s)
[[ $QEMU_RC -eq 124 || $QEMU_RC -eq 137 ]] && log "QEMU ran past ${TIMEOUT}s and was killed"
cp "$CONSOLE" "$SHARE/out/console.log" 2>/dev/null || true
grep -E '^S6VM' "$CONSOLE" | sed 's/\r$//' >&2 || true

log "timings: packages $((T_APT - T0))s, modules+initramfs $((T_IMG - T_APT))s, cargo $((T_CARGO - T_IMG))s, share $((T_SHARE - T_CARGO))s, VM $((T_BOOT - T_SHARE))s, total $((T_BOOT - T0))s"

# --- verdict (from the guest's own result file) ------------------------------
RESULT="$(cat "$SHARE/out/result.txt" 2>/dev/null || true)"
if [[ "$RESULT" =~ ^S6VM\ RESULT:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    if [[ ${BASH_REMATCH[1]} -gt 0 && ${BASH_REMATCH[2]} -eq 0 ]]; then
        log "PASS: $RESULT"
        exit 0
    fi
    log "FAIL: $RESULT (console: $CONSOLE)"
    exit 1
fi
tail -n 40 "$CONSOLE" >&2 || true
log "FAIL: the guest wrote no result (qemu exit $QEMU_RC; console: $CONSOLE)"
exit 1
