#!/usr/bin/env bash
# Builds and runs the scorer benchmark in one command:
#   bench/run_scorer_bench.sh            full grid (N 10k/100k/1M x d 32/64/128 x k 10/100 x
#                                         batch 1/64/256 x threads 1/2), about 15-25 minutes
#   bench/run_scorer_bench.sh --quick    N 100k/1M, d 64, k 10, batch 1/256, threads 1/2 (~3 min)
# Further arguments go to scorer_bench (see the top of bench/scorer_bench.cc), e.g.
#   bench/run_scorer_bench.sh --n=1000000 --d=64 --csv=/tmp/scorer.csv
# Environment: RECD_BENCH_BUILD_DIR (default <repo>/build-bench).
# Run on a quiet machine: the table reports the load average at start and end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${RECD_BENCH_BUILD_DIR:-$root/build-bench}"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRECD_BUILD_BENCHMARKS=ON \
  -DRECD_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target scorer_bench >/dev/null

# FAISS's batched search is BLAS-bound: say which BLAS the libblas.so.3 alternative selects.
if command -v update-alternatives >/dev/null; then
  echo "# libblas.so.3 alternative: $(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/ {print $2}')"
fi
exec "$build/bench/scorer_bench" "$@"
