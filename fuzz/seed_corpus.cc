// Writes the seed corpora of the fuzz targets: fuzz_seed_corpus <fuzz/corpus folder>.
// Regenerate with fuzz/run.sh --seeds (the files are committed; they are small, readable-ish
// protobuf encodings of typical and boundary requests and stored records).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "recd/v1/recommender.pb.h"
#include "storage/encoding.h"

namespace {

namespace v1 = recd::v1;
namespace st = recd::storage;

std::string g_root;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::filesystem::path dir = std::filesystem::path(g_root) / target;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary);
  out << bytes;
  if (!out) {
    std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
    std::exit(1);
  }
}

// ---- Requests ----------------------------------------------------------------------------------

v1::RecommendRequest Recommend(const std::string& user, int k) {
  v1::RecommendRequest r;
  r.set_user_id(user);
  r.set_k(k);
  return r;
}

std::vector<std::pair<std::string, v1::RecommendRequest>> Recommends() {
  std::vector<std::pair<std::string, v1::RecommendRequest>> out;
  out.emplace_back("plain", Recommend("ua0", 5));
  out.emplace_back("unknown_user", Recommend("nobody", 3));
  v1::RecommendRequest r = Recommend("ub3", 8);
  r.set_model("als");
  r.set_exclude_seen(false);
  r.add_exclude_item_ids("b2");
  r.set_explain(true);
  out.emplace_back("als_explain", r);
  r = Recommend("ua1", 10);
  r.mutable_filter()->add_include_categories("A");
  r.mutable_filter()->add_include_categories("B");
  r.mutable_filter()->set_require_all_categories(true);
  r.mutable_filter()->add_exclude_tags("even");
  r.mutable_filter()->add_include_item_ids("a3");
  r.mutable_filter()->add_include_item_ids("b4");
  out.emplace_back("filter", r);
  r = Recommend("ua2", 4);
  r.mutable_diversity()->set_mmr_lambda(0.5f);
  r.mutable_diversity()->set_max_per_category(2);
  r.set_model("biased_mf");
  out.emplace_back("diversity", r);
  r = Recommend("ua0", 3);
  r.set_page_token("3:0:1:pure_svd");
  out.emplace_back("page_token", r);
  r = Recommend("u\xc3\xa9", 1000);
  r.mutable_filter()->add_include_tags("even");
  r.mutable_filter()->add_exclude_categories("B");
  out.emplace_back("utf8_max_k", r);
  out.emplace_back("bad_k", Recommend("ua0", 0));
  return out;
}

std::vector<std::pair<std::string, v1::LogInteractionsRequest>> Logs() {
  std::vector<std::pair<std::string, v1::LogInteractionsRequest>> out;
  v1::LogInteractionsRequest r;
  v1::Interaction* in = r.add_interactions();
  in->set_user_id("ua0");
  in->set_item_id("b7");
  in->set_event_type(v1::EVENT_PURCHASE);
  out.emplace_back("one", r);
  in = r.add_interactions();
  in->set_user_id("fresh");
  in->set_item_id("brand-new");
  in->set_event_type(v1::EVENT_RATING);
  in->set_value(4.5f);
  in->set_timestamp_ms(1'799'999'000'000);
  in = r.add_interactions();
  in->set_user_id("ub1");
  in->set_item_id("a0");
  in->set_event_type(v1::EVENT_DISLIKE);
  in = r.add_interactions();
  in->set_user_id("ua5");
  in->set_item_id("a9");
  in->set_event_type(v1::EVENT_IMPRESSION);
  in->set_value(2.0f);
  out.emplace_back("mixed", r);
  v1::LogInteractionsRequest bad;
  in = bad.add_interactions();
  in->set_user_id("ua0");
  in->set_item_id("a1");
  in->set_event_type(v1::EVENT_RATING);
  in->set_value(std::numeric_limits<float>::quiet_NaN());
  in->set_timestamp_ms(1);
  out.emplace_back("bad", bad);
  return out;
}

std::vector<std::pair<std::string, v1::UpsertItemsRequest>> Upserts() {
  std::vector<std::pair<std::string, v1::UpsertItemsRequest>> out;
  v1::UpsertItemsRequest r;
  v1::Item* item = r.add_items();
  item->set_item_id("a3");
  item->add_categories("A");
  item->add_categories("B");
  item->add_tags("even");
  item->set_title("Title");
  item = r.add_items();
  item->set_item_id("b2");
  item->set_active(false);
  item = r.add_items();
  item->set_item_id("c0");
  item->add_categories("C");
  out.emplace_back("three", r);
  v1::UpsertItemsRequest dup;
  dup.add_items()->set_item_id("x");
  dup.add_items()->set_item_id("x");
  out.emplace_back("duplicate", dup);
  return out;
}

