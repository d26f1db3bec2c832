#include "storage/history_cache.h"

#include <string.h>  // explicit_bzero

#include <algorithm>
#include <list>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "core/sync.h"

// Why a cached user always holds the newest `depth` entries of its committed history
// ----------------------------------------------------------------------------------
// Appends commit out of sequence order: sequences are reserved under the store's mutex, then
// many batches write concurrently (RocksDB group commit). Writers call Apply after their write
// committed and before they acknowledge it; readers that miss read RocksDB after Lookup and call
// Install. Both run under the shard's mutex, which totally orders them, and every Apply and
// Invalidate bumps the shard's generation.
//
// Let S be the set of entries a cached user holds. Invariant: S = newest_depth(R ∪ A), where R
// is what the RocksDB read that installed the user saw and A is the entries Apply added since.
// newest_depth is compositional (newest_depth(newest_depth(X) ∪ Y) = newest_depth(X ∪ Y)), so
// Insert's "add in sequence order, drop the oldest beyond depth" keeps it.
//
// Install(user, ticket) succeeds only if the generation still equals the one Lookup recorded,
// i.e. no Apply/Invalidate ran on the shard between the Lookup and the Install. Take any write W
// for the user, committed at time c(W) and applied at a(W) > c(W) (under the lock). The reader's
// RocksDB read starts at r, after its Lookup at l, and it installs at i > r.
//   1. a(W) < l: W committed before the read started, so R contains W.
//   2. l < a(W) < i: the generation moved; the install is refused.
//   3. a(W) > i: W's Apply runs on the installed entry. If c(W) < r, R already holds W's entries
//      and Apply skips them (same sequence = same entry: sequences are never reused). If
//      c(W) > r, R lacks them and Apply inserts them. Either way S = newest_depth(R ∪ {W}).
// So once every write that committed has been applied, S is exactly the newest depth entries
// of the user's history: what the uncached read returns. In particular an acknowledged append
// (Apply ran before the acknowledgement) is in every later read, cached or not: read-your-writes.
// A write that has committed but not yet been applied may be seen by an uncached read and not
// by a cached one; it is not acknowledged yet, so neither answer is wrong.
//
// Deletions: DeleteUser calls Invalidate after its write (appends are excluded meanwhile), which
// drops the user and bumps the generation: a reader that read the user's entries before the
// deletion committed cannot install them afterwards (case 2), and one that installs before the
// Invalidate is erased by it. A failed write also invalidates its users, since RocksDB does not
// say whether a failed write is visible.
//
// A generation per shard rather than per user costs spurious refusals (a write to another user
// of the shard); with 64 shards they are rare, and a refused install only means the next read
// misses again.

namespace recd::storage {
namespace {

constexpr size_t kMaxShards = 64;

// A user's newest entries, oldest first, in a ring of at most `depth` slots.
class Ring {
 public:
  explicit Ring(absl::Span<const HistoryEntry> entries)
      : capacity_(entries.size()), size_(entries.size()) {
    if (capacity_ > 0) {
      slots_ = std::make_unique<HistoryEntry[]>(capacity_);
      std::copy(entries.begin(), entries.end(), slots_.get());
    }
  }
  ~Ring() { Wipe(); }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }

  // Appends the newest n entries (all when fewer), oldest first.
  void CopyNewest(size_t n, std::vector<HistoryEntry>* out) const {
    n = std::min(n, size_);
    out->reserve(out->size() + n);
    if (n == 0) return;
    const size_t first = Physical(size_ - n);
    const size_t run = std::min(n, capacity_ - first);
    out->insert(out->end(), slots_.get() + first, slots_.get() + first + run);
    out->insert(out->end(), slots_.get(), slots_.get() + (n - run));
  }

  // Adds `e` in sequence order, keeping the newest `depth` entries. Returns whether it was added
  // (not when an entry with its sequence is there, or when it is older than `depth` others).
  bool Insert(const HistoryEntry& e, size_t depth) {
    // Almost always the newest: out-of-order commits are only among writes in flight together.
    size_t pos = size_;
    if (size_ > 0 && At(size_ - 1).sequence >= e.sequence) {
      size_t lo = 0, hi = size_ - 1;  // first position whose sequence >= e.sequence
      while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (At(mid).sequence < e.sequence) lo = mid + 1; else hi = mid;
      }
      if (At(lo).sequence == e.sequence) return false;
      pos = lo;
    }
    if (size_ >= depth) {
      if (pos == 0) return false;  // `depth` newer entries exist
      head_ = Physical(1);         // drop the oldest
      --size_;
      --pos;
    }
    if (size_ == capacity_) Grow(std::min(depth, std::max<size_t>(2 * capacity_, 8)));
    for (size_t i = size_; i > pos; --i) At(i) = At(i - 1);
    At(pos) = e;
    ++size_;
    return true;
  }

