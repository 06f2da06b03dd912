#!/usr/bin/env bash
# The long crash check (RELIABILITY.md): the release binary on one data directory, killed with
# SIGKILL at a random moment while an import, upserts and merges run, restarted, N times.
# Usage: scripts/kill-loop.sh [ITERATIONS=200] ; QWRY_KILL_SEED picks the kill moments.
set -euo pipefail
cd "$(dirname "$0")/.."
export QWRY_KILL_ITERATIONS="${1:-200}"
export QWRY_KILL_SEED="${QWRY_KILL_SEED:-$RANDOM}"
echo "kill loop: $QWRY_KILL_ITERATIONS iterations, seed $QWRY_KILL_SEED"
cargo test --release --locked --test api kill_loop -- --ignored --nocapture
