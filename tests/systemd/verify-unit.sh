#!/usr/bin/env bash
# Checks configs/s6-edge.service for real:
#
#  1. `systemd-analyze verify` accepts it with no warning at all (the unit's
#     ExecStart is pointed at a real built s6-edge binary in a temp copy;
#     verify refuses a unit whose binary is missing).
#  2. `systemd-analyze security --offline` rates its exposure at most
#     $S6_MAX_EXPOSURE (default 2.5; lower is safer, 10 = unprotected).
#  3. The directives the recorder relies on are present with the right values.
#  4. configs/s6-edge.env.example is plain KEY=VALUE lines.
#  5. The service's command line (record --config FILE, plus
#     $S6_EDGE_RECORD_ARGS) records from a synthetic camera with
#     NOTIFY_SOCKET/WATCHDOG_USEC set as systemd sets them, stops cleanly on
#     the unit's KillSignal (SIGINT), and the dataset passes `verify`. When the
#     binary speaks sd_notify (it contains "READY=1"), READY=1, WATCHDOG=1 and
#     STOPPING=1 must arrive on the socket.
#
# Usage: tests/systemd/verify-unit.sh
# Env:   S6_EDGE_BIN          binary to use (default target/debug/s6-edge, built if missing)
#        S6_EDGE_PLUGIN_DIR   plugin directory (default: the binary's directory)
#        S6_EDGE_TEST_RUNNER  command prefix to run the binary (qemu for aarch64)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
unit="$repo/configs/s6-edge.service"
envfile="$repo/configs/s6-edge.env.example"
max_exposure="${S6_MAX_EXPOSURE:-2.5}"
read -r -a runner <<<"${S6_EDGE_TEST_RUNNER:-}"

fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "installing systemd (for systemd-analyze)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        -o DPkg::Lock::Timeout=600 systemd >&2
fi

bin="${S6_EDGE_BIN:-$repo/target/debug/s6-edge}"
if [ ! -x "$bin" ]; then
    (cd "$repo" && cargo build -p s6-edge -p s6-codec-svtav1)
fi
[ -x "$bin" ] || fail "no s6-edge binary at $bin"
bin="$(realpath "$bin")"
plugin_dir="${S6_EDGE_PLUGIN_DIR:-$(dirname "$bin")}"

tmp="$(mktemp -d /tmp/s6-systemd-unit.XXXXXX)"
cleanup() {
    if [ -n "${rec_pid:-}" ]; then kill -9 "$rec_pid" 2>/dev/null || true; fi
    if [ -n "${listener_pid:-}" ]; then kill "$listener_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- 1. systemd-analyze verify ------------------------------------------------
sed "s#^ExecStart=/usr/bin/s6-edge #ExecStart=$bin #" "$unit" >"$tmp/s6-edge.service"
grep -q "^ExecStart=$bin record " "$tmp/s6-edge.service" || fail "could not rewrite ExecStart"
if ! out="$(cd "$tmp" && systemd-analyze verify --man=no "$tmp/s6-edge.service" 2>&1)"; then
    fail "systemd-analyze verify: $out"
fi
[ -z "$out" ] || fail "systemd-analyze verify warned: $out"
ok "systemd-analyze verify: no complaint"

# --- 2. exposure ----------------------------------------------------------------
sec="$(systemd-analyze security --offline=true "$tmp/s6-edge.service" 2>&1 | tail -n1)"
exposure="$(sed -n 's/.*exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$sec")"
[ -n "$exposure" ] || fail "no exposure level in: $sec"
awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e <= m) }' ||
    fail "exposure $exposure > $max_exposure"
ok "systemd-analyze security: exposure $exposure (max $max_exposure)"

