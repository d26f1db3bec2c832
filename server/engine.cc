#include "server/engine.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/diversity.h"
#include "core/status_macros.h"
#include "server/logging.h"
#include "server/validation.h"

namespace recd::server {
namespace {

constexpr absl::string_view kPopularity = "popularity";

recd::v1::TrainOutcome ToProto(TrainResult::Outcome outcome) {
  switch (outcome) {
    case TrainResult::Outcome::kQueued: return recd::v1::TRAIN_QUEUED;
    case TrainResult::Outcome::kPublished: return recd::v1::TRAIN_PUBLISHED;
    case TrainResult::Outcome::kRejected: return recd::v1::TRAIN_REJECTED;
    case TrainResult::Outcome::kFailed: return recd::v1::TRAIN_FAILED;
  }
  return recd::v1::TRAIN_OUTCOME_UNSPECIFIED;
}

// Page tokens are "<offset>:<pool>:<version>:<model>": opaque to clients, checked on use so a
// page is never drawn from a different model version than the pages before it. `pool` is the
// candidate pool of a diversified ranking (0 = none), fixed by the first page so every page cuts
// the same ordering.
struct PagePosition {
  size_t offset = 0;
  size_t pool = 0;
};

std::string MakePageToken(const PagePosition& position, const ModelMetadata& meta) {
  return absl::StrCat(position.offset, ":", position.pool, ":", meta.version, ":", meta.name);
}

absl::StatusOr<PagePosition> ParsePageToken(absl::string_view token, const ModelMetadata& meta, size_t max_depth) {
  PagePosition position;
  if (token.empty()) return position;
  std::vector<absl::string_view> parts = absl::StrSplit(token, absl::MaxSplits(':', 3));
  uint64_t version = 0;
  if (parts.size() != 4 || !absl::SimpleAtoi(parts[0], &position.offset) ||
      !absl::SimpleAtoi(parts[1], &position.pool) || !absl::SimpleAtoi(parts[2], &version)) {
    return absl::InvalidArgumentError("page_token: not a token this server issued");
  }
  if (parts[3] != meta.name || version != meta.version) {
    return absl::FailedPreconditionError(absl::StrCat(
        "page_token: issued for ", parts[3], " v", version, " but ", meta.name, " v", meta.version,
        " answers now; restart paging without a token"));
  }
  if (position.offset > max_depth || position.pool > max_depth) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token: position beyond the paging limit ", max_depth));
  }
  return position;
}

// The vector that represents `user` for `model`: the trained row when it is up to date, else a
// fold-in of the history (which also covers users newer than the model and interactions logged
// since it was trained). Empty when neither exists.
// The user's vector: the trained row while the history holds nothing newer than the model, else
// a fold-in of the history (remembered per snapshot until the history changes).
EmbeddingVector UserVector(const ServingModel& serving, std::optional<UserIndex> user,
                           const std::vector<HistoryEntry>& history) {
  const Model& model = *serving.model;
  const bool has_row = user.has_value() && model.HasUserEmbedding(*user);
  const uint64_t trained_through = model.meta().trained_through_sequence;
  // The history is in log order (Store::GetUserHistory), so its last entry is its newest.
  const bool newer = !history.empty() && history.back().sequence > trained_through;
  if (has_row && !newer) return model.UserEmbedding(*user);
  const uint64_t fingerprint = HistoryFingerprint(history);
  if (user.has_value() && serving.fold_ins != nullptr) {
    if (std::optional<EmbeddingVector> cached = serving.fold_ins->Lookup(*user, fingerprint)) {
      return *std::move(cached);
    }
  }
  EmbeddingVector folded = model.FoldInUser(history);
  if (folded.size() == 0 && has_row) return model.UserEmbedding(*user);
  if (user.has_value() && serving.fold_ins != nullptr) serving.fold_ins->Insert(*user, fingerprint, folded);
  return folded;
}

// Adds the history entries that contributed most to `item`'s score (exact per-entry shares for
// the factor models), aggregated per history item, largest |share| first.
void AddExplanations(const Model& model, const std::vector<HistoryEntry>& history, ItemIndex item,
                     const storage::Store& store, recd::v1::ScoredItem* out) {
  constexpr size_t kMaxExplanations = 5;
  const std::vector<float> contributions = model.ExplainScore(history, item);
  if (contributions.size() != history.size()) return;  // the model cannot explain
  absl::flat_hash_map<ItemIndex, double> per_item;
  double total = 0.0;
  for (size_t j = 0; j < history.size(); ++j) {
    per_item[history[j].item] += contributions[j];
    total += contributions[j];
  }
  if (total == 0.0) return;
  std::vector<std::pair<double, ItemIndex>> shares;
  for (const auto& [source, c] : per_item) {
    if (c != 0.0) shares.emplace_back(c / total, source);
  }
  std::sort(shares.begin(), shares.end(), [](const auto& a, const auto& b) {
    return std::fabs(a.first) > std::fabs(b.first) || (std::fabs(a.first) == std::fabs(b.first) && a.second < b.second);
  });
  if (shares.size() > kMaxExplanations) shares.resize(kMaxExplanations);
  std::vector<ItemIndex> sources;
  for (const auto& share : shares) sources.push_back(share.second);
  std::vector<std::string> ids = store.ItemIds(sources);
  for (size_t i = 0; i < shares.size(); ++i) {
    recd::v1::Explanation* e = out->add_explanations();
    e->set_item_id(std::move(ids[i]));
    e->set_share(static_cast<float>(shares[i].first));
  }
}

}  // namespace

