#include "storage/history_cache.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/sync.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

HistoryEntry Entry(uint64_t sequence) {
  HistoryEntry e;
  e.sequence = sequence;
  e.item = static_cast<ItemIndex>(sequence * 7 % 101);
  e.timestamp_ms = static_cast<int64_t>(sequence) * 1000;
  e.value = static_cast<float>(sequence) / 4;
  e.has_value = sequence % 3 == 0;
  e.event = sequence % 2 == 0 ? EventType::kClick : EventType::kRating;
  return e;
}

std::vector<HistoryEntry> Entries(std::initializer_list<uint64_t> sequences) {
  std::vector<HistoryEntry> out;
  for (uint64_t s : sequences) out.push_back(Entry(s));
  return out;
}

std::vector<uint64_t> Sequences(const std::vector<HistoryEntry>& entries) {
  std::vector<uint64_t> out;
  for (const HistoryEntry& e : entries) out.push_back(e.sequence);
  return out;
}

bool SameEntry(const HistoryEntry& a, const HistoryEntry& b) {
  return a.item == b.item && a.timestamp_ms == b.timestamp_ms && a.sequence == b.sequence &&
         std::bit_cast<uint32_t>(a.value) == std::bit_cast<uint32_t>(b.value) &&
         a.event == b.event && a.has_value == b.has_value;
}

// HistoryCache::Lookup as an optional: the newest n entries, or nullopt on a miss.
std::optional<std::vector<HistoryEntry>> Lookup(HistoryCache& cache, UserIndex user, size_t n,
                                                HistoryCache::Ticket* ticket) {
  std::vector<HistoryEntry> out;
  if (!cache.Lookup(user, n, ticket, &out)) return std::nullopt;
  return out;
}

// The cached newest n of `user`, or nullopt on a miss.
std::optional<std::vector<uint64_t>> Cached(HistoryCache& cache, UserIndex user, size_t n) {
  HistoryCache::Ticket ticket;
  std::optional<std::vector<HistoryEntry>> hit = Lookup(cache, user, n, &ticket);
  if (!hit.has_value()) return std::nullopt;
  return Sequences(*hit);
}

std::vector<HistoryEntry> Newest(const std::vector<HistoryEntry>& all, size_t n) {
  return std::vector<HistoryEntry>(all.end() - std::min(n, all.size()), all.end());
}

void Fill(HistoryCache& cache, UserIndex user, const std::vector<HistoryEntry>& newest) {
  HistoryCache::Ticket ticket;
  ASSERT_FALSE(Lookup(cache, user, 1, &ticket).has_value());
  cache.Install(user, ticket, newest);
  ASSERT_TRUE(cache.Contains(user));
}

// A cache with one shard (small budgets do that), so that every user shares the generation.
constexpr size_t kBig = size_t{1} << 20;