# --- 3. directives the recorder relies on ---------------------------------------
# shellcheck disable=SC2016 # $S6_EDGE_RECORD_ARGS is literal unit text
for line in \
    'Type=notify' 'NotifyAccess=main' 'WatchdogSec=10' 'Restart=on-failure' 'RestartSec=2' \
    'KillSignal=SIGINT' 'TimeoutStopSec=120' \
    'ExecStart=/usr/bin/s6-edge record --config /etc/s6-edge/record.toml $S6_EDGE_RECORD_ARGS' \
    'EnvironmentFile=-/etc/s6-edge/s6-edge.env' 'User=s6-edge' 'SupplementaryGroups=video' \
    'ProtectSystem=strict' 'ReadWritePaths=/var/lib/s6-edge' 'ProtectHome=yes' 'PrivateTmp=yes' \
    'NoNewPrivileges=yes' 'DevicePolicy=closed' 'DeviceAllow=char-video4linux rw' \
    'DeviceAllow=char-drm rw' 'CapabilityBoundingSet=' 'RestrictRealtime=yes' 'LimitRTPRIO=0'; do
    grep -qxF -- "$line" "$unit" || fail "unit lacks the line '$line'"
done
ok "unit has the required directives"

# --- 4. environment file --------------------------------------------------------
while IFS= read -r l; do
    case "$l" in '' | '#'*) continue ;; esac
    [[ "$l" =~ ^[A-Za-z_][A-Za-z0-9_]*=.*$ ]] || fail "env example: not KEY=VALUE: $l"
done <"$envfile"
ok "env example is KEY=VALUE lines"

# --- 5. the service command line under the notify protocol ----------------------
"${runner[@]}" "$bin" record --help >/dev/null 2>&1 || fail "$bin has no 'record' command"
sock="$tmp/notify.sock"
python3 - "$sock" "$tmp/notify.log" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        msg = s.recv(4096).decode("utf-8", "replace")
        log.write(msg.replace("\n", "\\n") + "\n")
EOF
listener_pid=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "notify listener did not start"

cat >"$tmp/record.toml" <<EOF
output = "$tmp/ds"
vcodec = "svtav1"
width = 320
height = 240
fps = 15
episode_time = 60.0
plugin_dirs = ["$plugin_dir"]

[[camera]]
name = "cam0"
source = "synthetic"
EOF
# As systemd starts it: env from the env file, NOTIFY_SOCKET, WATCHDOG_USEC
# (1 s here, so the 3 s run must pet it) and WATCHDOG_PID (exec keeps the pid).
(
    set -a
    # shellcheck disable=SC1090
    . "$envfile"
    set +a
    export NOTIFY_SOCKET="$sock" WATCHDOG_USEC=1000000
    export WATCHDOG_PID=$BASHPID
    # shellcheck disable=SC2086 # word splitting is how systemd expands $VAR
    exec "${runner[@]}" "$bin" record --config "$tmp/record.toml" $S6_EDGE_RECORD_ARGS
) >"$tmp/record.out" 2>&1 &
rec_pid=$!
sleep 4
kill -0 "$rec_pid" 2>/dev/null || { cat "$tmp/record.out" >&2; fail "record exited early"; }
start=$(date +%s)
kill -INT "$rec_pid"
rc=0
wait "$rec_pid" || rc=$?
rec_pid=
took=$(($(date +%s) - start))
[ "$rc" -eq 0 ] || { cat "$tmp/record.out" >&2; fail "record exited $rc after SIGINT"; }
[ "$took" -le 120 ] || fail "stopping took $took s > TimeoutStopSec=120"
ok "record stopped on SIGINT in ${took} s with exit 0"

"${runner[@]}" "$bin" verify "$tmp/ds" >"$tmp/verify.out" 2>&1 ||
    { cat "$tmp/verify.out" >&2; fail "verify failed on the dataset recorded as a service"; }
ok "verify passed on the dataset"

sleep 0.2
if grep -qa 'READY=1' "$bin"; then
    for m in READY=1 WATCHDOG=1 STOPPING=1; do
        grep -q "$m" "$tmp/notify.log" 2>/dev/null ||
            fail "no $m on NOTIFY_SOCKET (got: $(tr '\n' ' ' <"$tmp/notify.log" 2>/dev/null))"
    done
    ok "sd_notify: READY=1, WATCHDOG=1, STOPPING=1 received"
else
    echo "note: $bin does not call sd_notify yet (no READY=1 in it); Type=notify needs it" >&2
fi
echo "PASS: configs/s6-edge.service"
