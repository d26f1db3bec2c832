#include "server/server.h"

#include <pthread.h>

#include <fstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/scorer.h"
#include "core/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "server/auth.h"
#include "server/demo.h"
#include "server/engine.h"
#include "prometheus/exposer.h"
#include "server/logging.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/service.h"
#include "server/trainer.h"
#include "storage/store.h"

namespace recd::server {
namespace {

constexpr char kServiceName[] = "recd.v1.Recommender";

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, "=", path, ": cannot be read"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > (1 << 20)) return absl::InvalidArgumentError(absl::StrCat(flag, "=", path, ": larger than 1 MiB"));
  return text;
}

// Plaintext, TLS, or mutual TLS, from the options.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const ServerOptions& options) {
  if (options.tls_cert.empty() && options.tls_key.empty()) {
    if (!options.tls_client_ca.empty()) {
      return absl::InvalidArgumentError("--tls_client_ca needs --tls_cert and --tls_key");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert.empty() || options.tls_key.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls_cert and --tls_key");
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.private_key, ReadSmallFile(options.tls_key, "--tls_key"));
  ASSIGN_OR_RETURN(pair.cert_chain, ReadSmallFile(options.tls_cert, "--tls_cert"));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.tls_client_ca.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadSmallFile(options.tls_client_ca, "--tls_client_ca"));
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

class RecdServerImpl : public RecdServer {
 public:
  explicit RecdServerImpl(const ServerOptions& options) : options_(options) {}
  ~RecdServerImpl() override { Shutdown(); }

  absl::Status Init();
  int port() const override { return port_; }
  std::string ExampleCommand() const override;
  void Shutdown() override;

 private:
  const ServerOptions options_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<Trainer> trainer_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Metrics> metrics_;
  std::shared_ptr<StateCollector> state_collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int metrics_port_ = 0;
  Authorizer auth_;
  std::unique_ptr<RecommenderService> service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  // Periodic upkeep off the request path (Engine::Maintain), about once a second.
  std::thread maintenance_;
  Mutex maintenance_mu_;
  CondVar maintenance_wake_;
  bool stop_maintenance_ ABSL_GUARDED_BY(maintenance_mu_) = false;
  int port_ = 0;
  Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

absl::Status RecdServerImpl::Init() {
  storage::StoreOptions store_options;
  store_options.path = options_.data_dir;
  store_options.sync_writes = options_.sync_writes;
  store_options.verify_checksums = options_.verify_store;
  // Requests read the newest max_history entries: the cache keeps exactly those.
  store_options.history_cache_depth = options_.max_history;
  store_options.history_cache_entries = options_.history_cache_entries;
  store_options.warn = [](absl::string_view message) { RECD_LOG(kWarning, "store", message); };
  absl::StatusOr<std::unique_ptr<storage::Store>> store = storage::Store::Open(store_options);
  if (!store.ok()) {
    return absl::Status(store.status().code(),
                        absl::StrCat("cannot open the store (--data_dir=", options_.data_dir,
                                     "): ", store.status().message()));
  }
  store_ = std::move(*store);

  const int threads = options_.train_threads > 0
                          ? options_.train_threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  registry_ = std::make_unique<ModelRegistry>(options_.models, options_.default_model);
  RETURN_IF_ERROR(registry_->Config(options_.default_model).status());
  TrainerOptions trainer_options;
  trainer_options.num_threads = threads;
  trainer_options.idle_priority = options_.train_idle_priority;
  trainer_options.seed = options_.seed;
  trainer_options.event_weights = options_.event_weights;
  trainer_options.keep_versions = options_.keep_versions;
  trainer_options.scorer = options_.scorer;
  trainer_options.retrain_interval_seconds = options_.retrain_interval_seconds;
  trainer_options.retrain_after_interactions = options_.retrain_after_interactions;
  trainer_options.gate_enabled = options_.gate_tolerance >= 0;
  trainer_options.gate_tolerance = options_.gate_tolerance;
  trainer_options.gate_min_users = options_.gate_min_users;
  metrics_ = std::make_unique<Metrics>();
  trainer_options.on_result = [metrics = metrics_.get()](const TrainResult& r) { metrics->CountTraining(r); };
  trainer_ = std::make_unique<Trainer>(store_.get(), registry_.get(), trainer_options);
  engine_ = std::make_unique<Engine>(options_, store_.get(), registry_.get(), trainer_.get(),
                                     Clock::Real());

  ASSIGN_OR_RETURN(std::vector<std::string> untrained, engine_->LoadFromStore());
  const storage::StoreStats stats = store_->GetStats();
  if (options_.demo_data == "auto" && stats.last_sequence == 0 && stats.num_items == 0) {
    RETURN_IF_ERROR(LoadDemoData(*engine_, Clock::Real()->NowMs()));
    for (const TrainResult& r : trainer_->RunNow({})) {
      if (r.outcome != TrainResult::Outcome::kPublished) {
        return absl::InternalError(absl::StrCat("training ", r.model, " on the demo data: ", r.message));
      }
    }
    untrained.clear();
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  if (!options_.metrics_listen.empty()) {
    state_collector_ = std::make_shared<StateCollector>(store_.get(), registry_.get(), Clock::Real());
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(options_.metrics_listen, /*num_threads=*/1);
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", options_.metrics_listen,
                                                 " (--metrics_listen): ", e.what()));
    }
    exposer_->RegisterCollectable(metrics_->registry());
    exposer_->RegisterCollectable(state_collector_);
    const std::vector<int> ports = exposer_->GetListeningPorts();
    metrics_port_ = ports.empty() ? 0 : ports[0];
  }
  if (!options_.auth_tokens_file.empty()) {
    ASSIGN_OR_RETURN(std::string tokens, ReadSmallFile(options_.auth_tokens_file, "--auth_tokens_file"));
    absl::StatusOr<Authorizer> auth = Authorizer::FromConfig(tokens, options_.require_auth_for_reads);
    if (!auth.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--auth_tokens_file=", options_.auth_tokens_file, ": ",
                                                     auth.status().message()));
    }
    auth_ = std::move(*auth);
  }
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, ServerCredentials(options_));
  service_ = std::make_unique<RecommenderService>(engine_.get(), metrics_.get(), &auth_,
                                                  options_.request_log_sample_rate);
  grpc::ServerBuilder builder;
  // gRPC enables SO_REUSEPORT by default, which would let a second server silently share the
  // port; a port already in use must be a startup error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams);
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  grpc::ResourceQuota quota("recd");
  quota.SetMaxThreads(options_.max_handler_threads);
  builder.SetResourceQuota(quota);
  builder.AddListeningPort(options_.listen, credentials, &port_);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<DecodeErrorInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.RegisterService(service_.get());
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options_.listen, " (--listen): the address is in use or not valid here",
        options_.tls_cert.empty() ? "" : ", or --tls_cert/--tls_key do not hold a matching PEM certificate and key"));
  }
  grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService();
  health->SetServingStatus(kServiceName, true);
  health->SetServingStatus(true);

  engine_->Maintain();
  maintenance_ = std::thread([this] {
    // Named so operators (top -H, perf) and the benchmarks can tell it from request handlers.
    pthread_setname_np(pthread_self(), "recd-maintain");
    while (true) {
      {
        MutexLock lock(&maintenance_mu_);
        if (!stop_maintenance_) maintenance_wake_.WaitWithTimeout(&maintenance_mu_, std::chrono::seconds(1));
        if (stop_maintenance_) return;
      }
      engine_->Maintain();
    }
  });
  trainer_->Start();
  if (!untrained.empty() && stats.num_interactions > 0) {
    RECD_LOG(kInfo, "server", untrained.size(), " model(s) without a live version: training in the background");
    trainer_->Enqueue(untrained);
  }
  if (!options_.port_file.empty()) {
    const std::string tmp = options_.port_file + ".tmp";
    // Line 1: the gRPC port; line 2: the metrics port (0 when metrics are off).
    std::ofstream(tmp) << port_ << "\n" << metrics_port_ << "\n";
    std::rename(tmp.c_str(), options_.port_file.c_str());
  }
  const storage::StoreStats now = store_->GetStats();
  if (metrics_port_ > 0) RECD_LOG(kInfo, "server", "metrics on port ", metrics_port_, " at /metrics");
  RECD_LOG(kInfo, "server", "serving on port ", port_, " (data: ", options_.data_dir, ", ",
           now.num_users, " users, ", now.num_items, " items, ", now.num_interactions,
           " interactions; scorer ", ScorerIsaName(), ", allocator ", AllocatorName(), ")");
  return absl::OkStatus();
}

