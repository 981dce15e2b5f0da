#!/usr/bin/env bash
# Build cost for aarch64-apple-darwin, clean, side by side in one run:
#   1. arcbox-vz (this crate, which has no dependencies), built three ways:
#      a. as a user's build gets it, as a dependency: not incremental, lints capped
#         (what cargo does for a crate from crates.io; stacks 2 and 3 are built so too);
#      b. as this repository's own root package: incremental, lints on (cargo's
#         default for the package you are working on; the figure before 2026-12-01);
#      c. as in a, together with libc (a project that has libc anyway; before
#         2026-12-01 the crate itself depended on libc, and 1a measured this).
#   2. the dependency stack of the original arcbox-vz: objc2 0.6, tokio (sync, rt,
#      io-util, net, time), thiserror 2, tracing 0.1, libc
#   3. objc2-virtualization 0.3 with objc2-foundation, block2 and dispatch2
# The stacks are throwaway crates in a temp directory; nothing here depends on them.
# Downloads happen first (cargo fetch) and are not timed. Every build is clean (its own
# empty target directory). The four builds run one after the other, in ROUNDS rounds
# (default 2), so a slow stretch of the machine hits all of them; the script prints
# every round, then the median of each row and its ratio against stack 2.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
TARGET=aarch64-apple-darwin
ROUNDS=${ROUNDS:-2}
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
stack with-libc "arcbox-vz = { path = \"$REPO\" }" 'libc = "0.2"'
(cd "$REPO" && cargo fetch -q)

measure() { # label, dir, incremental (0/1), rustflags -> "seconds crates"
    local dir=$2 log="$WORK/$1.log" start end
    rm -rf "$WORK/target-$1"
    # Untimed: write back what the previous build left in the page cache (stack 3
    # writes hundreds of MB), so that it does not land in this build's time.
    sync
    start=$(date +%s.%N)
    (cd "$dir" && CARGO_INCREMENTAL=$3 CARGO_TARGET_DIR="$WORK/target-$1" RUSTFLAGS="$4" \
        cargo build --lib --target "$TARGET" 2>"$log")
    end=$(date +%s.%N)
    echo "$(echo "$end - $start" | bc) $(grep -c '^ *Compiling' "$log")"
}

LABELS=("1a. arcbox-vz, as a dependency" "1b. arcbox-vz, as the root package"
    "1c. arcbox-vz and libc, as dependencies"
    "2. original stack (objc2, tokio...)" "3. objc2-virtualization stack")
declare -a TIMES CRATES
printf 'clean dev build for %s on %s (%s cores), %s, %s rounds\n' \
    "$TARGET" "$(uname -m)" "$(nproc)" "$(date -u +%F)" "$ROUNDS"
for round in $(seq 1 "$ROUNDS"); do
    read -r a ca < <(measure dependency "$REPO" 0 "--cap-lints allow")
    read -r b cb < <(measure root "$REPO" 1 "")
    read -r l cl < <(measure with-libc "$WORK/with-libc" 0 "--cap-lints allow")
    read -r c cc < <(measure original-stack "$WORK/original-stack" 0 "")
    read -r d cd < <(measure objc2-virtualization "$WORK/objc2-virtualization" 0 "")
    TIMES+=("$a $b $l $c $d")
    # Crates compiled, not counting the empty throwaway crates of 1c, 2 and 3.
    CRATES=("$ca" "$cb" "$((cl - 1))" "$((cc - 1))" "$((cd - 1))")
    printf 'round %s: %6.2f %6.2f %6.2f %6.2f %6.2f s   ratios 1a/2 %.2f  1b/2 %.2f  1c/2 %.2f\n' \
        "$round" "$a" "$b" "$l" "$c" "$d" "$(echo "$a / $c" | bc -l)" \
        "$(echo "$b / $c" | bc -l)" "$(echo "$l / $c" | bc -l)"
done

median() { # column (1-based) -> median over the rounds
    printf '%s\n' "${TIMES[@]}" | awk -v col="$1" '{print $col}' | sort -n |
        awk '{v[NR]=$1} END {if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}

stack2=$(median 4)
printf '\n%-38s %8s %8s %10s\n' "median of $ROUNDS rounds" "seconds" "crates" "vs stack 2"
for i in 0 1 2 3 4; do
    m=$(median $((i + 1)))
    printf '%-38s %8.2f %8d %10.2f\n' "${LABELS[$i]}" "$m" "${CRATES[$i]}" "$(echo "$m / $stack2" | bc -l)"
done
