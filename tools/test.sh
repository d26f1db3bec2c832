#!/usr/bin/env bash
# Quick start, command 2 (and CI: .ci/run calls it): installs what is missing (Debian 12
# packages), builds everything with tests and runs the whole suite. Stages:
#   1. suite       gcc, -O2 without debug info (the compiler and flags that ship): every test
#   2. asan        clang with AddressSanitizer + UndefinedBehaviorSanitizer: the unit tests (but
#                  the int8 scorer's scalar-level answer checks, see ASAN_EXCLUDE), then
#                  each libFuzzer target for FUZZ_SECONDS on its seed corpus (ASAN_SCOPE=all: the
#                  integration tests too, which start recd processes: about twice the stage time)
#   3. tsan        clang with ThreadSanitizer: the concurrency tests (readers during swaps and
#                  rollbacks, concurrent store writers, the history cache, partitioned and batched
#                  scans, the trainer and server under concurrent clients)
# Exit status: non-zero when any stage fails; every stage runs regardless, and a summary with
# each stage's time is printed at the end.
#
# Usage: tools/test.sh [--fast]      --fast: stage 1 only (the everyday loop)
# Environment: BUILD_DIR (stage 1, default build-test), JOBS (2), SUITE_TEST_JOBS (tests at once
# in stage 1, 2 x JOBS), CTEST_ARGS (extra ctest flags for every stage), FUZZ_SECONDS (per fuzz
# target, default 10), STAGES (e.g. "suite tsan"), ASAN_SCOPE (unit, the default, or all).
set -uo pipefail
cd "$(dirname "$0")/.."

STAGES=${STAGES:-suite asan tsan}
if [ "${1:-}" = "--fast" ]; then STAGES=suite; fi
JOBS=${JOBS:-2}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
ASAN_SCOPE=${ASAN_SCOPE:-unit}

# --extra: Prometheus, nginx and PyYAML for the operations tests (tests/ops_*_test.cc).
deps=(--extra)
case " $STAGES " in *" asan "*|*" tsan "*) deps+=(--sanitizers) ;; esac
tools/install-deps.sh "${deps[@]}" || exit 1

# The sanitizer builds: -O1 keeps them fast enough to run every test; NDEBUG as in the suite.
sanitizer_flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRECD_BUILD_TESTS=ON
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG"
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tools/tsan.supp}

# The concurrency tests for TSan: readers during model swaps and rollbacks, the trainer's
# background thread, concurrent store writers and snapshots, partitioned and batched scans.
# Left out: tests whose only reports come from libraries Debian ships uninstrumented (RocksDB's
# write groups and exit handlers, gRPC's event engine in the multi-process tests, hnswlib's lock
# order; see tools/tsan.supp), HNSW builds (minutes under TSan), and the int8 scorer's answer
# checks at the scalar level (the same threading code as the SIMD levels, 5x the time). The plain
# stage runs them all.
TSAN_TARGETS=(trainer_test storage_test history_cache_test core_scorer_test server_test controls_test)
TSAN_TESTS='^(trainer_test|storage_test|history_cache_test|core_scorer_test|server_test|controls_test)\.'
SCALAR_INT8_CHECKS='QuantizedScorerTest\..*/scalar'
TSAN_EXCLUDE="HnswScorerTest|$SCALAR_INT8_CHECKS|ScorerConcurrencyTest|StoreTest\\.(ConcurrentAppends|SnapshotsDuringAppends|CheckpointIsAnOpenableCopy)|HistoryCacheStoreTest\\.Concurrent"
# ASan leaves out the same scalar-level answer checks of the int8 scorer: a third of the stage's
# test time (80 of 245 CPU seconds), for code ASan sees anyway: the scorer's own code runs at
# every SIMD level, and the scalar kernels in KernelTest, which compares every level with them.
ASAN_EXCLUDE=$SCALAR_INT8_CHECKS
# The suite's tests wait more than they compute (recd processes starting, fsyncs, timeouts): twice
# as many at once as there are cores takes 57 s instead of 90 s. The sanitizer stages' tests keep
# the cores busy, so they run JOBS at once.
SUITE_TEST_JOBS=${SUITE_TEST_JOBS:-$((2 * JOBS))}

# configure DIR ARGS...: cmake with Ninja (it keeps both cores busy across targets, where make
# waits at each library); a folder configured earlier with another generator starts afresh.
configure() {
  local dir=$1
  shift
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
    rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
  fi
  cmake -G Ninja -S . -B "$dir" "$@" >/dev/null
}

stage_suite() {
  local dir=${BUILD_DIR:-build-test}
  # No debug info: a third less compile time, and gtest reports file and line by itself.
  configure "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRECD_BUILD_TESTS=ON \
      "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -DNDEBUG" &&
    cmake --build "$dir" -j"$JOBS" &&
    (cd "$dir" && ctest --output-on-failure -j"$SUITE_TEST_JOBS" --timeout 900 ${CTEST_ARGS:-})
}

stage_asan() {
  local dir=build-asan
  CC=clang-14 CXX=clang++-14 configure "$dir" "${sanitizer_flags[@]}" -DRECD_SANITIZE=address \
      -DRECD_BUILD_FUZZERS=ON || return 1
  local status=0
  if [ "$ASAN_SCOPE" = all ]; then
    cmake --build "$dir" -j"$JOBS" || return 1
    # The ops tests exercise Prometheus and nginx around an ordinary recd; stage 1 covers them.
    (cd "$dir" && ctest --output-on-failure -j"$JOBS" --timeout 1800 -L 'unit|integration' -E "^ops_|$ASAN_EXCLUDE" \
       ${CTEST_ARGS:-}) || status=1
  else
    # The unit tests cover core, storage and server in process; the integration tests run the
    # same code in recd processes and stay with stage 1.
    cmake --build "$dir" -j"$JOBS" --target recd_unit_tests || return 1
    (cd "$dir" && ctest --output-on-failure -j"$JOBS" --timeout 1800 -L unit -E "$ASAN_EXCLUDE" ${CTEST_ARGS:-}) || status=1
  fi
  BUILD_DIR="$dir" fuzz/run.sh "$FUZZ_SECONDS" || status=1
  return $status
}

stage_tsan() {
  local dir=build-tsan
  CC=clang-14 CXX=clang++-14 configure "$dir" "${sanitizer_flags[@]}" -DRECD_SANITIZE=thread &&
    cmake --build "$dir" -j"$JOBS" --target "${TSAN_TARGETS[@]}" &&
    (cd "$dir" && ctest --output-on-failure -j"$JOBS" --timeout 1800 -R "$TSAN_TESTS" -E "$TSAN_EXCLUDE" \
       ${CTEST_ARGS:-})
}

summary=()
failed=0
for stage in $STAGES; do
  echo "==== test.sh: stage $stage"
  start=$SECONDS
  if "stage_$stage"; then verdict=passed; else verdict=FAILED; failed=1; fi
  summary+=("$(printf '%-6s %-7s %4d s' "$stage" "$verdict" $((SECONDS - start)))")
done
echo "==== test.sh summary"
printf '  %s\n' "${summary[@]}"
exit $failed
