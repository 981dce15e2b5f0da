#!/usr/bin/env bash
# The soak (tests/soak.rs): 1 round = 1 full VM lifecycle, 10 vsock connections,
# 1 cancelled start, 1 listener churn and (every other round) every device family.
#
#   scripts/soak.sh            full tier: 1000 rounds natively (1000 lifecycles, 10 000
#                              connects, 1000 cancelled starts, 1000 listener churns),
#                              then valgrind at N=5 and 10N=50 rounds
#   scripts/soak.sh --short    the CI tier: 100 rounds natively, valgrind at 2 and 20
#
# Reports live objects and blocks (must be 0), fds and threads before and after (must be
# equal), RSS growth, and bytes definitely and indirectly lost at N and 10N (must be
# equal: GNUstep's one-time start-up allocations are a constant).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--short" ]]; then
    ROUNDS=100 N=2
else
    ROUNDS=1000 N=5
fi

echo "==> native soak: $ROUNDS rounds (release)"
ARCBOX_VZ_SOAK_N=$ROUNDS cargo test --release --test soak -- --nocapture 2>&1 | grep -E '^soak:|test result|panicked'

SOAK=$(cargo test --test soak --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | head -1)
lost() { # log -> "definite indirect"
    local d i
    d=$(grep -E 'definitely lost:' "$1" | sed 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/' | tr -d , | tail -1)
    i=$(grep -E 'indirectly lost:' "$1" | sed 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/' | tr -d , | tail -1)
    echo "${d:-0} ${i:-0}"
}
mkdir -p target/valgrind
for n in "$N" $((10 * N)); do
    echo "==> valgrind soak: $n rounds"
    ARCBOX_VZ_SOAK_N=$n valgrind --leak-check=full --errors-for-leak-kinds=none --error-exitcode=99 \
        --suppressions=tests/sim/valgrind.supp "$SOAK" --nocapture >"target/valgrind/soak-x$n.log" 2>&1
    grep -E '^soak:' "target/valgrind/soak-x$n.log"
done
read -r d1 i1 < <(lost "target/valgrind/soak-x$N.log")
read -r d2 i2 < <(lost "target/valgrind/soak-x$((10 * N)).log")
echo "lost bytes: N=$N definitely=$d1 indirectly=$i1 | 10N=$((10 * N)) definitely=$d2 indirectly=$i2"
if [[ "$d1" != "$d2" || "$i1" != "$i2" ]]; then
    echo "FAIL: lost bytes grow with the work"
    exit 1
fi
echo "soak ok: no growth"
