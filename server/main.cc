// recd: the recommendation server. Run `recd --help` for the flags; each flag can also be set
// through the environment as RECD_<FLAG_NAME_IN_CAPITALS> (a command-line flag wins).
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/logging.h"
#include "server/options.h"
#include "server/server.h"

namespace {
const recd::server::ServerOptions kDefaults;
const recd::server::Limits kLimits;
}  // namespace

ABSL_FLAG(std::string, listen, kDefaults.listen, "Address to serve gRPC on (host:port; port 0 = any free port).");
ABSL_FLAG(std::string, data_dir, kDefaults.data_dir, "Folder of the embedded RocksDB store (created when missing).");
ABSL_FLAG(std::string, port_file, "", "If set, the bound port is written to this file once serving.");
ABSL_FLAG(std::string, demo_data, kDefaults.demo_data,
          "'auto': load the built-in synthetic demo data set when the store is empty; 'off': never.");
ABSL_FLAG(std::string, models, "popularity,pure_svd",
          "Models to train and serve: comma-separated name[:algorithm] (algorithm defaults to the name). "
          "'popularity' is always added: it is the fallback.");
ABSL_FLAG(std::string, model_params, "",
          "Hyperparameters: comma-separated model.key=value, e.g. pure_svd.rank=128.");
ABSL_FLAG(std::string, default_model, kDefaults.default_model, "Model answering requests that name none.");
ABSL_FLAG(int, train_threads, kDefaults.train_threads, "Training threads (0 = all cores).");
ABSL_FLAG(std::string, train_priority, kDefaults.train_idle_priority ? "idle" : "low",
          "CPU priority of training: 'idle' (SCHED_IDLE: only CPU time requests leave; a request preempts it at "
          "once) or 'low' (nice +10: keeps about a tenth of a core that requests saturate).");
ABSL_FLAG(int, scorer_threads, kDefaults.scorer.defaults.num_threads, "Threads scanning the catalogue for one request.");
ABSL_FLAG(std::string, scorer, recd::server::ScorerKindName(kDefaults.scorer.defaults),
          "Top-k search of every model: 'int8' (int8 screen with proven bounds: the exact scan's answers, "
          "~4x fewer bytes read), 'exact' (float32 scan), 'int8_approx' (int8, fixed re-rank: may miss items) "
          "or 'hnsw' (approximate graph search, built at each model load).");
ABSL_FLAG(int, micro_batch_max, 0,
          "Micro-batching: Recommend calls that arrive while every scan slot is busy share one blocked "
          "matrix product over the catalogue, up to this many per batch (0 or 1 = off). No timer: an idle "
          "server answers each call alone.");
ABSL_FLAG(int, micro_batch_scans, 0, "Scans running at once before calls queue for a batch (0 = hardware threads).");
ABSL_FLAG(int64_t, fold_in_cache_users, static_cast<int64_t>(kDefaults.scorer.fold_in_cache_users),
          "Folded-in user vectors remembered per model (users with interactions newer than the model; 0 = off).");
ABSL_FLAG(std::string, model_scorers, "",
          "Per-model scorer kinds overriding --scorer, e.g. two_tower=hnsw,pure_svd=exact.");
ABSL_FLAG(int, max_history, static_cast<int>(kDefaults.max_history),
          "Newest history entries used per request (user vector, seen-item exclusion).");
ABSL_FLAG(uint64_t, history_cache_entries, kDefaults.history_cache_entries,
          "Memory for the newest --max_history history entries of recently active users, in entries (32 bytes "
          "each, plus ~100 bytes per user); least recently read users are evicted; 0 = off.");
ABSL_FLAG(int, keep_versions, kDefaults.keep_versions, "Stored versions kept per model (for rollback).");
ABSL_FLAG(double, drain_seconds, kDefaults.drain_seconds, "On SIGTERM, seconds in-flight calls get to finish.");
ABSL_FLAG(bool, sync_writes, kDefaults.sync_writes,
          "fsync every write before acknowledging it. Turn off for benchmarks only.");
ABSL_FLAG(uint64_t, seed, kDefaults.seed, "Training seed.");
ABSL_FLAG(std::string, event_weights, "",
          "Implicit-feedback weights, e.g. view=1,click=2,add_to_cart=4,purchase=8,like=4,rating_scale=1.");
