#!/usr/bin/env bash
# Builds $CACHE/initramfs-$KVER.cpio.gz: busybox (static), the kernel
# modules the tests need (vivid, vicodec, 9p over virtio and every
# dependency, resolved with modinfo) and /init (tests/vm/init).
# Idempotent: rebuilt only when an input is newer than the archive.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

KVER="${1:-$(kernel_version)}"
OWN="$CACHE/modules-$KVER"
IMG="$CACHE/initramfs-$KVER.cpio.gz"
BUSYBOX=/bin/busybox
[[ -x "$BUSYBOX" ]] && file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' ||
    BUSYBOX=/usr/bin/busybox
[[ -x "$BUSYBOX" ]] || die "busybox missing (apt-get install busybox-static)"
# The modules loaded at boot, in addition to their dependencies.
ROOTS=(virtio_pci 9pnet_virtio 9p vivid vicodec)

newest_input() {
    ls -t "$VM_DIR/init" "$0" "$VM_DIR/lib.sh" "$OWN"/*.ko "$BUSYBOX" | head -n1
}
if [[ -f "$IMG" && "$IMG" -nt "$(newest_input)" ]]; then
    log "initramfs cached: $IMG"
    exit 0
fi

# Path of a module: our own build first, then the installed kernel's.
module_path() {
    local name="$1"
    if [[ -f "$OWN/$name.ko" ]]; then
        echo "$OWN/$name.ko"
    else
        modinfo -k "$KVER" -n "$name" 2>/dev/null || die "module $name not found for $KVER"
    fi
}

# Depth-first walk: dependencies are appended before their users, which
# gives the insmod order.
declare -A SEEN=()
ORDER=()
visit() {
    local name="${1//-/_}" path deps dep
    [[ -n "${SEEN[$name]:-}" ]] && return
    SEEN[$name]=1
    path="$(module_path "$1")"
    [[ "$path" == "(builtin)" ]] && return
    [[ "$path" == *.ko ]] || die "module $1 is $path (compressed modules are not supported)"
    deps="$(modinfo -F depends "$path")"
    for dep in ${deps//,/ }; do
        visit "$dep"
    done
    ORDER+=("$path")
}
for m in "${ROOTS[@]}"; do visit "$m"; done

STAGE="$CACHE/initramfs-stage"
rm -rf "$STAGE"
mkdir -p "$STAGE"/{bin,sbin,proc,sys,dev,tmp,mnt/s6,modules,lib64,etc}
cp "$BUSYBOX" "$STAGE/bin/busybox"
for applet in $("$STAGE/bin/busybox" --list); do
    [[ "$applet" == busybox ]] || ln -sf busybox "$STAGE/bin/$applet"
done
: >"$STAGE/modules/order"
for path in "${ORDER[@]}"; do
    cp "$path" "$STAGE/modules/"
    basename "$path" >>"$STAGE/modules/order"
done
cp "$VM_DIR/init" "$STAGE/init"
chmod +x "$STAGE/init"
echo "root:x:0:0:root:/root:/bin/sh" >"$STAGE/etc/passwd"
(cd "$STAGE" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$IMG.tmp"
mv "$IMG.tmp" "$IMG"
log "initramfs $IMG ($(du -h "$IMG" | cut -f1)), modules: $(tr '\n' ' ' <"$STAGE/modules/order")"
