// libFuzzer target: the request handlers (server/engine.h) in process, without gRPC.
//
// Once per process: a store in a temporary folder gets the planted two-cluster data set, four
// models are trained on it (popularity, pure_svd, als, biased_mf; tiny ranks), a few items are
// logged after training so exploration has cold items, and a RocksDB checkpoint of that state is
// kept. Each input is a short program of calls:
//
//   repeat up to 16 times: op (1 byte) | payload length (2 bytes, big-endian) | payload
//
// where op picks an Engine method (or a clock step, maintenance, a retrain) and the payload is
// the binary request message. Requests that do not parse are skipped. The engine state carries
// over between inputs (so a write followed by reads is explored) and is reset from the
// checkpoint every kResetEvery inputs, which bounds the store and keeps runs reproducible enough.
//
// Beyond "never crashes" (ASan/UBSan), every call is checked:
//  * errors are INVALID_ARGUMENT, NOT_FOUND or FAILED_PRECONDITION, never an internal error;
//  * Recommend (and each RecommendBatch entry): at most k items, no duplicates, no excluded id,
//    no seen item when exclude_seen, no disliked item, only active undeleted items, every filter
//    condition holds, no NaN score; the next page (when offered) repeats none of them;
//  * SimilarItems: the same, and never the anchor;
//  * writes: counts add up and the store reflects them (ids resolvable, items as upserted,
//    deleted items marked deleted, deleted users unknown);
//  * GetModelInfo: versions newest first and the live version among them.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "recd/v1/recommender.pb.h"
#include "server/clock.h"
#include "server/engine.h"
#include "server/model_registry.h"
#include "server/options.h"
#include "server/trainer.h"
#include "storage/store.h"
#include "testing/planted_data.h"
#include "testing/temp_dir.h"

namespace recd::server {
namespace {

constexpr int64_t kStartMs = 1'800'000'000'000;
constexpr int kResetEvery = 500;
constexpr int kMaxCallsPerInput = 16;

[[noreturn]] void Fail(absl::string_view what, absl::string_view detail = "") {
  std::fprintf(stderr, "engine_fuzzer: %.*s %.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

void Check(bool condition, absl::string_view what, absl::string_view detail = "") {
  if (!condition) Fail(what, detail);
}

void CheckStatus(const absl::Status& s, absl::string_view call) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
      return;
    default:
      Fail(absl::StrCat(call, " returned an unexpected error:"), s.ToString());
  }
}

ServerOptions MakeOptions() {
  ServerOptions options;
  absl::StatusOr<std::vector<ModelConfig>> models =
      ParseModelConfigs("popularity,pure_svd,als,biased_mf",
                        "pure_svd.rank=4,als.factors=4,als.iterations=3,biased_mf.factors=4,biased_mf.samples=6,"
                        "biased_mf.burn_in=2");
  Check(models.ok(), "model configs", models.status().ToString());
  options.models = *models;
  options.default_model = "pure_svd";
  options.purge_delay_seconds = 5;
  return options;
}

// The in-process server: store, registry, trainer and engine on a fake clock.
class World {
 public:
  World() {
    // Build the seed state once, then keep a checkpoint to reset from.
    Open(dir_.Sub("seed"));
    const testing::ClusteredData data = testing::MakeClusteredData(12, 10, 6);
    recd::v1::UpsertItemsRequest upsert;
    for (const auto& item : data.items) *upsert.add_items() = item;
    recd::v1::UpsertItemsResponse upserted;
    Check(engine_->UpsertItems(upsert, &upserted).ok(), "seed upsert");
    recd::v1::LogInteractionsRequest log;
    for (const auto& in : data.interactions) {
      recd::v1::Interaction* copy = log.add_interactions();
      *copy = in;
      // biased_mf learns from ratings: make every third event one.
      if (log.interactions_size() % 3 == 0) {
        copy->set_event_type(recd::v1::EVENT_RATING);
        copy->set_value(static_cast<float>(1 + log.interactions_size() % 5));
      }
    }
    recd::v1::LogInteractionsResponse logged;
    Check(engine_->LogInteractions(log, &logged).ok(), "seed log");
    for (const TrainResult& r : trainer_->RunNow({})) {
      Check(r.outcome == TrainResult::Outcome::kPublished, "seed training", r.message);
    }
    // Items newer than the models (cold, for exploration), one impression and one dislike.
    recd::v1::LogInteractionsRequest later;
    for (int i = 0; i < 4; ++i) {
      recd::v1::Interaction* in = later.add_interactions();
      in->set_user_id(absl::StrCat("ua", i));
      in->set_item_id(absl::StrCat("new", i));
      in->set_event_type(recd::v1::EVENT_PURCHASE);
    }
    recd::v1::Interaction* shown = later.add_interactions();
    shown->set_user_id("ua0");
    shown->set_item_id("a1");
    shown->set_event_type(recd::v1::EVENT_IMPRESSION);
    recd::v1::Interaction* disliked = later.add_interactions();
    disliked->set_user_id("ub0");
    disliked->set_item_id("b1");
    disliked->set_event_type(recd::v1::EVENT_DISLIKE);
    Check(engine_->LogInteractions(later, &logged).ok(), "seed log (later)");
    Check(store_->CreateCheckpoint(dir_.Sub("checkpoint")).ok(), "checkpoint");
    Reset();
  }