TEST(HistoryCacheTest, MissThenInstallThenHit) {
  HistoryCache cache(/*depth=*/8, kBig);
  EXPECT_TRUE(cache.Serves(1));
  EXPECT_TRUE(cache.Serves(8));
  EXPECT_FALSE(cache.Serves(0));
  EXPECT_FALSE(cache.Serves(9));
  EXPECT_EQ(Cached(cache, 3, 8), std::nullopt);
  Fill(cache, 3, Entries({2, 5, 9}));
  EXPECT_THAT(Cached(cache, 3, 8), ::testing::Optional(ElementsAre(2, 5, 9)));
  EXPECT_THAT(Cached(cache, 3, 2), ::testing::Optional(ElementsAre(5, 9)));
  // Every field is kept.
  HistoryCache::Ticket ticket;
  std::vector<HistoryEntry> got = *Lookup(cache, 3, 8, &ticket);
  const std::vector<HistoryEntry> want = Entries({2, 5, 9});
  for (size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(SameEntry(got[i], want[i])) << i;
  // An empty history is cached too (an unknown user, or a known one with nothing left).
  Fill(cache, 4, {});
  EXPECT_THAT(Cached(cache, 4, 8), ::testing::Optional(IsEmpty()));

  const HistoryCache::Stats stats = cache.GetStats();
  EXPECT_EQ(stats.users, 2u);
  EXPECT_EQ(stats.entries, 3u);
  EXPECT_EQ(stats.charged, 3 + 2 * HistoryCache::kUserOverheadEntries);
  EXPECT_EQ(stats.hits, 4u);
  EXPECT_EQ(stats.misses, 3u);
}

TEST(HistoryCacheTest, AppendsKeepTheNewestDepthEntries) {
  HistoryCache cache(/*depth=*/4, kBig);
  Fill(cache, 1, Entries({1, 2}));
  cache.Apply({1, 1, 1}, Entries({3, 4, 5}));
  EXPECT_THAT(Cached(cache, 1, 4), ::testing::Optional(ElementsAre(2, 3, 4, 5)));
  for (uint64_t s = 6; s < 40; ++s) cache.Apply({1}, Entries({s}));  // wraps the ring many times
  EXPECT_THAT(Cached(cache, 1, 4), ::testing::Optional(ElementsAre(36, 37, 38, 39)));
  EXPECT_THAT(Cached(cache, 1, 3), ::testing::Optional(ElementsAre(37, 38, 39)));
  EXPECT_EQ(cache.GetStats().entries, 4u);
  EXPECT_EQ(cache.GetStats().charged, 4 + HistoryCache::kUserOverheadEntries);
  // An install of more than depth entries keeps the newest depth.
  Fill(cache, 2, Entries({1, 2, 3, 4, 5, 6}));
  EXPECT_THAT(Cached(cache, 2, 4), ::testing::Optional(ElementsAre(3, 4, 5, 6)));
}

TEST(HistoryCacheTest, OutOfOrderAndRepeatedAppends) {
  HistoryCache cache(/*depth=*/4, kBig);
  Fill(cache, 1, Entries({10}));
  cache.Apply({1}, Entries({14}));
  cache.Apply({1}, Entries({12}));   // committed after 14
  cache.Apply({1}, Entries({12}));   // already there (a miss read it): skipped
  cache.Apply({1}, Entries({5}));    // older than all, history not full: it belongs
  EXPECT_THAT(Cached(cache, 1, 4), ::testing::Optional(ElementsAre(5, 10, 12, 14)));
  cache.Apply({1}, Entries({3}));    // full, and older than the 4 newest: not among them
  EXPECT_THAT(Cached(cache, 1, 4), ::testing::Optional(ElementsAre(5, 10, 12, 14)));
  cache.Apply({1}, Entries({11}));   // full, in the middle: the oldest goes
  EXPECT_THAT(Cached(cache, 1, 4), ::testing::Optional(ElementsAre(10, 11, 12, 14)));
  cache.Apply({1, 1, 1}, Entries({16, 13, 15}));  // one batch, mixed
  EXPECT_THAT(Cached(cache, 1, 4), ::testing::Optional(ElementsAre(13, 14, 15, 16)));
  // Entries of users not cached are ignored.
  cache.Apply({2}, Entries({17}));
  EXPECT_FALSE(cache.Contains(2));
}

TEST(HistoryCacheTest, WritersRefuseInstallsThatStartedBeforeThem) {
  // One shard: a write to any user moves the generation every install checks.
  HistoryCache cache(/*depth=*/4, /*capacity=*/64);
  HistoryCache::Ticket ticket;
  ASSERT_FALSE(Lookup(cache, 1, 4, &ticket).has_value());
  cache.Apply({2}, Entries({7}));
  cache.Install(1, ticket, Entries({1, 2}));  // may lack entry 7's batch: refused
  EXPECT_FALSE(cache.Contains(1));

  ASSERT_FALSE(Lookup(cache, 1, 4, &ticket).has_value());
  cache.Invalidate({1});  // e.g. DeleteUser committed after the read
  cache.Install(1, ticket, Entries({1, 2}));
  EXPECT_FALSE(cache.Contains(1));

  ASSERT_FALSE(Lookup(cache, 1, 4, &ticket).has_value());
  cache.Install(1, ticket, Entries({1, 2}));
  EXPECT_TRUE(cache.Contains(1));
  // A second install (another reader that missed at the same time) changes nothing.
  cache.Install(1, ticket, Entries({1}));
  EXPECT_THAT(Cached(cache, 1, 4), ::testing::Optional(ElementsAre(1, 2)));
}

TEST(HistoryCacheTest, InvalidateForgetsTheUser) {
  HistoryCache cache(/*depth=*/4, kBig);
  Fill(cache, 1, Entries({1, 2, 3}));
  Fill(cache, 2, Entries({4}));
  cache.Invalidate({1});
  EXPECT_FALSE(cache.Contains(1));
  EXPECT_TRUE(cache.Contains(2));
  EXPECT_EQ(cache.GetStats().users, 1u);
  EXPECT_EQ(cache.GetStats().entries, 1u);
  EXPECT_EQ(cache.GetStats().charged, 1 + HistoryCache::kUserOverheadEntries);
}

TEST(HistoryCacheTest, EvictsLeastRecentlyReadUsersWithinTheBudget) {
  // Room for two users of 4 entries each (plus bookkeeping), not three.
  constexpr size_t kUser = 4 + HistoryCache::kUserOverheadEntries;
  HistoryCache cache(/*depth=*/4, /*capacity=*/2 * kUser + 1);
  Fill(cache, 1, Entries({1, 2, 3, 4}));
  Fill(cache, 2, Entries({5, 6, 7, 8}));
  ASSERT_TRUE(Cached(cache, 1, 4).has_value());  // 1 is now the most recently read
  Fill(cache, 3, Entries({9, 10, 11, 12}));
  EXPECT_TRUE(cache.Contains(1));
  EXPECT_FALSE(cache.Contains(2));
  EXPECT_TRUE(cache.Contains(3));
  EXPECT_LE(cache.GetStats().charged, 2 * kUser + 1);

  // Growth by appends evicts too: user 4 starts small and grows to depth.
  cache.Invalidate({1});
  Fill(cache, 4, Entries({13}));
  EXPECT_TRUE(cache.Contains(3));
  ASSERT_TRUE(Cached(cache, 4, 4).has_value());
  cache.Apply({4, 4, 4}, Entries({14, 15, 16}));  // 4's ring grows to 4 slots (capped at depth)
  EXPECT_LE(cache.GetStats().charged, 2 * kUser + 1);
  EXPECT_THAT(Cached(cache, 4, 4), ::testing::Optional(ElementsAre(13, 14, 15, 16)));

  // A user larger than the whole budget is not cached at all.
  HistoryCache tiny(/*depth=*/100, /*capacity=*/10);
  HistoryCache::Ticket ticket;
  ASSERT_FALSE(Lookup(tiny, 1, 100, &ticket).has_value());
  std::vector<HistoryEntry> many;
  for (uint64_t s = 1; s <= 50; ++s) many.push_back(Entry(s));
  tiny.Install(1, ticket, many);
  EXPECT_FALSE(tiny.Contains(1));
  EXPECT_EQ(tiny.GetStats().charged, 0u);
}

// Simulates the store's protocol one step at a time in random interleavings: writers reserve a
// sequence, commit it to the "database" (the truth), then Apply it; readers Lookup, read the
// database at some later step, then Install. Checks that hits hold every applied write (as the
// newest depth entries allow) and that once everything is applied every cached user equals the
// newest depth entries of the truth.
TEST(HistoryCacheTest, RandomInterleavingsOfTheProtocol) {
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    const size_t depth = 1 + rng() % 6;
    const size_t capacity = (seed % 3 == 0) ? 3 * (depth + HistoryCache::kUserOverheadEntries)
                                            : kBig;
    HistoryCache cache(depth, capacity);
    constexpr UserIndex kUsers = 5;
    std::map<UserIndex, std::vector<HistoryEntry>> db;    // committed, by sequence
    std::map<UserIndex, uint64_t> applied_max;            // newest applied sequence per user
    struct Write {
      UserIndex user;
      uint64_t sequence;
      int stage = 0;  // 0 reserved, 1 committed
    };
    struct Read {
      UserIndex user;
      HistoryCache::Ticket ticket;
      std::optional<std::vector<HistoryEntry>> result;  // read from db
    };
    std::vector<Write> writes;
    std::vector<Read> reads;
    uint64_t next_sequence = 1;
    auto newest = [&](UserIndex u, size_t n) {
      const std::vector<HistoryEntry>& all = db[u];
      return std::vector<HistoryEntry>(all.end() - std::min(n, all.size()), all.end());
    };
    auto check_hit = [&](UserIndex u, size_t n) {
      HistoryCache::Ticket ticket;
      std::optional<std::vector<HistoryEntry>> hit = Lookup(cache, u, n, &ticket);
      if (!hit.has_value()) {
        reads.push_back(Read{u, ticket, std::nullopt});
        return;
      }
      const std::vector<uint64_t> got = Sequences(*hit);
      ASSERT_TRUE(std::is_sorted(got.begin(), got.end()));
      ASSERT_LE(got.size(), n);
      // Everything in it was committed, and the newest applied write is there or pushed out by
      // n newer ones.
      for (const HistoryEntry& e : *hit) {
        const auto& all = db[u];
        ASSERT_TRUE(std::any_of(all.begin(), all.end(), [&](const HistoryEntry& c) {
          return SameEntry(c, e);
        }));
      }
      if (applied_max.contains(u)) {
        const uint64_t a = applied_max[u];
        const bool there = std::find(got.begin(), got.end(), a) != got.end();
        ASSERT_TRUE(there || (got.size() == n && got.front() > a))
            << "user " << u << " lost applied sequence " << a;
      }
    };
    // A write's entry lands in the database, in sequence order (the store's write batch).
    auto land = [&](const Write& write) {
      std::vector<HistoryEntry>& all = db[write.user];
      const HistoryEntry e = Entry(write.sequence);
      all.insert(std::upper_bound(all.begin(), all.end(), e,
                                  [](const HistoryEntry& a, const HistoryEntry& b) { return a.sequence < b.sequence; }),
                 e);
    };
    for (int step = 0; step < 3000; ++step) {
      const int action = static_cast<int>(rng() % 10);
      if (action < 3) {  // a writer reserves
        writes.push_back(Write{static_cast<UserIndex>(rng() % kUsers), next_sequence++});
      } else if (action < 6 && !writes.empty()) {  // a writer advances, in any order
        const size_t w = rng() % writes.size();
        Write& write = writes[w];
        if (write.stage == 0) {
          land(write);
          write.stage = 1;
        } else {
          cache.Apply({write.user}, {Entry(write.sequence)});
          applied_max[write.user] = std::max(applied_max[write.user], write.sequence);
          writes.erase(writes.begin() + static_cast<ptrdiff_t>(w));
        }
      } else if (action < 8) {  // a reader looks up
        check_hit(static_cast<UserIndex>(rng() % kUsers), 1 + rng() % depth);
        if (HasFatalFailure()) return;
      } else if (action == 8 && !reads.empty()) {  // a reader reads the database
        Read& read = reads[rng() % reads.size()];
        if (!read.result.has_value()) read.result = newest(read.user, depth);
      } else if (action == 9 && !reads.empty()) {  // a reader installs what it read
        const size_t r = rng() % reads.size();
        if (reads[r].result.has_value()) {
          cache.Install(reads[r].user, reads[r].ticket, *reads[r].result);
          reads.erase(reads.begin() + static_cast<ptrdiff_t>(r));
        }
      } else if (rng() % 50 == 0) {  // an erasure-like invalidation of a user's cached entry
        cache.Invalidate({static_cast<UserIndex>(rng() % kUsers)});
      }
    }
    // Quiesce: finish every write; pending readers install whatever they read.
    for (Write& write : writes) {
      if (write.stage == 0) land(write);
      cache.Apply({write.user}, {Entry(write.sequence)});
    }
    for (Read& read : reads) {
      if (read.result.has_value()) cache.Install(read.user, read.ticket, *read.result);
    }
    for (UserIndex u = 0; u < kUsers; ++u) {
      std::optional<std::vector<uint64_t>> got = Cached(cache, u, depth);
      if (got.has_value()) {
        EXPECT_THAT(*got, ElementsAreArray(Sequences(newest(u, depth)))) << u;
      }
    }
    EXPECT_LE(cache.GetStats().charged, capacity);
  }
}

