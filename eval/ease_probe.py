#!/usr/bin/env python3
"""Quick numpy probes of changes to recd's `ease` model on ML-100K's Recommenders protocol.

    eval/ease_probe.py --data=../shared/data/ml-100k base gfcf ials   # validation only
    eval/ease_probe.py --data=../shared/data/ml-100k --test base gfcf  # one look at the test

A research aid, not part of the service: it re-implements EASE and its sequence term in dense
numpy (full B, no rank truncation, so it reads a little above receval's served rank-128 model)
to try ideas in seconds before anything is written in C++. It reproduces receval's split
(per item by default, or per user with --split_by=user; numpy RandomState(42).permutation of
each group, Python rounding; plain EASE λ 500 gives nDCG@10 0.4827 here and 0.4826 in receval at
rank 1024 per item, 0.4754 and 0.4755 per user) and measures on five validation carve-outs of the
training part (90/10 the same way, seeds 43-47; its own carve-outs, not receval's), printing the
mean and the per-carve-out values. Every probe is EASE + sequence term at recd's defaults plus one
change; issue 4's closing note of 2026-12-07 lists what each gave. Needs python3-numpy.
"""
import argparse
import collections
import datetime
import os
import sys

import numpy as np

K = 10


def load(data):
    with open(os.path.join(data, "u.data")) as f:
        return [tuple(map(int, line.split("\t"))) for line in f]


def stratified_split(rows, ratio, seed, by="item"):
    """Recommenders' python_stratified_split per item (filter_by="item", as their benchmark
    notebook) or per user; rows keep their order within a group."""
    column = {"user": 0, "item": 1}[by]
    groups = collections.OrderedDict()
    for r in rows:
        groups.setdefault(r[column], []).append(r)
    train, test = [], []
    for key in sorted(groups):
        group = groups[key]
        perm = np.random.RandomState(seed).permutation(len(group))
        cut = round(ratio * len(group))
        train += [group[i] for i in perm[:cut]]
        test += [group[i] for i in perm[cut:]]
    return train, test


class Problem:
    """One train/held-out pair as dense binary matrices."""

    def __init__(self, train, held_out, num_users, num_items):
        self.train = train
        self.x = np.zeros((num_users, num_items))
        self.t = np.zeros((num_users, num_items))
        for u, i, _, _ in train:
            self.x[u, i] = 1
        for u, i, _, _ in held_out:
            self.t[u, i] = 1
        self.cache = {}

    def memo(self, key, fn):
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]


def ndcg(scores, p):
    s = np.where(p.x > 0, -np.inf, scores)
    top = np.argpartition(-s, K, axis=1)[:, :K]
    order = np.argsort(-np.take_along_axis(s, top, 1), axis=1)
    top = np.take_along_axis(top, order, 1)
    disc = 1 / np.log2(np.arange(2, K + 2))
    relevant = p.t.sum(1)
    dcg = (np.take_along_axis(p.t, top, 1) * disc).sum(1)
    idcg = np.array([disc[: min(K, int(n))].sum() for n in relevant])
    m = relevant > 0
    return float((dcg[m] / idcg[m]).mean())


def ease(gram, lam):
    p = np.linalg.inv(gram + lam * np.eye(gram.shape[0]))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0)
    return b


def sequence_gram(p, window=15, user_weight=None):
    """recd's sequence term: triangle-weighted pairs at most `window` positions apart."""
    seqs = collections.defaultdict(list)
    for u, i, _, _ in sorted(p.train, key=lambda r: r[3]):
        seqs[u].append(i)
    n = p.x.shape[1]
    c = np.zeros((n, n))
    w = 1 - np.arange(window + 1) / (window + 1)
    uw = np.ones(p.x.shape[0]) if user_weight is None else user_weight
    for u, s in seqs.items():
        s = np.array(s)
        for d in range(1, window + 1):
            np.add.at(c, (s[:-d], s[d:]), w[d] * uw[u])
            np.add.at(c, (s[d:], s[:-d]), w[d] * uw[u])
    c[np.diag_indices(n)] += (p.x * uw[:, None]).sum(0)
    return c


