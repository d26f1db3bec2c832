#!/usr/bin/env python3
"""PureSVD with scikit-learn's TruncatedSVD on receval's Recommenders protocol: the peer of
recd's pure_svd (core/pure_svd.h) for quality and training time.

Same model: the user x item matrix of the training part (weighting binary, log or raw, as recd's
`weighting`), a rank-`rank` randomized SVD (oversampling 10, `power_iterations` power
iterations, as recd's defaults), scores R V Vᵀ, training items excluded, top 10.
Training time covers building the sparse matrix, the SVD and the user projections R V, as
recd's does.

    /usr/bin/python3 bench/peers/puresvd_sklearn.py --data=../shared/data/ml-100k [--rank=10]
"""
import argparse
import json

import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.decomposition import TruncatedSVD
from threadpoolctl import threadpool_limits

import common


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/ml-100k")
    ap.add_argument("--validation", action="store_true")
    ap.add_argument("--split_by", default="item", choices=["item", "user"])
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--power_iterations", type=int, default=4)
    ap.add_argument("--oversampling", type=int, default=10)
    ap.add_argument("--weighting", default="binary", choices=["binary", "log", "raw"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    data = common.load_ml100k(args.data)
    train_rows, test_rows = common.recommenders_split(data, validation=args.validation,
                                                      by=args.split_by)
    n_users, n_items = data["n_users"], data["n_items"]
    tu, ti = data["users"][train_rows], data["items"][train_rows]
    tr = data["ratings"][train_rows]

    with threadpool_limits(limits=args.threads), common.Timer() as timer:
        raw = sp.csr_matrix((tr.astype(np.float64), (tu, ti)), shape=(n_users, n_items))
        raw.sum_duplicates()
        if args.weighting == "binary":
            raw.data[:] = 1.0
        elif args.weighting == "log":
            raw.data = 1.0 + np.log1p(raw.data)
        r = raw.astype(np.float32)
        svd = TruncatedSVD(n_components=args.rank, algorithm="randomized", n_iter=args.power_iterations,
                           n_oversamples=args.oversampling, random_state=args.seed)
        svd.fit(r)
        v = svd.components_.T.astype(np.float32)  # items x rank
        users = r @ v                             # users x rank
    scores = users @ v.T
    train_items = common.items_by_user(tu, ti, n_users)
    test_items = common.items_by_user(data["users"][test_rows], data["items"][test_rows], n_users)
    metrics = common.ranking_metrics(scores, train_items, test_items)
    result = dict(peer="sklearn", model="pure_svd", sklearn=sklearn.__version__, threads=args.threads,
                  validation=args.validation,
                  params=dict(rank=args.rank, power_iterations=args.power_iterations,
                              oversampling=args.oversampling, weighting=args.weighting),
                  train_seconds=timer.seconds, metrics=metrics)
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
