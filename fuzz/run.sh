#!/usr/bin/env bash
# Builds the libFuzzer targets (clang + ASan + UBSan) and runs each for a bounded time.
#
# Usage: fuzz/run.sh [seconds per target, default 60] [target...]
#        fuzz/run.sh --seeds        regenerate the committed seed corpora (fuzz/corpus/<target>/)
# Targets: validation_fuzzer (request validation), engine_fuzzer (the handlers, in process),
#          encoding_fuzzer (stored-record decoding). Default: all three.
#
# Each run reads the committed seeds plus a scratch corpus ($BUILD_DIR/fuzz-corpus/<target>, kept
# between runs so longer campaigns accumulate) and writes new inputs only to the scratch one. A
# crash, leak, timeout or failed invariant stops the run, leaves the reproducer in
# $BUILD_DIR/fuzz-artifacts/ and makes this script exit non-zero. Replay a reproducer with
#   $BUILD_DIR/fuzz/<target> <file>
#
# Environment: BUILD_DIR (default build-fuzz; tools/test.sh shares its ASan build), JOBS (2),
# CXX/CC (clang++-14/clang-14).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-2}
ALL_TARGETS=(validation_fuzzer engine_fuzzer encoding_fuzzer)

configure_and_build() {
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] || ! grep -q '^RECD_BUILD_FUZZERS:BOOL=ON' "$BUILD_DIR/CMakeCache.txt"; then
    CC=${CC:-clang-14} CXX=${CXX:-clang++-14} cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DRECD_BUILD_TESTS=ON -DRECD_SANITIZE=address -DRECD_BUILD_FUZZERS=ON \
      "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
      "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" >/dev/null
  fi
  cmake --build "$BUILD_DIR" -j"$JOBS" --target "$@"
}

if [ "${1:-}" = "--seeds" ]; then
  configure_and_build fuzz_seed_corpus
  rm -rf fuzz/corpus
  "$BUILD_DIR/fuzz/fuzz_seed_corpus" fuzz/corpus
  for t in "${ALL_TARGETS[@]}"; do echo "fuzz/corpus/$t: $(ls "fuzz/corpus/$t" | wc -l) seeds"; done
  exit 0
fi

SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then TARGETS=("${ALL_TARGETS[@]}"); fi

configure_and_build "${TARGETS[@]}"

# halt_on_error: stop at the first report. detect_leaks: libFuzzer checks each input for leaks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
scratch_tmp="$BUILD_DIR/fuzz-tmp"
mkdir -p "$BUILD_DIR/fuzz-artifacts" "$scratch_tmp"
export TEST_TMPDIR="$PWD/$scratch_tmp"  # the engine fuzzer's store lives here

status=0
for t in "${TARGETS[@]}"; do
  corpus="$BUILD_DIR/fuzz-corpus/$t"
  mkdir -p "$corpus"
  log="$BUILD_DIR/fuzz-artifacts/$t.log"
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s"
  # -timeout: an input slower than 25 s is a hang; -rss_limit_mb: the engine keeps a RocksDB.
  if "$BUILD_DIR/fuzz/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=25 -rss_limit_mb=3072 \
       -print_final_stats=1 -artifact_prefix="$BUILD_DIR/fuzz-artifacts/$t-" \
       "$corpus" "fuzz/corpus/$t" >"$log" 2>&1; then
    # The last status line: executions, coverage, corpus size.
    grep -E '^#[0-9]+' "$log" | tail -1 | sed "s/^/fuzz: $t: /"
    grep -E 'stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" |
      sed "s/^/fuzz: $t: /"
  else
    status=1
    echo "fuzz: $t FAILED; the log ($log) ends with:" >&2
    tail -60 "$log" >&2
    ls -1 "$BUILD_DIR/fuzz-artifacts/$t-"* 2>/dev/null | sed 's/^/fuzz: reproducer: /' >&2 || true
  fi
done
exit $status