std::vector<std::pair<std::string, v1::SimilarItemsRequest>> Similars() {
  std::vector<std::pair<std::string, v1::SimilarItemsRequest>> out;
  v1::SimilarItemsRequest r;
  r.set_item_id("a1");
  r.set_k(5);
  out.emplace_back("plain", r);
  r.set_model("als");
  r.add_exclude_item_ids("a2");
  r.mutable_filter()->add_include_categories("A");
  out.emplace_back("filter", r);
  r.Clear();
  r.set_item_id("new0");
  r.set_k(3);
  out.emplace_back("cold_anchor", r);
  return out;
}

v1::RecommendBatchRequest Batch() {
  v1::RecommendBatchRequest r;
  *r.add_requests() = Recommend("ua0", 3);
  *r.add_requests() = Recommend("ub0", 2);
  r.mutable_requests(1)->set_model("popularity");
  *r.add_requests() = Recommend("stranger", 4);
  return r;
}

// ---- Validation fuzzer: one message per file ---------------------------------------------------

void ValidationSeeds() {
  for (const auto& [name, r] : Recommends()) Write("validation_fuzzer", "recommend_" + name, r.SerializeAsString());
  for (const auto& [name, r] : Logs()) Write("validation_fuzzer", "log_" + name, r.SerializeAsString());
  for (const auto& [name, r] : Upserts()) Write("validation_fuzzer", "upsert_" + name, r.SerializeAsString());
  for (const auto& [name, r] : Similars()) Write("validation_fuzzer", "similar_" + name, r.SerializeAsString());
  Write("validation_fuzzer", "batch", Batch().SerializeAsString());
}

// ---- Engine fuzzer: programs of calls ----------------------------------------------------------

enum Op : uint8_t {
  kRecommend, kRecommendBatch, kSimilarItems, kLogInteractions, kUpsertItems, kDeleteItem,
  kDeleteUser, kGetModelInfo, kRollback, kAdvanceClock, kMaintain, kRetrain,
};

