#!/usr/bin/env bash
# The long property-test mode (RELIABILITY.md): the segment language's properties (printing and
# parsing round-trip, parsing and checking never panic and keep spans in the text) and the
# differential test of the index against the in-memory evaluator, with many more cases.
# Usage: scripts/long-properties.sh [CASES=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
export QWRY_PROPTEST_CASES="${1:-100000}"
echo "long properties: $QWRY_PROPTEST_CASES cases each"
cargo test --release --locked -p qwry-segment roundtrip_tests
# The differential test builds an index per case, so it runs a tenth as many.
QWRY_PROPTEST_CASES=$((QWRY_PROPTEST_CASES / 10)) \
  cargo test --release --locked --lib index::equivalence_tests
