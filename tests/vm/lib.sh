# Shared helpers for the VM harness (sourced, not executed).
# shellcheck shell=bash

VM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$VM_DIR/../.." && pwd)"
CACHE="${S6VM_CACHE:-$VM_DIR/.cache}"
mkdir -p "$CACHE"

log() { printf '[vm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The kernel ABI version Debian's linux-image-amd64 meta package points at
# today (e.g. 6.1.0-56-amd64). Pinned with S6VM_KVER.
kernel_version() {
    if [[ -n "${S6VM_KVER:-}" ]]; then
        echo "$S6VM_KVER"
        return
    fi
    local dep
    dep="$(apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | grep -v unsigned | head -n1)"
    [[ -n "$dep" ]] || die "cannot find the kernel linux-image-amd64 depends on (apt-get update?)"
    echo "$dep"
}