 private:
  size_t Physical(size_t logical) const {
    const size_t p = head_ + logical;
    return p >= capacity_ ? p - capacity_ : p;
  }
  HistoryEntry& At(size_t logical) { return slots_[Physical(logical)]; }
  const HistoryEntry& At(size_t logical) const { return slots_[Physical(logical)]; }

  void Grow(size_t capacity) {
    auto slots = std::make_unique<HistoryEntry[]>(capacity);
    for (size_t i = 0; i < size_; ++i) slots[i] = At(i);
    Wipe();
    slots_ = std::move(slots);
    capacity_ = capacity;
    head_ = 0;
  }

  // Interaction data leaves no copy in freed memory (DeleteUser's promise).
  void Wipe() {
    if (slots_ != nullptr) explicit_bzero(slots_.get(), capacity_ * sizeof(HistoryEntry));
  }

  std::unique_ptr<HistoryEntry[]> slots_;
  size_t capacity_ = 0;
  size_t head_ = 0;  // physical slot of the oldest entry
  size_t size_ = 0;
};

struct CachedUser {
  CachedUser(UserIndex u, absl::Span<const HistoryEntry> entries) : user(u), ring(entries) {}
  size_t charge() const { return ring.capacity() + HistoryCache::kUserOverheadEntries; }

  const UserIndex user;
  Ring ring;
};

using LruList = std::list<CachedUser>;

// Indices 0..n-1 grouped by key (stable: input order within a key); `keys` < num_keys.
std::vector<uint32_t> GroupByKey(const std::vector<uint32_t>& keys, size_t num_keys,
                                 std::vector<uint32_t>* starts) {
  starts->assign(num_keys + 1, 0);
  for (uint32_t k : keys) ++(*starts)[k + 1];
  for (size_t k = 0; k < num_keys; ++k) (*starts)[k + 1] += (*starts)[k];
  std::vector<uint32_t> order(keys.size());
  std::vector<uint32_t> next(starts->begin(), starts->end() - 1);
  for (uint32_t i = 0; i < keys.size(); ++i) order[next[keys[i]]++] = i;
  return order;
}

}  // namespace

struct alignas(64) HistoryCache::Shard {
  // Moves users to `graveyard` (to be freed after the lock is released) until the shard fits.
  void EvictLocked(size_t budget, LruList& graveyard) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (charged > budget && !lru.empty()) EraseLocked(std::prev(lru.end()), graveyard);
  }
  void EraseLocked(LruList::iterator it, LruList& graveyard) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    charged -= it->charge();
    entries -= it->ring.size();
    index.erase(it->user);
    graveyard.splice(graveyard.end(), lru, it);
  }

  mutable Mutex mu;
  // Bumped by every Apply and Invalidate that goes through the shard (see the top comment).
  uint64_t generation ABSL_GUARDED_BY(mu) = 0;
  LruList lru ABSL_GUARDED_BY(mu);  // front = most recently read
  absl::flat_hash_map<UserIndex, LruList::iterator> index ABSL_GUARDED_BY(mu);
  size_t charged ABSL_GUARDED_BY(mu) = 0;
  size_t entries ABSL_GUARDED_BY(mu) = 0;
  uint64_t hits ABSL_GUARDED_BY(mu) = 0;
  uint64_t misses ABSL_GUARDED_BY(mu) = 0;
};

HistoryCache::HistoryCache(size_t depth, size_t capacity) : depth_(std::max<size_t>(depth, 1)) {
  // As many shards as keep room for at least 8 users of full depth in each.
  const size_t full_user = depth_ + kUserOverheadEntries;
  num_shards_ = 1;
  while (num_shards_ < kMaxShards && capacity / (2 * num_shards_) >= 8 * full_user) {
    num_shards_ *= 2;
  }
  shard_budget_ = capacity / num_shards_;
  shards_ = std::make_unique<Shard[]>(num_shards_);
}

