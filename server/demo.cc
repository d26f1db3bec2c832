#include "server/demo.h"

#include <algorithm>
#include <vector>

#include "core/demo_data.h"
#include "core/status_macros.h"
#include "server/logging.h"

namespace recd::server {

absl::Status LogExternalInteractions(Engine& engine, absl::Span<const ExternalInteraction> interactions) {
  constexpr size_t kBatch = 10000;
  for (size_t start = 0; start < interactions.size(); start += kBatch) {
    recd::v1::LogInteractionsRequest request;
    const size_t end = std::min(interactions.size(), start + kBatch);
    for (size_t i = start; i < end; ++i) {
      const ExternalInteraction& e = interactions[i];
      recd::v1::Interaction* out = request.add_interactions();
      out->set_user_id(e.user_id);
      out->set_item_id(e.item_id);
      out->set_event_type(static_cast<recd::v1::EventType>(e.event));
      if (e.has_value) out->set_value(e.value);
      out->set_timestamp_ms(e.timestamp_ms);
    }
    recd::v1::LogInteractionsResponse response;
    RETURN_IF_ERROR(engine.LogInteractions(request, &response));
  }
  return absl::OkStatus();
}

absl::Status LoadDemoData(Engine& engine, int64_t now_ms) {
  DemoDataOptions options;
  options.end_time_ms = now_ms;
  ASSIGN_OR_RETURN(DemoDataset demo, GenerateDemoData(options));

  std::vector<storage::ItemRecord> items;
  items.reserve(demo.items.size());
  for (const DemoItem& d : demo.items) {
    storage::ItemRecord& r = items.emplace_back();
    r.id = d.id;
    r.categories = d.categories;
    r.tags = d.tags;
    r.title = d.title;
    r.updated_at_ms = now_ms;
  }
  RETURN_IF_ERROR(engine.ApplyItems(std::move(items)).status());

  RETURN_IF_ERROR(LogExternalInteractions(engine, demo.interactions));
  RECD_LOG(kInfo, "demo", "loaded the demo data set: ", demo.users.size(), " users, ", demo.items.size(),
           " items, ", demo.interactions.size(), " interactions");
  return absl::OkStatus();
}

}  // namespace recd::server