Engine::Engine(const ServerOptions& options, storage::Store* store, ModelRegistry* registry,
               Trainer* trainer, Clock* clock)
    : options_(options),
      store_(store),
      registry_(registry),
      trainer_(trainer),
      clock_(clock),
      cold_start_(ColdStartTracker::Options{.half_life_seconds = options.recent_half_life_seconds}),
      catalog_(std::make_shared<Catalog>()) {
  // Deletions a previous run acknowledged but did not purge from the files yet.
  absl::StatusOr<bool> pending = store_->PurgePending();
  if (pending.ok() && *pending) {
    MutexLock lock(&purge_mu_);
    purge_due_ms_ = clock_->NowMs() + static_cast<int64_t>(options_.purge_delay_seconds * 1000);
  }
}

void Engine::Maintain() {
  const uint32_t capacity = store_->GetStats().item_capacity;
  const int64_t now_ms = clock_->NowMs();
  bool purge = false;
  {
    MutexLock lock(&purge_mu_);
    if (purge_due_ms_ != 0 && now_ms >= purge_due_ms_) {
      purge = true;
      purge_due_ms_ = 0;
    }
  }
  if (purge) {
    if (absl::Status s = store_->PurgeDeleted(); !s.ok()) {
      RECD_LOG(kError, "engine", "purging deleted data: ", s.message());
    } else {
      RECD_LOG(kInfo, "engine", "purged deleted data from the store's files");
    }
  }
  for (const ModelConfig& config : registry_->configs()) {
    if (config.algorithm == "popularity") continue;
    if (std::shared_ptr<const ServingModel> live = registry_->Live(config.name)) {
      cold_start_.Refresh(*live, capacity, now_ms);
    }
  }
}

std::shared_ptr<const Catalog> Engine::PinCatalog() const {
  MutexLock lock(&catalog_mu_);
  return catalog_;
}

void Engine::SetCatalog(std::shared_ptr<const Catalog> catalog) {
  MutexLock lock(&catalog_mu_);
  catalog_ = std::move(catalog);
}

absl::StatusOr<std::vector<std::string>> Engine::LoadFromStore() {
  {
    MutexLock write_lock(&catalog_write_mu_);
    ASSIGN_OR_RETURN(std::vector<storage::ItemRecord> items, store_->ListItems());
    SetCatalog(Catalog().With(items));
  }
  std::vector<std::string> untrained;
  for (const ModelConfig& config : registry_->configs()) {
    ASSIGN_OR_RETURN(std::optional<uint64_t> live, store_->GetLiveVersion(config.name));
    if (!live.has_value()) {
      untrained.push_back(config.name);
      continue;
    }
    absl::StatusOr<ModelData> data = store_->LoadModel(config.name, *live);
    absl::StatusOr<std::shared_ptr<const ServingModel>> serving =
        data.ok() ? ServingModel::Create(std::make_shared<const ModelData>(std::move(*data)),
                                         options_.scorer)
                  : absl::StatusOr<std::shared_ptr<const ServingModel>>(data.status());
    if (!serving.ok()) {
      RECD_LOG(kError, "engine", "cannot serve ", config.name, " v", *live, ": ",
               serving.status().message(), "; it will be retrained");
      untrained.push_back(config.name);
      continue;
    }
    registry_->Publish(*serving);
    RECD_LOG(kInfo, "engine", "loaded ", config.name, " v", *live, " (", (*serving)->meta().num_items,
             " items, dim ", (*serving)->model->dim(), ")");
  }
  return untrained;
}

