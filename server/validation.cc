#include "server/validation.h"

#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/types.h"

namespace recd::server {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status CheckCount(size_t n, size_t limit, absl::string_view field) {
  if (n > limit) {
    return Invalid(field, absl::StrCat(n, " entries, above the limit ", limit));
  }
  return absl::OkStatus();
}

absl::Status ValidateTerms(const google::protobuf::RepeatedPtrField<std::string>& terms,
                           absl::string_view field, const Limits& limits) {
  RETURN_IF_ERROR(CheckCount(terms.size(), limits.max_filter_terms, field));
  for (int i = 0; i < terms.size(); ++i) {
    const std::string& t = terms[i];
    const std::string path = absl::StrCat(field, "[", i, "]");
    if (t.empty()) return Invalid(path, "empty");
    if (t.size() > limits.max_term_bytes) {
      return Invalid(path, absl::StrCat(t.size(), " bytes, above the limit ", limits.max_term_bytes));
    }
    if (!IsValidUtf8(t)) return Invalid(path, "not valid UTF-8");
  }
  return absl::OkStatus();
}

absl::Status ValidateIdList(const google::protobuf::RepeatedPtrField<std::string>& ids,
                            absl::string_view field, const Limits& limits) {
  RETURN_IF_ERROR(CheckCount(ids.size(), limits.max_exclude_ids, field));
  for (int i = 0; i < ids.size(); ++i) {
    RETURN_IF_ERROR(ValidateId(ids[i], absl::StrCat(field, "[", i, "]"), limits));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsValidUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p < len) return false;
    for (int i = 1; i < len; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    static constexpr uint32_t kMinForLength[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += len;
  }
  return true;
}

absl::Status ValidateId(absl::string_view id, absl::string_view field, const Limits& limits) {
  if (id.empty()) return Invalid(field, "empty; an id of 1 to " + std::to_string(limits.max_id_bytes) + " bytes is required");
  if (id.size() > limits.max_id_bytes) {
    return Invalid(field, absl::StrCat(id.size(), " bytes, above the limit ", limits.max_id_bytes));
  }
  if (!IsValidUtf8(id)) return Invalid(field, "not valid UTF-8");
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7F) return Invalid(field, "contains a control character");
  }
  return absl::OkStatus();
}

absl::Status ValidateK(int64_t k, absl::string_view field, const Limits& limits) {
  if (k <= 0) {
    return Invalid(field, absl::StrCat(k, " is not positive; ask for 1 to ", limits.max_k, " items"));
  }
  if (k > limits.max_k) {
    return Invalid(field, absl::StrCat(k, " is above the limit ", limits.max_k));
  }
  return absl::OkStatus();
}

absl::Status ValidateFilter(const recd::v1::ItemFilter& filter, absl::string_view prefix,
                            const Limits& limits) {
  RETURN_IF_ERROR(
      ValidateTerms(filter.include_categories(), absl::StrCat(prefix, "filter.include_categories"), limits));
  RETURN_IF_ERROR(
      ValidateTerms(filter.exclude_categories(), absl::StrCat(prefix, "filter.exclude_categories"), limits));
  RETURN_IF_ERROR(ValidateTerms(filter.include_tags(), absl::StrCat(prefix, "filter.include_tags"), limits));
  RETURN_IF_ERROR(ValidateTerms(filter.exclude_tags(), absl::StrCat(prefix, "filter.exclude_tags"), limits));
  RETURN_IF_ERROR(
      ValidateIdList(filter.include_item_ids(), absl::StrCat(prefix, "filter.include_item_ids"), limits));
  return absl::OkStatus();
}

absl::Status ValidateRecommendRequest(const recd::v1::RecommendRequest& request,
                                      absl::string_view prefix, const Limits& limits) {
  RETURN_IF_ERROR(ValidateId(request.user_id(), absl::StrCat(prefix, "user_id"), limits));
  RETURN_IF_ERROR(ValidateK(request.k(), absl::StrCat(prefix, "k"), limits));
  if (request.model().size() > limits.max_id_bytes || !IsValidUtf8(request.model())) {
    return Invalid(absl::StrCat(prefix, "model"), "not a valid model name");
  }
  RETURN_IF_ERROR(
      ValidateIdList(request.exclude_item_ids(), absl::StrCat(prefix, "exclude_item_ids"), limits));
  RETURN_IF_ERROR(ValidateFilter(request.filter(), prefix, limits));
  const auto& diversity = request.diversity();
  if (!(diversity.mmr_lambda() >= 0.0f && diversity.mmr_lambda() <= 1.0f)) {
    return Invalid(absl::StrCat(prefix, "diversity.mmr_lambda"),
                   absl::StrCat(diversity.mmr_lambda(), " is outside [0, 1]"));
  }
  if (diversity.max_per_category() < 0 || diversity.max_per_category() > limits.max_k) {
    return Invalid(absl::StrCat(prefix, "diversity.max_per_category"),
                   absl::StrCat(diversity.max_per_category(), " is outside [0, ", limits.max_k, "]"));
  }
  if (request.page_token().size() > 1024) {
    return Invalid(absl::StrCat(prefix, "page_token"), "longer than 1024 bytes; not a token this server issued");
  }
  return absl::OkStatus();
}