  // Back to the checkpointed seed state, on a fresh copy of it.
  void Reset() {
    Close();
    const std::string work = dir_.Sub("work");
    std::filesystem::remove_all(work);
    std::filesystem::copy(dir_.Sub("checkpoint"), work, std::filesystem::copy_options::recursive);
    clock_.SetMs(kStartMs);
    Open(work);
    engine_->Maintain();  // ranks the cold items for exploration
  }

  Engine& engine() { return *engine_; }
  Trainer& trainer() { return *trainer_; }
  storage::Store& store() { return *store_; }
  FakeClock& clock() { return clock_; }
  const ServerOptions& options() const { return options_; }

 private:
  void Open(const std::string& path) {
    storage::StoreOptions store_options;
    store_options.path = path;
    store_options.sync_writes = false;
    store_options.block_cache_bytes = 8 << 20;
    absl::StatusOr<std::unique_ptr<storage::Store>> store = storage::Store::Open(store_options);
    Check(store.ok(), "opening the store", store.status().ToString());
    store_ = std::move(*store);
    registry_ = std::make_unique<ModelRegistry>(options_.models, options_.default_model);
    TrainerOptions trainer_options;
    trainer_options.clock = &clock_;
    trainer_options.nice_increment = 0;
    trainer_options.gate_enabled = false;
    trainer_ = std::make_unique<Trainer>(store_.get(), registry_.get(), trainer_options);
    engine_ = std::make_unique<Engine>(options_, store_.get(), registry_.get(), trainer_.get(), &clock_);
    absl::StatusOr<std::vector<std::string>> loaded = engine_->LoadFromStore();
    Check(loaded.ok(), "loading the store", loaded.status().ToString());
  }

  void Close() {
    engine_.reset();
    trainer_.reset();
    registry_.reset();
    store_.reset();
  }