absl::Status Engine::Recommend(const recd::v1::RecommendRequest& request,
                               recd::v1::RecommendResponse* response) const {
  RETURN_IF_ERROR(ValidateRecommendRequest(request, "", options_.limits));
  ASSIGN_OR_RETURN(const ModelConfig* config, registry_->Config(request.model()));
  return RecommendValidated(request, *config, response);
}

absl::Status Engine::RecommendBatch(const recd::v1::RecommendBatchRequest& request,
                                    recd::v1::RecommendBatchResponse* response) const {
  RETURN_IF_ERROR(ValidateRecommendBatchRequest(request, options_.limits));
  std::vector<const ModelConfig*> configs;
  for (int i = 0; i < request.requests_size(); ++i) {
    absl::StatusOr<const ModelConfig*> config = registry_->Config(request.requests(i).model());
    if (!config.ok()) {
      return absl::Status(config.status().code(),
                          absl::StrCat("requests[", i, "].", config.status().message()));
    }
    configs.push_back(*config);
  }
  for (int i = 0; i < request.requests_size(); ++i) {
    absl::Status s = RecommendValidated(request.requests(i), *configs[i], response->add_responses());
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat("requests[", i, "]: ", s.message()));
  }
  return absl::OkStatus();
}

absl::Status Engine::RecommendValidated(const recd::v1::RecommendRequest& request,
                                        const ModelConfig& config,
                                        recd::v1::RecommendResponse* response) const {
  std::shared_ptr<const ServingModel> serving = registry_->Live(config.name);
  const std::optional<UserIndex> user = store_->FindUser(request.user_id());
  // The serving thread's buffers, kept between its requests so that their memory is reused: a
  // history is up to max_history x 32 bytes and the exclusion set a bit per item, both beyond
  // glibc's per-thread cache, and both needed by every Recommend. (RecommendBatch answers its
  // requests one after the other; nothing here keeps a reference past the return.)
  struct Scratch {
    std::vector<HistoryEntry> history;
    ItemBitset exclude;
  };
  thread_local Scratch scratch;
  std::vector<HistoryEntry>& history = scratch.history;
  history.clear();
  if (user.has_value()) RETURN_IF_ERROR(store_->GetUserHistory(*user, options_.max_history, &history));

  EmbeddingVector query;
  std::string fallback_reason;
  if (serving == nullptr) {
    fallback_reason = absl::StrCat("model '", config.name, "' has no trained version yet");
  } else if (!user.has_value()) {
    fallback_reason = "unknown user";
  } else {
    query = UserVector(*serving, user, history);
    if (query.size() == 0) fallback_reason = "the user has no history this model can use";
  }
  if (!fallback_reason.empty()) {
    serving = registry_->Live(kPopularity);
    if (serving == nullptr) {
      return absl::FailedPreconditionError(
          "no model is trained yet: log interactions, then call TrainNow");
    }
    query = EmbeddingVector::Ones(serving->model->dim());
    response->set_source(recd::v1::SOURCE_POPULARITY_FALLBACK);
    response->set_fallback_reason(fallback_reason);
  } else {
    response->set_source(recd::v1::SOURCE_MODEL);
  }
  const ModelMetadata& meta = serving->meta();
  response->set_model(meta.name);
  response->set_model_version(meta.version);

  const size_t max_depth = static_cast<size_t>(options_.limits.max_k) * 10;
  ASSIGN_OR_RETURN(const PagePosition position, ParsePageToken(request.page_token(), meta, max_depth));
  const size_t offset = position.offset;

  // Items without embeddings that may take the exploration share of the slots. The cold list
  // holds items the model scores 0 (all-zero rows), and for a moment after a publish items the
  // new version has rows for: both are left out of the model's ranking on every page, so no item
  // is placed twice, on this page or across pages (found by fuzz/engine_fuzzer).
  const int k = request.k();
  const size_t num_items = static_cast<size_t>(serving->model->item_factors().rows());
  std::shared_ptr<const std::vector<ItemIndex>> cold;
  int explore_slots = 0;
  if (response->source() == recd::v1::SOURCE_MODEL && options_.exploration_share > 0.0) {
    cold = cold_start_.Candidates(meta.name);
    // Only the first page explores; later pages continue the model's ranking without repeats.
    if (offset == 0 && cold != nullptr && !cold->empty()) {
      explore_slots = static_cast<int>(std::lround(k * options_.exploration_share));
    }
  }

  // Exclusion over the model's items and the cold candidates: unservable and filtered-out items,
  // the user's history, explicit ids.
  size_t exclusion_size = num_items;
  if (explore_slots > 0) {
    exclusion_size = std::max<size_t>(exclusion_size, 1 + *std::max_element(cold->begin(), cold->end()));
  }
  std::shared_ptr<const Catalog> catalog = PinCatalog();
  ItemBitset& exclude = scratch.exclude;
  catalog->Exclusion(request.filter(), exclusion_size,
                     [this](absl::string_view id) { return store_->FindItem(id); }, &exclude);
  const bool exclude_seen = !request.has_exclude_seen() || request.exclude_seen();
  for (const HistoryEntry& h : history) {
    // Dislikes are never recommended again; impressions are not consumption.
    if (h.event == EventType::kDislike || (exclude_seen && h.event != EventType::kImpression)) {
      exclude.Set(h.item);
    }
  }
  for (const std::string& id : request.exclude_item_ids()) {
    if (std::optional<ItemIndex> item = store_->FindItem(id)) exclude.Set(*item);
  }

  std::vector<ItemIndex> explore;
  for (size_t i = 0; explore_slots > 0 && i < cold->size() && static_cast<int>(explore.size()) < explore_slots; ++i) {
    if (!exclude.Test((*cold)[i])) explore.push_back((*cold)[i]);
  }
  if (cold != nullptr) {
    for (ItemIndex item : *cold) exclude.Set(item);
  }

  // Repeat control: items shown to the user recently (impressions) rank after every item that
  // was not, until the demotion window passes.
  // Built only when there is something to demote (an item-sized allocation per request).
  ItemBitset demoted;
  bool any_demoted = false;
  if (options_.impression_demotion_seconds > 0) {
    const int64_t since = clock_->NowMs() - static_cast<int64_t>(options_.impression_demotion_seconds * 1000);
    for (const HistoryEntry& h : history) {
      if (h.event == EventType::kImpression && h.timestamp_ms >= since && h.item < num_items && !exclude.Test(h.item)) {
        if (!any_demoted) demoted.Resize(exclusion_size);
        demoted.Set(h.item);
        any_demoted = true;
      }
    }
  }

  // The model fills the remaining slots; the page token is a model offset, so paging stays
  // duplicate-free whatever exploration took.
  const int model_slots = k - static_cast<int>(explore.size());
  const size_t page_end = std::min(offset + static_cast<size_t>(model_slots), max_depth);
  const absl::Span<const float> query_span(query.data(), query.size());
  // The first n items of the model's ranking: not-demoted items by score, then demoted ones.
  auto ranking = [&](size_t n) {
    // Concurrent calls share a scan when micro-batching is on (--micro_batch_max).
    auto scan = [&](const ItemBitset* ex) {
      if (serving->batcher != nullptr) return serving->batcher->TopK(query_span, static_cast<int>(n), ex).items;
      return serving->scorer->TopK(query_span, static_cast<int>(n), ex);
    };
    if (!any_demoted) return scan(&exclude);
    ItemBitset fresh_only = exclude;
    fresh_only.UnionWith(demoted);
    std::vector<ScoredIndex> top = scan(&fresh_only);
    if (top.size() < n) {
      std::vector<ScoredIndex> shown;
      const EmbeddingMatrix& items = serving->model->item_factors();
      for (size_t i = 0; i < demoted.size(); ++i) {
        if (demoted.Test(i)) shown.push_back({items.row(static_cast<Eigen::Index>(i)).dot(query), static_cast<ItemIndex>(i)});
      }
      std::sort(shown.begin(), shown.end(), BetterThan);
      for (size_t i = 0; i < shown.size() && top.size() < n; ++i) top.push_back(shown[i]);
    }
    return top;
  };

  const recd::v1::DiversityOptions& diversity = request.diversity();
  std::vector<ScoredIndex> top;  // positions [0, page_end) of the final ordering; page = [offset, page_end)
  size_t pool = 0;
  bool more = false;
  if (diversity.mmr_lambda() > 0.0f || diversity.max_per_category() > 0) {
    // Diversify within a candidate pool fixed on the first page (and carried by the page token),
    // so every page cuts the same, prefix-consistent ordering.
    pool = position.pool > 0 ? position.pool
                             : std::min(max_depth, std::max<size_t>(100, 10 * static_cast<size_t>(k)));
    const std::vector<ScoredIndex> candidates = ranking(pool);
    absl::flat_hash_map<std::string, uint32_t> category_ids;
    std::vector<std::vector<uint32_t>> category_lists(candidates.size());
    absl::flat_hash_map<ItemIndex, size_t> slot;
    for (size_t i = 0; i < candidates.size(); ++i) {
      slot[candidates[i].item] = i;
      for (const std::string& c : catalog->Attributes(candidates[i].item).categories) {
        category_lists[i].push_back(category_ids.try_emplace(c, category_ids.size()).first->second);
      }
    }
    DiversityParams params;
    params.mmr_lambda = diversity.mmr_lambda();
    params.max_per_category = diversity.max_per_category();
    const std::vector<size_t> order = DiversifiedOrder(
        candidates, *serving->normalized_items, params,
        [&](ItemIndex item) { return absl::Span<const uint32_t>(category_lists[slot[item]]); }, page_end + 1);
    for (size_t i = 0; i < order.size() && i < page_end; ++i) top.push_back(candidates[order[i]]);
    more = order.size() > page_end;
  } else {
    top = ranking(page_end);
    more = top.size() == page_end && page_end < max_depth;
  }

  // Every returned item's id in one lookup: ranked items from `offset`, then exploration.
  std::vector<ItemIndex> returned;
  for (size_t i = offset; i < top.size(); ++i) returned.push_back(top[i].item);
  returned.insert(returned.end(), explore.begin(), explore.end());
  std::vector<std::string> ids = store_->ItemIds(returned);
  size_t next_id = 0;
  for (size_t i = offset; i < top.size(); ++i) {
    recd::v1::ScoredItem* out = response->add_items();
    out->set_item_id(std::move(ids[next_id++]));
    out->set_score(top[i].score);
    if (request.explain()) AddExplanations(*serving->model, history, top[i].item, *store_, out);
  }
  const float last_score = top.size() > offset ? top.back().score : 0.0f;
  for (size_t i = 0; i < explore.size(); ++i) {
    recd::v1::ScoredItem* out = response->add_items();
    out->set_item_id(std::move(ids[next_id++]));
    out->set_score(last_score);
    out->set_exploration(true);
  }
  if (more) response->set_next_page_token(MakePageToken({page_end, pool}, meta));
  return absl::OkStatus();
}