// The same protocol on real threads, with a mutex-guarded map as the database (so that
// ThreadSanitizer sees only the cache's own synchronisation; the store's version of this test
// also runs RocksDB's write groups, whose uninstrumented internals TSan misreports). Writers
// take sequences in one order and commit them in another.
TEST(HistoryCacheTest, ConcurrentWritersAndReaders) {
  constexpr size_t kDepth = 16;
  constexpr UserIndex kUsers = 24;
  // Room for about a third of the users: readers keep missing and installing.
  HistoryCache cache(kDepth, 8 * (kDepth + HistoryCache::kUserOverheadEntries));
  Mutex db_mu;
  std::map<UserIndex, std::vector<HistoryEntry>> db;  // guarded by db_mu
  std::atomic<uint64_t> next_sequence{1};
  std::vector<std::atomic<uint64_t>> acked(kUsers);  // newest acknowledged sequence per user
  std::atomic<int> writers_left{3}, failures{0};
  auto read_db = [&](UserIndex u) {
    MutexLock lock(&db_mu);
    const std::vector<HistoryEntry>& all = db[u];
    return std::vector<HistoryEntry>(all.end() - std::min(kDepth, all.size()), all.end());
  };
  auto fail = [&](const std::string& what) {
    if (failures.fetch_add(1) < 10) ADD_FAILURE() << what;
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < 3; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(w);
      for (int b = 0; b < 3000; ++b) {
        const UserIndex u = static_cast<UserIndex>(rng() % kUsers);
        const uint64_t sequence = next_sequence.fetch_add(1);
        if (rng() % 4 == 0) std::this_thread::yield();  // let later sequences commit first
        {
          MutexLock lock(&db_mu);
          std::vector<HistoryEntry>& all = db[u];
          all.insert(std::upper_bound(all.begin(), all.end(), sequence,
                                      [](uint64_t s, const HistoryEntry& e) { return s < e.sequence; }),
                     Entry(sequence));
        }
        cache.Apply({u}, {Entry(sequence)});
        uint64_t seen = acked[u].load();
        while (seen < sequence && !acked[u].compare_exchange_weak(seen, sequence)) {
        }
      }
      --writers_left;
    });
  }
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937 rng(100 + r);
      while (writers_left.load() > 0 && failures.load() == 0) {
        const UserIndex u = static_cast<UserIndex>(rng() % kUsers);
        const size_t n = 1 + rng() % kDepth;
        const uint64_t ack = acked[u].load();
        HistoryCache::Ticket ticket;
        std::optional<std::vector<HistoryEntry>> got = Lookup(cache, u, n, &ticket);
        if (!got.has_value()) {
          std::vector<HistoryEntry> newest = read_db(u);
          cache.Install(u, ticket, newest);
          got = Newest(newest, n);
        }
        const std::vector<uint64_t> s = Sequences(*got);
        if (s.size() > n || !std::is_sorted(s.begin(), s.end())) return fail("bad read");
        const bool there = ack == 0 || std::find(s.begin(), s.end(), ack) != s.end();
        if (!there && !(s.size() == n && s.front() > ack)) {
          return fail(absl::StrCat("user ", u, " lacks acknowledged sequence ", ack));
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  for (UserIndex u = 0; u < kUsers; ++u) {
    std::optional<std::vector<uint64_t>> got = Cached(cache, u, kDepth);
    if (got.has_value()) {
      EXPECT_EQ(*got, Sequences(read_db(u))) << "user " << u;
    }
  }
  EXPECT_GT(cache.GetStats().hits, 0u);
}

}  // namespace
}  // namespace recd::storage
