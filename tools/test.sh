#!/usr/bin/env bash
# Quick start, command 2: installs what is missing (Debian 12 packages), builds everything with
# tests (RelWithDebInfo), and runs the whole suite with ctest. Exit status is ctest's.
#
# Environment overrides: BUILD_DIR (default build-test), JOBS (2), CTEST_ARGS (extra ctest flags).
set -euo pipefail
cd "$(dirname "$0")/.."

# --extra: Prometheus, nginx and PyYAML for the operations tests (tests/ops_*_test.cc).
tools/install-deps.sh --extra

BUILD_DIR=${BUILD_DIR:-build-test}
JOBS=${JOBS:-2}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRECD_BUILD_TESTS=ON >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS"
cd "$BUILD_DIR"
ctest --output-on-failure -j"$JOBS" --timeout 900 ${CTEST_ARGS:-}
