// Folded-in user vectors of one model snapshot, so that a user whose history is newer than the
// model is not folded in again on every request while the history stays the same.
//
// A fold-in costs O(history x dim) plus a sort of the history (tens of microseconds for a few
// hundred entries, more than the rest of a Recommend on a small catalogue). The result depends
// only on the snapshot (which owns this cache, so a new version starts empty) and on the history
// entries it was computed from, which HistoryFingerprint() summarises: entries are identified by
// their log sequence, which is never reused, so a history that gained or lost an entry gets a
// different fingerprint, and a stale vector is never returned (up to a 64-bit hash collision).
//
// Thread-safe; lookups and inserts take one of 16 shard mutexes for a hash-map operation. Bounded:
// at most `capacity` users (rounded up to a multiple of the shard count); a full shard drops an
// arbitrary entry to make room.
#ifndef RECD_SERVER_FOLD_IN_CACHE_H_
#define RECD_SERVER_FOLD_IN_CACHE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "core/embedding.h"
#include "core/sync.h"
#include "core/types.h"

namespace recd::server {

// A 64-bit summary of `history`: equal for the same set of entries (log sequences), different
// (with overwhelming probability) once an entry is added or removed.
uint64_t HistoryFingerprint(absl::Span<const HistoryEntry> history);

class FoldInCache {
 public:
  // capacity 0 disables the cache (Lookup finds nothing, Insert keeps nothing).
  explicit FoldInCache(size_t capacity);
  FoldInCache(const FoldInCache&) = delete;
  FoldInCache& operator=(const FoldInCache&) = delete;

  // The vector stored for `user` with this fingerprint, if any.
  std::optional<EmbeddingVector> Lookup(UserIndex user, uint64_t fingerprint) const;
  // Stores (replaces) the user's vector.
  void Insert(UserIndex user, uint64_t fingerprint, const EmbeddingVector& vector) const;
  // Forgets the user (DeleteUser: nothing of an erased user stays in memory).
  void Erase(UserIndex user) const;

  size_t size() const;

 private:
  static constexpr size_t kShards = 16;
  struct Entry {
    uint64_t fingerprint = 0;
    EmbeddingVector vector;
  };
  struct Shard {
    mutable Mutex mu;
    absl::flat_hash_map<UserIndex, Entry> entries ABSL_GUARDED_BY(mu);
  };
  Shard& ShardFor(UserIndex user) const { return shards_[user % kShards]; }

  const size_t per_shard_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace recd::server

#endif  // RECD_SERVER_FOLD_IN_CACHE_H_
