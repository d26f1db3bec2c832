// Micro-batching of concurrent top-k queries on one scorer.
//
// Under concurrent load many Recommend calls scan the same catalogue at once; one blocked
// matrix product over the catalogue (ItemScorer::TopKBatch) answers a group of queries for
// little more than the memory traffic of one scan. MicroBatcher merges the calls that arrive
// while a scan is running into the next TopKBatch call. It is opportunistic, with no timer: a
// call that finds the scorer idle runs at once (alone, as TopK), so an idle server adds no
// latency. Up to max_concurrent scans run at once (one per core, say); calls that arrive while
// all of them are busy queue up, and the first to find a scan slot free leads the next batch,
// answering the oldest queued calls (up to max_batch) with one product. Each call returns its
// own top k and honours its own exclusion set.
//
// Answers: a call answered alone gets TopK's answer; a call answered in a batch gets
// TopKBatch's row, which may differ from TopK in the last bits of the scores (core/scorer.h),
// so near-ties can order differently depending on the load. Which of the two a call gets is
// reported by the result's `batched` field.
//
// Thread-safe. The scorer must outlive the batcher.
#ifndef RECD_SERVER_MICRO_BATCHER_H_
#define RECD_SERVER_MICRO_BATCHER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/types/span.h"
#include "core/bitset.h"
#include "core/scorer.h"
#include "core/sync.h"

namespace recd::server {

class MicroBatcher {
 public:
  // max_batch >= 2: the most queries one TopKBatch call answers; max_concurrent >= 1: scans
  // (TopK or TopKBatch calls) running at once.
  MicroBatcher(const ItemScorer* scorer, size_t max_batch, size_t max_concurrent);
  MicroBatcher(const MicroBatcher&) = delete;
  MicroBatcher& operator=(const MicroBatcher&) = delete;

  struct Result {
    std::vector<ScoredIndex> items;
    bool batched = false;     // answered by TopKBatch together with other calls
    size_t batch_size = 1;    // queries in the scan that answered this call
  };

  // As scorer->TopK(query, k, exclude). `query` and `exclude` must stay valid until it returns.
  Result TopK(absl::Span<const float> query, int k, const ItemBitset* exclude) ABSL_LOCKS_EXCLUDED(mu_);

  // Calls answered so far, and scans (TopK or TopKBatch calls) that answered them.
  uint64_t calls() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t scans() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Pending {
    absl::Span<const float> query;
    int k = 0;
    const ItemBitset* exclude = nullptr;
    Result result;
    bool done = false;
  };

  // Answers `batch` (taken off the queue by the caller, the leader) outside the lock.
  void Run(const std::vector<Pending*>& batch) const;

  const ItemScorer* const scorer_;
  const size_t max_batch_;
  const size_t max_concurrent_;
  mutable Mutex mu_;
  CondVar cv_;
  std::vector<Pending*> queue_ ABSL_GUARDED_BY(mu_);  // oldest first
  size_t active_ ABSL_GUARDED_BY(mu_) = 0;            // scans running
  uint64_t calls_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t scans_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace recd::server

#endif  // RECD_SERVER_MICRO_BATCHER_H_
