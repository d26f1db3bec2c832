// GetUserHistory with and without the store's history cache (storage/history_cache.h), for users
// with 30 and with 2000 entries, as Recommend reads them (the newest --max_history = 2000).
//
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRECD_BUILD_BENCHMARKS=ON -DRECD_BUILD_TESTS=OFF
//   cmake --build build -j2 --target history_bench && build/bench/history_bench
//
// Flags (--name=value): big_users (200, 2000 entries each), small_users (2000, 30 entries
// each), items (10000), rounds (15: calls per user and variant), seed (1).
//
// Two stores get the same interactions, shuffled into batches of 100 as live traffic would
// interleave them: one with the cache off, one with the defaults (depth 2000, 4M entries). Reads
// alternate between them user by user, so machine noise hits both alike. RocksDB is measured
// twice: with the history in the memtable (just written) and in SST files (after a reopen).
// The cache's first read of each user is a miss (a RocksDB read of the depth plus the install);
// the later ones are hits. Also reported: AppendInteractions of one entry to a cached user.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/store.h"

namespace {

using recd::HistoryEntry;
using recd::UserIndex;
using recd::storage::AppendResult;
using recd::storage::InteractionInput;
using recd::storage::Store;
using recd::storage::StoreOptions;

constexpr size_t kMaxHistory = 2000;

int64_t IntArg(int argc, char** argv, const std::string& name, int64_t fallback) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]).rfind(prefix, 0) == 0) return std::atoll(argv[i] + prefix.size());
  }
  return fallback;
}

template <typename T>
T OrDie(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, v.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(v).value();
}

std::unique_ptr<Store> OpenStore(const std::string& path, bool cache) {
  StoreOptions options;
  options.path = path;
  options.sync_writes = false;  // the benchmark is about reads
  options.history_cache_depth = kMaxHistory;
  if (!cache) options.history_cache_entries = 0;
  return OrDie(Store::Open(options), "opening the store");
}

double Micros(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
}

struct Samples {
  std::vector<double> us;
  double Quantile(double q) {
    if (us.empty()) return 0;
    const size_t k = std::min(us.size() - 1, static_cast<size_t>(q * us.size()));
    std::nth_element(us.begin(), us.begin() + static_cast<ptrdiff_t>(k), us.end());
    return us[k];
  }
  std::string Cell() {
    if (us.empty()) return "-";
    char text[64];
    std::snprintf(text, sizeof(text), "%9.1f [%7.1f]", Quantile(0.5), Quantile(0.9));
    return text;
  }
};

size_t g_sink = 0;  // keeps the reads observable