absl::Status Engine::SimilarItems(const recd::v1::SimilarItemsRequest& request,
                                  recd::v1::SimilarItemsResponse* response) const {
  RETURN_IF_ERROR(ValidateSimilarItemsRequest(request, options_.limits));
  ASSIGN_OR_RETURN(const ModelConfig* config, registry_->Config(request.model()));
  const std::optional<ItemIndex> anchor = store_->FindItem(request.item_id());
  if (!anchor.has_value()) {
    return absl::NotFoundError(absl::StrCat("item_id: '", request.item_id(), "' is not a known item"));
  }
  std::shared_ptr<const ServingModel> serving = registry_->Live(config->name);
  const ItemScorer* scorer = nullptr;
  EmbeddingVector query;
  if (serving != nullptr && *anchor < serving->normalized_items->rows() &&
      serving->normalized_items->row(*anchor).squaredNorm() > 0.0f) {
    query = serving->normalized_items->row(*anchor).transpose();
    scorer = serving->cosine_scorer.get();
    response->set_source(recd::v1::SOURCE_MODEL);
  } else {
    serving = registry_->Live(kPopularity);
    if (serving == nullptr) {
      return absl::FailedPreconditionError(
          "no model is trained yet: log interactions, then call TrainNow");
    }
    query = EmbeddingVector::Ones(serving->model->dim());
    scorer = serving->scorer.get();
    response->set_source(recd::v1::SOURCE_POPULARITY_FALLBACK);
  }
  response->set_model(serving->meta().name);
  response->set_model_version(serving->meta().version);

  const size_t num_items = static_cast<size_t>(serving->model->item_factors().rows());
  ItemBitset exclude = PinCatalog()->Exclusion(
      request.filter(), num_items, [this](absl::string_view id) { return store_->FindItem(id); });
  exclude.Set(*anchor);
  for (const std::string& id : request.exclude_item_ids()) {
    if (std::optional<ItemIndex> item = store_->FindItem(id)) exclude.Set(*item);
  }
  const std::vector<ScoredIndex> top =
      scorer->TopK(absl::Span<const float>(query.data(), query.size()), request.k(), &exclude);
  std::vector<ItemIndex> items;
  for (const ScoredIndex& s : top) items.push_back(s.item);
  std::vector<std::string> ids = store_->ItemIds(items);
  for (size_t i = 0; i < top.size(); ++i) {
    recd::v1::ScoredItem* out = response->add_items();
    out->set_item_id(std::move(ids[i]));
    out->set_score(top[i].score);
  }
  return absl::OkStatus();
}

