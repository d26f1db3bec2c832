// The store's history cache seen through Store: cached reads are the uncached reads, under
// random operations and under concurrent writers and readers. history_cache_test.cc tests the
// cache's own mechanics.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/store.h"
#include "testing/temp_dir.h"

namespace recd::storage {
namespace {

template <typename T>
T ValueOrDie(absl::StatusOr<T> v) {
  EXPECT_TRUE(v.ok()) << v.status();
  if (!v.ok()) std::abort();
  return std::move(v).value();
}

StoreOptions Options(const std::string& path, size_t depth, size_t entries) {
  StoreOptions options;
  options.path = path;
  options.block_cache_bytes = size_t{8} << 20;
  options.sync_writes = false;  // durability is store_test's business
  options.history_cache_depth = depth;
  options.history_cache_entries = entries;
  return options;
}

std::string Describe(const std::vector<HistoryEntry>& h) {
  std::string out = absl::StrCat(h.size(), " entries:");
  for (const HistoryEntry& e : h) {
    absl::StrAppend(&out, " (seq ", e.sequence, " item ", e.item, " t ", e.timestamp_ms, " v ",
                    e.value, e.has_value ? "" : "?", " ev ", static_cast<int>(e.event), ")");
  }
  return out;
}

bool Same(const std::vector<HistoryEntry>& a, const std::vector<HistoryEntry>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].item != b[i].item || a[i].timestamp_ms != b[i].timestamp_ms ||
        a[i].sequence != b[i].sequence ||
        std::bit_cast<uint32_t>(a[i].value) != std::bit_cast<uint32_t>(b[i].value) ||
        a[i].event != b[i].event || a[i].has_value != b[i].has_value) {
      return false;
    }
  }
  return true;
}

std::vector<HistoryEntry> Newest(const std::vector<HistoryEntry>& all, size_t n) {
  if (n == 0 || n >= all.size()) return all;
  return std::vector<HistoryEntry>(all.end() - static_cast<ptrdiff_t>(n), all.end());
}

InteractionInput RandomInteraction(std::mt19937& rng, const std::string& user, int items) {
  static constexpr EventType kEvents[] = {EventType::kView,     EventType::kClick,
                                          EventType::kPurchase, EventType::kRating,
                                          EventType::kDislike,  EventType::kImpression};
  InteractionInput in;
  in.user_id = user;
  in.item_id = absl::StrCat("item", rng() % items);
  in.event = kEvents[rng() % std::size(kEvents)];
  in.has_value = in.event == EventType::kRating || rng() % 4 == 0;
  in.value = in.has_value ? static_cast<float>(rng() % 1000) / 7.0f : 0.0f;
  in.timestamp_ms = 1'700'000'000'000 + static_cast<int64_t>(rng() % 1'000'000);
  return in;
}

struct CacheConfig {
  size_t depth;
  size_t entries;
};

class HistoryCacheEquivalenceTest : public ::testing::TestWithParam<CacheConfig> {};

