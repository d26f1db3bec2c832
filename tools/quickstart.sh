#!/usr/bin/env bash
# Quick start, command 1: installs what is missing (Debian 12 packages), builds recd and recctl
# in Release mode, and starts recd on 127.0.0.1:50051 with its data in ./recd-data. On an empty
# store the built-in synthetic demo data set is loaded and trained first; the server then prints
# a recctl line to try. Stop it with Ctrl-C (a clean shutdown).
#
# Environment overrides: RECD_LISTEN (default 127.0.0.1:50051), RECD_DATA_DIR (./recd-data),
# BUILD_DIR (build-release), JOBS (2). Any argument is passed on to recd.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh

BUILD_DIR=${BUILD_DIR:-build-release}
JOBS=${JOBS:-2}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DRECD_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS" --target recd recctl

export PATH="$PWD/$BUILD_DIR/server:$PWD/$BUILD_DIR/cli:$PATH"
echo "recd and recctl are in $BUILD_DIR/server and $BUILD_DIR/cli (added to PATH for this run)"
exec "$BUILD_DIR/server/recd" \
  --listen="${RECD_LISTEN:-127.0.0.1:50051}" \
  --data_dir="${RECD_DATA_DIR:-./recd-data}" \
  --demo_data=auto "$@"
