#!/usr/bin/env python3
"""The PyTorch twin of recd's two-tower model (core/two_tower.h), on receval's Recommenders
protocol, for a side-by-side comparison of quality and training time.

Same model, loss, optimiser, initialisation scheme and hyperparameter names as recd:
  item tower  [id embedding (zero for items without training interactions or when dropped),
               mean of hashed genre embeddings] -> ReLU MLP -> dim
  user tower  [mean of the history embeddings of the user's `history_length` most recent
               training items (the example's target excluded), user id embedding] -> ReLU MLP -> dim
  outputs L2-normalised (normalize=1) and scored q·v / temperature;
  in-batch softmax over the batch's positives, minus logq_weight * log Q(item) (the item's share
  of training examples), other copies of the target item masked; dense Adam.
Only the random draws differ (torch's generator instead of recd's PortableRng).

    /usr/bin/python3 bench/peers/two_tower_torch.py --data=../shared/data/ml-100k [--validation]
        [--threads=2] [--epochs=...] [--json=out.json]
"""
import argparse
import json
import sys

import numpy as np
import torch

import common

# recd's defaults (core/two_tower.cc); compare.py passes recd's values explicitly anyway.
DEFAULTS = dict(dim=32, embedding_dim=32, hidden_dim=64, hidden_layers=1, history_length=50,
                feature_buckets=1024, epochs=7, batch_size=512, learning_rate=0.005, weight_decay=0.0,
                temperature=0.1, normalize=1, logq_weight=1.5, user_id_dropout=0.0,
                item_id_dropout=0.0, history_dropout=0.0, init_std=0.05)


def mlp(in_dim, hidden, layers, out_dim):
    mods, d = [], in_dim
    for _ in range(layers):
        lin = torch.nn.Linear(d, hidden)
        torch.nn.init.normal_(lin.weight, 0.0, (2.0 / d) ** 0.5)
        torch.nn.init.zeros_(lin.bias)
        mods += [lin, torch.nn.ReLU()]
        d = hidden
    lin = torch.nn.Linear(d, out_dim)
    torch.nn.init.normal_(lin.weight, 0.0, (1.0 / d) ** 0.5)
    torch.nn.init.zeros_(lin.bias)
    mods.append(lin)
    return torch.nn.Sequential(*mods)


