// Loads the built-in synthetic demo data set (core/demo_data.h) through the engine's normal
// write path, so a newcomer's first server has items with categories and a realistic log.
#ifndef RECD_SERVER_DEMO_H_
#define RECD_SERVER_DEMO_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/types.h"
#include "server/engine.h"

namespace recd::server {

// Generates the demo data (fixed seed; timestamps end at `now_ms`) and writes its items and
// interactions. The caller checks that the store is empty first.
absl::Status LoadDemoData(Engine& engine, int64_t now_ms);

// Writes `interactions` through Engine::LogInteractions in batches of 10,000 (the demo loader
// and benchmarks use it).
absl::Status LogExternalInteractions(Engine& engine, absl::Span<const ExternalInteraction> interactions);

}  // namespace recd::server

#endif  // RECD_SERVER_DEMO_H_
