#!/usr/bin/env bash
# Installs the Debian 12 packages recd needs to build, test and run.
# Idempotent: packages already present are skipped; apt-get runs only when something is missing.
#
# Usage: tools/install-deps.sh [--bench] [--peers] [--extra] [--sanitizers]
#   (default)  build + test dependencies
#   --bench    also the comparison libraries used by bench/ (FAISS, OpenBLAS, hnswlib, Highway)
#   --peers    also the Python peers (PyTorch, scikit-learn) of bench/peers
#   --extra    also the operations tools the ops tests run: the Prometheus server and promtool,
#              nginx, PyYAML (tests/ops_*_test.cc; tools/test.sh passes it). The tests start their
#              own instances on free loopback ports and never use the system services.
#   --sanitizers  also clang and its runtimes (ASan, UBSan, TSan, libFuzzer) for the sanitizer and
#              fuzzing stages of tools/test.sh
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libeigen3-dev libabsl-dev librocksdb-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libhnswlib-dev openssl
)
for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(libfaiss-dev libopenblas-dev python3-numpy) ;;
    --peers) packages+=(python3-torch python3-sklearn python3-numpy python3-scipy) ;;
    --extra) packages+=(prometheus nginx python3-yaml) ;;
    --sanitizers) packages+=(clang-14 libclang-rt-14-dev llvm-14) ;;
    *) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# apt's and dpkg's chatter goes to a log, shown only when something fails.
log=$(mktemp /tmp/install-deps.XXXXXX.log)
if ! { $SUDO apt-get update -qq && \
       $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
     >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-deps: apt-get failed (log above, kept in $log)" >&2
  exit 1
fi
rm -f "$log"
echo "install-deps: installed ${#missing[@]} packages"