ABSL_FLAG(double, retrain_interval_seconds, kDefaults.retrain_interval_seconds,
          "Retrain every model this often (seconds) when anything was logged meanwhile; 0 = off.");
ABSL_FLAG(uint64_t, retrain_after_interactions, kDefaults.retrain_after_interactions,
          "Retrain every model once this many interactions were logged since the last run; 0 = off.");
ABSL_FLAG(double, gate_tolerance, kDefaults.gate_tolerance,
          "Publish a retrained version only if its holdout HR@10 is at least the live version's minus this; "
          "negative disables the validation gate.");
ABSL_FLAG(int, gate_min_users, static_cast<int>(kDefaults.gate_min_users),
          "Fewest held-out users (with interactions newer than the live version) for the gate to judge.");
ABSL_FLAG(double, exploration_share, kDefaults.exploration_share,
          "Share of each recommendation list given to items newer than the model, by recent popularity; 0 = off.");
ABSL_FLAG(double, recent_half_life_seconds, kDefaults.recent_half_life_seconds,
          "Half-life of the recent-popularity counts that rank new items.");
ABSL_FLAG(double, impression_demotion_seconds, kDefaults.impression_demotion_seconds,
          "Items shown to a user (EVENT_IMPRESSION) within this many seconds rank after all others; 0 = off.");
ABSL_FLAG(std::string, auth_tokens_file, "",
          "File of bearer tokens, one '<scopes> <token>' per line (scopes: read, write, admin). When set, write "
          "and admin RPCs need a token with the scope in 'authorization: Bearer <token>'.");
ABSL_FLAG(bool, require_auth_for_reads, false, "With --auth_tokens_file, reads need a 'read' token too.");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain for TLS (with --tls_key).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for TLS.");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA bundle: clients must present a certificate it signed (mutual TLS).");
ABSL_FLAG(int, max_message_bytes, kDefaults.max_message_bytes, "Largest request message accepted, bytes.");
ABSL_FLAG(int, max_concurrent_streams, kDefaults.max_concurrent_streams, "Concurrent calls per client connection.");
ABSL_FLAG(int, max_handler_threads, kDefaults.max_handler_threads, "Most threads handling calls at once.");
ABSL_FLAG(double, purge_delay_seconds, kDefaults.purge_delay_seconds,
          "Seconds after DeleteUser before deleted data is purged from the store's files (flush + compaction).");
ABSL_FLAG(bool, verify_store, false,
          "Verify the checksums of every store file at startup (reads the whole store once).");
ABSL_FLAG(int, max_k, kLimits.max_k, "Largest k a request may ask for.");
ABSL_FLAG(int, max_batch_interactions, static_cast<int>(kLimits.max_batch_interactions),
          "Most interactions in one LogInteractions call.");
ABSL_FLAG(int, max_batch_users, static_cast<int>(kLimits.max_batch_users),
          "Most users in one RecommendBatch call.");
ABSL_FLAG(std::string, log_level, "info", "Minimum log level: debug, info, warning, error.");
ABSL_FLAG(bool, mutex_deadlock_detection, false,
          "Check every absl::Mutex acquisition (gRPC's; recd's own locks are std::shared_mutex) against a global "
          "lock-order graph and abort on a potential deadlock. For tests and debugging: each lock gets several "
          "times slower.");
ABSL_FLAG(std::string, metrics_listen, kDefaults.metrics_listen,
          "Prometheus metrics address (host:port, port 0 = any free port), served at /metrics; empty = off.");
ABSL_FLAG(double, request_log_sample_rate, kDefaults.request_log_sample_rate,
          "Share of requests logged, one line each (0 = off, 1 = all). Server-side failures are always logged.");