// The same random operations on a store with the cache and one without; every read of the
// first equals the same read of the second, and the newest n of its own uncached read.
TEST_P(HistoryCacheEquivalenceTest, CachedReadsEqualUncachedReads) {
  const CacheConfig config = GetParam();
  recd::testing::TempDir dir;
  auto cached = ValueOrDie(Store::Open(Options(dir.Sub("cached"), config.depth, config.entries)));
  auto plain = ValueOrDie(Store::Open(Options(dir.Sub("plain"), config.depth, 0)));
  std::mt19937 rng(static_cast<uint32_t>(config.depth * 31 + config.entries));
  constexpr int kUsers = 20, kItems = 30;
  const size_t depth = config.depth;
  const int steps = depth >= 1000 ? 400 : 1500;  // long histories make each step dearer
  int reads = 0;
  for (int step = 0; step < steps; ++step) {
    const int action = static_cast<int>(rng() % 20);
    if (action < 9) {
      std::vector<InteractionInput> batch;
      const bool big = rng() % 8 == 0;  // longer than the depth
      const int size = 1 + static_cast<int>(rng() % (big ? 3 * depth + 2 : 6));
      for (int i = 0; i < size; ++i) {
        batch.push_back(RandomInteraction(rng, absl::StrCat("u", rng() % kUsers), kItems));
      }
      const AppendResult a = ValueOrDie(cached->AppendInteractions(batch));
      const AppendResult b = ValueOrDie(plain->AppendInteractions(batch));
      ASSERT_EQ(a.first_sequence, b.first_sequence);
      ASSERT_EQ(a.users, b.users);
    } else if (action == 9) {
      const std::string user = absl::StrCat("u", rng() % kUsers);
      EXPECT_EQ(cached->DeleteUser(user).status().code(), plain->DeleteUser(user).status().code());
    } else {
      // A known user, or any index (holes of erased users, never assigned ones).
      UserIndex user;
      if (rng() % 4 == 0) {
        user = static_cast<UserIndex>(rng() % (kUsers * 3));
      } else {
        std::optional<UserIndex> found = cached->FindUser(absl::StrCat("u", rng() % kUsers));
        if (!found.has_value()) continue;
        user = *found;
      }
      const size_t choices[] = {1, depth / 2 + 1, depth, depth + 1, 0, 1 + rng() % depth};
      const size_t n = choices[rng() % std::size(choices)];
      const std::vector<HistoryEntry> got = ValueOrDie(cached->GetUserHistory(user, n));
      const std::vector<HistoryEntry> want = ValueOrDie(plain->GetUserHistory(user, n));
      ASSERT_TRUE(Same(got, want)) << "step " << step << " user " << user << " n " << n
                                   << "\ncached: " << Describe(got) << "\nplain:  " << Describe(want);
      const std::vector<HistoryEntry> all = ValueOrDie(cached->GetUserHistory(user, 0));
      ASSERT_TRUE(Same(got, Newest(all, n))) << "step " << step;
      ++reads;
    }
  }
  const StoreStats stats = cached->GetStats();
  EXPECT_GT(reads, steps / 3);
  EXPECT_GT(stats.history_cache_hits, 0u);
  EXPECT_GT(stats.history_cache_misses, 0u);
  EXPECT_LE(stats.history_cache_entries, config.entries);
  const StoreStats off = plain->GetStats();
  EXPECT_EQ(off.history_cache_hits + off.history_cache_misses + off.history_cache_users, 0u);
  std::printf("depth %zu, budget %zu: %llu hits, %llu misses, %llu users, %llu entries cached\n",
              config.depth, config.entries, static_cast<unsigned long long>(stats.history_cache_hits),
              static_cast<unsigned long long>(stats.history_cache_misses),
              static_cast<unsigned long long>(stats.history_cache_users),
              static_cast<unsigned long long>(stats.history_cache_entries));
}

INSTANTIATE_TEST_SUITE_P(
    Budgets, HistoryCacheEquivalenceTest,
    ::testing::Values(CacheConfig{8, 1'000'000},   // everything fits
                      CacheConfig{8, 40},          // about 3 users: constant eviction
                      CacheConfig{1, 30},          // depth 1
                      CacheConfig{2000, 4'000'000} // the defaults
                      ),
    [](const ::testing::TestParamInfo<CacheConfig>& info) {
      return absl::StrCat("depth", info.param.depth, "_budget", info.param.entries);
    });

// A store (history cache depth 4) holding, for each (user, count) in turn, that many random
// interactions of the user over 5 items, appended in one batch.
std::unique_ptr<Store> StoreWithUsers(const recd::testing::TempDir& dir, uint32_t seed,
                                      const std::vector<std::pair<std::string, int>>& users) {
  auto store = ValueOrDie(Store::Open(Options(dir.Sub("a"), 4, 1000)));
  std::vector<InteractionInput> batch;
  std::mt19937 rng(seed);
  for (const auto& [user, count] : users) {
    for (int i = 0; i < count; ++i) batch.push_back(RandomInteraction(rng, user, 5));
  }
  EXPECT_TRUE(store->AppendInteractions(batch).ok());
  return store;
}