def base_b(p, lam=500, seq_lambda=30, seq_weight=0.5):
    return p.memo(("B", lam, seq_lambda, seq_weight),
                  lambda: ease(p.x.T @ p.x, lam) + seq_weight * ease(sequence_gram(p), seq_lambda))


def base(p):
    return p.memo("base", lambda: p.x @ base_b(p))


def unit(s):
    return s / np.sqrt((s * s).mean())


def gfcf(p, rank=64, alpha=1.0):
    """Shen et al. 2021 (GF-CF): normalised item-item filter plus an ideal low-pass of `rank`."""
    du = np.maximum(p.x.sum(1), 1)
    di = np.maximum(p.x.sum(0), 1)
    r = p.x / np.sqrt(du)[:, None] / np.sqrt(di)[None, :]
    gram = r.T @ r
    _, v = np.linalg.eigh(gram)
    v = v[:, ::-1][:, :rank]
    ideal = (v / np.sqrt(di)[:, None]) @ (v.T * np.sqrt(di)[None, :])
    return p.x @ (gram + alpha * ideal)


def ials(p, factors=64, alpha=10.0, lam=30.0, iterations=10):
    """Hu, Koren, Volinsky with exact per-row solves."""
    rng = np.random.RandomState(0)
    users = rng.normal(0, 0.01, (p.x.shape[0], factors))
    items = rng.normal(0, 0.01, (p.x.shape[1], factors))

    def solve(m, y):
        yty = y.T @ y
        out = np.empty((m.shape[0], factors))
        for row in range(m.shape[0]):
            yr = y[np.nonzero(m[row])[0]]
            out[row] = np.linalg.solve(yty + alpha * yr.T @ yr + lam * np.eye(factors),
                                       (1 + alpha) * yr.sum(0))
        return out

    for _ in range(iterations):
        users = solve(p.x, items)
        items = solve(p.x.T, users)
    return users @ items.T


def higher_order(p, pairs=1000, pair_lambda=2000.0, lam=500.0):
    """Steck & Liang 2021: the most co-occurring item pairs as extra inputs (constrained so that
    neither a pair's items nor the item itself predict it)."""
    x = p.x
    n = x.shape[1]
    g = x.T @ x
    iu = np.triu_indices(n, 1)
    chosen = np.argsort(-g[iu])[:pairs]
    a, b = iu[0][chosen], iu[1][chosen]
    f = np.hstack([x, x[:, a] * x[:, b]])
    gf = f.T @ f
    gf[np.diag_indices(n + pairs)] += np.concatenate([np.full(n, lam), np.full(pairs, pair_lambda)])
    inv = np.linalg.inv(gf)
    unconstrained = inv @ (f.T @ x)
    constrained = [[j] for j in range(n)]
    for q, (i, k) in enumerate(zip(a, b)):
        constrained[i].append(n + q)
        constrained[k].append(n + q)
    w = np.empty_like(unconstrained)
    for j in range(n):
        s = constrained[j]
        col = unconstrained[:, j]
        w[:, j] = col - inv[:, s] @ np.linalg.solve(inv[np.ix_(s, s)], col[s])
    return f @ w + 0.5 * (x @ ease(sequence_gram(p), 30))


def item_attributes(data, num_items):
    release = np.full(num_items, np.nan)
    genres = np.zeros((num_items, 19))
    with open(os.path.join(data, "u.item"), encoding="latin-1") as f:
        for line in f:
            fields = line.rstrip("\n").split("|")
            i = int(fields[0])
            try:
                release[i] = datetime.datetime.strptime(fields[2], "%d-%b-%Y").toordinal()
            except ValueError:
                pass
            genres[i] = [int(v) for v in fields[5:24]]
    release[np.isnan(release)] = np.nanmedian(release)
    return release, genres