namespace {

// Every flag not given on the command line takes RECD_<NAME> from the environment when set.
bool ApplyEnvironment(int argc, char** argv) {
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    const std::string env = absl::StrCat("RECD_", absl::AsciiStrToUpper(name));
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      std::fprintf(stderr, "recd: error: %s=%s: %s\n", env.c_str(), value, error.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "recd: online recommendation server.\n"
      "  recd --data_dir=./recd-data --listen=127.0.0.1:50051 [--demo_data=auto]\n"
      "Flags may also be set as RECD_<FLAG> environment variables.");
  // --help lists recd's own flags (Abseil's default matches only a file named after the binary);
  // --helpfull adds those of the libraries.
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) { return absl::EndsWith(file, "server/main.cc"); };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  if (!ApplyEnvironment(argc, argv)) return 2;
  absl::ParseCommandLine(argc, argv);
  // Debian builds Abseil without NDEBUG, which turns Mutex deadlock detection on by default:
  // every absl::Mutex lock (gRPC's) then updates a global lock graph (~110 ns more per lock pair
  // measured here, and a global point of contention between handler threads). Off unless asked.
  absl::SetMutexDeadlockDetectionMode(absl::GetFlag(FLAGS_mutex_deadlock_detection)
                                          ? absl::OnDeadlockCycle::kAbort
                                          : absl::OnDeadlockCycle::kIgnore);

  recd::server::LogLevel level;
  if (!recd::server::ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    std::fprintf(stderr, "recd: error: --log_level: '%s' is not one of debug, info, warning, error\n",
                 absl::GetFlag(FLAGS_log_level).c_str());
    return 2;
  }
  recd::server::SetMinLogLevel(level);