  testing::TempDir dir_;
  FakeClock clock_{kStartMs};
  const ServerOptions options_ = MakeOptions();
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<Trainer> trainer_;
  std::unique_ptr<Engine> engine_;
};

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list, absl::string_view s) {
  for (const std::string& x : list) {
    if (x == s) return true;
  }
  return false;
}

bool HasAny(const std::vector<std::string>& have, const google::protobuf::RepeatedPtrField<std::string>& wanted) {
  for (const std::string& w : wanted) {
    for (const std::string& h : have) {
      if (h == w) return true;
    }
  }
  return false;
}

// The item may be served and passes `filter` (per its stored record).
void CheckServableAndFiltered(World& world, const std::string& id, const recd::v1::ItemFilter& filter,
                              absl::string_view call) {
  absl::StatusOr<std::optional<storage::ItemRecord>> record = world.store().GetItem(id);
  Check(record.ok() && record->has_value(), absl::StrCat(call, " returned an unknown item"), id);
  const storage::ItemRecord& r = **record;
  Check(r.active && !r.deleted, absl::StrCat(call, " returned an inactive or deleted item"), id);
  if (!filter.include_categories().empty()) {
    if (filter.require_all_categories()) {
      for (const std::string& c : filter.include_categories()) {
        Check(std::find(r.categories.begin(), r.categories.end(), c) != r.categories.end(),
              absl::StrCat(call, " returned an item missing a required category"), id);
      }
    } else {
      Check(HasAny(r.categories, filter.include_categories()),
            absl::StrCat(call, " returned an item without an included category"), id);
    }
  }
  Check(!HasAny(r.categories, filter.exclude_categories()),
        absl::StrCat(call, " returned an item with an excluded category"), id);
  if (!filter.include_tags().empty()) {
    Check(HasAny(r.tags, filter.include_tags()), absl::StrCat(call, " returned an item without an included tag"), id);
  }
  Check(!HasAny(r.tags, filter.exclude_tags()), absl::StrCat(call, " returned an item with an excluded tag"), id);
  if (!filter.include_item_ids().empty()) {
    Check(Contains(filter.include_item_ids(), id), absl::StrCat(call, " returned an item outside the allow-list"), id);
  }
}

// Invariants of one successful Recommend answer; `earlier` holds the ids of previous pages.
void CheckRecommendPage(World& world, const recd::v1::RecommendRequest& request,
                        const recd::v1::RecommendResponse& response, absl::flat_hash_set<std::string>& earlier) {
  Check(response.items_size() <= request.k(), "Recommend returned more than k items");
  Check(response.source() == recd::v1::SOURCE_MODEL || response.source() == recd::v1::SOURCE_POPULARITY_FALLBACK,
        "Recommend source unset");
  std::vector<HistoryEntry> history;
  if (std::optional<UserIndex> user = world.store().FindUser(request.user_id())) {
    absl::StatusOr<std::vector<HistoryEntry>> h = world.store().GetUserHistory(*user, world.options().max_history);
    Check(h.ok(), "reading history", h.status().ToString());
    history = std::move(*h);
  }
  const bool exclude_seen = !request.has_exclude_seen() || request.exclude_seen();
  absl::flat_hash_set<ItemIndex> never;
  for (const HistoryEntry& h : history) {
    if (h.event == EventType::kDislike || (exclude_seen && h.event != EventType::kImpression)) never.insert(h.item);
  }
  for (const recd::v1::ScoredItem& item : response.items()) {
    const std::string& id = item.item_id();
    Check(earlier.insert(id).second, "Recommend returned an item twice (or again on a later page)",
          absl::StrCat(id, " in ", response.ShortDebugString()));
    Check(!Contains(request.exclude_item_ids(), id), "Recommend returned an excluded id", id);
    const std::optional<ItemIndex> index = world.store().FindItem(id);
    Check(index.has_value(), "Recommend returned an unknown id", id);
    Check(!never.contains(*index), "Recommend returned a seen or disliked item", id);
    Check(!std::isnan(item.score()), "Recommend returned a NaN score", id);
    CheckServableAndFiltered(world, id, request.filter(), "Recommend");
  }
}

void CheckRecommend(World& world, const recd::v1::RecommendRequest& request,
                    const recd::v1::RecommendResponse& response) {
  absl::flat_hash_set<std::string> seen;
  CheckRecommendPage(world, request, response, seen);
  if (response.next_page_token().empty()) return;
  // Up to two more pages: same version (nothing changed meanwhile), so no error and no repeats.
  recd::v1::RecommendRequest next = request;
  std::string token = response.next_page_token();
  for (int page = 0; page < 2 && !token.empty(); ++page) {
    next.set_page_token(token);
    recd::v1::RecommendResponse more;
    const absl::Status s = world.engine().Recommend(next, &more);
    Check(s.ok(), "the next page of an answer failed", s.ToString());
    Check(more.model() == response.model() && more.model_version() == response.model_version(),
          "the next page came from another model version");
    CheckRecommendPage(world, next, more, seen);
    token = more.next_page_token();
  }
}

void DoRecommend(World& world, const std::string& payload) {
  recd::v1::RecommendRequest request;
  if (!request.ParseFromString(payload)) return;
  recd::v1::RecommendResponse response;
  const absl::Status s = world.engine().Recommend(request, &response);
  CheckStatus(s, "Recommend");
  if (s.ok()) CheckRecommend(world, request, response);
}

void DoRecommendBatch(World& world, const std::string& payload) {
  recd::v1::RecommendBatchRequest request;
  if (!request.ParseFromString(payload)) return;
  recd::v1::RecommendBatchResponse response;
  const absl::Status s = world.engine().RecommendBatch(request, &response);
  CheckStatus(s, "RecommendBatch");
  if (!s.ok()) return;
  Check(response.responses_size() == request.requests_size(), "RecommendBatch answer count");
  for (int i = 0; i < request.requests_size(); ++i) {
    absl::flat_hash_set<std::string> seen;
    CheckRecommendPage(world, request.requests(i), response.responses(i), seen);
  }
}

void DoSimilarItems(World& world, const std::string& payload) {
  recd::v1::SimilarItemsRequest request;
  if (!request.ParseFromString(payload)) return;
  recd::v1::SimilarItemsResponse response;
  const absl::Status s = world.engine().SimilarItems(request, &response);
  CheckStatus(s, "SimilarItems");
  if (!s.ok()) return;
  Check(response.items_size() <= request.k(), "SimilarItems returned more than k items");
  absl::flat_hash_set<std::string> seen;
  for (const recd::v1::ScoredItem& item : response.items()) {
    Check(seen.insert(item.item_id()).second, "SimilarItems returned an item twice", item.item_id());
    Check(item.item_id() != request.item_id(), "SimilarItems returned the anchor");
    Check(!Contains(request.exclude_item_ids(), item.item_id()), "SimilarItems returned an excluded id");
    Check(!std::isnan(item.score()), "SimilarItems returned a NaN score");
    CheckServableAndFiltered(world, item.item_id(), request.filter(), "SimilarItems");
  }
}

void DoLogInteractions(World& world, const std::string& payload) {
  recd::v1::LogInteractionsRequest request;
  if (!request.ParseFromString(payload)) return;
  const uint64_t before = world.store().GetStats().num_interactions;
  recd::v1::LogInteractionsResponse response;
  const absl::Status s = world.engine().LogInteractions(request, &response);
  CheckStatus(s, "LogInteractions");
  const uint64_t after = world.store().GetStats().num_interactions;
  if (!s.ok()) {
    Check(after == before, "a refused LogInteractions wrote something");
    return;
  }
  Check(response.accepted() == static_cast<uint32_t>(request.interactions_size()), "LogInteractions accepted count");
  Check(after == before + response.accepted(), "the log did not grow by the accepted count");
  for (const recd::v1::Interaction& in : request.interactions()) {
    Check(world.store().FindUser(in.user_id()).has_value(), "a logged user is unknown", in.user_id());
    Check(world.store().FindItem(in.item_id()).has_value(), "a logged item is unknown", in.item_id());
  }
}

void DoUpsertItems(World& world, const std::string& payload) {
  recd::v1::UpsertItemsRequest request;
  if (!request.ParseFromString(payload)) return;
  recd::v1::UpsertItemsResponse response;
  const absl::Status s = world.engine().UpsertItems(request, &response);
  CheckStatus(s, "UpsertItems");
  if (!s.ok()) return;
  Check(response.upserted() == static_cast<uint32_t>(request.items_size()), "UpsertItems count");
  Check(response.created() <= response.upserted(), "UpsertItems created more than it upserted");
  for (const recd::v1::Item& item : request.items()) {
    absl::StatusOr<std::optional<storage::ItemRecord>> r = world.store().GetItem(item.item_id());
    Check(r.ok() && r->has_value(), "an upserted item is missing", item.item_id());
    const storage::ItemRecord& rec = **r;
    Check(!rec.deleted && rec.active == (!item.has_active() || item.active()) && rec.title == item.title() &&
              std::vector<std::string>(item.categories().begin(), item.categories().end()) == rec.categories &&
              std::vector<std::string>(item.tags().begin(), item.tags().end()) == rec.tags,
          "an upserted item was stored differently", item.item_id());
  }
}

void DoDeleteItem(World& world, const std::string& payload) {
  recd::v1::DeleteItemRequest request;
  if (!request.ParseFromString(payload)) return;
  const absl::Status s = world.engine().DeleteItem(request);
  CheckStatus(s, "DeleteItem");
  if (!s.ok()) return;
  absl::StatusOr<std::optional<storage::ItemRecord>> r = world.store().GetItem(request.item_id());
  Check(r.ok() && r->has_value() && (*r)->deleted, "a deleted item is not marked deleted", request.item_id());
}

void DoDeleteUser(World& world, const std::string& payload) {
  recd::v1::DeleteUserRequest request;
  if (!request.ParseFromString(payload)) return;
  recd::v1::DeleteUserResponse response;
  const absl::Status s = world.engine().DeleteUser(request, &response);
  CheckStatus(s, "DeleteUser");
  if (!s.ok()) return;
  Check(!world.store().FindUser(request.user_id()).has_value(), "a deleted user is still known", request.user_id());
  recd::v1::RecommendRequest probe;
  probe.set_user_id(request.user_id());
  probe.set_k(3);
  recd::v1::RecommendResponse answer;
  const absl::Status p = world.engine().Recommend(probe, &answer);
  Check(p.ok() && answer.source() == recd::v1::SOURCE_POPULARITY_FALLBACK,
        "a deleted user still gets personalised answers", p.ToString());
}

void DoGetModelInfo(World& world, const std::string& payload) {
  recd::v1::GetModelInfoRequest request;
  if (!request.ParseFromString(payload)) return;
  recd::v1::GetModelInfoResponse response;
  const absl::Status s = world.engine().GetModelInfo(request, &response);
  CheckStatus(s, "GetModelInfo");
  if (!s.ok()) return;
  for (const recd::v1::ModelInfo& model : response.models()) {
    bool live_listed = model.live_version() == 0;
    for (int i = 0; i < model.versions_size(); ++i) {
      if (i > 0) Check(model.versions(i - 1).version() > model.versions(i).version(), "versions not newest first");
      if (model.versions(i).version() == model.live_version()) {
        live_listed = true;
        Check(model.versions(i).state() == recd::v1::VERSION_LIVE, "the live version is not marked live");
      } else {
        Check(model.versions(i).state() != recd::v1::VERSION_LIVE, "a non-live version is marked live");
      }
    }
    Check(live_listed, "the live version is not among the stored versions", model.name());
  }
}

void DoRollback(World& world, const std::string& payload) {
  recd::v1::RollbackModelRequest request;
  if (!request.ParseFromString(payload)) return;
  recd::v1::RollbackModelResponse response;
  const absl::Status s = world.engine().RollbackModel(request, &response);
  CheckStatus(s, "RollbackModel");
}

void DoRetrain(World& world, const std::string& payload) {
  static const char* const kModels[] = {"popularity", "pure_svd", "als", "biased_mf"};
  const uint8_t pick = payload.empty() ? 0 : static_cast<uint8_t>(payload[0]);
  for (const TrainResult& r : world.trainer().RunNow({kModels[pick % 4]})) {
    // Training may fail on a log emptied by deletions; it must not publish garbage or crash.
    Check(r.outcome != TrainResult::Outcome::kQueued, "RunNow returned a queued result");
  }
}

enum Op : uint8_t {
  kRecommend,
  kRecommendBatch,
  kSimilarItems,
  kLogInteractions,
  kUpsertItems,
  kDeleteItem,
  kDeleteUser,
  kGetModelInfo,
  kRollback,
  kAdvanceClock,
  kMaintain,
  kRetrain,
  kNumOps,
};

}  // namespace
}  // namespace recd::server

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recd::server;
  static World* const world = [] {
    auto* w = new World();
    // libFuzzer ends a time-bounded run with exit(): close the store and remove its folder.
    static World* to_delete = w;
    std::atexit([] { delete to_delete; });
    return w;
  }();
  static int runs = 0;
  if (++runs % kResetEvery == 0) world->Reset();

  size_t pos = 0;
  for (int call = 0; call < kMaxCallsPerInput && pos < size; ++call) {
    const Op op = static_cast<Op>(data[pos++] % kNumOps);
    size_t len = 0;
    if (pos + 2 <= size) {
      len = (size_t{data[pos]} << 8) | data[pos + 1];
      pos += 2;
    } else {
      pos = size;
    }
    len = std::min(len, size - pos);
    const std::string payload(reinterpret_cast<const char*>(data + pos), len);
    pos += len;
    switch (op) {
      case kRecommend: DoRecommend(*world, payload); break;
      case kRecommendBatch: DoRecommendBatch(*world, payload); break;
      case kSimilarItems: DoSimilarItems(*world, payload); break;
      case kLogInteractions: DoLogInteractions(*world, payload); break;
      case kUpsertItems: DoUpsertItems(*world, payload); break;
      case kDeleteItem: DoDeleteItem(*world, payload); break;
      case kDeleteUser: DoDeleteUser(*world, payload); break;
      case kGetModelInfo: DoGetModelInfo(*world, payload); break;
      case kRollback: DoRollback(*world, payload); break;
      case kAdvanceClock: {
        // Up to ~18 hours forward, in seconds; crosses the impression window and the purge delay.
        const int64_t seconds = payload.size() >= 2 ? ((uint8_t(payload[0]) << 8) | uint8_t(payload[1])) : 1;
        world->clock().AdvanceMs(seconds * 1000);
        break;
      }
      case kMaintain: world->engine().Maintain(); break;
      case kRetrain: DoRetrain(*world, payload); break;
      case kNumOps: break;
    }
  }
  return 0;
}
