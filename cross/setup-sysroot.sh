#!/usr/bin/env bash
# Prepare everything the Docker-free aarch64 cross build needs on a Debian 12
# (bookworm) amd64 host:
#
#   * Debian's aarch64 cross compiler (gcc-aarch64-linux-gnu),
#   * qemu-user-static (runs the aarch64 test binaries; no binfmt_misc needed),
#   * mmdebstrap, and with it an arm64 bookworm sysroot holding the -dev
#     packages the workspace links against (glibc, GStreamer 1.22, SVT-AV1 1.4)
#     plus the runtime plugins the tests use under qemu,
#   * the aarch64 Rust std (rustup target add).
#
# Idempotent: packages already installed are not reinstalled, and the sysroot
# is rebuilt only when the package list below changes (a stamp file records
# it). The sysroot goes to $S6_SYSROOT (default: cross/.sysroot, gitignored).
#
# Usage: cross/setup-sysroot.sh        (as root, or with sudo available)
# Env:   S6_SYSROOT        where to put the sysroot
#        S6_DEBIAN_MIRROR  Debian mirror (default: the first deb.debian.org-style
#                          URI from this host's apt sources, else deb.debian.org)
#        S6_SKIP_APT=1     do not touch host packages (CI images that have them)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sysroot="${S6_SYSROOT:-$here/.sysroot}"
suite=bookworm

# Packages extracted into the sysroot (their dependencies come along).
# -dev packages: what build scripts find with pkg-config and what the linker
# needs. Runtime packages: what the binary and the test suite load under qemu.
sysroot_pkgs=(
    libc6-dev
    libgcc-12-dev
    linux-libc-dev
    libgstreamer1.0-dev
    libgstreamer-plugins-base1.0-dev
    libsvtav1enc-dev
    libsvtav1enc1
    libdav1d-dev
    libva-dev
    gstreamer1.0-plugins-base
    gstreamer1.0-plugins-good
    gstreamer1.0-libav
)

host_pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static mmdebstrap pkg-config clang libclang-dev file ffmpeg)

log() { printf '[setup-sysroot] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- host packages -----------------------------------------------------------
if [ "${S6_SKIP_APT:-0}" != 1 ]; then
    missing=()
    for p in "${host_pkgs[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing host packages: ${missing[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -o DPkg::Lock::Timeout=600
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            -o DPkg::Lock::Timeout=600 "${missing[@]}"
    else
        log "host packages present"
    fi
fi

# --- Rust std for aarch64 ------------------------------------------------------
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
        log "rustup target add aarch64-unknown-linux-gnu"
        if ! rustup target add aarch64-unknown-linux-gnu; then
            log "rustup could not download the aarch64 std; falling back to Debian's"
            log "rustc-web + libstd-rust-web-dev:arm64 (build with RUSTC=/usr/bin/rustc /usr/bin/cargo)"
            as_root dpkg --add-architecture arm64
            as_root apt-get update -o DPkg::Lock::Timeout=600
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
                -o DPkg::Lock::Timeout=600 rustc-web cargo-web libstd-rust-web-dev:arm64
        fi
    fi
else
    log "no rustup: expecting Debian's rustc-web with libstd-rust-web-dev:arm64"
fi

# --- sysroot -------------------------------------------------------------------
mirror="${S6_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
    # Reuse the mirror this host already reaches (deb822 "URIs:" or one-line "deb").
    mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
        sed -n -e 's/^URIs:[[:space:]]*\(http[^ ]*\/debian\)\/*[[:space:]]*$/\1/p' \
            -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\(http[^ ]*\/debian\)\/*[[:space:]].*/\2/p' |
        head -n1 || true)"
    mirror="${mirror:-http://deb.debian.org/debian}"
fi
security="${mirror%/debian}/debian-security"

# Bump the leading version when the post-processing below changes.
want_stamp="v2 $suite ${sysroot_pkgs[*]}"
stamp="$sysroot/.s6-sysroot-stamp"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
    log "sysroot up to date: $sysroot"
    exit 0
fi

log "building arm64 $suite sysroot in $sysroot from $mirror"
tmp="$sysroot.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
include="$(IFS=,; echo "${sysroot_pkgs[*]}")"
# Same suites as the host (point releases + security), so the sysroot's
# libraries match what an up-to-date bookworm robot runs.
as_root mmdebstrap --variant=extract --architectures=arm64 --include="$include" \
    --skip=check/qemu \
    "$suite" "$tmp" \
    "deb $mirror $suite main" \
    "deb $mirror $suite-updates main" \
    "deb $security $suite-security main"

# Make every absolute symlink relative, so that links such as
# usr/lib/aarch64-linux-gnu/libfoo.so -> /lib/aarch64-linux-gnu/libfoo.so.1
# resolve inside the sysroot for the cross linker instead of on the host.
log "rewriting absolute symlinks to relative ones"
fixed=0
while IFS= read -r -d '' link; do
    target="$(readlink "$link")"
    case "$target" in
    /*)
        rel="$(realpath -m --relative-to="$(dirname "$link")" "$tmp$target")"
        as_root ln -sfn "$rel" "$link"
        fixed=$((fixed + 1))
        ;;
    esac
done < <(find "$tmp" -type l -print0)
log "rewrote $fixed symlinks"

# --variant=extract runs no maintainer scripts, so update-alternatives never
# created the generic links of alternative-managed libraries (libblas.so.3 and
# liblapack.so.3, needed by ffmpeg's libavfilter and hence gstreamer1.0-libav).
# Point them at the reference implementation that was extracted.
libdir="$tmp/usr/lib/aarch64-linux-gnu"
for impl in "$libdir"/blas/lib*.so.* "$libdir"/lapack/lib*.so.*; do
    [ -e "$impl" ] || continue
    link="$libdir/$(basename "$impl")"
    if [ ! -e "$link" ]; then
        as_root ln -s "$(basename "$(dirname "$impl")")/$(basename "$impl")" "$link"
        log "alternative: $(basename "$link") -> ${impl#"$libdir"/}"
    fi
done

# Sanity: the pieces the build needs are there.
for f in usr/lib/aarch64-linux-gnu/pkgconfig/gstreamer-1.0.pc \
    usr/lib/aarch64-linux-gnu/pkgconfig/SvtAv1Enc.pc \
    usr/include/linux/videodev2.h \
    usr/include/aarch64-linux-gnu/bits/types.h; do
    if [ ! -e "$tmp/$f" ]; then
        log "sysroot is missing $f"
        exit 1
    fi
done

as_root rm -rf "$sysroot"
as_root mv "$tmp" "$sysroot"
trap - EXIT
echo "$want_stamp" | as_root tee "$stamp" >/dev/null
log "sysroot ready: $sysroot ($(du -sh "$sysroot" | cut -f1))"
