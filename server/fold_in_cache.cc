#include "server/fold_in_cache.h"

#include <algorithm>

namespace recd::server {
namespace {

// SplitMix64's finaliser: a bijective mix, so distinct sequences give distinct terms.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t HistoryFingerprint(absl::Span<const HistoryEntry> history) {
  // A sum of mixed sequences (order-free) plus the count: adding or removing entries changes it.
  uint64_t sum = 0;
  for (const HistoryEntry& h : history) sum += Mix(h.sequence);
  return Mix(sum ^ Mix(history.size()));
}

FoldInCache::FoldInCache(size_t capacity) : per_shard_((capacity + kShards - 1) / kShards) {}

std::optional<EmbeddingVector> FoldInCache::Lookup(UserIndex user, uint64_t fingerprint) const {
  if (per_shard_ == 0) return std::nullopt;
  Shard& shard = ShardFor(user);
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(user);
  if (it == shard.entries.end() || it->second.fingerprint != fingerprint) return std::nullopt;
  return it->second.vector;
}

void FoldInCache::Insert(UserIndex user, uint64_t fingerprint, const EmbeddingVector& vector) const {
  if (per_shard_ == 0) return;
  Shard& shard = ShardFor(user);
  MutexLock lock(&shard.mu);
  auto it = shard.entries.find(user);
  if (it == shard.entries.end() && shard.entries.size() >= per_shard_) {
    shard.entries.erase(shard.entries.begin());
  }
  Entry& e = shard.entries[user];
  e.fingerprint = fingerprint;
  e.vector = vector;
}

void FoldInCache::Erase(UserIndex user) const {
  Shard& shard = ShardFor(user);
  MutexLock lock(&shard.mu);
  shard.entries.erase(user);
}

size_t FoldInCache::size() const {
  size_t n = 0;
  for (Shard& shard : shards_) {
    MutexLock lock(&shard.mu);
    n += shard.entries.size();
  }
  return n;
}

}  // namespace recd::server