absl::Status ValidateRecommendBatchRequest(const recd::v1::RecommendBatchRequest& request,
                                           const Limits& limits) {
  if (request.requests().empty()) return Invalid("requests", "empty; send 1 or more entries");
  RETURN_IF_ERROR(CheckCount(request.requests_size(), limits.max_batch_users, "requests"));
  absl::flat_hash_set<absl::string_view> seen;
  for (int i = 0; i < request.requests_size(); ++i) {
    const std::string prefix = absl::StrCat("requests[", i, "].");
    RETURN_IF_ERROR(ValidateRecommendRequest(request.requests(i), prefix, limits));
    if (!seen.insert(request.requests(i).user_id()).second) {
      return Invalid(absl::StrCat(prefix, "user_id"),
                     absl::StrCat("'", request.requests(i).user_id(), "' appears twice in the batch"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSimilarItemsRequest(const recd::v1::SimilarItemsRequest& request,
                                         const Limits& limits) {
  RETURN_IF_ERROR(ValidateId(request.item_id(), "item_id", limits));
  RETURN_IF_ERROR(ValidateK(request.k(), "k", limits));
  if (request.model().size() > limits.max_id_bytes || !IsValidUtf8(request.model())) {
    return Invalid("model", "not a valid model name");
  }
  RETURN_IF_ERROR(ValidateFilter(request.filter(), "", limits));
  RETURN_IF_ERROR(ValidateIdList(request.exclude_item_ids(), "exclude_item_ids", limits));
  return absl::OkStatus();
}

absl::Status ValidateLogInteractionsRequest(const recd::v1::LogInteractionsRequest& request,
                                            int64_t now_ms, const Limits& limits) {
  if (request.interactions().empty()) return Invalid("interactions", "empty; send 1 or more");
  RETURN_IF_ERROR(CheckCount(request.interactions_size(), limits.max_batch_interactions, "interactions"));
  const int64_t max_ts = now_ms + limits.max_future_ms;
  for (int i = 0; i < request.interactions_size(); ++i) {
    const recd::v1::Interaction& in = request.interactions(i);
    const std::string prefix = absl::StrCat("interactions[", i, "].");
    RETURN_IF_ERROR(ValidateId(in.user_id(), absl::StrCat(prefix, "user_id"), limits));
    RETURN_IF_ERROR(ValidateId(in.item_id(), absl::StrCat(prefix, "item_id"), limits));
    const int type = static_cast<int>(in.event_type());
    if (type != 0 && !IsValidEventType(type)) {
      return Invalid(absl::StrCat(prefix, "event_type"), absl::StrCat(type, " is not a known event type"));
    }
    if (in.event_type() == recd::v1::EVENT_RATING && !in.has_value()) {
      return Invalid(absl::StrCat(prefix, "value"), "required for EVENT_RATING (the rating)");
    }
    if (in.has_value()) {
      const float v = in.value();
      if (!std::isfinite(v)) return Invalid(absl::StrCat(prefix, "value"), "not a finite number");
      if (in.event_type() == recd::v1::EVENT_RATING) {
        if (std::fabs(v) > limits.max_abs_value) {
          return Invalid(absl::StrCat(prefix, "value"),
                         absl::StrCat(v, " is outside [-", limits.max_abs_value, ", ", limits.max_abs_value, "]"));
        }
      } else if (!(v > 0.0f) || v > limits.max_abs_value) {
        return Invalid(absl::StrCat(prefix, "value"),
                       absl::StrCat("weight ", v, " is outside (0, ", limits.max_abs_value, "]"));
      }
    }
    const int64_t ts = in.timestamp_ms();
    if (ts != 0 && (ts < limits.min_timestamp_ms || ts > max_ts)) {
      return Invalid(absl::StrCat(prefix, "timestamp_ms"),
                     absl::StrCat(ts, " is outside [", limits.min_timestamp_ms, " (1990-01-01), now + ",
                                  limits.max_future_ms / 1000, " s]; 0 means the receive time"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateUpsertItemsRequest(const recd::v1::UpsertItemsRequest& request,
                                        const Limits& limits) {
  if (request.items().empty()) return Invalid("items", "empty; send 1 or more");
  RETURN_IF_ERROR(CheckCount(request.items_size(), limits.max_upsert_items, "items"));
  absl::flat_hash_set<absl::string_view> seen;
  for (int i = 0; i < request.items_size(); ++i) {
    const recd::v1::Item& item = request.items(i);
    const std::string prefix = absl::StrCat("items[", i, "].");
    RETURN_IF_ERROR(ValidateId(item.item_id(), absl::StrCat(prefix, "item_id"), limits));
    if (!seen.insert(item.item_id()).second) {
      return Invalid(absl::StrCat(prefix, "item_id"),
                     absl::StrCat("'", item.item_id(), "' appears twice in the batch"));
    }
    RETURN_IF_ERROR(ValidateTerms(item.categories(), absl::StrCat(prefix, "categories"), limits));
    RETURN_IF_ERROR(ValidateTerms(item.tags(), absl::StrCat(prefix, "tags"), limits));
    if (item.title().size() > limits.max_title_bytes) {
      return Invalid(absl::StrCat(prefix, "title"),
                     absl::StrCat(item.title().size(), " bytes, above the limit ", limits.max_title_bytes));
    }
    if (!IsValidUtf8(item.title())) return Invalid(absl::StrCat(prefix, "title"), "not valid UTF-8");
  }
  return absl::OkStatus();
}

}  // namespace recd::server
