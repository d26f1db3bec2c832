// Server configuration: every knob with its documented default. Filled from command-line flags,
// which fall back to RECD_* environment variables (see server/flags.cc and `recd --help`).
#ifndef RECD_SERVER_OPTIONS_H_
#define RECD_SERVER_OPTIONS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "core/scorer.h"
#include "core/types.h"
#include "server/model_registry.h"

namespace recd::server {

// Request limits. A request above one is refused with INVALID_ARGUMENT naming field and limit.
struct Limits {
  int max_k = 1000;                      // Recommend/SimilarItems k
  size_t max_id_bytes = 256;             // user and item ids
  size_t max_batch_interactions = 10000; // LogInteractions entries
  size_t max_batch_users = 256;          // RecommendBatch entries
  size_t max_upsert_items = 10000;       // UpsertItems entries
  size_t max_exclude_ids = 10000;        // exclude_item_ids / include_item_ids entries
  size_t max_filter_terms = 64;          // categories/tags in a filter or on an item
  size_t max_term_bytes = 128;           // one category or tag
  size_t max_title_bytes = 1024;
  // Accepted interaction timestamps: [min_timestamp_ms, now + max_future_ms].
  int64_t min_timestamp_ms = 631152000000;  // 1990-01-01T00:00:00Z (MovieLens starts in 1995)
  int64_t max_future_ms = 24 * 3600 * 1000;
  float max_abs_value = 1e6f;            // |rating| and weights
};

struct ServerOptions {
  // Address to listen on, host:port. Port 0 picks a free port (reported on stdout and in
  // port_file). Default 127.0.0.1:50051.
  std::string listen = "127.0.0.1:50051";
  // If non-empty, the bound port is written to this file once the server is SERVING.
  std::string port_file;
  // Folder of the embedded RocksDB store. Created when missing.
  std::string data_dir = "./recd-data";
  // "auto": load the built-in synthetic demo data set when the store is empty; "off": never.
  std::string demo_data = "off";
  // Models trained by the trainer and served. "popularity" is always present (the fallback).
  std::vector<ModelConfig> models;
  // Model answering requests that name none.
  std::string default_model = "pure_svd";
  // Threads for training (0 = hardware concurrency).
  int train_threads = 0;
  // CPU priority of the trainer thread and the threads it starts: SCHED_IDLE (true; training
  // runs only on CPU time nothing else wants, and a request handler that wakes up preempts it at
  // once), or the normal policy at nice +10 (false; training keeps about a tenth of a busy core).
  bool train_idle_priority = true;
  // How item scorers are built for each model version (kind, threads per query, ...), with
  // per-model kind overrides. Default kind: int8 with exact answers (see core/scorer.h).
  ScorerConfig scorer = DefaultScorerConfig();
  // Newest history entries used to build a user vector and to exclude seen items.
  size_t max_history = 2000;
  // The store's in-memory cache of users' newest max_history history entries, in entries
  // (32 bytes each, plus ~100 bytes per cached user); least recently read users are evicted.
  // 4M is about 128 MB. 0 disables it (every request reads RocksDB).
  size_t history_cache_entries = 4'000'000;
  // Versions kept per model (older retired/rejected versions are deleted after a publish).
  int keep_versions = 5;
  // Seconds in-flight calls get to finish on SIGTERM before being cancelled.
  double drain_seconds = 10.0;
  // Background retraining (0 disables a trigger): every retrain_interval_seconds if anything was
  // logged meanwhile, and/or as soon as retrain_after_interactions were logged since the last run.
  double retrain_interval_seconds = 0;
  uint64_t retrain_after_interactions = 0;
  // Validation gate: publish a candidate only if its HR@10 on a holdout of recent interactions is
  // at least the live version's minus this (absolute). Negative disables the gate.
  double gate_tolerance = 0.05;
  // Fewest held-out users for the gate to judge (fewer: publish unvalidated).
  size_t gate_min_users = 20;
  // Share of each Recommend answer given to items without embeddings (new since the last
  // retrain), ranked by recent popularity. 0 disables exploration.
  double exploration_share = 0.1;
  // Repeat control: items with an impression (EVENT_IMPRESSION) in the user's history within this
  // many seconds rank after all other items. 0 disables.
  double impression_demotion_seconds = 1800;
  // Half-life of the recent-popularity counts used to rank those items.
  double recent_half_life_seconds = 3600;
  // Prometheus exposer address (host:port, port 0 = any free port); empty disables metrics.
  std::string metrics_listen = "127.0.0.1:9464";
  // Share of requests logged (one line each), 0..1. Server-side failures are always logged.
  double request_log_sample_rate = 0.0;
  // Seconds after a DeleteUser before the store's files are purged (flush + full compaction), so a
  // burst of deletions costs one purge. Until then deleted values may linger in data files.
  double purge_delay_seconds = 60;
  // Authentication: a token file (see server/auth.h); empty = no authentication.
  std::string auth_tokens_file;
  // Also require a "read"-scoped token for reads (Recommend, SimilarItems, GetModelInfo...).
  bool require_auth_for_reads = false;
  // TLS: PEM certificate chain and private key files; both empty = plaintext. With
  // tls_client_ca, clients must present a certificate signed by that CA (mutual TLS).
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // Transport bounds: largest request accepted, concurrent streams per connection, and the most
  // threads the server uses for handlers (excess calls wait or get RESOURCE_EXHAUSTED). The
  // thread bound counts gRPC's pollers too, and a durable LogInteractions holds its thread for
  // the fsync: at 64, 64 concurrent writers saw 10-60 % of their calls rejected (loadtest), so 256.
  int max_message_bytes = 16 << 20;
  int max_concurrent_streams = 100;
  int max_handler_threads = 256;
  // Verify the checksums of every store file at startup (reads the whole store once).
  bool verify_store = false;
  // fsync each write before acknowledging it. Off only for benchmarks.
  bool sync_writes = true;
  // Seed of training (deterministic models for a given log).
  uint64_t seed = 42;
  EventWeights event_weights;
  Limits limits;
};

// Parses "name[:algorithm]" entries (algorithm defaults to name) and "name.key=value" params,
// both comma-separated; ensures a "popularity" model exists. InvalidArgument on bad syntax,
// unknown algorithms or duplicate names.
absl::StatusOr<std::vector<ModelConfig>> ParseModelConfigs(absl::string_view models,
                                                           absl::string_view params);

// Parses "view=1,click=2,..." overriding `base`. InvalidArgument on unknown names/bad numbers.
absl::StatusOr<EventWeights> ParseEventWeights(absl::string_view spec, EventWeights base);

}  // namespace recd::server

#endif  // RECD_SERVER_OPTIONS_H_