// The engine keeps one vector per serving thread and reads every user's history into it: each
// read (uncached, a miss, a hit) must replace what the vector held, never append to it.
TEST(HistoryCacheStoreTest, ReadsIntoAVectorReplaceItsContents) {
  recd::testing::TempDir dir;
  auto store = StoreWithUsers(dir, 11, {{"long", 6}, {"short", 2}});
  const UserIndex long_user = *store->FindUser("long"), short_user = *store->FindUser("short");
  std::vector<HistoryEntry> buffer(50);  // stale contents from an earlier request
  for (size_t n : {size_t{0}, size_t{3}, size_t{3}, size_t{100}}) {  // all, miss, hit, beyond depth
    ASSERT_TRUE(store->GetUserHistory(long_user, n, &buffer).ok());
    EXPECT_TRUE(Same(buffer, ValueOrDie(store->GetUserHistory(long_user, n)))) << n;
    ASSERT_TRUE(store->GetUserHistory(short_user, n, &buffer).ok());
    EXPECT_TRUE(Same(buffer, ValueOrDie(store->GetUserHistory(short_user, n)))) << n;
    EXPECT_EQ(buffer.size(), 2u);
  }
  ASSERT_TRUE(store->GetUserHistory(12345, 3, &buffer).ok());  // an unknown user
  EXPECT_TRUE(buffer.empty());
}

TEST(HistoryCacheStoreTest, ReadsBeyondTheDepthAndDisabledCachesBypassIt) {
  recd::testing::TempDir dir;
  auto store = StoreWithUsers(dir, 7, {{"u", 10}});
  const UserIndex u = *store->FindUser("u");
  EXPECT_EQ(ValueOrDie(store->GetUserHistory(u, 0)).size(), 10u);
  EXPECT_EQ(ValueOrDie(store->GetUserHistory(u, 5)).size(), 5u);
  StoreStats stats = store->GetStats();
  EXPECT_EQ(stats.history_cache_hits + stats.history_cache_misses, 0u);
  EXPECT_EQ(ValueOrDie(store->GetUserHistory(u, 4)).size(), 4u);  // miss, installs 4
  EXPECT_EQ(ValueOrDie(store->GetUserHistory(u, 2)).size(), 2u);  // hit
  stats = store->GetStats();
  EXPECT_EQ(stats.history_cache_misses, 1u);
  EXPECT_EQ(stats.history_cache_hits, 1u);
  EXPECT_EQ(stats.history_cache_users, 1u);
  EXPECT_EQ(stats.history_cache_entries, 4u);
  store.reset();

  for (const auto& [depth, entries] : {std::pair<size_t, size_t>{0, 1000}, {4, 0}}) {
    auto off = ValueOrDie(Store::Open(Options(dir.Sub("a"), depth, entries)));
    EXPECT_EQ(ValueOrDie(off->GetUserHistory(u, 3)).size(), 3u);
    EXPECT_EQ(ValueOrDie(off->GetUserHistory(u, 3)).size(), 3u);
    stats = off->GetStats();
    EXPECT_EQ(stats.history_cache_hits + stats.history_cache_misses + stats.history_cache_users, 0u);
  }
}

