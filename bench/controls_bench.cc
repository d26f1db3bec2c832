// What each recommendation control costs: Engine::Recommend latency with and without it, in
// process (no gRPC), on a synthetic catalogue served by a real store, trainer and engine.
//
// Setup (deterministic for a given --seed): the demo generator's planted data (core/demo_data.h)
// at --items / --users / --interactions with 50 genres. Categories (a pool of 50): each item's
// primary genre, its secondary genre if any, and with probability 0.5 the neighbouring genre.
// Tags: the demo's, plus 4 flags held independently with probability 0.5/0.4/0.25/0.1. Items are
// written with UpsertItems and the log with LogInteractions (the engine's own validated write
// path; store without fsync), then pure_svd (--rank) is trained. Bench users (--bench_users,
// drawn from users the model can serve) get impressions of their current top 20 logged, and the
// model is retrained so those impressions are older than the model (no fold-in). A second pool
// of users gets impressions after the retrain (their history is newer than the model, so each
// request folds the user in). The store is then flushed and compacted (histories come from table
// files, as on a server that has been up a while). Exploration is off (exploration_share = 0).
// The engine is built here rather than through testing/engine_harness, which needs GTest and is
// only built with RECD_BUILD_TESTS=ON (benchmark builds turn tests off).
//
// Variants (each at every --k): plain; exclude_seen=false; include categories "any of" (genres
// covering ~10% of items), "all of" (the most common genre pair, ~1%), exclude categories
// (~10%); include_item_ids (1,000 ids); exclude_item_ids (100 ids); a filter keeping ~1% (a genre
// and a flag tag); 10% of the catalogue inactive (a second engine on the same store and models,
// whose catalogue marks them inactive); explain; MMR (lambda 0.3); category cap (max(2, k/10)
// per category); impressions in the demotion window; page 2 through page_token; for the second
// pool, plain and impressions with a history newer than the model. The clock (a FakeClock) sits
// outside the demotion window for every variant but the impression ones. Diagnostic rows, not
// controls: the scorer's TopK alone (no engine, no exclusions) at depth k and at the candidate
// pool depth max(100, 10k) that MMR and the category cap re-rank.
//
// Measurement: --warmup rounds, then --rounds rounds; a round calls every (variant, k) once, in
// an order shuffled per round (so load, caches and frequency changes hit all variants alike), for
// the round's user (round-robin over the bench users). Per variant: median, p10-p90, p99 in µs
// and median / plain median at the same k. Timed region: Engine::Recommend only (validation, id
// lookups, history read, exclusion set, scan, re-rank, response build).
//
//   controls_bench [--items=100000] [--users=20000] [--interactions=1000000] [--rank=64]
//                  [--k=10,100] [--rounds=300] [--warmup=20] [--bench_users=1000]
//                  [--train_threads=2] [--seed=7] [--only=explain,mmr] [--csv=FILE]
//                  [--scorer=int8|exact|int8_approx|hnsw]   (recd's --scorer; default: recd's default)
// One command (build + run): bench/run_controls_bench.sh.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/demo_data.h"
#include "server/demo.h"
#include "core/scorer.h"
#include "recd/v1/recommender.pb.h"
#include "server/clock.h"
#include "server/engine.h"
#include "server/logging.h"
#include "server/model_registry.h"
#include "server/options.h"
#include "server/trainer.h"
#include "storage/store.h"

namespace {

using Clock = std::chrono::steady_clock;
using recd::v1::RecommendRequest;
using recd::v1::RecommendResponse;

// The last --name=value (so later flags override presets such as run_controls_bench.sh --quick).
std::string Arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  const std::string prefix = "--" + name + "=";
  for (int i = argc - 1; i >= 1; --i) {
    if (std::string(argv[i]).rfind(prefix, 0) == 0) return std::string(argv[i]).substr(prefix.size());
  }
  return fallback;
}

int64_t IntArg(int argc, char** argv, const std::string& name, int64_t fallback) {
  const std::string text = Arg(argc, argv, name, "");
  if (text.empty()) return fallback;
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v < 0) {
    std::fprintf(stderr, "controls_bench: bad --%s=%s\n", name.c_str(), text.c_str());
    std::exit(2);
  }
  return v;
}