absl::Status Engine::LogInteractions(const recd::v1::LogInteractionsRequest& request,
                                     recd::v1::LogInteractionsResponse* response) {
  const int64_t now_ms = clock_->NowMs();
  RETURN_IF_ERROR(ValidateLogInteractionsRequest(request, now_ms, options_.limits));
  std::vector<storage::InteractionInput> batch;
  batch.reserve(request.interactions_size());
  for (const recd::v1::Interaction& in : request.interactions()) {
    storage::InteractionInput& out = batch.emplace_back();
    out.user_id = in.user_id();
    out.item_id = in.item_id();
    out.event = in.event_type() == recd::v1::EVENT_UNSPECIFIED ? EventType::kView
                                                               : static_cast<EventType>(in.event_type());
    out.has_value = in.has_value();
    out.value = in.value();
    out.timestamp_ms = in.timestamp_ms() == 0 ? now_ms : in.timestamp_ms();
  }
  ASSIGN_OR_RETURN(storage::AppendResult result, store_->AppendInteractions(batch));
  for (size_t i = 0; i < batch.size(); ++i) {
    if (InteractionWeight(batch[i].event, batch[i].has_value, batch[i].value, options_.event_weights) > 0.0f) {
      cold_start_.Record(result.items[i], now_ms);
    }
  }
  trainer_->NoteInteractions(result.accepted);
  response->set_accepted(result.accepted);
  response->set_new_users(result.new_users);
  response->set_new_items(result.new_items);
  return absl::OkStatus();
}