HistoryCache::~HistoryCache() = default;

HistoryCache::Shard& HistoryCache::ShardOf(UserIndex user) const {
  // Fibonacci hashing: consecutive indices (new users) spread over the shards.
  const uint64_t h = (uint64_t{user} * 0x9E3779B97F4A7C15ull) >> 32;
  return shards_[h % num_shards_];
}

bool HistoryCache::Lookup(UserIndex user, size_t max_entries, Ticket* ticket,
                          std::vector<HistoryEntry>* out) {
  out->clear();
  Shard& shard = ShardOf(user);
  MutexLock lock(&shard.mu);
  auto it = shard.index.find(user);
  if (it == shard.index.end()) {
    ++shard.misses;
    ticket->generation = shard.generation;
    return false;
  }
  ++shard.hits;
  shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
  it->second->ring.CopyNewest(max_entries, out);
  return true;
}

void HistoryCache::Install(UserIndex user, const Ticket& ticket,
                           absl::Span<const HistoryEntry> newest) {
  if (newest.size() > depth_) newest = newest.subspan(newest.size() - depth_);
  if (newest.size() + kUserOverheadEntries > shard_budget_) return;
  // Built, and freed when refused, outside the lock.
  LruList node;
  node.emplace_back(user, newest);
  LruList graveyard;
  Shard& shard = ShardOf(user);
  MutexLock lock(&shard.mu);
  if (shard.generation != ticket.generation || shard.index.contains(user)) return;
  shard.lru.splice(shard.lru.begin(), node);
  shard.index.emplace(user, shard.lru.begin());
  shard.charged += shard.lru.front().charge();
  shard.entries += newest.size();
  shard.EvictLocked(shard_budget_, graveyard);
  // `lock` is released before `graveyard` and `node` are destroyed (reverse declaration order).
}

void HistoryCache::Apply(absl::Span<const UserIndex> users, absl::Span<const HistoryEntry> entries) {
  std::vector<uint32_t> shard_of(users.size());
  for (size_t i = 0; i < users.size(); ++i) {
    shard_of[i] = static_cast<uint32_t>(&ShardOf(users[i]) - shards_.get());
  }
  std::vector<uint32_t> starts;
  const std::vector<uint32_t> order = GroupByKey(shard_of, num_shards_, &starts);
  for (size_t s = 0; s < num_shards_; ++s) {
    if (starts[s] == starts[s + 1]) continue;
    LruList graveyard;
    Shard& shard = shards_[s];
    MutexLock lock(&shard.mu);
    ++shard.generation;
    if (shard.index.empty()) continue;
    for (uint32_t k = starts[s]; k < starts[s + 1]; ++k) {
      const uint32_t i = order[k];
      auto it = shard.index.find(users[i]);
      if (it == shard.index.end()) continue;
      CachedUser& cached = *it->second;
      const size_t charge_before = cached.charge(), size_before = cached.ring.size();
      cached.ring.Insert(entries[i], depth_);
      shard.charged += cached.charge() - charge_before;
      shard.entries += cached.ring.size() - size_before;  // neither ever shrinks
    }
    shard.EvictLocked(shard_budget_, graveyard);
  }
}

void HistoryCache::Invalidate(absl::Span<const UserIndex> users) {
  for (UserIndex user : users) {
    LruList graveyard;
    Shard& shard = ShardOf(user);
    MutexLock lock(&shard.mu);
    ++shard.generation;
    auto it = shard.index.find(user);
    if (it != shard.index.end()) shard.EraseLocked(it->second, graveyard);
  }
}

bool HistoryCache::Contains(UserIndex user) const {
  Shard& shard = ShardOf(user);
  MutexLock lock(&shard.mu);
  return shard.index.contains(user);
}

HistoryCache::Stats HistoryCache::GetStats() const {
  Stats stats;
  for (size_t s = 0; s < num_shards_; ++s) {
    Shard& shard = shards_[s];
    MutexLock lock(&shard.mu);
    stats.hits += shard.hits;
    stats.misses += shard.misses;
    stats.users += shard.index.size();
    stats.entries += shard.entries;
    stats.charged += shard.charged;
  }
  return stats;
}

}  // namespace recd::storage