class Program {
 public:
  Program& Call(Op op, const std::string& payload) {
    bytes_.push_back(static_cast<char>(op));
    bytes_.push_back(static_cast<char>(payload.size() >> 8));
    bytes_.push_back(static_cast<char>(payload.size() & 0xff));
    bytes_ += payload;
    return *this;
  }
  template <typename Message>
  Program& Call(Op op, const Message& m) { return Call(op, m.SerializeAsString()); }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

void EngineSeeds() {
  for (const auto& [name, r] : Recommends()) Write("engine_fuzzer", "recommend_" + name, Program().Call(kRecommend, r).bytes());
  for (const auto& [name, r] : Similars()) Write("engine_fuzzer", "similar_" + name, Program().Call(kSimilarItems, r).bytes());
  Write("engine_fuzzer", "batch", Program().Call(kRecommendBatch, Batch()).bytes());
  const auto logs = Logs();
  const auto upserts = Upserts();
  // Write, then read what was written.
  Write("engine_fuzzer", "log_then_recommend",
        Program().Call(kLogInteractions, logs[1].second).Call(kRecommend, Recommend("fresh", 5))
            .Call(kRecommend, Recommends()[1].second).bytes());
  Write("engine_fuzzer", "upsert_then_filter",
        Program().Call(kUpsertItems, upserts[0].second).Call(kRecommend, Recommends()[3].second)
            .Call(kSimilarItems, Similars()[1].second).bytes());
  v1::DeleteItemRequest delete_item;
  delete_item.set_item_id("a3");
  v1::DeleteUserRequest delete_user;
  delete_user.set_user_id("ua1");
  Write("engine_fuzzer", "deletes",
        Program().Call(kDeleteItem, delete_item).Call(kDeleteUser, delete_user)
            .Call(kRecommend, Recommend("ua1", 5)).Call(kRecommend, Recommend("ua2", 20))
            .Call(kAdvanceClock, std::string("\x00\x10", 2)).Call(kMaintain, std::string()).bytes());
  v1::GetModelInfoRequest info;
  v1::RollbackModelRequest rollback;
  rollback.set_model("pure_svd");
  Write("engine_fuzzer", "retrain_rollback",
        Program().Call(kRetrain, std::string(1, '\x01')).Call(kGetModelInfo, info)
            .Call(kRecommend, Recommends()[5].second).Call(kRollback, rollback)
            .Call(kRecommend, Recommend("ua0", 3)).bytes());
  info.set_model("als");
  Write("engine_fuzzer", "model_info", Program().Call(kGetModelInfo, info).bytes());
  v1::RecommendRequest paged = Recommend("ub2", 2);
  paged.mutable_diversity()->set_max_per_category(1);
  Write("engine_fuzzer", "impressions_and_paging",
        Program().Call(kLogInteractions, logs[0].second).Call(kRecommend, paged)
            .Call(kAdvanceClock, std::string("\x10\x00", 2)).Call(kRecommend, Recommend("ua0", 7)).bytes());
}

// ---- Encoding fuzzer: kind byte + stored bytes -------------------------------------------------

// Must match the Kind enum of encoding_fuzzer.cc.
enum Kind : uint8_t {
  kMarker, kFormatVersion, kCounter, kVersion, kLogKey, kLogValue, kHistoryKey, kHistoryValue,
  kItemKey, kItemValue, kIdKey, kIndexValue, kIdValue, kErasedUser, kModelKey, kManifest, kChunk,
  kPrimitives,
};

void Record(Kind kind, const std::string& name, const std::string& bytes) {
  Write("encoding_fuzzer", name, std::string(1, static_cast<char>(kind)) + bytes);
}

void EncodingSeeds() {
  Record(kMarker, "marker", st::EncodeMarkerValue());
  Record(kFormatVersion, "format_version", st::EncodeFormatVersionValue(st::kStoreFormatVersion));
  Record(kCounter, "counter_add", st::EncodeCounter({st::CounterOp::kAdd, 480}));
  Record(kCounter, "counter_max", st::EncodeCounter({st::CounterOp::kMax, -3}));
  Record(kVersion, "version", st::EncodeVersionValue(12));
  Record(kLogKey, "log_key", st::LogKey(0x0102030405060708ULL));
  st::LogRecord log;
  log.user = 7;
  log.item = 300;
  log.event = recd::EventType::kRating;
  log.has_value = true;
  log.value = 4.5f;
  log.timestamp_ms = 1'700'000'000'000;
  Record(kLogValue, "log_value", st::EncodeLogValue(log));
  Record(kHistoryKey, "history_key", st::HistoryKey(7, 99));
  recd::HistoryEntry h;
  h.item = 3;
  h.event = recd::EventType::kClick;
  h.timestamp_ms = -5;
  Record(kHistoryValue, "history_value", st::EncodeHistoryValue(h));
  Record(kItemKey, "item_key", st::ItemKey(65536));
  st::ItemRecord item;
  item.id = "sku-17";
  item.categories = {"shoes", "sale"};
  item.tags = {"red"};
  item.title = "Red shoes";
  item.updated_at_ms = 1'700'000'000'000;
  Record(kItemValue, "item_value", st::EncodeItemValue(item));
  Record(kIdKey, "id_key_user", st::UserIdKey("alice"));
  Record(kIdKey, "id_key_index", st::ItemIndexKey(42));
  Record(kIdKey, "id_key_erased", st::ErasedUserKey(9));
  Record(kIndexValue, "index_value", st::EncodeIndexValue(123456));
  Record(kIdValue, "id_value", st::EncodeIdValue("bob"));
  Record(kErasedUser, "erased_user", st::EncodeErasedUserValue(true));
  Record(kModelKey, "model_key_manifest", st::ModelManifestKey("pure_svd", 3));
  Record(kModelKey, "model_key_chunk", st::ModelChunkKey("pure_svd", 3, 1, 2));
  st::ModelManifest m;
  m.meta.name = "pure_svd";
  m.meta.algorithm = "pure_svd";
  m.meta.version = 3;
  m.meta.trained_at_ms = 1'700'000'000'000;
  m.meta.train_seconds = 0.25;
  m.meta.num_interactions = 480;
  m.meta.trained_through_sequence = 480;
  m.meta.num_users = 60;
  m.meta.num_items = 40;
  m.meta.metrics = {{"holdout_hr@10", 0.4}, {"train_loss", 1.5}};
  m.meta.params = {{"rank", "4"}};
  m.user_factors = {60, 4, st::RowsPerChunk(4)};
  m.item_factors = {40, 4, 16};
  m.tensor_names = {"item_bias"};
  m.tensors = {{40, 1, st::RowsPerChunk(1)}};
  Record(kManifest, "manifest", st::EncodeManifest(m));
  const std::vector<float> values = {1.0f, -2.5f, 0.0f, 3.25f, -0.0f, 1e-30f};
  Record(kChunk, "chunk", st::EncodeChunk(16, 2, 3, values.data()));
  std::string primitives;
  for (char op = 0; op < 11; ++op) {
    primitives.push_back(op);
    st::PutVarint64(&primitives, 300);
  }
  Record(kPrimitives, "primitives", primitives);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus folder>\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  ValidationSeeds();
  EngineSeeds();
  EncodingSeeds();
  return 0;
}