absl::StatusOr<storage::UpsertResult> Engine::ApplyItems(std::vector<storage::ItemRecord> records) {
  MutexLock write_lock(&catalog_write_mu_);
  ASSIGN_OR_RETURN(storage::UpsertResult result, store_->UpsertItems(records));
  for (size_t i = 0; i < records.size(); ++i) records[i].index = result.indices[i];
  SetCatalog(PinCatalog()->With(records));
  return result;
}

absl::Status Engine::UpsertItems(const recd::v1::UpsertItemsRequest& request,
                                 recd::v1::UpsertItemsResponse* response) {
  RETURN_IF_ERROR(ValidateUpsertItemsRequest(request, options_.limits));
  std::vector<storage::ItemRecord> records;
  records.reserve(request.items_size());
  const int64_t now_ms = clock_->NowMs();
  for (const recd::v1::Item& item : request.items()) {
    storage::ItemRecord& r = records.emplace_back();
    r.id = item.item_id();
    r.active = !item.has_active() || item.active();
    r.categories.assign(item.categories().begin(), item.categories().end());
    r.tags.assign(item.tags().begin(), item.tags().end());
    r.title = item.title();
    r.updated_at_ms = now_ms;
  }
  ASSIGN_OR_RETURN(storage::UpsertResult result, ApplyItems(std::move(records)));
  response->set_upserted(result.upserted);
  response->set_created(result.created);
  return absl::OkStatus();
}

