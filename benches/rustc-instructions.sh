#!/usr/bin/env bash
# The instructions rustc executes to compile this crate, for aarch64-apple-darwin, clean,
# as a dependency build does (not incremental, lints capped), counted by valgrind
# (callgrind's "Ir"). Unlike a build's wall time on a shared machine, the count is the
# same from run to run (to about 0.01 %), so two revisions can be compared exactly.
#
#   benches/rustc-instructions.sh                  # the working tree
#   benches/rustc-instructions.sh 3030f35 HEAD     # revisions, one after the other
#
# Needs valgrind. Each revision takes a few minutes (callgrind runs rustc ~40x slower).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
TARGET=aarch64-apple-darwin
WORK=$(mktemp -d "${TMPDIR:-/tmp}/arcbox-vz-instructions.XXXXXX")
trap 'git -C "$REPO" worktree prune; rm -rf "$WORK"' EXIT

count() { # source directory -> instructions
    local dir=$1 target="$WORK/target" out="$WORK/out" cmd
    rm -rf "$target" "$out" && mkdir -p "$out"
    # cargo's exact rustc command line for the crate (the build itself is not counted).
    cmd=$(cd "$dir" && CARGO_INCREMENTAL=0 CARGO_TARGET_DIR="$target" \
        RUSTFLAGS="--cap-lints allow" cargo build -v --lib --target "$TARGET" 2>&1 |
        sed -n 's/^ *Running `\(.*rustc --crate-name arcbox_vz .*\)`$/\1/p')
    [ -n "$cmd" ] || { echo "no rustc command for $dir" >&2; exit 1; }
    cmd=${cmd//"$target"\/$TARGET\/debug\/deps/$out}
    # The environment cargo gives rustc that the crate reads (env!).
    (cd "$dir" && export CARGO_PKG_NAME=arcbox-vz CARGO_MANIFEST_DIR="$dir" \
        CARGO_PKG_VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" &&
        eval "valgrind --tool=callgrind --callgrind-out-file=$WORK/callgrind.out $cmd" \
        >/dev/null 2>"$WORK/valgrind.log") || { cat "$WORK/valgrind.log" >&2; exit 1; }
    [ -n "$(ls "$out"/libarcbox_vz-*.rlib 2>/dev/null)" ] || {
        echo "rustc did not write the rlib; see $WORK/valgrind.log" >&2; exit 1; }
    sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$WORK/valgrind.log"
}

if [ $# -eq 0 ]; then
    printf 'working tree  %s instructions\n' "$(count "$REPO")"
    exit 0
fi
for rev in "$@"; do
    dir="$WORK/tree-$rev"
    git -C "$REPO" worktree add -q --detach "$dir" "$rev"
    printf '%-12s  %s instructions\n' "$(git -C "$REPO" rev-parse --short "$rev")" "$(count "$dir")"
    git -C "$REPO" worktree remove --force "$dir"
done