  recd::server::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.port_file = absl::GetFlag(FLAGS_port_file);
  options.demo_data = absl::GetFlag(FLAGS_demo_data);
  options.default_model = absl::GetFlag(FLAGS_default_model);
  options.train_threads = absl::GetFlag(FLAGS_train_threads);
  if (const std::string priority = absl::GetFlag(FLAGS_train_priority); priority == "idle" || priority == "low") {
    options.train_idle_priority = priority == "idle";
  } else {
    std::fprintf(stderr, "recd: error: --train_priority: '%s' is not 'idle' or 'low'\n", priority.c_str());
    return 2;
  }
  options.scorer.defaults.num_threads = std::max(1, absl::GetFlag(FLAGS_scorer_threads));
  if (absl::GetFlag(FLAGS_micro_batch_max) < 0 || absl::GetFlag(FLAGS_micro_batch_max) > 4096 ||
      absl::GetFlag(FLAGS_micro_batch_scans) < 0 || absl::GetFlag(FLAGS_micro_batch_scans) > 1024) {
    std::fprintf(stderr, "recd: error: --micro_batch_max must be in [0, 4096] and --micro_batch_scans in [0, 1024]\n");
    return 2;
  }
  options.scorer.micro_batch_max = static_cast<size_t>(absl::GetFlag(FLAGS_micro_batch_max));
  options.scorer.micro_batch_scans = static_cast<size_t>(absl::GetFlag(FLAGS_micro_batch_scans));
  if (absl::GetFlag(FLAGS_fold_in_cache_users) < 0 || absl::GetFlag(FLAGS_fold_in_cache_users) > (int64_t{1} << 32)) {
    std::fprintf(stderr, "recd: error: --fold_in_cache_users must be in [0, 4294967296]\n");
    return 2;
  }
  options.scorer.fold_in_cache_users = static_cast<size_t>(absl::GetFlag(FLAGS_fold_in_cache_users));
  options.max_history = static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_max_history)));
  options.history_cache_entries = static_cast<size_t>(absl::GetFlag(FLAGS_history_cache_entries));
  options.keep_versions = std::max(1, absl::GetFlag(FLAGS_keep_versions));
  options.drain_seconds = absl::GetFlag(FLAGS_drain_seconds);
  options.sync_writes = absl::GetFlag(FLAGS_sync_writes);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.retrain_interval_seconds = absl::GetFlag(FLAGS_retrain_interval_seconds);
  options.retrain_after_interactions = absl::GetFlag(FLAGS_retrain_after_interactions);
  options.gate_tolerance = absl::GetFlag(FLAGS_gate_tolerance);
  options.gate_min_users = static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_gate_min_users)));
  options.exploration_share = absl::GetFlag(FLAGS_exploration_share);
  options.recent_half_life_seconds = absl::GetFlag(FLAGS_recent_half_life_seconds);
  if (!(options.exploration_share >= 0 && options.exploration_share <= 1)) {
    std::fprintf(stderr, "recd: error: --exploration_share must be in [0, 1]\n");
    return 2;
  }
  if (!(options.recent_half_life_seconds > 0) || options.retrain_interval_seconds < 0) {
    std::fprintf(stderr, "recd: error: --recent_half_life_seconds must be > 0 and --retrain_interval_seconds >= 0\n");
    return 2;
  }
  options.impression_demotion_seconds = std::max(0.0, absl::GetFlag(FLAGS_impression_demotion_seconds));
  options.auth_tokens_file = absl::GetFlag(FLAGS_auth_tokens_file);
  options.require_auth_for_reads = absl::GetFlag(FLAGS_require_auth_for_reads);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  options.max_handler_threads = absl::GetFlag(FLAGS_max_handler_threads);
  if (options.max_message_bytes < 1024 || options.max_concurrent_streams < 1 || options.max_handler_threads < 2) {
    std::fprintf(stderr, "recd: error: --max_message_bytes >= 1024, --max_concurrent_streams >= 1 and "
                         "--max_handler_threads >= 2 are required\n");
    return 2;
  }
  options.purge_delay_seconds = std::max(0.0, absl::GetFlag(FLAGS_purge_delay_seconds));
  options.verify_store = absl::GetFlag(FLAGS_verify_store);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.request_log_sample_rate = absl::GetFlag(FLAGS_request_log_sample_rate);
  if (!(options.request_log_sample_rate >= 0 && options.request_log_sample_rate <= 1)) {
    std::fprintf(stderr, "recd: error: --request_log_sample_rate must be in [0, 1]\n");
    return 2;
  }
  options.limits.max_k = absl::GetFlag(FLAGS_max_k);
  options.limits.max_batch_interactions = static_cast<size_t>(absl::GetFlag(FLAGS_max_batch_interactions));
  options.limits.max_batch_users = static_cast<size_t>(absl::GetFlag(FLAGS_max_batch_users));
  if (options.demo_data != "auto" && options.demo_data != "off") {
    std::fprintf(stderr, "recd: error: --demo_data: '%s' is not 'auto' or 'off'\n", options.demo_data.c_str());
    return 2;
  }
  if (options.limits.max_k < 1 || options.limits.max_batch_interactions < 1 || options.limits.max_batch_users < 1) {
    std::fprintf(stderr, "recd: error: --max_k, --max_batch_interactions and --max_batch_users must be >= 1\n");
    return 2;
  }
  auto models = recd::server::ParseModelConfigs(absl::GetFlag(FLAGS_models), absl::GetFlag(FLAGS_model_params));
  if (!models.ok()) {
    std::fprintf(stderr, "recd: error: %s\n", std::string(models.status().message()).c_str());
    return 2;
  }
  options.models = std::move(*models);
  if (absl::Status s = recd::server::ParseScorerKind(absl::GetFlag(FLAGS_scorer), "--scorer",
                                                     options.scorer.defaults);
      !s.ok()) {
    std::fprintf(stderr, "recd: error: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (absl::Status s = recd::server::ParseModelScorers(absl::GetFlag(FLAGS_model_scorers),
                                                       options.models, options.scorer);
      !s.ok()) {
    std::fprintf(stderr, "recd: error: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  auto weights = recd::server::ParseEventWeights(absl::GetFlag(FLAGS_event_weights), options.event_weights);
  if (!weights.ok()) {
    std::fprintf(stderr, "recd: error: %s\n", std::string(weights.status().message()).c_str());
    return 2;
  }
  options.event_weights = *weights;

  // Block the stop signals in every thread (gRPC, RocksDB and trainer threads inherit the mask);
  // the main thread receives them synchronously with sigwait below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = recd::server::RecdServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "recd: error: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  const size_t colon = options.listen.rfind(':');
  std::printf("recd listening on %s:%d\n",
              colon == std::string::npos ? options.listen.c_str() : options.listen.substr(0, colon).c_str(),
              (*server)->port());
  if (const std::string example = (*server)->ExampleCommand(); !example.empty()) {
    std::printf("Try: %s\n", example.c_str());
  }
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  RECD_LOG(kInfo, "server", "received ", signal_number == SIGTERM ? "SIGTERM" : "SIGINT", ", shutting down");
  (*server)->Shutdown();
  return 0;
}
