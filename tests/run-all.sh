#!/usr/bin/env bash
# The test command: builds the binary and every plugin, then runs all tests
# (unit, integration against real GStreamer/SVT-AV1/ffprobe).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads=2
