// An in-memory cache of the newest history entries of recently read users, private to the
// RocksDB store (rocks_store.cc): callers of Store never see it.
//
// Why: every Recommend reads the user's newest --max_history entries, and walking them backwards
// in RocksDB (SeekForPrev + Prev, each Prev a skip-list search in the memtable) cost about half
// of the server's CPU per call. A hit here is a hash lookup and one copy.
//
// Contract: each cached user holds the newest depth() entries of their history (all of it when
// shorter), oldest first, exactly as RocksStore's uncached read returns them. The store keeps
// that true by the protocol below; the cache cannot check it.
//
//   Reader:  Lookup(user, n, &ticket)   a hit returns the newest n entries;
//            on a miss:  read the newest depth() entries from RocksDB (after Lookup returned),
//                        Install(user, ticket, entries), which keeps them only if no writer
//                        touched the user's shard meanwhile.
//   Writer:  after its RocksDB write committed and before acknowledging it,
//            Apply(users, entries) for appended entries (idempotent, in any commit order), or
//            Invalidate(users) for anything else (deletions, failed writes).
//
// Memory: bounded by `capacity` charge units, split evenly over the shards. A user is charged
// the HistoryEntry slots it has allocated plus kUserOverheadEntries for its bookkeeping; least
// recently used users are evicted per shard. Buffers are wiped before they are freed, so an
// erased user's entries do not linger in freed memory through the cache.
//
// Thread safety: every method may be called from any thread. Each shard has its own mutex, a
// leaf lock (nothing else is acquired while it is held) held only for in-memory work, never
// across RocksDB I/O.
#ifndef RECD_STORAGE_HISTORY_CACHE_H_
#define RECD_STORAGE_HISTORY_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/types/span.h"
#include "core/types.h"

namespace recd::storage {

class HistoryCache {
 public:
  // Bookkeeping of one cached user (list node, hash slot, allocation headers), in HistoryEntry
  // units: about 100 bytes.
  static constexpr size_t kUserOverheadEntries = 3;

  // What a missing reader must hand back to Install: the state of the shard when it missed.
  struct Ticket {
    uint64_t generation = 0;
  };

  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t users = 0;    // users cached now
    uint64_t entries = 0;  // history entries cached now
    uint64_t charged = 0;  // budget units in use (<= capacity)
  };

  // depth >= 1: entries kept per user. capacity: budget in HistoryEntry units over all shards.
  HistoryCache(size_t depth, size_t capacity);
  ~HistoryCache();
  HistoryCache(const HistoryCache&) = delete;
  HistoryCache& operator=(const HistoryCache&) = delete;

  size_t depth() const { return depth_; }
  // Whether a read of the newest max_entries can be answered from the cache (0 = "all" cannot).
  bool Serves(size_t max_entries) const { return max_entries > 0 && max_entries <= depth_; }

  // Precondition: Serves(max_entries). A hit replaces *out's contents (reusing its capacity)
  // with the user's newest max_entries entries, oldest first, makes the user most recently
  // used and returns true. A miss clears *out, fills *ticket for Install and returns false.
  bool Lookup(UserIndex user, size_t max_entries, Ticket* ticket, std::vector<HistoryEntry>* out);

  // Caches `newest`: the user's newest min(depth, all) entries, oldest first, read from RocksDB
  // after the Lookup that produced `ticket` returned. Dropped when a writer went through the
  // user's shard since that Lookup, when the user is already cached, or when it exceeds the
  // shard's budget on its own.
  void Install(UserIndex user, const Ticket& ticket, absl::Span<const HistoryEntry> newest);

  // After a committed append: entries[i] (with its sequence) was appended for users[i]. Updates
  // the users that are cached; entries already there (same sequence) are skipped, so a write
  // that a concurrent miss already read is not added twice.
  void Apply(absl::Span<const UserIndex> users, absl::Span<const HistoryEntry> entries);

  // After any other change to these users' history keys (erasure, a failed write that may or
  // may not have landed): forgets them, and refuses installs that started before.
  void Invalidate(absl::Span<const UserIndex> users);

  bool Contains(UserIndex user) const;  // for tests
  Stats GetStats() const;

 private:
  struct Shard;  // history_cache.cc

  Shard& ShardOf(UserIndex user) const;

  const size_t depth_;
  size_t shard_budget_ = 0;  // charge units per shard
  size_t num_shards_ = 0;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace recd::storage

#endif  // RECD_STORAGE_HISTORY_CACHE_H_
