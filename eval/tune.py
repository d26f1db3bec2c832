#!/usr/bin/env python3
"""Grid search for one model on the validation parts of receval's protocols (never the tests).

    eval/tune.py --receval=build/eval/receval --model=als --protocol=recommenders \
        --metric=ndcg@10 factors=64,128 regularization=1,5,20 alpha=1,2,5

Every combination of the given values is trained with `receval --validation`; results are printed
best first (lower is better for rmse/mae) and appended as JSON lines to --log if given. Extra
receval flags go after `--`.
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
    lower_is_better = args.metric in ("rmse", "mae")
    rows = []
    for combo in itertools.product(*values):
        params = fixed + [f"{k}={v}" for k, v in zip(keys, combo)]
        cmd = [args.receval, "--validation", f"--models={args.model}", f"--protocols={args.protocol}",
               "--json=-", "--model_params=" + ",".join(f"{name}.{p}" for p in params)] + extra
        if args.data:
            cmd.append(f"--data={args.data}")
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print("FAILED", params, out.stderr.strip().splitlines()[-1:], file=sys.stderr)
            continue
        result = json.loads(out.stdout)["results"][0]
        value = result["metrics"][args.metric]
        rows.append((value, params, result["train_seconds"], result["metrics"]))
        print(f"{args.metric} {value:.4f}  {result['train_seconds']:6.2f} s  {' '.join(params)}", flush=True)
        if args.log:
            with open(args.log, "a") as f:
                f.write(json.dumps({"model": args.model, "protocol": args.protocol, "params": params,
                                    "metrics": result["metrics"], "train_seconds": result["train_seconds"]}) + "\n")
    rows.sort(key=lambda r: r[0], reverse=not lower_is_better)
    print("\nbest first:")
    for value, params, secs, _ in rows[:10]:
        print(f"  {args.metric} {value:.4f}  {secs:6.2f} s  {' '.join(params)}")


if __name__ == "__main__":
    main()
