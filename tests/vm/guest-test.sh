#!/bin/sh
# Runs INSIDE the test VM (busybox sh), called by /init as
#   sh /mnt/s6/guest-test.sh /mnt/s6
# Every check prints "S6VM PASS|FAIL|SKIP: <name> ..." and the last line is
# "S6VM RESULT: N passed, M failed, K skipped", also written to
# $SHARE/out/result.txt. The host judges only from those lines.
SHARE="${1:-/mnt/s6}"
BIN="$SHARE/bin"
OUT="$SHARE/out"
mkdir -p "$OUT"
PASSED=0
FAILED=0
SKIPPED=0
pass() { PASSED=$((PASSED + 1)); echo "S6VM PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "S6VM FAIL: $*"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "S6VM SKIP: $*"; }
has() { [ -x "$BIN/$1" ]; }

# /dev node of the first V4L2 device whose sysfs name matches $1.
dev_by_name() {
    for n in /sys/class/video4linux/video*; do
        [ -f "$n/name" ] || continue
        case "$(cat "$n/name")" in
            $1) echo "/dev/$(basename "$n")"; return 0 ;;
        esac
    done
    return 1
}

echo "S6VM: video devices:"
for n in /sys/class/video4linux/video*; do
    [ -f "$n/name" ] && echo "  /dev/$(basename "$n"): $(cat "$n/name")"
done
if has v4l2-ctl; then
    "$BIN/v4l2-ctl" --list-devices 2>&1
fi

# --- 1. vivid exposes a capture device that streams ------------------------
# vivid's default webcam input offers discrete sizes only (320x180, 640x360, ...).
VIVID="$(dev_by_name 'vivid-*-vid-cap')"
if [ -z "$VIVID" ] || [ ! -c "$VIVID" ]; then
    fail "vivid-capture-device (no vivid vid-cap node)"
elif has v4l2-ctl; then
    if "$BIN/v4l2-ctl" -d "$VIVID" --set-fmt-video=width=320,height=180,pixelformat=YUYV \
        --stream-mmap --stream-count=10 --stream-to=/tmp/vivid.raw >/tmp/vivid.log 2>&1 &&
        [ "$(wc -c </tmp/vivid.raw)" -eq $((320 * 180 * 2 * 10)) ]; then
        pass "vivid-capture-device $VIVID streamed 10 YUYV 320x180 frames"
    else
        cat /tmp/vivid.log
        fail "vivid-capture-device $VIVID did not stream 10 frames ($(wc -c </tmp/vivid.raw 2>/dev/null) bytes)"
    fi
else
    pass "vivid-capture-device $VIVID present (v4l2-ctl not in the share, stream not tried)"
fi

# --- 2. vicodec exposes its encoder and decoders ---------------------------
ENC="$(dev_by_name stateful-encoder)"
DEC="$(dev_by_name stateful-decoder)"
if [ -c "$ENC" ] && [ -c "$DEC" ]; then
    pass "vicodec-devices encoder $ENC decoder $DEC"
    has v4l2-ctl && "$BIN/v4l2-ctl" -d "$ENC" --list-formats-out --list-formats 2>&1
else
    fail "vicodec-devices (encoder '$ENC' decoder '$DEC')"
fi

# --- 3. v4l2m2m plugin: encode through vicodec, decode back, PSNR ----------
# The example prints "S6VM PASS/FAIL: ..." itself; it runs once with
# vicodec's single-planar API and once with multiplanar=1.
if has v4l2m2m-roundtrip; then
    for mode in single multi; do
        if [ "$mode" = multi ]; then
            rmmod vicodec && insmod /modules/vicodec.ko multiplanar=1 ||
                { fail "v4l2m2m-roundtrip-$mode (vicodec reload failed)"; continue; }
            sleep 1
        fi
        if "$BIN/v4l2m2m-roundtrip" --frames 30 --width 320 --height 240 >"/tmp/rt-$mode.log" 2>&1; then
            pass "v4l2m2m-roundtrip-$mode: $(grep PSNR "/tmp/rt-$mode.log" | tail -n1 | sed "s/^S6VM PASS: //")"
        else
            cat "/tmp/rt-$mode.log"
            fail "v4l2m2m-roundtrip-$mode"
        fi
    done
    cp /tmp/rt-*.log "$OUT/" 2>/dev/null
else
    skip "v4l2m2m-roundtrip (bin/v4l2m2m-roundtrip not in the share)"
fi

# --- 4. s6-edge encoders lists v4l2m2m as available -------------------------
# TODO(core): relies on `s6-edge encoders --json` (plugin host). Reported as
# SKIP while the command says it is not built yet.
if has s6-edge; then
    "$BIN/s6-edge" encoders --plugin-dir "$SHARE/plugins" --probe-timeout-ms 60000 --width 320 --height 240 --json \
        >"$OUT/encoders.json" 2>"$OUT/encoders.err"
    rc=$?
    cat "$OUT/encoders.json" "$OUT/encoders.err"
    if grep -q "not built yet" "$OUT/encoders.err"; then
        skip "s6-edge-encoders (core: $(head -n1 "$OUT/encoders.err"))"
    elif [ $rc -eq 0 ] && tr -d ' \n' <"$OUT/encoders.json" | grep -q '"name":"v4l2m2m"[^}]*"available":true'; then
        pass "s6-edge-encoders lists v4l2m2m available"
    else
        fail "s6-edge-encoders (rc $rc; v4l2m2m not listed as available)"
    fi
else
    skip "s6-edge-encoders (bin/s6-edge not in the share)"
fi

# --- 5. record from vivid with svtav1, then verify --------------------------
# TODO(core): relies on `record -i v4l2:` and `verify --json`. The dataset is
# written to the share so the host can inspect it too (ffprobe).
if has s6-edge && [ -n "$VIVID" ]; then
    rm -rf "$OUT/ds"
    "$BIN/s6-edge" record -i "v4l2:$VIVID" --width 320 --height 180 --fps 15 \
        --episodes 2 --episode-time 2 --reset-time 0.5 --vcodec svtav1 \
        --plugin-dir "$SHARE/plugins" --probe-timeout-ms 60000 -o "$OUT/ds" >"$OUT/record.log" 2>&1
    rc=$?
    cat "$OUT/record.log"
    if grep -q "not built yet" "$OUT/record.log"; then
        skip "s6-edge-record-vivid (core: $(grep -m1 'not built yet' "$OUT/record.log"))"
    elif [ $rc -ne 0 ]; then
        fail "s6-edge-record-vivid (rc $rc)"
    else
        pass "s6-edge-record-vivid"
        "$BIN/s6-edge" verify --json "$OUT/ds" >"$OUT/verify.json" 2>"$OUT/verify.err"
        rc=$?
        cat "$OUT/verify.json" "$OUT/verify.err"
        if grep -q "not built yet" "$OUT/verify.err"; then
            skip "s6-edge-verify (core: $(head -n1 "$OUT/verify.err"))"
        elif [ $rc -eq 0 ]; then
            pass "s6-edge-verify"
        else
            fail "s6-edge-verify (rc $rc)"
        fi
    fi
else
    skip "s6-edge-record-vivid (bin/s6-edge not in the share)"
fi

RESULT="S6VM RESULT: $PASSED passed, $FAILED failed, $SKIPPED skipped"
echo "$RESULT" >"$OUT/result.txt"
sync
echo "$RESULT"
