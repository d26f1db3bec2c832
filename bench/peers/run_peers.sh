#!/usr/bin/env bash
# recd next to its peers, one command: builds receval, then runs it on the Recommenders protocol
# of ML-100K interleaved with the PyTorch two-tower twin and scikit-learn's PureSVD, and prints
# every metric, the training times and the ratios.
#
#   bench/peers/run_peers.sh [--data=DIR] [--runs=3] [--threads=2] [--validation] [--split_by=item|user]
#                            [--model_params=two_tower.epochs=4,...]
#
# Needs the Debian packages python3-torch python3-sklearn python3-numpy python3-scipy
# (tools/install-deps.sh --peers). Data: --data, else $RECD_MOVIELENS_DIR, else
# ../shared/data/ml-100k relative to the repository (see README, "Offline evaluation").
# Environment: RECD_MODELS_BUILD_DIR (default <repo>/build-models), PYTHON (default
# /usr/bin/python3, Debian's, which has the packages).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${RECD_MODELS_BUILD_DIR:-$root/build-models}"
python="${PYTHON:-/usr/bin/python3}"
data="${RECD_MOVIELENS_DIR:-$root/../shared/data/ml-100k}"

args=()
for a in "$@"; do
  case "$a" in
    --data=*) data="${a#--data=}" ;;
    *) args+=("$a") ;;
  esac
done

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target receval >/dev/null
exec "$python" "$root/bench/peers/compare.py" --receval="$build/eval/receval" --data="$data" "${args[@]}"
