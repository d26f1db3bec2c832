#!/usr/bin/env python3
"""Grid search for one model on the validation parts of receval's protocols (never the tests).

    eval/tune.py --receval=build/eval/receval --model=als --protocol=recommenders \
        --metric=ndcg@10 factors=64,128 regularization=1,5,20 alpha=1,2,5

Every combination of the given values is trained with `receval --validation`; results are printed
best first (lower is better for rmse/mae) and appended as JSON lines to --log if given. Extra
receval flags go after `--`.

One validation carve-out is a noisy measure (differences of a few thousandths of nDCG@10 on
ML-100K come and go with its seed). --validation_seeds=43,44,45 measures every combination on
each of those carve-outs of the same training part (receval --validation_seed; the test part is
never involved) and ranks by the mean, printing the spread.
"""
import argparse
import itertools
import json
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--receval", required=True)
    ap.add_argument("--data", default="")
    ap.add_argument("--model", required=True, help="name[:algorithm]")
    ap.add_argument("--protocol", default="recommenders")
    ap.add_argument("--metric", default="ndcg@10")
    ap.add_argument("--fixed", default="", help="key=value,... applied to every run")
    ap.add_argument("--log", default="")
    ap.add_argument("--validation_seeds", default="",
                    help="comma-separated receval --validation_seed values (recommenders protocol); "
                         "rank by the mean")
    ap.add_argument("grid", nargs="*", help="key=v1,v2,...")
    # argparse would read everything after "--" as grid entries: split it off first.
    argv = sys.argv[1:]
    after = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    args, extra = ap.parse_known_args(argv)
    extra += after
    name = args.model.split(":")[0]
    keys, values = [], []
    for g in args.grid:
        k, v = g.split("=", 1)
        keys.append(k)
        values.append(v.split(","))
    fixed = [f for f in args.fixed.split(",") if f]
    seeds = [s for s in args.validation_seeds.split(",") if s] or [None]
    lower_is_better = args.metric in ("rmse", "mae")
    rows = []
    for combo in itertools.product(*values):
        params = fixed + [f"{k}={v}" for k, v in zip(keys, combo)]
        per_seed, secs = [], []
        for seed in seeds:
            cmd = [args.receval, "--validation", f"--models={args.model}", f"--protocols={args.protocol}",
                   "--json=-", "--model_params=" + ",".join(f"{name}.{p}" for p in params)] + extra
            if args.data:
                cmd.append(f"--data={args.data}")
            if seed is not None:
                cmd.append(f"--validation_seed={seed}")
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print("FAILED", params, out.stderr.strip().splitlines()[-1:], file=sys.stderr)
                break
            result = json.loads(out.stdout)["results"][0]
            per_seed.append(result["metrics"][args.metric])
            secs.append(result["train_seconds"])
            if args.log:
                with open(args.log, "a") as f:
                    f.write(json.dumps({"model": args.model, "protocol": args.protocol, "params": params,
                                        "validation_seed": seed, "metrics": result["metrics"],
                                        "train_seconds": result["train_seconds"]}) + "\n")
        if len(per_seed) < len(seeds):
            continue
        value = sum(per_seed) / len(per_seed)
        sec = sum(secs) / len(secs)
        spread = f"  [{min(per_seed):.4f}, {max(per_seed):.4f}]" if len(per_seed) > 1 else ""
        rows.append((value, params, sec, spread))
        print(f"{args.metric} {value:.4f}{spread}  {sec:6.2f} s  {' '.join(params)}", flush=True)
    rows.sort(key=lambda r: r[0], reverse=not lower_is_better)
    print("\nbest first" + (f" (mean over validation seeds {','.join(seeds)})" if seeds[0] else "") + ":")
    for value, params, sec, spread in rows[:10]:
        print(f"  {args.metric} {value:.4f}{spread}  {sec:6.2f} s  {' '.join(params)}")


if __name__ == "__main__":
    main()
