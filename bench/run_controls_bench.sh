#!/usr/bin/env bash
# Builds and runs the controls benchmark in one command: what each recommendation control
# (attribute filters, inactive items, explanations, MMR, category cap, impression demotion,
# paging) adds to Engine::Recommend latency, against plain Recommend on the same users.
#   bench/run_controls_bench.sh             100k items x rank-64 pure_svd, 20k users, 1M
#                                           interactions, k 10 and 100, 300 rounds (about 40 s on
#                                           2 quiet cores after the build: 20 s setup, 15 s timing)
#   bench/run_controls_bench.sh --quick     20k items, 5k users, 200k interactions, 150 rounds
# Further arguments go to controls_bench (see the top of bench/controls_bench.cc), e.g.
#   bench/run_controls_bench.sh --items=50000 --rank=32 --rounds=500 --csv=/tmp/controls.csv
# Environment: RECD_BENCH_BUILD_DIR (default <repo>/build-bench, shared with run_scorer_bench.sh).
# Run on a quiet machine: the output reports the load average at start and end; variants are
# interleaved per round, so noise spreads evenly but still widens every spread.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${RECD_BENCH_BUILD_DIR:-$root/build-bench}"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRECD_BUILD_BENCHMARKS=ON \
  -DRECD_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target controls_bench >/dev/null

args=()
for a in "$@"; do
  if [[ "$a" == "--quick" ]]; then
    args+=(--items=20000 --users=5000 --interactions=200000 --rounds=150)
  else
    args+=("$a")
  fi
done
exec "$build/bench/controls_bench" "${args[@]}"
