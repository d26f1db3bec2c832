"""Shared by the Python peers: MovieLens loading, the protocols and the metrics of receval.

Everything here mirrors recd's C++ (core/eval_protocol.*, core/eval_metrics.*, eval/receval.cc)
so that the peers and recd train and test on identical interactions and are scored alike:
  * python_stratified_split semantics of Microsoft Recommenders (numpy RandomState per group,
    Python round), per item (filter_by="item", as Recommenders' MovieLens benchmark notebook),
    ratio 0.75, seed 42 (--split_by=user: per user); --validation splits the training part
    again the same way (90/10, seed + 1);
  * the training part is then stably sorted by timestamp (recd feeds models a time-ordered log);
  * ranking over all items minus the user's training items, k = 10; metrics as Recommenders'
    python_evaluation (MAP divided by the user's number of relevant items).
The MovieLens files are read from --data at run time and never copied.
"""
import math
import os
import time

import numpy as np


def load_ml100k(data_dir):
    """u.data in file order -> (users, items, ratings, timestamps) as numpy arrays of 0-based
    indices (ML-100K ids are 1..n, recd maps id -> id - 1), plus item genre lists from u.item."""
    raw = np.loadtxt(os.path.join(data_dir, "u.data"), dtype=np.int64)
    users = raw[:, 0] - 1
    items = raw[:, 1] - 1
    genres = []
    with open(os.path.join(data_dir, "u.genre"), encoding="latin-1") as f:
        for line in f:
            line = line.strip()
            if line:
                genres.append(line.split("|")[0])
    item_genres = {}
    with open(os.path.join(data_dir, "u.item"), encoding="latin-1") as f:
        for line in f:
            fields = line.rstrip("\n").split("|")
            if len(fields) < 5 + len(genres):
                continue
            flags = fields[5:5 + len(genres)]
            item_genres[int(fields[0]) - 1] = [g for g, v in zip(genres, flags) if v == "1"]
    n_users = int(users.max()) + 1
    n_items = max(int(items.max()) + 1, max(item_genres) + 1)
    features = [item_genres.get(i, []) for i in range(n_items)]
    return dict(users=users, items=items, ratings=raw[:, 2].astype(np.float32), timestamps=raw[:, 3],
                n_users=n_users, n_items=n_items, item_genres=features)


def stratified_split(groups, ratio=0.75, seed=42):
    """Indices (into the given rows) of the train and test parts, as python_stratified_split
    with filter_by=<the column given as groups>: per group, numpy RandomState(seed).permutation
    of the group's rows in input order, the first round(ratio * n) to train. Both parts keep
    input order."""
    order = np.argsort(groups, kind="stable")
    train_mask = np.zeros(len(groups), dtype=bool)
    boundaries = np.flatnonzero(np.diff(groups[order])) + 1
    for group in np.split(order, boundaries):
        perm = np.random.RandomState(seed).permutation(len(group))
        cut = round(ratio * len(group))
        train_mask[group[perm[:cut]]] = True
    return np.flatnonzero(train_mask), np.flatnonzero(~train_mask)


def recommenders_split(data, validation=False, ratio=0.75, seed=42, by="item"):
    """(train_rows, test_rows) of the Recommenders protocol; train rows sorted by timestamp.
    Stratified per item (receval's default) or per user (by="user"); validation: the training
    part split again 90/10 the same way with seed + 1 (as receval)."""
    groups = data[{"item": "items", "user": "users"}[by]]
    train, test = stratified_split(groups, ratio, seed)
    if validation:
        sub_train, sub_test = stratified_split(groups[train], 0.9, seed + 1)
        train, test = train[sub_train], train[sub_test]
    train = train[np.argsort(data["timestamps"][train], kind="stable")]
    return train, test


def items_by_user(users, items, n_users):
    out = [[] for _ in range(n_users)]
    for u, i in zip(users.tolist(), items.tolist()):
        out[u].append(i)
    return [sorted(set(x)) for x in out]


def ranking_metrics(scores, train_items, test_items, k=10):
    """scores: n_users x n_items array. Ties go to the lower item index (as recd's scorer).
    Returns MAP, nDCG@k, precision@k, recall@k averaged over users with test items."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    totals = np.zeros(4)
    n = 0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    for u, relevant in enumerate(test_items):
        if not relevant:
            continue
        s = scores[u]
        s[train_items[u]] = -np.inf
        # argsort of -score, stable: equal scores keep ascending item order.
        top = np.argsort(-s, kind="stable")[:k]
        rel = set(relevant)
        hits = np.array([i in rel for i in top.tolist()], dtype=np.float64)
        n_hits = hits.sum()
        dcg = (hits * discounts[:len(hits)]).sum()
        idcg = discounts[:min(len(rel), k)].sum()
        precision_at_hits = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        totals += [(precision_at_hits * hits).sum() / len(rel), dcg / idcg, n_hits / k, n_hits / len(rel)]
        n += 1
    totals /= max(n, 1)
    return {"map": totals[0], f"ndcg@{k}": totals[1], f"precision@{k}": totals[2], f"recall@{k}": totals[3],
            "users": n}


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
