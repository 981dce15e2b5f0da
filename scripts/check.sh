#!/usr/bin/env bash
# The whole check, as CI runs it: formatting, clippy for the simulator and both
# Apple targets, the simulator test suite and doc examples (on the newest macOS, on
# 11.0, the runtime suites on every release between, and under 20 seeds), Miri and
# loom on the completion bridge, the suite under valgrind, the short soak, the docs,
# the MSRV build and the package contents.
#
# Needs (Debian/Ubuntu): clang libblocksruntime-dev libgnustep-base-dev valgrind,
# rustup targets aarch64-apple-darwin and x86_64-apple-darwin, nightly with miri and
# rust-src, and the MSRV toolchain. .ci/run installs all of them.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
MSRV=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)

step "cargo fmt --check"
cargo fmt --all --check

step "clippy: simulator (Linux)"
cargo clippy --all-targets -- -D warnings
for target in aarch64-apple-darwin x86_64-apple-darwin; do
    step "clippy: $target"
    cargo clippy --all-targets --target "$target" -- -D warnings
done
step "clippy: release build of the library (aarch64-apple-darwin)"
cargo clippy --release --lib --target aarch64-apple-darwin -- -D warnings
step "clippy: the micro-benchmarks (--cfg arcbox_vz_bench)"
RUSTFLAGS="--cfg arcbox_vz_sim --cfg arcbox_vz_bench" CARGO_TARGET_DIR=target/bench \
    cargo clippy --lib --bench ffi -- -D warnings

step "simulator test suite"
log=target/test-suite.log
mkdir -p target
cargo test 2>&1 | tee "$log"
# GNUstep only warns when something autoreleases on a thread with no pool; on macOS
# that object would leak for the life of the thread. Treat it as a failure.
if grep -q "autorelease called without pool" "$log"; then
    echo "FAIL: an autorelease pool is missing (see $log)"
    exit 1
fi

# The suite must pass on every macOS release the crate supports (tests/sim:
# ARCBOX_VZ_SIM_MACOS). The run above played the newest; the oldest gets the whole
# suite too, and every release in between the suites that use the running VM.
run_logged() { # log, then the command; prints the failures and the replay hint
    local log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        grep -E "FAILED|panicked|arcbox-vz-sim" "$log" | head -40
        echo "FAIL: $* (see $log)"
        exit 1
    fi
}
step "simulator test suite at macOS 11.0"
ARCBOX_VZ_SIM_MACOS=11.0 run_logged target/test-suite-11.0.log cargo test --tests
grep -c "^test result: ok" target/test-suite-11.0.log | xargs echo "test binaries passed:"
RUNTIME_SUITES=(--test lifecycle --test vsock --test teardown --test runtime_devices --test arm64_surface --test simulator --test console_events --test device_events --test displays --test gui --test macos_installer --test idle)
for release in 12.0 13.0 14.0 15.0; do
    step "runtime and configuration suites at macOS $release"
    ARCBOX_VZ_SIM_MACOS=$release run_logged "target/test-suite-$release.log" \
        cargo test "${RUNTIME_SUITES[@]}" --test configuration --test config_devices \
        --test config_sharing --test config_storage --test config_serial_console \
        --test config_network --test hostile_input --test config_audio --test config_clipboard --test config_vmnet --test macos_guest_config \
        --test macos_bundle --test examples
done

# Where Apple leaves the order and timing of callbacks open, the scheduler varies them
# (tests/sim: ARCBOX_VZ_SIM_SEED). Twenty fixed seeds here; every other run picks a
# fresh one and prints it when a test fails.
step "runtime suites under 20 seeds"
for seed in $(seq 1 20); do
    ARCBOX_VZ_SIM_SEED=$seed run_logged "target/test-seed-$seed.log" cargo test "${RUNTIME_SUITES[@]}"
done
echo "20 seeds passed"

step "doc examples, compiled against the simulator"
RUSTDOCFLAGS="--cfg arcbox_vz_sim" cargo test --doc

step "Miri: the completion bridge"
cargo +nightly miri test --lib bridge::tests

step "loom: every interleaving of the completion bridge"
RUSTFLAGS="--cfg arcbox_vz_sim --cfg arcbox_vz_loom" CARGO_TARGET_DIR=target/loom \
    cargo test --release --lib bridge::loom_tests

step "valgrind: the suite, and leak growth from N to 2N"
scripts/valgrind.sh

step "soak, short tier (scripts/soak.sh for the full one)"
scripts/soak.sh --short

for target in aarch64-apple-darwin x86_64-apple-darwin; do
    step "docs for $target"
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --target "$target"
done

step "MSRV $MSRV: the library for both Apple targets"
for target in aarch64-apple-darwin x86_64-apple-darwin; do
    cargo "+$MSRV" check --lib --target "$target"
done

step "package contents"
files=$(cargo package --list --allow-dirty)
if grep -E '^(tests/sim/|scripts/|\.ci/|\.cargo/|target/)' <<<"$files"; then
    echo "FAIL: test equipment or tooling would be published"
    exit 1
fi
echo "$(wc -l <<<"$files") files, no test equipment"

step "all checks passed"