// DeleteUser leaves nothing of the user in the cache; a reappearing id starts afresh.
TEST(HistoryCacheStoreTest, DeleteUserLeavesNothingCached) {
  recd::testing::TempDir dir;
  auto store = ValueOrDie(Store::Open(Options(dir.path(), 100, 100'000)));
  std::mt19937 rng(3);
  std::vector<InteractionInput> batch;
  for (int i = 0; i < 30; ++i) batch.push_back(RandomInteraction(rng, i % 3 == 0 ? "kept" : "gone", 9));
  ASSERT_TRUE(store->AppendInteractions(batch).ok());
  const UserIndex gone = *store->FindUser("gone"), kept = *store->FindUser("kept");
  ASSERT_EQ(ValueOrDie(store->GetUserHistory(gone, 100)).size(), 20u);
  ASSERT_EQ(ValueOrDie(store->GetUserHistory(kept, 100)).size(), 10u);
  ASSERT_EQ(ValueOrDie(store->GetUserHistory(gone, 100)).size(), 20u);  // a hit
  StoreStats stats = store->GetStats();
  ASSERT_EQ(stats.history_cache_users, 2u);
  ASSERT_EQ(stats.history_cache_entries, 30u);

  ASSERT_TRUE(store->DeleteUser("gone").ok());
  stats = store->GetStats();
  EXPECT_EQ(stats.history_cache_users, 1u);
  EXPECT_EQ(stats.history_cache_entries, 10u);  // only "kept"'s
  EXPECT_TRUE(ValueOrDie(store->GetUserHistory(gone, 100)).empty());
  EXPECT_TRUE(ValueOrDie(store->GetUserHistory(gone, 100)).empty());  // cached as empty
  EXPECT_EQ(store->GetStats().history_cache_entries, 10u);

  // The id comes back as a new user, with only its new history.
  ASSERT_TRUE(store->AppendInteractions({RandomInteraction(rng, "gone", 9)}).ok());
  const UserIndex again = *store->FindUser("gone");
  EXPECT_NE(again, gone);
  EXPECT_EQ(ValueOrDie(store->GetUserHistory(again, 100)).size(), 1u);
  EXPECT_TRUE(ValueOrDie(store->GetUserHistory(gone, 100)).empty());
}

// Writers and readers on many threads. Each writer checks read-your-writes on its own user right
// after every acknowledged append; readers check that every read is sorted, within its size,
// and holds the newest acknowledged entry of the user (or n newer ones). Afterwards every
// user's cached read equals the uncached read and the union of what was appended.
TEST(HistoryCacheStoreTest, ConcurrentWritersAndReadersSeeAcknowledgedAppends) {
  recd::testing::TempDir dir;
  constexpr size_t kDepth = 40;
  // Room for about 8 full users of the 16: evictions keep readers missing and installing.
  auto store = ValueOrDie(Store::Open(Options(dir.path(), kDepth, 8 * (kDepth + 3))));
  constexpr int kWriters = 4, kReaders = 3, kShared = 12, kBatches = 200;
  // Every user exists before the threads start, so indices are known.
  std::vector<InteractionInput> seed;
  std::vector<std::string> names;
  for (int s = 0; s < kShared; ++s) names.push_back(absl::StrCat("shared", s));
  for (int w = 0; w < kWriters; ++w) names.push_back(absl::StrCat("own", w));
  std::mt19937 seed_rng(1);
  for (const std::string& name : names) seed.push_back(RandomInteraction(seed_rng, name, 50));
  const AppendResult first = ValueOrDie(store->AppendInteractions(seed));
  const UserIndex max_user = *std::max_element(first.users.begin(), first.users.end());

  std::vector<std::atomic<uint64_t>> acked(max_user + 1);
  for (size_t i = 0; i < seed.size(); ++i) acked[first.users[i]] = first.first_sequence + i;
  struct Appended {
    UserIndex user;
    HistoryEntry entry;
  };
  std::vector<std::vector<Appended>> appended(kWriters);
  std::atomic<int> writers_left{kWriters};
  std::atomic<int> failures{0};
  std::atomic<uint64_t> reader_reads{0};
  auto fail = [&](const std::string& what) {
    if (failures.fetch_add(1) < 10) ADD_FAILURE() << what;
  };
  // Checks a read of n newest entries against the newest acknowledged sequence before it.
  auto check = [&](UserIndex u, size_t n, uint64_t ack, const std::vector<HistoryEntry>& got) {
    if (got.size() > n) return fail(absl::StrCat("user ", u, ": ", got.size(), " > ", n));
    for (size_t i = 1; i < got.size(); ++i) {
      if (got[i - 1].sequence >= got[i].sequence) {
        return fail(absl::StrCat("user ", u, " unsorted: ", Describe(got)));
      }
    }
    const bool there = std::any_of(got.begin(), got.end(),
                                   [&](const HistoryEntry& e) { return e.sequence == ack; });
    if (!there && !(got.size() == n && got.front().sequence > ack)) {
      fail(absl::StrCat("user ", u, " n ", n, " lacks acknowledged sequence ", ack, ": ",
                        Describe(got)));
    }
  };

  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(100 + w);
      const UserIndex own = first.users[kShared + w];
      for (int b = 0; b < kBatches; ++b) {
        std::vector<InteractionInput> batch;
        const int size = 1 + static_cast<int>(rng() % 4);
        for (int i = 0; i < size; ++i) {
          batch.push_back(RandomInteraction(rng, names[rng() % kShared], 50));
        }
        batch.push_back(RandomInteraction(rng, names[kShared + w], 50));
        absl::StatusOr<AppendResult> r = store->AppendInteractions(batch);
        if (!r.ok()) return fail(r.status().ToString());
        for (size_t i = 0; i < batch.size(); ++i) {
          const uint64_t sequence = r->first_sequence + i;
          HistoryEntry e;
          e.item = r->items[i];
          e.timestamp_ms = batch[i].timestamp_ms;
          e.sequence = sequence;
          e.value = batch[i].value;
          e.event = batch[i].event;
          e.has_value = batch[i].has_value;
          appended[w].push_back(Appended{r->users[i], e});
          uint64_t seen = acked[r->users[i]].load();
          while (seen < sequence && !acked[r->users[i]].compare_exchange_weak(seen, sequence)) {
          }
        }
        // Read-your-writes: nobody else writes `own`, so its newest entry is this batch's last.
        const size_t n = 1 + rng() % kDepth;
        absl::StatusOr<std::vector<HistoryEntry>> h = store->GetUserHistory(own, n);
        if (!h.ok()) return fail(h.status().ToString());
        if (h->empty() || h->back().sequence != r->last_sequence) {
          return fail(absl::StrCat("writer ", w, " does not see its sequence ", r->last_sequence,
                                   ": ", Describe(*h)));
        }
        check(own, n, r->last_sequence, *h);
      }
      --writers_left;
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937 rng(200 + r);
      while (writers_left.load() > 0 && failures.load() == 0) {
        const UserIndex u = first.users[rng() % names.size()];
        const size_t n = rng() % 8 == 0 ? kDepth : 1 + rng() % kDepth;
        const uint64_t ack = acked[u].load();
        absl::StatusOr<std::vector<HistoryEntry>> h = store->GetUserHistory(u, n);
        if (!h.ok()) return fail(h.status().ToString());
        check(u, n, ack, *h);
        ++reader_reads;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);

  // The truth: the seed plus everything acknowledged, by user, in sequence order.
  std::map<UserIndex, std::vector<HistoryEntry>> truth;
  for (size_t i = 0; i < seed.size(); ++i) {
    HistoryEntry e;
    e.item = first.items[i];
    e.timestamp_ms = seed[i].timestamp_ms;
    e.sequence = first.first_sequence + i;
    e.value = seed[i].value;
    e.event = seed[i].event;
    e.has_value = seed[i].has_value;
    truth[first.users[i]].push_back(e);
  }
  for (const auto& per_writer : appended) {
    for (const Appended& a : per_writer) truth[a.user].push_back(a.entry);
  }
  for (auto& [user, entries] : truth) {
    std::sort(entries.begin(), entries.end(),
              [](const HistoryEntry& a, const HistoryEntry& b) { return a.sequence < b.sequence; });
    const std::vector<HistoryEntry> all = ValueOrDie(store->GetUserHistory(user, 0));
    ASSERT_TRUE(Same(all, entries)) << "user " << user << "\nstore: " << Describe(all)
                                    << "\ntruth: " << Describe(entries);
    for (size_t n : {size_t{1}, size_t{7}, kDepth}) {
      for (int pass = 0; pass < 2; ++pass) {  // a miss or a hit, then a hit
        const std::vector<HistoryEntry> got = ValueOrDie(store->GetUserHistory(user, n));
        ASSERT_TRUE(Same(got, Newest(entries, n)))
            << "user " << user << " n " << n << "\ncached: " << Describe(got)
            << "\ntruth:  " << Describe(Newest(entries, n));
      }
    }
  }
  const StoreStats stats = store->GetStats();
  EXPECT_GT(reader_reads.load(), 0u);
  EXPECT_GT(stats.history_cache_hits, 0u);
  std::printf("%llu reader reads; cache: %llu hits, %llu misses\n",
              static_cast<unsigned long long>(reader_reads.load()),
              static_cast<unsigned long long>(stats.history_cache_hits),
              static_cast<unsigned long long>(stats.history_cache_misses));
}

}  // namespace
}  // namespace recd::storage
