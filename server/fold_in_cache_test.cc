#include "server/fold_in_cache.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace recd::server {
namespace {

std::vector<HistoryEntry> History(std::initializer_list<uint64_t> sequences) {
  std::vector<HistoryEntry> h;
  for (uint64_t s : sequences) {
    HistoryEntry e;
    e.sequence = s;
    e.item = static_cast<ItemIndex>(s % 7);
    h.push_back(e);
  }
  return h;
}

EmbeddingVector Vec(float x) { return EmbeddingVector::Constant(4, x); }

TEST(HistoryFingerprintTest, ChangesWhenEntriesAreAddedOrRemovedNotWhenReordered) {
  const uint64_t base = HistoryFingerprint(History({1, 5, 9}));
  EXPECT_EQ(base, HistoryFingerprint(History({9, 1, 5})));
  EXPECT_NE(base, HistoryFingerprint(History({1, 5, 9, 10})));  // appended
  EXPECT_NE(base, HistoryFingerprint(History({1, 5, 7, 9})));   // committed out of order
  EXPECT_NE(base, HistoryFingerprint(History({5, 9})));         // trimmed or erased
  EXPECT_NE(base, HistoryFingerprint(History({5, 9, 10})));     // window moved by one
  EXPECT_NE(HistoryFingerprint(History({})), HistoryFingerprint(History({0})));
}

TEST(FoldInCacheTest, HitsOnlyForTheSameUserAndFingerprint) {
  FoldInCache cache(100);
  EXPECT_FALSE(cache.Lookup(3, 42).has_value());
  cache.Insert(3, 42, Vec(1.5f));
  ASSERT_TRUE(cache.Lookup(3, 42).has_value());
  EXPECT_EQ(*cache.Lookup(3, 42), Vec(1.5f));
  EXPECT_FALSE(cache.Lookup(3, 43).has_value());  // the history changed
  EXPECT_FALSE(cache.Lookup(4, 42).has_value());  // another user
  cache.Insert(3, 43, Vec(2.0f));                 // replaced
  EXPECT_FALSE(cache.Lookup(3, 42).has_value());
  EXPECT_EQ(*cache.Lookup(3, 43), Vec(2.0f));
  EXPECT_EQ(cache.size(), 1u);
}

TEST(FoldInCacheTest, EraseForgetsTheUser) {
  FoldInCache cache(100);
  cache.Insert(3, 42, Vec(1.0f));
  cache.Insert(19, 42, Vec(1.0f));  // same shard (16 shards)
  cache.Erase(3);
  EXPECT_FALSE(cache.Lookup(3, 42).has_value());
  EXPECT_TRUE(cache.Lookup(19, 42).has_value());
  EXPECT_EQ(cache.size(), 1u);
}

TEST(FoldInCacheTest, StaysWithinCapacity) {
  FoldInCache cache(32);  // 2 per shard
  for (UserIndex u = 0; u < 1000; ++u) cache.Insert(u, u, Vec(static_cast<float>(u)));
  EXPECT_LE(cache.size(), 32u);
  // Whatever is kept is right.
  size_t kept = 0;
  for (UserIndex u = 0; u < 1000; ++u) {
    if (std::optional<EmbeddingVector> v = cache.Lookup(u, u)) {
      EXPECT_EQ(*v, Vec(static_cast<float>(u)));
      ++kept;
    }
  }
  EXPECT_EQ(kept, cache.size());
}

TEST(FoldInCacheTest, ZeroCapacityKeepsNothing) {
  FoldInCache cache(0);
  cache.Insert(1, 1, Vec(1.0f));
  EXPECT_FALSE(cache.Lookup(1, 1).has_value());
  EXPECT_EQ(cache.size(), 0u);
}

TEST(FoldInCacheTest, ConcurrentReadersAndWritersSeeOnlyWhatWasStored) {
  FoldInCache cache(64);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 20000; ++i) {
        const UserIndex u = static_cast<UserIndex>((i * 7 + t) % 200);
        // The vector is a function of (user, fingerprint), so any hit can be checked.
        const uint64_t fp = static_cast<uint64_t>(i % 3);
        if (std::optional<EmbeddingVector> v = cache.Lookup(u, fp)) {
          ASSERT_EQ(*v, Vec(static_cast<float>(u * 10 + fp)));
        } else {
          cache.Insert(u, fp, Vec(static_cast<float>(u * 10 + fp)));
        }
        if (i % 1000 == 0) cache.Erase(u);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(cache.size(), 64u);
}

}  // namespace
}  // namespace recd::server
