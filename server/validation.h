// Request validation: every field is checked against the Limits before any work is done. Errors
// are InvalidArgument with the field's path and the limit, e.g.
// "requests[2].k: 5000 is above the limit 1000".
#ifndef RECD_SERVER_VALIDATION_H_
#define RECD_SERVER_VALIDATION_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "recd/v1/recommender.pb.h"
#include "server/options.h"

namespace recd::server {

// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(absl::string_view s);

// A user or item id: 1..max_id_bytes bytes of UTF-8 without control characters.
absl::Status ValidateId(absl::string_view id, absl::string_view field, const Limits& limits);

// k in 1..max_k.
absl::Status ValidateK(int64_t k, absl::string_view field, const Limits& limits);

// `prefix` is prepended to field names ("" for a top-level request, "requests[3]." in a batch).
absl::Status ValidateFilter(const recd::v1::ItemFilter& filter, absl::string_view prefix,
                            const Limits& limits);
absl::Status ValidateRecommendRequest(const recd::v1::RecommendRequest& request,
                                      absl::string_view prefix, const Limits& limits);
absl::Status ValidateRecommendBatchRequest(const recd::v1::RecommendBatchRequest& request,
                                           const Limits& limits);
absl::Status ValidateSimilarItemsRequest(const recd::v1::SimilarItemsRequest& request,
                                         const Limits& limits);
// `now_ms` bounds timestamps from above (now + max_future_ms).
absl::Status ValidateLogInteractionsRequest(const recd::v1::LogInteractionsRequest& request,
                                            int64_t now_ms, const Limits& limits);
absl::Status ValidateUpsertItemsRequest(const recd::v1::UpsertItemsRequest& request,
                                        const Limits& limits);

}  // namespace recd::server

#endif  // RECD_SERVER_VALIDATION_H_