[[noreturn]] void Die(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "controls_bench: %s: %s\n", what.c_str(), std::string(s.ToString()).c_str());
  std::exit(1);
}

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

double LoadAverage() {
  double load[1] = {0};
  return getloadavg(load, 1) == 1 ? load[0] : -1.0;
}

// Linear interpolation between closest ranks; `v` sorted.
double Quantile(const std::vector<double>& v, double q) {
  if (v.empty()) return 0.0;
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// One column of the table: a request template, the engine and users it runs against.
struct Variant {
  std::string name;
  int k = 10;
  std::string note;                  // e.g. the filter's selectivity
  RecommendRequest request;          // user_id (and page_token) set per call
  recd::server::Engine* engine = nullptr;
  bool demotion_window = false;      // clock inside the impression demotion window
  const std::vector<std::string>* users = nullptr;
  const std::vector<std::string>* page_tokens = nullptr;  // per user, for page 2
  // Instead of the engine: a diagnostic call for user slot u, returning the items found.
  std::function<size_t(size_t u)> direct;
  // Results.
  std::vector<double> micros;
  double items_returned = 0;
  uint64_t errors = 0;
  std::string first_error;
};

}  // namespace

int main(int argc, char** argv) {
  const int64_t num_items = IntArg(argc, argv, "items", 100000);
  const int64_t num_users = IntArg(argc, argv, "users", 20000);
  const int64_t num_interactions = IntArg(argc, argv, "interactions", 1000000);
  const int64_t rank = IntArg(argc, argv, "rank", 64);
  const int64_t rounds = IntArg(argc, argv, "rounds", 300);
  const int64_t warmup = IntArg(argc, argv, "warmup", 20);
  const int64_t bench_users_wanted = std::max<int64_t>(1, IntArg(argc, argv, "bench_users", 1000));
  const int train_threads = static_cast<int>(std::max<int64_t>(1, IntArg(argc, argv, "train_threads", 2)));
  const uint64_t seed = static_cast<uint64_t>(IntArg(argc, argv, "seed", 7));
  const std::string csv_path = Arg(argc, argv, "csv", "");
  // Comma-separated substrings of variant names to run (plain always runs); empty = all.
  const std::vector<std::string> only = absl::StrSplit(Arg(argc, argv, "only", ""), ',', absl::SkipEmpty());
  std::vector<int> ks;
  for (absl::string_view s : absl::StrSplit(Arg(argc, argv, "k", "10,100"), ',', absl::SkipEmpty())) {
    int k = 0;
    if (!absl::SimpleAtoi(s, &k) || k < 1 || k > 1000) {
      std::fprintf(stderr, "controls_bench: bad k '%s'\n", std::string(s).c_str());
      return 2;
    }
    ks.push_back(k);
  }
  recd::server::SetMinLogLevel(recd::server::LogLevel::kWarning);

  // ---- A store, registry, trainer and engine on a fake clock, in a temporary folder. ----
  std::string dir = (std::filesystem::temp_directory_path() / "recd-controls-bench-XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  struct Cleanup {
    std::string path;
    ~Cleanup() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  } cleanup{dir};

  constexpr int64_t kStartMs = 1'800'000'000'000;
  // Category pool: 50 genres. Tags: the demo's, plus 4 broad flags ("in stock", "on sale"...)
  // that items carry independently with these probabilities.
  constexpr int kGenres = 50;
  constexpr double kFlagShare[] = {0.5, 0.4, 0.25, 0.1};
  recd::server::FakeClock clock(kStartMs);
  recd::server::ServerOptions options;
  options.models = {{"popularity", "popularity", {}},
                    {"pure_svd", "pure_svd", {{"rank", std::to_string(rank)}}}};
  options.default_model = "pure_svd";
  options.exploration_share = 0;  // Maintain() never runs here; say so explicitly
  options.sync_writes = false;
  options.seed = seed;
  if (const std::string scorer = Arg(argc, argv, "scorer", ""); !scorer.empty()) {
    if (absl::Status s = recd::server::ParseScorerKind(scorer, "--scorer", options.scorer.defaults); !s.ok()) {
      Die("flags", s);
    }
  }
  const double demotion_seconds = options.impression_demotion_seconds;  // default 1800

  recd::storage::StoreOptions store_options;
  store_options.path = dir + "/data";
  store_options.sync_writes = false;
  auto opened = recd::storage::Store::Open(store_options);
  if (!opened.ok()) Die("opening the store", opened.status());
  std::unique_ptr<recd::storage::Store> store = std::move(*opened);
  recd::server::ModelRegistry registry(options.models, options.default_model);
  recd::server::TrainerOptions trainer_options;
  trainer_options.num_threads = train_threads;
  trainer_options.seed = seed;
  trainer_options.clock = &clock;
  trainer_options.gate_enabled = false;  // the retrain only adds impressions; nothing to validate
  trainer_options.nice_increment = 0;
  trainer_options.scorer = options.scorer;
  recd::server::Trainer trainer(store.get(), &registry, trainer_options);
  recd::server::Engine engine(options, store.get(), &registry, &trainer, &clock);
  if (auto loaded = engine.LoadFromStore(); !loaded.ok()) Die("loading", loaded.status());

  // ---- Data. ----
  Clock::time_point t0 = Clock::now();
  recd::DemoDataOptions demo_options;
  demo_options.num_items = static_cast<int>(num_items);
  demo_options.num_users = static_cast<int>(num_users);
  demo_options.num_interactions = static_cast<int>(num_interactions);
  demo_options.num_genres = kGenres;
  demo_options.seed = seed;
  demo_options.end_time_ms = kStartMs - 3600 * 1000;
  absl::StatusOr<recd::DemoDataset> demo = recd::GenerateDemoData(demo_options);
  if (!demo.ok()) Die("generating data", demo.status());
  const double generate_s = Seconds(t0);

  // Each item's categories: its primary genre, its secondary genre if any, and with probability
  // 0.5 the neighbouring genre (so genre pairs co-occur as they do in real catalogues and an
  // "all of" filter keeps ~1%). Tags: the demo's plus the flags.
  auto genre = [](int g) { return absl::StrFormat("genre-%02d", g); };
  auto flag = [](int f) { return absl::StrFormat("flag-%d", f); };
  std::vector<std::vector<std::string>> item_categories(demo->items.size());
  std::vector<std::vector<std::string>> item_flags(demo->items.size());
  {
    std::mt19937_64 attr_rng(seed ^ 0x5bd1e995);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (size_t i = 0; i < demo->items.size(); ++i) {
      const recd::DemoItem& d = demo->items[i];
      std::vector<std::string>& cats = item_categories[i];
      cats.push_back(genre(d.genre));
      auto add = [&](int g) {
        if (std::find(cats.begin(), cats.end(), genre(g)) == cats.end()) cats.push_back(genre(g));
      };
      if (d.secondary_genre >= 0) add(d.secondary_genre);
      if (unit(attr_rng) < 0.5) add((d.genre + 1) % kGenres);
      for (int f = 0; f < 4; ++f) {
        if (unit(attr_rng) < kFlagShare[f]) item_flags[i].push_back(flag(f));
      }
    }
  }
  auto make_item = [&](size_t i, recd::v1::Item* item) {
    const recd::DemoItem& d = demo->items[i];
    item->set_item_id(d.id);
    for (const std::string& c : item_categories[i]) item->add_categories(c);
    for (const std::string& t : d.tags) item->add_tags(t);
    for (const std::string& t : item_flags[i]) item->add_tags(t);
  };

  t0 = Clock::now();
  for (size_t start = 0; start < demo->items.size(); start += 10000) {
    recd::v1::UpsertItemsRequest request;
    for (size_t i = start; i < std::min(demo->items.size(), start + 10000); ++i) {
      make_item(i, request.add_items());
    }
    recd::v1::UpsertItemsResponse response;
    if (absl::Status s = engine.UpsertItems(request, &response); !s.ok()) Die("upserting items", s);
  }
  if (absl::Status s = recd::server::LogExternalInteractions(engine, demo->interactions); !s.ok()) {
    Die("logging interactions", s);
  }
  const double ingest_s = Seconds(t0);

  auto train = [&]() {
    const Clock::time_point start = Clock::now();
    for (const recd::server::TrainResult& r : trainer.RunNow({})) {
      if (r.outcome != recd::server::TrainResult::Outcome::kPublished) {
        Die("training " + r.model, absl::InternalError(r.message));
      }
    }
    return Seconds(start);
  };
  const double train1_s = train();

  // ---- Bench users: two disjoint pools of users the model serves, in a seeded random order. ----
  std::mt19937_64 rng(seed);
  std::vector<std::string> candidates;
  for (const recd::DemoUser& u : demo->users) candidates.push_back(u.id);
  std::shuffle(candidates.begin(), candidates.end(), rng);
  std::vector<std::string> pool_a, pool_b;  // a: impressions before the retrain; b: after it
  for (const std::string& user : candidates) {
    if (pool_a.size() >= static_cast<size_t>(bench_users_wanted) &&
        pool_b.size() >= static_cast<size_t>(bench_users_wanted)) {
      break;
    }
    RecommendRequest request;
    request.set_user_id(user);
    request.set_k(20);
    RecommendResponse response;
    if (!engine.Recommend(request, &response).ok() || response.source() != recd::v1::SOURCE_MODEL ||
        response.items_size() < 20) {
      continue;
    }
    (pool_a.size() <= pool_b.size() ? pool_a : pool_b).push_back(user);
  }
  if (pool_a.empty() || pool_b.empty()) Die("choosing users", absl::FailedPreconditionError("no servable users"));

  // Impressions of each user's current top 20 (a page the user was shown) at the clock's time.
  const int64_t impression_ms = clock.NowMs();
  auto log_impressions = [&](const std::vector<std::string>& users) {
    recd::v1::LogInteractionsRequest request;
    auto flush = [&]() {
      recd::v1::LogInteractionsResponse response;
      if (absl::Status s = engine.LogInteractions(request, &response); !s.ok()) Die("logging impressions", s);
      request.Clear();
    };
    for (const std::string& user : users) {
      RecommendRequest r;
      r.set_user_id(user);
      r.set_k(20);
      RecommendResponse response;
      if (absl::Status s = engine.Recommend(r, &response); !s.ok()) Die("recommending", s);
      for (const recd::v1::ScoredItem& item : response.items()) {
        recd::v1::Interaction* in = request.add_interactions();
        in->set_user_id(user);
        in->set_item_id(item.item_id());
        in->set_event_type(recd::v1::EVENT_IMPRESSION);
        in->set_timestamp_ms(impression_ms);
      }
      if (request.interactions_size() >= 9000) flush();
    }
    if (request.interactions_size() > 0) flush();
  };
  log_impressions(pool_a);
  const double train2_s = train();  // pool a's impressions are now older than the model
  log_impressions(pool_b);          // pool b's are newer: every request folds the user in
  // Flush and compact, so histories are read from table files as on a server that has been up
  // a while, not from a memtable holding the whole log (whose backward iteration is slower).
  t0 = Clock::now();
  if (absl::Status s = store->PurgeDeleted(); !s.ok()) Die("compacting", s);
  const double compact_s = Seconds(t0);
  const int64_t inside_window_ms = impression_ms + 60 * 1000;
  const int64_t outside_window_ms = impression_ms + static_cast<int64_t>(demotion_seconds * 1000) + 3600 * 1000;

  // ---- Filter terms with the wanted selectivity. ----
  const double n_items = static_cast<double>(demo->items.size());
  auto share = [&](int64_t count) { return static_cast<double>(count) / n_items; };
  // Items carrying any of the categories `any` (if non-empty) and all of `all`.
  auto count_items = [&](const std::set<std::string>& any, const std::set<std::string>& all) {
    int64_t n = 0;
    for (const std::vector<std::string>& cats : item_categories) {
      bool any_ok = any.empty(), all_ok = true;
      for (const std::string& c : cats) any_ok = any_ok || any.count(c) > 0;
      for (const std::string& c : all) all_ok = all_ok && std::find(cats.begin(), cats.end(), c) != cats.end();
      n += any_ok && all_ok;
    }
    return n;
  };
  // Genres in a seeded random order, taken until they cover ~10% of the catalogue.
  std::vector<std::string> genres;
  for (int g = 0; g < kGenres; ++g) genres.push_back(genre(g));
  std::shuffle(genres.begin(), genres.end(), rng);
  size_t next_genre = 0;
  auto cover_ten_percent = [&]() {
    std::set<std::string> chosen;
    int64_t covered = 0;
    while (share(covered) < 0.10 && next_genre < genres.size()) {
      chosen.insert(genres[next_genre++]);
      covered = count_items(chosen, {});
    }
    return std::make_pair(chosen, covered);
  };
  const auto [any_categories, any_covered] = cover_ten_percent();
  const auto [excluded_categories, excluded_covered] = cover_ten_percent();  // other genres
  // "All of" two genres: the most common pair (a genre and its neighbour).
  std::set<std::string> all_categories;
  int64_t all_count = -1;
  for (int g = 0; g < kGenres; ++g) {
    const std::set<std::string> pair = {genre(g), genre((g + 1) % kGenres)};
    if (const int64_t n = count_items({}, pair); n > all_count) all_categories = pair, all_count = n;
  }
  // "Removes ~99%": a genre and a flag tag, the pair closest to 1% of the catalogue.
  std::string narrow_genre, narrow_flag;
  int64_t narrow_count = 0;
  std::map<std::pair<std::string, std::string>, int64_t> genre_flag_count;
  for (size_t i = 0; i < item_categories.size(); ++i) {
    for (const std::string& c : item_categories[i]) {
      for (const std::string& f : item_flags[i]) ++genre_flag_count[{c, f}];
    }
  }
  for (const auto& [pair, n] : genre_flag_count) {
    if (narrow_genre.empty() || std::fabs(share(n) - 0.01) < std::fabs(share(narrow_count) - 0.01)) {
      narrow_genre = pair.first, narrow_flag = pair.second, narrow_count = n;
    }
  }

  std::vector<size_t> item_order(demo->items.size());
  for (size_t i = 0; i < item_order.size(); ++i) item_order[i] = i;
  std::shuffle(item_order.begin(), item_order.end(), rng);
  std::vector<std::string> item_ids;
  for (size_t i : item_order) item_ids.push_back(demo->items[i].id);
  const size_t include_n = std::min<size_t>(1000, item_ids.size());
  const size_t exclude_n = std::min<size_t>(100, item_ids.size());

  // ---- A second engine on the same store and models whose catalogue has 10% of items inactive.
  // Made after all writes, so the first engine's catalogue (all active) is left as it was.
  recd::server::Engine inactive_engine(options, store.get(), &registry, &trainer, &clock);
  if (auto loaded = inactive_engine.LoadFromStore(); !loaded.ok()) Die("loading", loaded.status());
  int64_t inactive_count = 0;
  {
    // The last tenth of the shuffled order (disjoint from the include/exclude id lists).
    const std::vector<size_t> ids(item_order.end() - static_cast<std::ptrdiff_t>(item_order.size() / 10), item_order.end());
    for (size_t start = 0; start < ids.size(); start += 10000) {
      recd::v1::UpsertItemsRequest request;
      for (size_t i = start; i < std::min(ids.size(), start + 10000); ++i) {
        recd::v1::Item* item = request.add_items();
        make_item(ids[i], item);
        item->set_active(false);
      }
      recd::v1::UpsertItemsResponse response;
      if (absl::Status s = inactive_engine.UpsertItems(request, &response); !s.ok()) Die("deactivating", s);
      inactive_count += response.upserted();
    }
  }

  // Page tokens for page 2, per user and k (clock outside the window, as for the page-2 calls).
  clock.SetMs(outside_window_ms);
  std::map<int, std::vector<std::string>> page_tokens;
  for (int k : ks) {
    for (const std::string& user : pool_a) {
      RecommendRequest r;
      r.set_user_id(user);
      r.set_k(k);
      RecommendResponse response;
      if (absl::Status s = engine.Recommend(r, &response); !s.ok()) Die("page 1", s);
      page_tokens[k].push_back(response.next_page_token());
    }
  }

  // Trained user vectors of pool a, for the scan-only rows.
  const std::shared_ptr<const recd::server::ServingModel> serving = registry.Live("pure_svd");
  std::vector<recd::EmbeddingVector> user_vectors;
  for (const std::string& user : pool_a) user_vectors.push_back(serving->model->UserEmbedding(*store->FindUser(user)));

  // ---- Variants. ----
  std::vector<Variant> variants;
  for (int k : ks) {
    auto add = [&](const std::string& name, const std::string& note, const std::function<void(RecommendRequest&)>& edit) -> Variant& {
      Variant& v = variants.emplace_back();
      v.name = name;
      v.k = k;
      v.note = note;
      v.request.set_k(k);
      edit(v.request);
      v.engine = &engine;
      v.users = &pool_a;
      return v;
    };
    auto pct = [&](int64_t count) { return absl::StrFormat("%.1f%% of items", 100.0 * share(count)); };
    add("plain", "", [](RecommendRequest&) {});
    add("exclude_seen=false", "", [](RecommendRequest& r) { r.set_exclude_seen(false); });
    add("categories any", absl::StrCat(any_categories.size(), " cats, ", pct(any_covered)), [&](RecommendRequest& r) {
      for (const std::string& c : any_categories) r.mutable_filter()->add_include_categories(c);
    });
    add("categories all", absl::StrCat("2 cats, ", pct(all_count)), [&](RecommendRequest& r) {
      for (const std::string& c : all_categories) r.mutable_filter()->add_include_categories(c);
      r.mutable_filter()->set_require_all_categories(true);
    });
    add("exclude categories", absl::StrCat(excluded_categories.size(), " cats, ", pct(excluded_covered)), [&](RecommendRequest& r) {
      for (const std::string& c : excluded_categories) r.mutable_filter()->add_exclude_categories(c);
    });
    add("include_item_ids", absl::StrCat(include_n, " ids"), [&](RecommendRequest& r) {
      for (size_t i = 0; i < include_n; ++i) r.mutable_filter()->add_include_item_ids(item_ids[i]);
    });
    add("exclude_item_ids", absl::StrCat(exclude_n, " ids"), [&](RecommendRequest& r) {
      for (size_t i = 0; i < exclude_n; ++i) r.add_exclude_item_ids(item_ids[item_ids.size() / 2 + i]);
    });
    add("narrow filter", absl::StrCat("cat + tag, ", pct(narrow_count)), [&](RecommendRequest& r) {
      r.mutable_filter()->add_include_categories(narrow_genre);
      r.mutable_filter()->add_include_tags(narrow_flag);
    });
    add("inactive items", absl::StrCat(pct(inactive_count), " inactive"), [](RecommendRequest&) {}).engine = &inactive_engine;
    add("explain", "", [](RecommendRequest& r) { r.set_explain(true); });
    add("mmr", "lambda 0.3", [](RecommendRequest& r) { r.mutable_diversity()->set_mmr_lambda(0.3f); });
    const int cap = std::max(2, k / 10);
    add("category cap", absl::StrCat("max ", cap, "/category"), [&](RecommendRequest& r) { r.mutable_diversity()->set_max_per_category(cap); });
    add("impressions", "top 20 shown, in window", [](RecommendRequest&) {}).demotion_window = true;
    add("page 2", "page_token", [](RecommendRequest&) {}).page_tokens = &page_tokens[k];
    Variant& fold = add("plain, new history", "pool b: fold-in", [](RecommendRequest&) {});
    fold.users = &pool_b;
    Variant& fold_imp = add("impressions, new", "pool b: fold-in + demotion", [](RecommendRequest&) {});
    fold_imp.users = &pool_b;
    fold_imp.demotion_window = true;
    // Diagnostics, not controls: the scorer's scan alone (no exclusions) to the depth plain
    // Recommend needs and to the candidate pool a diversified request ranks (max(100, 10k)).
    for (const int depth : {k, std::max(100, 10 * k)}) {
      Variant& scan = add(absl::StrCat("scan only, top ", depth), "scorer TopK, no engine", [](RecommendRequest&) {});
      scan.direct = [&, depth](size_t u) {
        const recd::EmbeddingVector& q = user_vectors[u];
        return serving->scorer->TopK(absl::Span<const float>(q.data(), q.size()), depth, nullptr).size();
      };
    }
  }

  if (!only.empty()) {
    std::erase_if(variants, [&](const Variant& v) {
      return v.name != "plain" &&
             std::none_of(only.begin(), only.end(), [&](const std::string& o) { return v.name.find(o) != std::string::npos; });
    });
  }

  std::printf("# controls_bench: %zu items x rank %lld pure_svd, %zu users, %zu interactions (seed %llu)\n",
              demo->items.size(), static_cast<long long>(rank), demo->users.size(), demo->interactions.size(),
              static_cast<unsigned long long>(seed));
  std::printf("# setup: generate %.1f s, ingest %.1f s, train %.1f s + retrain %.1f s (%d threads), compact %.1f s; scorer %s (%s)\n",
              generate_s, ingest_s, train1_s, train2_s, train_threads, compact_s, recd::ScorerIsaName().c_str(),
              recd::server::ScorerKindName(options.scorer.defaults).c_str());
  std::printf("# %zu + %zu bench users; %lld warm-up + %lld rounds; load average %.2f at start\n", pool_a.size(),
              pool_b.size(), static_cast<long long>(warmup), static_cast<long long>(rounds), LoadAverage());
  std::fflush(stdout);

  // ---- Measurement. ----
  std::vector<size_t> order(variants.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const Clock::time_point run_start = Clock::now();
  for (int64_t round = 0; round < warmup + rounds; ++round) {
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t vi : order) {
      Variant& v = variants[vi];
      const size_t u = static_cast<size_t>(round) % v.users->size();
      v.request.set_user_id((*v.users)[u]);
      if (v.page_tokens != nullptr) v.request.set_page_token((*v.page_tokens)[u]);
      clock.SetMs(v.demotion_window ? inside_window_ms : outside_window_ms);
      RecommendResponse response;
      const Clock::time_point start = Clock::now();
      size_t direct_items = 0;
      const absl::Status s = v.direct ? (direct_items = v.direct(u), absl::OkStatus()) : v.engine->Recommend(v.request, &response);
      const Clock::time_point end = Clock::now();
      if (!s.ok()) {
        if (v.errors++ == 0) v.first_error = s.ToString();
        continue;
      }
      if (round < warmup) continue;
      v.micros.push_back(std::chrono::duration<double, std::micro>(end - start).count());
      v.items_returned += v.direct ? static_cast<double>(direct_items) : response.items_size();
    }
  }
  const double run_s = Seconds(run_start);

  // ---- Report. ----
  std::map<int, double> plain_median;
  for (Variant& v : variants) {
    std::sort(v.micros.begin(), v.micros.end());
    if (v.name == "plain") plain_median[v.k] = Quantile(v.micros, 0.5);
  }
  std::printf("# measured in %.0f s; load average %.2f at end\n\n", run_s, LoadAverage());
  std::printf("%-20s %4s  %-34s %6s %9s %19s %9s %7s\n", "variant", "k", "setting", "items", "median_us",
              "p10-p90_us", "p99_us", "x_plain");
  FILE* csv = csv_path.empty() ? nullptr : std::fopen(csv_path.c_str(), "w");
  if (!csv_path.empty() && csv == nullptr) std::perror(csv_path.c_str());
  if (csv != nullptr) std::fprintf(csv, "variant,k,setting,items,median_us,p10_us,p90_us,p99_us,ratio_to_plain,samples,errors\n");
  int last_k = -1;
  for (const Variant& v : variants) {
    if (v.k != last_k && last_k != -1) std::printf("\n");
    last_k = v.k;
    const double median = Quantile(v.micros, 0.5);
    const double p10 = Quantile(v.micros, 0.1), p90 = Quantile(v.micros, 0.9), p99 = Quantile(v.micros, 0.99);
    const double items = v.micros.empty() ? 0.0 : v.items_returned / static_cast<double>(v.micros.size());
    const double ratio = plain_median[v.k] > 0 ? median / plain_median[v.k] : 0.0;
    std::printf("%-20s %4d  %-34s %6.1f %9.0f %9.0f-%-9.0f %9.0f %7.2f\n", v.name.c_str(), v.k, v.note.c_str(), items,
                median, p10, p90, p99, ratio);
    if (v.errors > 0) std::printf("  ! %llu errors, first: %s\n", static_cast<unsigned long long>(v.errors), v.first_error.c_str());
    if (csv != nullptr) {
      std::fprintf(csv, "%s,%d,\"%s\",%.2f,%.1f,%.1f,%.1f,%.1f,%.3f,%zu,%llu\n", v.name.c_str(), v.k, v.note.c_str(), items,
                   median, p10, p90, p99, ratio, v.micros.size(), static_cast<unsigned long long>(v.errors));
    }
  }
  if (csv != nullptr) std::fclose(csv);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("\n# peak RSS %.0f MiB\n", usage.ru_maxrss / 1024.0);
  return 0;
}
