#!/usr/bin/env bash
# The FFI micro-benchmarks in the simulator: each against its physical floor, side by
# side in one run. Prints one line per pair with the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg arcbox_vz_sim --cfg arcbox_vz_bench"
export CARGO_TARGET_DIR=target/bench
cargo bench --bench ffi
