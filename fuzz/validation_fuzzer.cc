// libFuzzer target: request validation (server/validation.h).
//
// Every input is parsed as each request message the validators take (binary protobuf; inputs that
// do not parse are skipped for that message) and validated twice, under the default limits and
// under tight ones that short inputs can cross. Beyond "never crashes", it checks:
//  * the validators agree with an independent reference on every id (UTF-8 per Unicode Table 3-7,
//    length bounds, control characters);
//  * an accepted request really is within every documented limit;
//  * a refusal is INVALID_ARGUMENT and its message starts with a field path ("items[3].title: ...").
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "recd/v1/recommender.pb.h"
#include "server/options.h"
#include "server/validation.h"

namespace recd::server {
namespace {

constexpr int64_t kNowMs = 1'800'000'000'000;

[[noreturn]] void Fail(absl::string_view what, absl::string_view detail = "") {
  std::fprintf(stderr, "validation_fuzzer: %.*s %.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

void Check(bool condition, absl::string_view what, absl::string_view detail = "") {
  if (!condition) Fail(what, detail);
}

// Well-formed UTF-8 straight from Unicode 15, Table 3-7 (byte ranges per lead byte).
bool ReferenceUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  const size_t n = s.size();
  auto in = [&](size_t at, unsigned lo, unsigned hi) { return at < n && p[at] >= lo && p[at] <= hi; };
  while (i < n) {
    const unsigned c = p[i];
    if (c <= 0x7F) {
      i += 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      if (!in(i + 1, 0x80, 0xBF)) return false;
      i += 2;
    } else if (c == 0xE0) {
      if (!in(i + 1, 0xA0, 0xBF) || !in(i + 2, 0x80, 0xBF)) return false;
      i += 3;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      if (!in(i + 1, 0x80, 0xBF) || !in(i + 2, 0x80, 0xBF)) return false;
      i += 3;
    } else if (c == 0xED) {
      if (!in(i + 1, 0x80, 0x9F) || !in(i + 2, 0x80, 0xBF)) return false;
      i += 3;
    } else if (c == 0xF0) {
      if (!in(i + 1, 0x90, 0xBF) || !in(i + 2, 0x80, 0xBF) || !in(i + 3, 0x80, 0xBF)) return false;
      i += 4;
    } else if (c >= 0xF1 && c <= 0xF3) {
      if (!in(i + 1, 0x80, 0xBF) || !in(i + 2, 0x80, 0xBF) || !in(i + 3, 0x80, 0xBF)) return false;
      i += 4;
    } else if (c == 0xF4) {
      if (!in(i + 1, 0x80, 0x8F) || !in(i + 2, 0x80, 0xBF) || !in(i + 3, 0x80, 0xBF)) return false;
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

bool ReferenceId(absl::string_view id, const Limits& limits) {
  if (id.empty() || id.size() > limits.max_id_bytes || !ReferenceUtf8(id)) return false;
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7F) return false;
  }
  return true;
}

bool ReferenceTerm(absl::string_view term, const Limits& limits) {
  return !term.empty() && term.size() <= limits.max_term_bytes && ReferenceUtf8(term);
}

// Differential check of the id and UTF-8 primitives on one string.
void CheckPrimitives(absl::string_view s, const Limits& limits) {
  Check(IsValidUtf8(s) == ReferenceUtf8(s), "IsValidUtf8 disagrees with Table 3-7");
  const absl::Status id = ValidateId(s, "f", limits);
  Check(id.ok() == ReferenceId(s, limits), "ValidateId disagrees with the reference", id.ToString());
}

// A refusal is INVALID_ARGUMENT with "<field path>: <problem>".
void CheckRefusal(const absl::Status& s) {
  if (s.ok()) return;
  Check(s.code() == absl::StatusCode::kInvalidArgument, "refusal is not INVALID_ARGUMENT", s.ToString());
  const size_t colon = s.message().find(": ");
  Check(colon != absl::string_view::npos && colon > 0, "refusal does not name a field", s.ToString());
}

void CheckTerms(const google::protobuf::RepeatedPtrField<std::string>& terms, const Limits& limits) {
  Check(static_cast<size_t>(terms.size()) <= limits.max_filter_terms, "accepted too many terms");
  for (const std::string& t : terms) Check(ReferenceTerm(t, limits), "accepted a bad term");
}

void CheckIdList(const google::protobuf::RepeatedPtrField<std::string>& ids, const Limits& limits) {
  Check(static_cast<size_t>(ids.size()) <= limits.max_exclude_ids, "accepted too many ids");
  for (const std::string& id : ids) Check(ReferenceId(id, limits), "accepted a bad id in a list");
}

void CheckFilter(const recd::v1::ItemFilter& f, const Limits& limits) {
  CheckTerms(f.include_categories(), limits);
  CheckTerms(f.exclude_categories(), limits);
  CheckTerms(f.include_tags(), limits);
  CheckTerms(f.exclude_tags(), limits);
  CheckIdList(f.include_item_ids(), limits);
}

void CheckAcceptedRecommend(const recd::v1::RecommendRequest& r, const Limits& limits) {
  Check(ReferenceId(r.user_id(), limits), "accepted a bad user_id");
  Check(r.k() >= 1 && r.k() <= limits.max_k, "accepted k out of range");
  Check(r.model().size() <= limits.max_id_bytes && ReferenceUtf8(r.model()), "accepted a bad model name");
  CheckIdList(r.exclude_item_ids(), limits);
  CheckFilter(r.filter(), limits);
  const float lambda = r.diversity().mmr_lambda();
  Check(std::isfinite(lambda) && lambda >= 0.0f && lambda <= 1.0f, "accepted mmr_lambda out of [0, 1]");
  Check(r.diversity().max_per_category() >= 0 && r.diversity().max_per_category() <= limits.max_k,
        "accepted max_per_category out of range");
  Check(r.page_token().size() <= 1024, "accepted an overlong page token");
}

void FuzzRecommend(const std::string& bytes, const Limits& limits) {
  recd::v1::RecommendRequest r;
  if (!r.ParseFromString(bytes)) return;
  CheckPrimitives(r.user_id(), limits);
  for (const std::string& id : r.exclude_item_ids()) CheckPrimitives(id, limits);
  const absl::Status s = ValidateRecommendRequest(r, "", limits);
  CheckRefusal(s);
  if (s.ok()) CheckAcceptedRecommend(r, limits);
}

void FuzzRecommendBatch(const std::string& bytes, const Limits& limits) {
  recd::v1::RecommendBatchRequest r;
  if (!r.ParseFromString(bytes)) return;
  const absl::Status s = ValidateRecommendBatchRequest(r, limits);
  CheckRefusal(s);
  if (!s.ok()) return;
  Check(r.requests_size() >= 1 && static_cast<size_t>(r.requests_size()) <= limits.max_batch_users,
        "accepted a batch size out of range");
  absl::flat_hash_set<std::string> users;
  for (const auto& entry : r.requests()) {
    CheckAcceptedRecommend(entry, limits);
    Check(users.insert(entry.user_id()).second, "accepted a duplicate user in a batch");
  }
}

void FuzzSimilarItems(const std::string& bytes, const Limits& limits) {
  recd::v1::SimilarItemsRequest r;
  if (!r.ParseFromString(bytes)) return;
  CheckPrimitives(r.item_id(), limits);
  const absl::Status s = ValidateSimilarItemsRequest(r, limits);
  CheckRefusal(s);
  if (!s.ok()) return;
  Check(ReferenceId(r.item_id(), limits), "accepted a bad item_id");
  Check(r.k() >= 1 && r.k() <= limits.max_k, "accepted k out of range");
  Check(r.model().size() <= limits.max_id_bytes && ReferenceUtf8(r.model()), "accepted a bad model name");
  CheckFilter(r.filter(), limits);
  CheckIdList(r.exclude_item_ids(), limits);
}

void FuzzLogInteractions(const std::string& bytes, const Limits& limits) {
  recd::v1::LogInteractionsRequest r;
  if (!r.ParseFromString(bytes)) return;
  for (const auto& in : r.interactions()) {
    CheckPrimitives(in.user_id(), limits);
    CheckPrimitives(in.item_id(), limits);
  }
  const absl::Status s = ValidateLogInteractionsRequest(r, kNowMs, limits);
  CheckRefusal(s);
  if (!s.ok()) return;
  Check(r.interactions_size() >= 1 &&
            static_cast<size_t>(r.interactions_size()) <= limits.max_batch_interactions,
        "accepted a batch size out of range");
  for (const auto& in : r.interactions()) {
    Check(ReferenceId(in.user_id(), limits) && ReferenceId(in.item_id(), limits), "accepted a bad id");
    const int type = static_cast<int>(in.event_type());
    Check(type >= 0 && type <= 8, "accepted an unknown event type");
    if (in.event_type() == recd::v1::EVENT_RATING) Check(in.has_value(), "accepted a rating without value");
    if (in.has_value()) {
      const float v = in.value();
      Check(std::isfinite(v) && std::fabs(v) <= limits.max_abs_value, "accepted a bad value");
      if (in.event_type() != recd::v1::EVENT_RATING) Check(v > 0.0f, "accepted a non-positive weight");
    }
    const int64_t ts = in.timestamp_ms();
    Check(ts == 0 || (ts >= limits.min_timestamp_ms && ts <= kNowMs + limits.max_future_ms),
          "accepted a timestamp out of range");
  }
}

void FuzzUpsertItems(const std::string& bytes, const Limits& limits) {
  recd::v1::UpsertItemsRequest r;
  if (!r.ParseFromString(bytes)) return;
  for (const auto& item : r.items()) CheckPrimitives(item.item_id(), limits);
  const absl::Status s = ValidateUpsertItemsRequest(r, limits);
  CheckRefusal(s);
  if (!s.ok()) return;
  Check(r.items_size() >= 1 && static_cast<size_t>(r.items_size()) <= limits.max_upsert_items,
        "accepted a batch size out of range");
  absl::flat_hash_set<std::string> ids;
  for (const auto& item : r.items()) {
    Check(ReferenceId(item.item_id(), limits), "accepted a bad item_id");
    Check(ids.insert(item.item_id()).second, "accepted a duplicate item id");
    CheckTerms(item.categories(), limits);
    CheckTerms(item.tags(), limits);
    Check(item.title().size() <= limits.max_title_bytes && ReferenceUtf8(item.title()), "accepted a bad title");
  }
}

Limits TightLimits() {
  Limits l;
  l.max_k = 5;
  l.max_id_bytes = 6;
  l.max_batch_interactions = 3;
  l.max_batch_users = 3;
  l.max_upsert_items = 3;
  l.max_exclude_ids = 3;
  l.max_filter_terms = 2;
  l.max_term_bytes = 4;
  l.max_title_bytes = 8;
  return l;
}

}  // namespace
}  // namespace recd::server

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recd::server;
  static const Limits kDefault;
  static const Limits kTight = TightLimits();
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  for (const Limits* limits : {&kDefault, &kTight}) {
    CheckPrimitives(bytes, *limits);
    FuzzRecommend(bytes, *limits);
    FuzzRecommendBatch(bytes, *limits);
    FuzzSimilarItems(bytes, *limits);
    FuzzLogInteractions(bytes, *limits);
    FuzzUpsertItems(bytes, *limits);
  }
  return 0;
}
