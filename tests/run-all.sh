#!/usr/bin/env bash
# The test command: builds the binary and every plugin, runs all tests
# (unit, integration against real GStreamer/SVT-AV1/ffprobe), then the V4L2
# tests inside a QEMU VM (vivid + vicodec kernel drivers) and the systemd
# unit check.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads=2
S6VM_NO_BUILD=1 bash tests/vm/run.sh
bash tests/systemd/verify-unit.sh