def probes(data, num_items):
    release, genres = item_attributes(data, num_items)

    def with_kernel(kernel, weight):
        np.fill_diagonal(kernel, 0)
        return lambda p: unit(base(p)) + weight * unit(p.x @ kernel)

    def user_length_weighted(p, g1=0.5, g2=0.5):
        n = np.maximum(p.x.sum(1), 1)
        active = p.x.sum(1) > 0
        w1, w2 = n ** -g1, n ** -g2
        w1, w2 = w1 / w1[active].mean(), w2 / w2[active].mean()
        return p.x @ (ease((p.x * w1[:, None]).T @ p.x, 500)
                      + 0.5 * ease(sequence_gram(p, user_weight=w2), 30))

    def rating_weighted_input(p, c=0.3):
        xi = np.zeros_like(p.x)
        for u, i, r, _ in p.train:
            xi[u, i] = 1 + c * (r - 3.5)
        inv = np.linalg.inv(xi.T @ xi + 500 * np.eye(p.x.shape[1]))
        pg = inv @ (xi.T @ p.x)
        b = pg - inv * (np.diag(pg) / np.diag(inv))[None, :]
        np.fill_diagonal(b, 0)
        return xi @ b + 0.5 * (p.x @ ease(sequence_gram(p), 30))

    genre_unit = genres / np.maximum(np.linalg.norm(genres, axis=1, keepdims=True), 1e-9)
    return {
        "base": base,
        "popularity_add": lambda p: unit(base(p)) + 0.02 * np.log1p(p.x.sum(0))[None, :],
        "popularity_mult": lambda p: base(p) * np.maximum(p.x.sum(0), 1)[None, :] ** 0.05,
        "user_ease": lambda p: unit(base(p)) + 0.5 * unit(ease(p.x @ p.x.T, 1000).T @ p.x),
        "ials": lambda p: unit(base(p)) + 0.5 * unit(p.memo("ials", lambda: ials(p))),
        "gfcf": lambda p: unit(base(p)) + 0.6 * unit(p.memo("gfcf", lambda: gfcf(p))),
        "higher_order": higher_order,
        "user_length_weight": user_length_weighted,
        "rating_weighted_input": rating_weighted_input,
        "release_kernel": with_kernel(np.exp(-np.abs(release[:, None] - release[None, :]) / 30), 0.05),
        "genre_kernel": with_kernel(genre_unit @ genre_unit.T, 0.05),
        "short_window": lambda p: base(p) + 0.5 * (p.x @ ease(sequence_gram(p, 3), 30)),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("RECD_MOVIELENS_DIR", "../shared/data/ml-100k"))
    ap.add_argument("--test", action="store_true", help="also measure on the test part (once, at the end)")
    ap.add_argument("--seeds", default="43,44,45,46,47")
    ap.add_argument("--split_by", default="item", choices=["item", "user"],
                    help="stratify the test split and the carve-outs per item (default) or per user")
    ap.add_argument("probe", nargs="*", default=["base"])
    args = ap.parse_args()
    rows = load(args.data)
    num_users = max(r[0] for r in rows) + 1
    num_items = max(r[1] for r in rows) + 1
    table = probes(args.data, num_items)
    unknown = [name for name in args.probe if name not in table]
    if unknown:
        sys.exit(f"unknown probe(s) {unknown}; known: {', '.join(table)}")
    train, test = stratified_split(rows, 0.75, 42, args.split_by)
    carve_outs = []
    for seed in map(int, args.seeds.split(",")):
        inner, validation = stratified_split(train, 0.9, seed, args.split_by)
        carve_outs.append(Problem(inner, validation, num_users, num_items))
    full = Problem(train, test, num_users, num_items) if args.test else None
    for name in args.probe:
        values = [ndcg(table[name](p), p) for p in carve_outs]
        line = f"{name:24s} validation nDCG@10 {np.mean(values):.4f}  ({' '.join(f'{v:.4f}' for v in values)})"
        if full is not None:
            line += f"  test {ndcg(table[name](full), full):.4f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
