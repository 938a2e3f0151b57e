#!/usr/bin/env bash
# Builds v4l2-mem2mem.ko and vicodec.ko out-of-tree from linux-source-6.1
# against linux-headers-$KVER. Result: $CACHE/modules-$KVER/{v4l2-mem2mem,vicodec}.ko
# Idempotent: skipped when both modules exist and are newer than the
# source tarball.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

KVER="${1:-$(kernel_version)}"
OUT="$CACHE/modules-$KVER"
TARBALL=/usr/src/linux-source-6.1.tar.xz
[[ -f "$TARBALL" ]] || die "$TARBALL missing (apt-get install linux-source-6.1)"
[[ -d "/lib/modules/$KVER/build" ]] || die "/lib/modules/$KVER/build missing (apt-get install linux-headers-$KVER)"

if [[ -f "$OUT/vicodec.ko" && -f "$OUT/v4l2-mem2mem.ko" && "$OUT/vicodec.ko" -nt "$TARBALL" ]]; then
    log "modules cached in $OUT"
    exit 0
fi

SRC="$CACHE/linux-src"
if [[ ! -f "$SRC/.extracted" || "$TARBALL" -nt "$SRC/.extracted" ]]; then
    log "extracting the media sources from $TARBALL"
    rm -rf "$SRC"
    mkdir -p "$SRC"
    # --occurrence=1: stop reading once both members were found (10 s
    # instead of 40 s: they sit early in the 140 MB tarball).
    nice -n 10 tar -xJf "$TARBALL" -C "$SRC" --strip-components=1 --occurrence=1 \
        linux-source-6.1/drivers/media/v4l2-core/v4l2-mem2mem.c \
        linux-source-6.1/drivers/media/test-drivers/vicodec
    touch "$SRC/.extracted"
fi

BUILD="$CACHE/kmod-build-$KVER"
rm -rf "$BUILD"
mkdir -p "$BUILD"
cp "$VM_DIR/kmod/Kbuild" "$BUILD/Kbuild"
cp "$SRC/drivers/media/v4l2-core/v4l2-mem2mem.c" "$BUILD/"
cp "$SRC"/drivers/media/test-drivers/vicodec/*.[ch] "$BUILD/"
log "building v4l2-mem2mem.ko + vicodec.ko for $KVER"
nice -n 10 make -s -C "/lib/modules/$KVER/build" M="$BUILD" -j2 modules >"$BUILD/build.log" 2>&1 ||
    { cat "$BUILD/build.log" >&2; die "module build failed"; }
mkdir -p "$OUT"
cp "$BUILD/v4l2-mem2mem.ko" "$BUILD/vicodec.ko" "$OUT/"
log "built: $(cd "$OUT" && ls)"