absl::Status Engine::DeleteItem(const recd::v1::DeleteItemRequest& request) {
  RETURN_IF_ERROR(ValidateId(request.item_id(), "item_id", options_.limits));
  MutexLock write_lock(&catalog_write_mu_);
  const std::optional<ItemIndex> item = store_->FindItem(request.item_id());
  absl::Status deleted = store_->DeleteItem(request.item_id());
  if (absl::IsNotFound(deleted) || !item.has_value()) {
    return absl::NotFoundError(absl::StrCat("item_id: '", request.item_id(), "' is not a known item"));
  }
  RETURN_IF_ERROR(deleted);
  storage::ItemRecord record;
  record.index = *item;
  record.deleted = true;
  SetCatalog(PinCatalog()->With({record}));
  return absl::OkStatus();
}

absl::Status Engine::DeleteUser(const recd::v1::DeleteUserRequest& request,
                                recd::v1::DeleteUserResponse* response) {
  RETURN_IF_ERROR(ValidateId(request.user_id(), "user_id", options_.limits));
  absl::StatusOr<storage::DeleteUserResult> result = store_->DeleteUser(request.user_id());
  if (absl::IsNotFound(result.status())) {
    return absl::NotFoundError(absl::StrCat("user_id: '", request.user_id(), "' is not a known user"));
  }
  RETURN_IF_ERROR(result.status());
  // The id is gone from the store, so no new request can reach the user; now drop their rows
  // from the live models, and have the maintenance thread purge the store's files soon.
  // Folded-in vectors go from the snapshots being replaced and from their replacements.
  auto forget_fold_ins = [&] {
    for (const ModelConfig& config : registry_->configs()) {
      std::shared_ptr<const ServingModel> live = registry_->Live(config.name);
      if (live != nullptr && live->fold_ins != nullptr) live->fold_ins->Erase(result->index);
    }
  };
  forget_fold_ins();
  RETURN_IF_ERROR(registry_->EraseUsers({result->index}, options_.scorer));
  forget_fold_ins();
  {
    MutexLock lock(&purge_mu_);
    if (purge_due_ms_ == 0) {
      purge_due_ms_ = clock_->NowMs() + static_cast<int64_t>(options_.purge_delay_seconds * 1000);
    }
  }
  response->set_erased_interactions(result->erased_interactions);
  return absl::OkStatus();
}

absl::Status Engine::GetModelInfo(const recd::v1::GetModelInfoRequest& request,
                                  recd::v1::GetModelInfoResponse* response) const {
  std::vector<const ModelConfig*> configs;
  if (!request.model().empty()) {
    ASSIGN_OR_RETURN(const ModelConfig* config, registry_->Config(request.model()));
    configs.push_back(config);
  } else {
    for (const ModelConfig& c : registry_->configs()) configs.push_back(&c);
  }
  const storage::StoreStats stats = store_->GetStats();
  for (const ModelConfig* config : configs) {
    recd::v1::ModelInfo* info = response->add_models();
    info->set_name(config->name);
    info->set_algorithm(config->algorithm);
    info->set_is_default(config->name == registry_->default_model());
    std::shared_ptr<const ServingModel> live = registry_->Live(config->name);
    if (live != nullptr) {
      info->set_live_version(live->meta().version);
      info->set_scorer(live->scorer->Describe());
    }
    ASSIGN_OR_RETURN(std::vector<ModelMetadata> versions, store_->ListModelVersions(config->name));
    for (const ModelMetadata& meta : versions) {
      recd::v1::ModelVersionInfo* v = info->add_versions();
      v->set_version(meta.version);
      v->set_state(meta.rejected ? recd::v1::VERSION_REJECTED
                   : (live != nullptr && live->meta().version == meta.version) ? recd::v1::VERSION_LIVE
                                                                               : recd::v1::VERSION_RETIRED);
      v->set_trained_at_ms(meta.trained_at_ms);
      v->set_train_seconds(meta.train_seconds);
      v->set_num_interactions(meta.num_interactions);
      v->set_num_users(meta.num_users);
      v->set_num_items(meta.num_items);
      v->set_dim(live != nullptr && live->meta().version == meta.version ? live->model->dim() : 0);
      for (const auto& [key, value] : meta.metrics) (*v->mutable_metrics())[key] = value;
      for (const auto& [key, value] : meta.params) (*v->mutable_params())[key] = value;
      v->set_reject_reason(meta.reject_reason);
    }
  }
  response->set_scorer_isa(ScorerIsaName());
  response->set_num_users(stats.num_users);
  response->set_num_items(stats.num_items);
  response->set_num_interactions(stats.num_interactions);
  if (std::shared_ptr<const ServingModel> def = registry_->Live(registry_->default_model())) {
    const uint64_t through = def->meta().trained_through_sequence;
    response->set_interactions_since_train(stats.last_sequence > through ? stats.last_sequence - through : 0);
  } else {
    response->set_interactions_since_train(stats.num_interactions);
  }
  response->set_server_version(RECD_VERSION);
  return absl::OkStatus();
}