double TimedRead(Store& store, UserIndex user) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<HistoryEntry> h = OrDie(store.GetUserHistory(user, kMaxHistory), "reading");
  const double us = Micros(start);
  g_sink += h.size();
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t big_users = IntArg(argc, argv, "big_users", 200);
  const int64_t small_users = IntArg(argc, argv, "small_users", 2000);
  const int64_t items = IntArg(argc, argv, "items", 10000);
  const int64_t rounds = IntArg(argc, argv, "rounds", 15);
  std::mt19937 rng(static_cast<uint32_t>(IntArg(argc, argv, "seed", 1)));

  std::string dir = (std::filesystem::temp_directory_path() / "recd-history-bench-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string plain_path = dir + "/plain", cached_path = dir + "/cached";
  std::unique_ptr<Store> plain = OpenStore(plain_path, false);
  std::unique_ptr<Store> cached = OpenStore(cached_path, true);

  // Each user's interactions, shuffled together into batches of 100.
  std::vector<std::string> names;
  std::vector<int> tokens;
  for (int64_t u = 0; u < big_users + small_users; ++u) {
    const bool big = u < big_users;
    names.push_back(absl::StrCat(big ? "big" : "small", u));
    tokens.insert(tokens.end(), big ? 2000 : 30, static_cast<int>(u));
  }
  std::shuffle(tokens.begin(), tokens.end(), rng);
  std::vector<InteractionInput> batch;
  auto flush = [&] {
    if (batch.empty()) return;
    OrDie(plain->AppendInteractions(batch), "appending");
    OrDie(cached->AppendInteractions(batch), "appending");
    batch.clear();
  };
  for (int token : tokens) {
    InteractionInput in;
    in.user_id = names[token];
    in.item_id = absl::StrCat("item", rng() % items);
    in.event = recd::EventType::kView;
    in.timestamp_ms = 1'700'000'000'000 + static_cast<int64_t>(batch.size());
    batch.push_back(std::move(in));
    if (batch.size() == 100) flush();
  }
  flush();
  std::vector<UserIndex> big, small;
  for (int64_t u = 0; u < big_users + small_users; ++u) {
    (u < big_users ? big : small).push_back(*plain->FindUser(names[u]));
  }

  struct Row {
    const char* label;
    std::vector<UserIndex>* users;
    Samples memtable, sst, miss, hit;
  };
  Row rows[] = {{"30 entries", &small, {}, {}, {}, {}}, {"2000 entries", &big, {}, {}, {}, {}}};
  // Memtable reads and the cache's misses and hits, interleaved user by user.
  for (int64_t r = 0; r < rounds; ++r) {
    for (Row& row : rows) {
      std::vector<UserIndex> order = *row.users;
      std::shuffle(order.begin(), order.end(), rng);
      for (UserIndex u : order) {
        row.memtable.us.push_back(TimedRead(*plain, u));
        (r == 0 ? row.miss : row.hit).us.push_back(TimedRead(*cached, u));
      }
    }
  }
  // Appends of one entry to a cached 2000-entry user, with and without the cache to update.
  Samples append_plain, append_cached;
  for (int64_t r = 0; r < rounds; ++r) {
    for (UserIndex u : big) {
      InteractionInput in;
      in.user_id = plain->UserId(u);
      in.item_id = absl::StrCat("item", rng() % items);
      in.timestamp_ms = 1'700'000'000'000;
      auto start = std::chrono::steady_clock::now();
      OrDie(plain->AppendInteractions({in}), "appending");
      append_plain.us.push_back(Micros(start));
      start = std::chrono::steady_clock::now();
      OrDie(cached->AppendInteractions({in}), "appending");
      append_cached.us.push_back(Micros(start));
    }
  }
  // RocksDB again, from SST files: a reopen flushes the memtables.
  plain.reset();
  plain = OpenStore(plain_path, false);
  for (int64_t r = 0; r < rounds; ++r) {
    for (Row& row : rows) {
      std::vector<UserIndex> order = *row.users;
      std::shuffle(order.begin(), order.end(), rng);
      for (UserIndex u : order) row.sst.us.push_back(TimedRead(*plain, u));
    }
  }

  const recd::storage::StoreStats stats = cached->GetStats();
  double load[3] = {0, 0, 0};
  if (::getloadavg(load, 3) < 1) load[0] = -1;
  std::printf("GetUserHistory(user, %zu): median [p90] microseconds; %lld big + %lld small users, "
              "%lld items, %lld rounds; load %.2f\n",
              kMaxHistory, static_cast<long long>(big_users), static_cast<long long>(small_users),
              static_cast<long long>(items), static_cast<long long>(rounds), load[0]);
  std::printf("%-13s %-19s %-19s %-19s %-19s %s\n", "history", "rocksdb memtable", "rocksdb sst",
              "cache miss", "cache hit", "speed-up (memtable / hit)");
  for (Row& row : rows) {
    const double speedup = row.memtable.Quantile(0.5) / std::max(1e-9, row.hit.Quantile(0.5));
    std::printf("%-13s %-19s %-19s %-19s %-19s %.0fx\n", row.label, row.memtable.Cell().c_str(),
                row.sst.Cell().c_str(), row.miss.Cell().c_str(), row.hit.Cell().c_str(), speedup);
  }
  std::printf("AppendInteractions of 1 entry to a cached 2000-entry user (no fsync): "
              "%s without the cache, %s with it\n",
              append_plain.Cell().c_str(), append_cached.Cell().c_str());
  std::printf("cache: %llu users, %llu entries (%.1f MB of %zu-byte entries), %llu hits, %llu misses\n",
              static_cast<unsigned long long>(stats.history_cache_users),
              static_cast<unsigned long long>(stats.history_cache_entries),
              static_cast<double>(stats.history_cache_entries * sizeof(HistoryEntry)) / 1e6,
              sizeof(HistoryEntry), static_cast<unsigned long long>(stats.history_cache_hits),
              static_cast<unsigned long long>(stats.history_cache_misses));
  plain.reset();
  cached.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return g_sink == 0 ? 1 : 0;
}
