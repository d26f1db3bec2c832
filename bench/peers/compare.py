#!/usr/bin/env python3
"""recd next to its peers on the Recommenders protocol of ML-100K (see run_peers.sh).

Runs, `--runs` times and interleaved (so load changes hit every implementation alike):
  receval --protocols=recommenders --models=pure_svd,two_tower   (recd, C++)
  two_tower_torch.py   with the two_tower params receval reports  (PyTorch)
  puresvd_sklearn.py   with the pure_svd params receval reports   (scikit-learn TruncatedSVD)
then prints each metric, the median training time (min-max) and the ratios.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    return json.loads(out.stdout)


def load():
    return os.getloadavg()[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--receval", required=True)
    ap.add_argument("--data", default="../shared/data/ml-100k")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--validation", action="store_true")
    ap.add_argument("--split_by", default="item", choices=["item", "user"],
                    help="stratification of the split, for receval and both peers")
    ap.add_argument("--model_params", default="", help="passed to receval (peers follow)")
    args = ap.parse_args()
    py = sys.executable
    flags = (["--validation"] if args.validation else []) + [f"--split_by={args.split_by}"]
    # PyTorch parallelises its operators with OpenMP; OpenBLAS's own pthreads on top of that
    # oversubscribe the cores and slowed the twin down (measured), so BLAS runs single-threaded
    # inside each PyTorch thread unless the caller says otherwise.
    torch_env = dict(os.environ)
    torch_env.setdefault("OPENBLAS_NUM_THREADS", "1")

    rows = {}  # (model, impl) -> list of results
    load_start = load()
    for r in range(args.runs):
        print(f"run {r + 1}/{args.runs}: recd", file=sys.stderr, flush=True)
        recd = run_json([args.receval, f"--data={args.data}", "--protocols=recommenders",
                         "--models=pure_svd,two_tower", f"--threads={args.threads}", "--json=-",
                         f"--model_params={args.model_params}"] + flags)
        by_model = {x["model"]: x for x in recd["results"]}
        for m in ("pure_svd", "two_tower"):
            rows.setdefault((m, "recd"), []).append(
                dict(metrics=by_model[m]["metrics"], train_seconds=by_model[m]["train_seconds"],
                     params=by_model[m]["params"]))
        tt = by_model["two_tower"]["params"]
        print(f"run {r + 1}/{args.runs}: pytorch", file=sys.stderr, flush=True)
        torch_cmd = [py, os.path.join(HERE, "two_tower_torch.py"), f"--data={args.data}", "--quiet",
                     f"--threads={args.threads}", f"--seed={r + 1}"] + flags
        torch_cmd += [f"--{k}={v}" for k, v in tt.items()]
        rows.setdefault(("two_tower", "pytorch"), []).append(run_json(torch_cmd, torch_env))
        sv = by_model["pure_svd"]["params"]
        print(f"run {r + 1}/{args.runs}: sklearn", file=sys.stderr, flush=True)
        sk_cmd = [py, os.path.join(HERE, "puresvd_sklearn.py"), f"--data={args.data}",
                  f"--threads={args.threads}", f"--rank={sv['rank']}",
                  f"--power_iterations={sv['power_iterations']}", f"--oversampling={sv['oversampling']}",
                  f"--weighting={sv['weighting']}"] + flags
        if float(sv.get("item_norm_exponent", "0")) != 0.0:
            sys.exit("puresvd_sklearn.py has no item_norm_exponent; compare with item_norm_exponent=0")
        rows.setdefault(("pure_svd", "sklearn"), []).append(run_json(sk_cmd))
    load_end = load()

    metrics = ["map", "ndcg@10", "precision@10", "recall@10"]
    title = "VALIDATION parts" if args.validation else "test"
    print(f"\nRecommenders protocol on ML-100K ({title}, stratified per {args.split_by}), k=10, "
          f"{args.threads} threads, {args.runs} runs "
          f"interleaved; load average {load_start:.1f} at start, {load_end:.1f} at end")
    print(f"{'model':<10} {'impl':<8}" + "".join(f" {m:>12}" for m in metrics) +
          f" {'train s (median, min-max)':>28}")
    summary = {}
    for model, peer in (("two_tower", "pytorch"), ("pure_svd", "sklearn")):
        for impl in ("recd", peer):
            res = rows[(model, impl)]
            med = {m: statistics.median(x["metrics"][m] for x in res) for m in metrics}
            secs = [x["train_seconds"] for x in res]
            summary[(model, impl)] = (med, statistics.median(secs))
            print(f"{model:<10} {impl:<8}" + "".join(f" {med[m]:12.4f}" for m in metrics) +
                  f" {statistics.median(secs):10.3f} ({min(secs):.3f}-{max(secs):.3f})")
        (mr, tr), (mp, tp) = summary[(model, "recd")], summary[(model, peer)]
        print(f"{'':<10} {'ratio':<8}" + "".join(f" {mr[m] - mp[m]:+12.4f}" for m in metrics) +
              f"   {peer} time / recd time = {tp / tr:.2f}x")
    print("\n(ratio row: recd minus peer for metrics; metrics are medians over runs, the peers' seeds"
          " vary per run, recd's seed is fixed)")
    params = rows[("two_tower", "recd")][0]["params"]
    print("two_tower params: " + ", ".join(f"{k}={v}" for k, v in sorted(params.items())))


if __name__ == "__main__":
    main()