absl::Status Engine::TrainNow(const recd::v1::TrainNowRequest& request,
                              std::chrono::system_clock::time_point deadline,
                              recd::v1::TrainNowResponse* response) {
  std::vector<std::string> models;
  for (int i = 0; i < request.models_size(); ++i) {
    absl::StatusOr<const ModelConfig*> config = registry_->Config(request.models(i));
    if (!config.ok() || request.models(i).empty()) {
      return absl::NotFoundError(absl::StrCat("models[", i, "]: ",
                                              config.ok() ? "empty model name" : config.status().message()));
    }
    models.push_back(request.models(i));
  }
  // A call without a deadline waits at most a day (time_point::max would overflow the wait).
  deadline = std::min(deadline, std::chrono::system_clock::now() + std::chrono::hours(24));
  std::shared_future<std::vector<TrainResult>> done = trainer_->Enqueue(models);
  if (!request.wait()) {
    if (models.empty()) {
      for (const ModelConfig& c : registry_->configs()) models.push_back(c.name);
    }
    for (const std::string& m : models) {
      recd::v1::TrainResult* r = response->add_results();
      r->set_model(m);
      r->set_outcome(recd::v1::TRAIN_QUEUED);
    }
    return absl::OkStatus();
  }
  if (done.wait_until(deadline) != std::future_status::ready) {
    return absl::DeadlineExceededError(
        "training did not finish before the call's deadline; it continues in the background "
        "(see GetModelInfo)");
  }
  for (const TrainResult& result : done.get()) {
    recd::v1::TrainResult* r = response->add_results();
    r->set_model(result.model);
    r->set_outcome(ToProto(result.outcome));
    r->set_version(result.version);
    r->set_train_seconds(result.train_seconds);
    r->set_message(result.message);
  }
  return absl::OkStatus();
}

absl::Status Engine::RollbackModel(const recd::v1::RollbackModelRequest& request,
                                   recd::v1::RollbackModelResponse* response) {
  if (request.model().empty()) return absl::InvalidArgumentError("model: required");
  ASSIGN_OR_RETURN(const ModelConfig* config, registry_->Config(request.model()));
  std::shared_ptr<const ServingModel> live = registry_->Live(config->name);
  uint64_t target = request.version();
  if (target == 0) {
    // The newest accepted version older than the live one.
    ASSIGN_OR_RETURN(std::vector<ModelMetadata> versions, store_->ListModelVersions(config->name));
    const uint64_t live_version = live ? live->meta().version : UINT64_MAX;
    for (const ModelMetadata& meta : versions) {
      if (meta.version < live_version && !meta.rejected) {
        target = meta.version;
        break;
      }
    }
    if (target == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("model '", config->name, "' has no earlier accepted version to roll back to"));
    }
  }
  absl::StatusOr<ModelData> data = store_->LoadModel(config->name, target);
  if (absl::IsNotFound(data.status())) {
    return absl::NotFoundError(
        absl::StrCat("version: ", config->name, " v", target, " is not stored (see GetModelInfo)"));
  }
  RETURN_IF_ERROR(data.status());
  ASSIGN_OR_RETURN(std::shared_ptr<const ServingModel> serving,
                   ServingModel::Create(std::make_shared<const ModelData>(std::move(*data)),
                                        options_.scorer));
  RETURN_IF_ERROR(store_->SetLiveVersion(config->name, target));
  registry_->Publish(serving);
  RECD_LOG(kInfo, "engine", "rolled ", config->name, " back to v", target);
  response->set_live_version(target);
  return absl::OkStatus();
}

absl::Status Engine::CreateCheckpoint(const recd::v1::CreateCheckpointRequest& request,
                                      recd::v1::CreateCheckpointResponse* response) {
  if (request.path().empty() || request.path()[0] != '/') {
    return absl::InvalidArgumentError("path: an absolute folder path is required");
  }
  RETURN_IF_ERROR(store_->CreateCheckpoint(request.path()));
  response->set_path(request.path());
  return absl::OkStatus();
}

}  // namespace recd::server
