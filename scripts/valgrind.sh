#!/usr/bin/env bash
# Runs the simulator test suite under valgrind memcheck.
#
# Gate 1: no invalid access anywhere (every test binary; only the ld.so entries of
#         tests/sim/valgrind.supp are suppressed).
# Gate 2: no leak that grows with the work: the soak scenario at N and 2N rounds
#         loses exactly the same number of bytes (GNUstep and libobjc keep a constant
#         set of one-time class set-up allocations, which valgrind calls lost).
#
# Usage: scripts/valgrind.sh [N]      (default N=4)
set -euo pipefail
cd "$(dirname "$0")/.."

N="${1:-4}"
SUPP=tests/sim/valgrind.supp
OUT=target/valgrind
mkdir -p "$OUT"
VALGRIND=(valgrind --leak-check=full --errors-for-leak-kinds=none --error-exitcode=99
          --suppressions="$SUPP" --num-callers=30)

# The test harnesses only (cargo test also builds the examples).
mapfile -t BINS < <(cargo test --no-run --message-format=json 2>/dev/null \
    | grep '"test":true' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')

fail=0
for bin in "${BINS[@]}"; do
    name=$(basename "$bin")
    log="$OUT/$name.log"
    extra=()
    # The teardown tests run each scenario in a child process: check those too (a
    # child with an error exits 99, which fails its parent test).
    [[ $name == teardown-* ]] && extra=(--trace-children=yes)
    if "${VALGRIND[@]}" "${extra[@]}" "$bin" --test-threads=2 >"$log" 2>&1; then
        lost=$(grep -E 'definitely lost:' "$log" | sed 's/.*definitely lost: //' | tail -1)
        printf 'valgrind ok   %-40s definitely lost: %s\n' "$name" "${lost:-0 bytes}"
    else
        printf 'valgrind FAIL %-40s (see %s)\n' "$name" "$log"
        grep -E 'Invalid|uninitialised|test result|panicked' "$log" | head -20
        fail=1
    fi
done

lost_bytes() { # log -> "definite indirect"
    local d i
    d=$(grep -E 'definitely lost:' "$1" | sed 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/' | tr -d , | tail -1)
    i=$(grep -E 'indirectly lost:' "$1" | sed 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/' | tr -d , | tail -1)
    echo "${d:-0} ${i:-0}"
}

SOAK=$(printf '%s\n' "${BINS[@]}" | grep '/soak-' | head -1)
for n in "$N" $((2 * N)); do
    ARCBOX_VZ_SOAK_N=$n "${VALGRIND[@]}" "$SOAK" --nocapture >"$OUT/soak-$n.log" 2>&1 || {
        echo "valgrind FAIL soak at N=$n (see $OUT/soak-$n.log)"; fail=1; }
done
read -r d1 i1 < <(lost_bytes "$OUT/soak-$N.log")
read -r d2 i2 < <(lost_bytes "$OUT/soak-$((2 * N)).log")
echo "soak under valgrind: N=$N definitely=$d1 indirectly=$i1 | 2N=$((2 * N)) definitely=$d2 indirectly=$i2"
if [[ "$d1" != "$d2" || "$i1" != "$i2" ]]; then
    echo "FAIL: lost bytes grow with the work"
    fail=1
fi
exit $fail