class TwoTower(torch.nn.Module):
    def __init__(self, n_users, n_items, feature_index, feature_count, p):
        super().__init__()
        de = p["embedding_dim"]
        self.p = p
        self.item_id = torch.nn.Embedding(n_items, de)
        self.hist = torch.nn.Embedding(n_items + 1, de, padding_idx=n_items)  # last row: padding
        self.user_id = torch.nn.Embedding(n_users, de)
        self.feat = torch.nn.Embedding(max(p["feature_buckets"], 1) + 1, de, padding_idx=max(p["feature_buckets"], 1))
        for e in (self.item_id, self.hist, self.user_id, self.feat):
            torch.nn.init.normal_(e.weight, 0.0, p["init_std"])
            if e.padding_idx is not None:
                with torch.no_grad():
                    e.weight[e.padding_idx].zero_()
        self.item_mlp = mlp(2 * de, p["hidden_dim"], p["hidden_layers"], p["dim"])
        self.user_mlp = mlp(2 * de, p["hidden_dim"], p["hidden_layers"], p["dim"])
        self.feature_index = feature_index  # n_items x F (padded with the padding bucket)
        self.feature_count = feature_count  # n_items, >= 1 to avoid 0/0

    def item_vectors(self, items, id_mask=None):
        e = self.item_id(items)
        if id_mask is not None:
            e = e * id_mask.unsqueeze(1)
        f = self.feat(self.feature_index[items]).sum(1) / self.feature_count[items].unsqueeze(1)
        v = self.item_mlp(torch.cat([e, f], 1))
        return torch.nn.functional.normalize(v, dim=1) if self.p["normalize"] else v

    def user_vectors(self, users, hist_index, hist_count, exclude=None, id_mask=None, hist_keep=None):
        pad = self.hist.padding_idx
        if exclude is not None:  # the example's own item leaves the pool
            hist_index = hist_index.masked_fill(hist_index == exclude.unsqueeze(1), pad)
        if hist_keep is not None:  # history dropout: a random part of the pool per example
            hist_index = hist_index.masked_fill(~hist_keep, pad)
        s = self.hist(hist_index).sum(1)  # B x de
        count = (hist_index != pad).sum(1).float()
        pooled = s / count.clamp(min=1.0).unsqueeze(1)
        e = self.user_id(users)
        if id_mask is not None:
            e = e * id_mask.unsqueeze(1)
        q = self.user_mlp(torch.cat([pooled, e], 1))
        return torch.nn.functional.normalize(q, dim=1) if self.p["normalize"] else q


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/ml-100k")
    ap.add_argument("--validation", action="store_true")
    ap.add_argument("--split_by", default="item", choices=["item", "user"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", default="")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--eval_every", type=int, default=0, help="also evaluate every n epochs (exploration)")
    for k, v in DEFAULTS.items():
        ap.add_argument("--" + k, type=type(v), default=v)
    args = ap.parse_args()
    p = {k: getattr(args, k) for k in DEFAULTS}
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.RandomState(args.seed)

    data = common.load_ml100k(args.data)
    train_rows, test_rows = common.recommenders_split(data, validation=args.validation,
                                                      by=args.split_by)
    n_users, n_items = data["n_users"], data["n_items"]
    tu, ti = data["users"][train_rows], data["items"][train_rows]  # time order

    with common.Timer() as prep:
        # Recent history: the last history_length distinct items per user in time order.
        hist = [[] for _ in range(n_users)]
        for u, i in zip(tu.tolist(), ti.tolist()):
            h = hist[u]
            if i in h:
                h.remove(i)
            h.append(i)
        L = p["history_length"]
        recent = [h[-L:] for h in hist]
        hist_index = np.full((n_users, L), n_items, dtype=np.int64)
        hist_count = np.zeros(n_users, dtype=np.int64)
        for u, h in enumerate(recent):
            hist_index[u, :len(h)] = h
            hist_count[u] = len(h)
        # Examples: distinct (user, item) pairs, user-major, items ascending.
        pairs = sorted(set(zip(tu.tolist(), ti.tolist())))
        ex_user = np.array([u for u, _ in pairs], dtype=np.int64)
        ex_item = np.array([i for _, i in pairs], dtype=np.int64)
        counts = np.bincount(ex_item, minlength=n_items).astype(np.float64)
        log_q = np.log(np.maximum(counts, 1.0) / len(pairs)).astype(np.float32)
        # Hashed genre features, as recd: FNV-1a 64 of "c:" + name, modulo feature_buckets.
        buckets = max(p["feature_buckets"], 1)
        max_f = max(1, max(len(g) for g in data["item_genres"]))
        feature_index = np.full((n_items, max_f), buckets, dtype=np.int64)
        feature_count = np.ones(n_items, dtype=np.float32)
        if p["feature_buckets"] > 0:
            for i, g in enumerate(data["item_genres"]):
                for j, name in enumerate(g):
                    feature_index[i, j] = common.fnv1a64("c:" + name) % buckets
                feature_count[i] = max(1, len(g))

    model = TwoTower(n_users, n_items, torch.from_numpy(feature_index), torch.from_numpy(feature_count), p)
    opt = torch.optim.Adam(model.parameters(), lr=p["learning_rate"], weight_decay=p["weight_decay"])
    t_hist_index = torch.from_numpy(hist_index)
    t_hist_count = torch.from_numpy(hist_count)
    t_log_q = torch.from_numpy(log_q)
    train_items = common.items_by_user(tu, ti, n_users)
    test_items = common.items_by_user(data["users"][test_rows], data["items"][test_rows], n_users)

    def evaluate():
        with torch.no_grad():
            q = model.user_vectors(torch.arange(n_users), t_hist_index, t_hist_count)
            v = model.item_vectors(torch.arange(n_items), torch.from_numpy(counts > 0).float())
            scores = (q @ v.t()).numpy()
        return common.ranking_metrics(scores, train_items, test_items)

    n = len(pairs)
    B = p["batch_size"]
    losses = []
    with common.Timer() as train_timer:
        for epoch in range(p["epochs"]):
            perm = torch.from_numpy(rng.permutation(n))
            total = 0.0
            for start in range(0, n, B):
                idx = perm[start:start + B]
                u = torch.from_numpy(ex_user)[idx]
                i = torch.from_numpy(ex_item)[idx]
                b = len(idx)
                umask = (torch.rand(b) >= p["user_id_dropout"]).float() if p["user_id_dropout"] > 0 else None
                imask = (torch.rand(b) >= p["item_id_dropout"]).float() if p["item_id_dropout"] > 0 else None
                hkeep = (torch.rand(b, L) >= p["history_dropout"]) if p["history_dropout"] > 0 else None
                q = model.user_vectors(u, t_hist_index[u], t_hist_count[u], i, umask, hkeep)
                v = model.item_vectors(i, imask)
                logits = q @ v.t()
                if p["normalize"]:
                    logits = logits / p["temperature"]
                logits = logits - p["logq_weight"] * t_log_q[i].unsqueeze(0)
                same = (i.unsqueeze(0) == i.unsqueeze(1)) & ~torch.eye(b, dtype=torch.bool)
                logits = logits.masked_fill(same, float("-inf"))
                loss = torch.nn.functional.cross_entropy(logits, torch.arange(b))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * b
            losses.append(total / n)
            line = f"epoch {epoch + 1}: loss {losses[-1]:.4f}"
            if args.eval_every and (epoch + 1) % args.eval_every == 0:
                line += f"  ndcg@10 {evaluate()['ndcg@10']:.4f}"
            if not args.quiet:
                print(line, file=sys.stderr, flush=True)
    train_seconds = prep.seconds + train_timer.seconds
    metrics = evaluate()
    result = dict(peer="pytorch", model="two_tower", torch=torch.__version__, threads=args.threads,
                  validation=args.validation, params=p, train_seconds=train_seconds,
                  final_loss=losses[-1] if losses else None, metrics=metrics)
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