std::string RecdServerImpl::ExampleCommand() const {
  // The first user that still exists: the demo's first user, or the first imported one.
  for (UserIndex u = 0; u < 1000; ++u) {
    const std::string id = store_->UserId(u);
    if (!id.empty()) {
      const size_t colon = options_.listen.rfind(':');
      const std::string host = colon == std::string::npos ? "127.0.0.1" : options_.listen.substr(0, colon);
      return absl::StrCat("recctl recommend --user=", id, " --server=", host, ":", port_);
    }
  }
  return "";
}

void RecdServerImpl::Shutdown() {
  MutexLock lock(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  if (grpc_server_ != nullptr) {
    grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService();
    health->SetServingStatus(kServiceName, false);
    health->SetServingStatus(false);
    RECD_LOG(kInfo, "server", "draining in-flight calls (up to ", options_.drain_seconds, " s)");
    grpc_server_->Shutdown(std::chrono::system_clock::now() +
                           std::chrono::milliseconds(static_cast<int64_t>(options_.drain_seconds * 1000)));
    RECD_LOG(kDebug, "server", "gRPC shut down");
    grpc_server_->Wait();
    RECD_LOG(kDebug, "server", "gRPC threads joined");
  }
  if (trainer_ != nullptr) trainer_->Stop();
  if (maintenance_.joinable()) {
    {
      MutexLock lock(&maintenance_mu_);
      stop_maintenance_ = true;
      maintenance_wake_.SignalAll();
    }
    maintenance_.join();
  }
  exposer_.reset();  // scrapes read the store: stop them before it closes
  state_collector_.reset();
  engine_.reset();
  trainer_.reset();
  store_.reset();  // flushes and closes RocksDB
  if (grpc_server_ != nullptr) RECD_LOG(kInfo, "server", "stopped");
}

}  // namespace

absl::StatusOr<std::unique_ptr<RecdServer>> RecdServer::Start(const ServerOptions& options) {
  auto server = std::make_unique<RecdServerImpl>(options);
  RETURN_IF_ERROR(server->Init());
  return std::unique_ptr<RecdServer>(std::move(server));
}

}  // namespace recd::server
