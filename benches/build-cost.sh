#!/usr/bin/env bash
# Build cost for aarch64-apple-darwin, clean, side by side in one run:
#   1. arcbox-vz (this crate: the library and libc)
#   2. the dependency stack of the original arcbox-vz: objc2 0.6, tokio (sync, rt,
#      io-util, net, time), thiserror 2, tracing 0.1, libc
#   3. objc2-virtualization 0.3 with objc2-foundation, block2 and dispatch2
# The stacks are throwaway crates in a temp directory; nothing here depends on them.
# Downloads happen first (cargo fetch) and are not timed. Prints wall time, the number
# of crates compiled, and ratios against stack 2.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
TARGET=aarch64-apple-darwin
WORK=$(mktemp -d "${TMPDIR:-/tmp}/arcbox-vz-build-cost.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

stack() { # name, dependencies...
    local dir="$WORK/$1"; shift
    mkdir -p "$dir/src"
    printf '[package]\nname = "%s"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n[dependencies]\n' \
        "$(basename "$dir")" >"$dir/Cargo.toml"
    printf '%s\n' "$@" >>"$dir/Cargo.toml"
    : >"$dir/src/lib.rs"
    (cd "$dir" && cargo fetch -q)
}

stack original-stack \
    'objc2 = "0.6"' \
    'tokio = { version = "1", default-features = false, features = ["sync", "rt", "io-util", "net", "time"] }' \
    'thiserror = "2"' 'tracing = "0.1"' 'libc = "0.2"'
stack objc2-virtualization \
    'objc2-virtualization = "0.3"' 'objc2-foundation = "0.3"' 'block2 = "0.6"' 'dispatch2 = "0.3"'
(cd "$REPO" && cargo fetch -q)

measure() { # label, dir -> "seconds crates"
    local dir=$2 log="$WORK/$1.log" start end
    start=$(date +%s.%N)
    (cd "$dir" && CARGO_TARGET_DIR="$WORK/target-$1" RUSTFLAGS="" cargo build --lib --target "$TARGET" 2>"$log")
    end=$(date +%s.%N)
    echo "$(echo "$end - $start" | bc) $(grep -c '^ *Compiling' "$log")"
}

read -r t1 c1 < <(measure arcbox-vz "$REPO")
read -r t2 c2 < <(measure original-stack "$WORK/original-stack")
read -r t3 c3 < <(measure objc2-virtualization "$WORK/objc2-virtualization")

printf '\nclean dev build for %s on %s (%s cores), %s\n' "$TARGET" "$(uname -m)" "$(nproc)" "$(date -u +%F)"
printf '%-34s %8s %8s %10s\n' "" "seconds" "crates" "vs stack 2"
printf '%-34s %8.2f %8d %10.2f\n' "1. arcbox-vz" "$t1" "$c1" "$(echo "$t1 / $t2" | bc -l)"
printf '%-34s %8.2f %8d %10.2f\n' "2. original stack (objc2, tokio...)" "$t2" "$c2" 1
printf '%-34s %8.2f %8d %10.2f\n' "3. objc2-virtualization stack" "$t3" "$c3" "$(echo "$t3 / $t2" | bc -l)"
