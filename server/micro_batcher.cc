#include "server/micro_batcher.h"

#include <algorithm>
#include <utility>

#include "core/embedding.h"

namespace recd::server {

MicroBatcher::MicroBatcher(const ItemScorer* scorer, size_t max_batch, size_t max_concurrent)
    : scorer_(scorer),
      max_batch_(std::max<size_t>(max_batch, 2)),
      max_concurrent_(std::max<size_t>(max_concurrent, 1)) {}

MicroBatcher::Result MicroBatcher::TopK(absl::Span<const float> query, int k,
                                        const ItemBitset* exclude) {
  Result out;
  // What TopK answers with nothing: not worth a queue slot, and a query of the wrong length
  // cannot be a row of the batch matrix.
  if (k <= 0 || static_cast<int64_t>(query.size()) != scorer_->dim()) {
    out.items = scorer_->TopK(query, k, exclude);
    return out;
  }
  Pending me;
  me.query = query;
  me.k = k;
  me.exclude = exclude;
  mu_.Lock();
  ++calls_;
  queue_.push_back(&me);
  while (!me.done) {
    // Wait while every scan slot is taken, or while this call is already in a running scan
    // (another caller led it off the queue).
    if (active_ >= max_concurrent_ || queue_.empty()) {
      cv_.Wait(&mu_);
      continue;
    }
    // Lead a scan for the oldest queued calls (this one is among them unless the queue holds
    // more than max_batch; then it waits for a later scan).
    const size_t take = std::min(queue_.size(), max_batch_);
    std::vector<Pending*> batch(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(take));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(take));
    ++active_;
    ++scans_;
    mu_.Unlock();
    // Results are written outside the lock; their owners read them only after `done`, which
    // is set under the lock below.
    Run(batch);
    mu_.Lock();
    for (Pending* p : batch) p->done = true;
    --active_;
    cv_.SignalAll();
  }
  out = std::move(me.result);
  mu_.Unlock();
  return out;
}

void MicroBatcher::Run(const std::vector<Pending*>& batch) const {
  if (batch.size() == 1) {
    Pending& p = *batch[0];
    p.result.items = scorer_->TopK(p.query, p.k, p.exclude);
    return;
  }
  const Eigen::Index d = scorer_->dim();
  EmbeddingMatrix queries(static_cast<Eigen::Index>(batch.size()), d);
  std::vector<const ItemBitset*> excludes(batch.size());
  int k = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    std::copy(batch[i]->query.begin(), batch[i]->query.end(), queries.row(static_cast<Eigen::Index>(i)).data());
    excludes[i] = batch[i]->exclude;
    k = std::max(k, batch[i]->k);
  }
  std::vector<std::vector<ScoredIndex>> answers = scorer_->TopKBatch(queries, k, excludes);
  for (size_t i = 0; i < batch.size(); ++i) {
    Result& r = batch[i]->result;
    r.items = std::move(answers[i]);
    // The first k of the batch's top max-k are this call's top k (one total order).
    if (r.items.size() > static_cast<size_t>(batch[i]->k)) r.items.resize(static_cast<size_t>(batch[i]->k));
    r.batched = true;
    r.batch_size = batch.size();
  }
}

uint64_t MicroBatcher::calls() const {
  MutexLock lock(&mu_);
  return calls_;
}

uint64_t MicroBatcher::scans() const {
  MutexLock lock(&mu_);
  return scans_;
}

}  // namespace recd::server
