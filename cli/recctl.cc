// recctl: command-line client of recd. `recctl --help` lists the commands; `recctl <command>
// --help` describes one. Every command takes --server (default $RECD_SERVER or 127.0.0.1:50051)
// and --timeout (seconds).
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/text_import.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "recd/v1/recommender.grpc.pb.h"

namespace {

using recd::v1::Recommender;

// ---- Argument parsing ----------------------------------------------------------------------

struct FlagSpec {
  std::string name;     // without dashes
  std::string help;
  bool is_bool = false;
  std::string default_value;
};

struct Command {
  std::string name;
  std::string summary;
  std::string usage;  // positional part
  std::vector<FlagSpec> flags;
  std::function<int(const std::map<std::string, std::string>&, const std::vector<std::string>&)> run;
};

const std::vector<FlagSpec> kCommonFlags = {
    {"server", "recd address host:port (env RECD_SERVER)", false, ""},
    {"token", "bearer token for write/admin calls (env RECD_TOKEN)", false, ""},
    {"tls_ca", "PEM CA that signed the server's certificate: connect with TLS", false, ""},
    {"tls_cert", "PEM client certificate (mutual TLS, with --tls_key)", false, ""},
    {"tls_key", "PEM client private key", false, ""},
    {"timeout", "seconds to wait for the server", false, "30"},
    {"json", "print the raw response as JSON-like text", true, ""},
};

void PrintCommandHelp(const Command& c) {
  std::printf("recctl %s %s\n  %s\n\nFlags:\n", c.name.c_str(), c.usage.c_str(), c.summary.c_str());
  auto print = [](const FlagSpec& f) {
    std::string left = absl::StrCat("  --", f.name, f.is_bool ? "" : "=VALUE");
    std::printf("%-28s %s%s\n", left.c_str(), f.help.c_str(),
                f.default_value.empty() ? "" : absl::StrCat(" (default ", f.default_value, ")").c_str());
  };
  for (const FlagSpec& f : c.flags) print(f);
  for (const FlagSpec& f : kCommonFlags) print(f);
}

// Parses `--name=value`, `--name value` and boolean `--name`. Returns nullopt after printing an
// error for unknown flags or missing values.
std::optional<std::pair<std::map<std::string, std::string>, std::vector<std::string>>> ParseArgs(
    const Command& c, int argc, char** argv, int first) {
  std::map<std::string, std::string> flags;
  std::vector<std::string> positional;
  std::vector<FlagSpec> all = c.flags;
  all.insert(all.end(), kCommonFlags.begin(), kCommonFlags.end());
  for (const FlagSpec& f : all) {
    if (!f.default_value.empty()) flags[f.name] = f.default_value;
  }
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (!absl::StartsWith(arg, "--")) {
      positional.push_back(arg);
      continue;
    }
    arg = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto spec = std::find_if(all.begin(), all.end(), [&](const FlagSpec& f) { return f.name == arg; });
    if (spec == all.end()) {
      std::fprintf(stderr, "recctl %s: unknown flag --%s (see recctl %s --help)\n", c.name.c_str(),
                   arg.c_str(), c.name.c_str());
      return std::nullopt;
    }
    if (spec->is_bool) {
      flags[arg] = has_value ? value : "true";
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "recctl %s: --%s needs a value\n", c.name.c_str(), arg.c_str());
        return std::nullopt;
      }
      value = argv[++i];
    }
    flags[arg] = value;
  }
  return std::make_pair(flags, positional);
}

bool IsTrue(const std::map<std::string, std::string>& flags, const std::string& name) {
  auto it = flags.find(name);
  return it != flags.end() && (it->second == "true" || it->second == "1");
}

std::string Get(const std::map<std::string, std::string>& flags, const std::string& name) {
  auto it = flags.find(name);
  return it == flags.end() ? "" : it->second;
}

// Reads an integer flag; prints an error and returns nullopt when malformed.
std::optional<int64_t> GetInt(const std::map<std::string, std::string>& flags, const std::string& name,
                              int64_t fallback) {
  const std::string v = Get(flags, name);
  if (v.empty()) return fallback;
  int64_t out = 0;
  if (!absl::SimpleAtoi(v, &out)) {
    std::fprintf(stderr, "recctl: --%s: '%s' is not an integer\n", name.c_str(), v.c_str());
    return std::nullopt;
  }
  return out;
}

std::vector<std::string> SplitList(const std::string& s) {
  return absl::StrSplit(s, ',', absl::SkipEmpty());
}

// ---- Connection ----------------------------------------------------------------------------

std::string ServerAddress(const std::map<std::string, std::string>& flags) {
  std::string server = Get(flags, "server");
  if (server.empty()) {
    const char* env = std::getenv("RECD_SERVER");
    server = env != nullptr ? env : "127.0.0.1:50051";
  }
  return server;
}

std::string ReadFileOrDie(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "recctl: --%s=%s cannot be read\n", flag, path.c_str());
    std::exit(2);
  }
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Plaintext unless --tls_ca is given; mutual TLS with --tls_cert/--tls_key.
std::shared_ptr<grpc::ChannelCredentials> Credentials(const std::map<std::string, std::string>& flags) {
  if (Get(flags, "tls_ca").empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFileOrDie(Get(flags, "tls_ca"), "tls_ca");
  if (!Get(flags, "tls_cert").empty()) {
    ssl.pem_cert_chain = ReadFileOrDie(Get(flags, "tls_cert"), "tls_cert");
    ssl.pem_private_key = ReadFileOrDie(Get(flags, "tls_key"), "tls_key");
  }
  return grpc::SslCredentials(ssl);
}

std::shared_ptr<grpc::Channel> Channel(const std::map<std::string, std::string>& flags) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(ServerAddress(flags), Credentials(flags), args);
}

std::unique_ptr<Recommender::Stub> Connect(const std::map<std::string, std::string>& flags) {
  return Recommender::NewStub(Channel(flags));
}

// Deadline from --timeout and the bearer token from --token or $RECD_TOKEN.
void SetDeadline(grpc::ClientContext* context, const std::map<std::string, std::string>& flags) {
  double seconds = 30;
  absl::SimpleAtod(Get(flags, "timeout"), &seconds);
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  std::string token = Get(flags, "token");
  if (token.empty()) {
    const char* env = std::getenv("RECD_TOKEN");
    if (env != nullptr) token = env;
  }
  if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::OK: return "OK";
    case grpc::CANCELLED: return "CANCELLED";
    case grpc::UNKNOWN: return "UNKNOWN";
    case grpc::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::NOT_FOUND: return "NOT_FOUND";
    case grpc::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::ABORTED: return "ABORTED";
    case grpc::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::INTERNAL: return "INTERNAL";
    case grpc::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::DATA_LOSS: return "DATA_LOSS";
    case grpc::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "?";
  }
}

// Prints a failed call and returns the process exit code (1).
int Fail(const grpc::Status& status, const std::map<std::string, std::string>& flags) {
  std::fprintf(stderr, "recctl: %s: %s\n", CodeName(status.error_code()), status.error_message().c_str());
  if (status.error_code() == grpc::UNAVAILABLE) {
    std::fprintf(stderr, "recctl: is recd running at %s? (--server or RECD_SERVER)\n",
                 ServerAddress(flags).c_str());
  }
  return 1;
}

void PrintItems(const google::protobuf::RepeatedPtrField<recd::v1::ScoredItem>& items) {
  int rank = 0;
  for (const recd::v1::ScoredItem& item : items) {
    std::printf("%4d  %-24s %10.4f\n", ++rank, item.item_id().c_str(), item.score());
    for (const recd::v1::Explanation& e : item.explanations()) {
      std::printf("        because of %-20s %5.1f%%\n", e.item_id().c_str(), 100.0 * e.share());
    }
  }
}

const char* SourceName(recd::v1::RecommendationSource source) {
  switch (source) {
    case recd::v1::SOURCE_MODEL: return "model";
    case recd::v1::SOURCE_POPULARITY_FALLBACK: return "popularity fallback";
    default: return "unspecified";
  }
}

template <typename Message>
void PrintJson(const Message& m) {
  std::printf("%s\n", m.DebugString().c_str());
}

// ---- Commands ------------------------------------------------------------------------------

int CmdRecommend(const std::map<std::string, std::string>& f, const std::vector<std::string>&) {
  recd::v1::RecommendRequest request;
  request.set_user_id(Get(f, "user"));
  auto k = GetInt(f, "k", 10);
  if (!k) return 2;
  request.set_k(static_cast<int32_t>(*k));
  request.set_model(Get(f, "model"));
  if (IsTrue(f, "include-seen")) request.set_exclude_seen(false);
  for (const std::string& id : SplitList(Get(f, "exclude"))) request.add_exclude_item_ids(id);
  for (const std::string& c : SplitList(Get(f, "category"))) request.mutable_filter()->add_include_categories(c);
  for (const std::string& c : SplitList(Get(f, "not-category"))) request.mutable_filter()->add_exclude_categories(c);
  request.set_explain(IsTrue(f, "explain"));
  request.set_page_token(Get(f, "page-token"));
  grpc::ClientContext context;
  SetDeadline(&context, f);
  recd::v1::RecommendResponse response;
  grpc::Status status = Connect(f)->Recommend(&context, request, &response);
  if (!status.ok()) return Fail(status, f);
  if (IsTrue(f, "json")) {
    PrintJson(response);
    return 0;
  }
  std::printf("user %s: %d items from %s v%llu (%s%s%s)\n", request.user_id().c_str(), response.items_size(),
              response.model().c_str(), static_cast<unsigned long long>(response.model_version()),
              SourceName(response.source()), response.fallback_reason().empty() ? "" : ": ",
              response.fallback_reason().c_str());
  PrintItems(response.items());
  if (!response.next_page_token().empty()) {
    std::printf("next page: --page-token=%s\n", response.next_page_token().c_str());
  }
  return 0;
}

int CmdSimilar(const std::map<std::string, std::string>& f, const std::vector<std::string>&) {
  recd::v1::SimilarItemsRequest request;
  request.set_item_id(Get(f, "item"));
  auto k = GetInt(f, "k", 10);
  if (!k) return 2;
  request.set_k(static_cast<int32_t>(*k));
  request.set_model(Get(f, "model"));
  for (const std::string& c : SplitList(Get(f, "category"))) request.mutable_filter()->add_include_categories(c);
  grpc::ClientContext context;
  SetDeadline(&context, f);
  recd::v1::SimilarItemsResponse response;
  grpc::Status status = Connect(f)->SimilarItems(&context, request, &response);
  if (!status.ok()) return Fail(status, f);
  if (IsTrue(f, "json")) {
    PrintJson(response);
    return 0;
  }
  std::printf("items similar to %s: from %s v%llu (%s)\n", request.item_id().c_str(), response.model().c_str(),
              static_cast<unsigned long long>(response.model_version()), SourceName(response.source()));
  PrintItems(response.items());
  return 0;
}

std::optional<recd::v1::EventType> ParseEvent(const std::string& name) {
  static const std::map<std::string, recd::v1::EventType> kEvents = {
      {"view", recd::v1::EVENT_VIEW},       {"click", recd::v1::EVENT_CLICK},
      {"add_to_cart", recd::v1::EVENT_ADD_TO_CART}, {"purchase", recd::v1::EVENT_PURCHASE},
      {"like", recd::v1::EVENT_LIKE},       {"dislike", recd::v1::EVENT_DISLIKE},
      {"rating", recd::v1::EVENT_RATING},   {"impression", recd::v1::EVENT_IMPRESSION}};
  auto it = kEvents.find(name);
  if (it == kEvents.end()) return std::nullopt;
  return it->second;
}

int CmdLog(const std::map<std::string, std::string>& f, const std::vector<std::string>&) {
  recd::v1::LogInteractionsRequest request;
  recd::v1::Interaction* in = request.add_interactions();
  in->set_user_id(Get(f, "user"));
  in->set_item_id(Get(f, "item"));
  std::optional<recd::v1::EventType> event = ParseEvent(Get(f, "event"));
  if (!event) {
    std::fprintf(stderr, "recctl log: --event: '%s' is not one of view, click, add_to_cart, purchase, like, "
                 "dislike, rating, impression\n", Get(f, "event").c_str());
    return 2;
  }
  in->set_event_type(*event);
  if (!Get(f, "value").empty()) {
    float v = 0;
    if (!absl::SimpleAtof(Get(f, "value"), &v)) {
      std::fprintf(stderr, "recctl log: --value: '%s' is not a number\n", Get(f, "value").c_str());
      return 2;
    }
    in->set_value(v);
  }
  auto ts = GetInt(f, "timestamp-ms", 0);
  if (!ts) return 2;
  in->set_timestamp_ms(*ts);
  grpc::ClientContext context;
  SetDeadline(&context, f);
  recd::v1::LogInteractionsResponse response;
  grpc::Status status = Connect(f)->LogInteractions(&context, request, &response);
  if (!status.ok()) return Fail(status, f);
  std::printf("logged %u interaction(s) (%u new users, %u new items)\n", response.accepted(),
              response.new_users(), response.new_items());
  return 0;
}

int CmdUpsertItem(const std::map<std::string, std::string>& f, const std::vector<std::string>&) {
  recd::v1::UpsertItemsRequest request;
  recd::v1::Item* item = request.add_items();
  item->set_item_id(Get(f, "item"));
  for (const std::string& c : SplitList(Get(f, "categories"))) item->add_categories(c);
  for (const std::string& t : SplitList(Get(f, "tags"))) item->add_tags(t);
  item->set_title(Get(f, "title"));
  if (IsTrue(f, "inactive")) item->set_active(false);
  grpc::ClientContext context;
  SetDeadline(&context, f);
  recd::v1::UpsertItemsResponse response;
  grpc::Status status = Connect(f)->UpsertItems(&context, request, &response);
  if (!status.ok()) return Fail(status, f);
  std::printf("upserted %u item(s), %u new\n", response.upserted(), response.created());
  return 0;
}

int CmdDeleteUser(const std::map<std::string, std::string>& f, const std::vector<std::string>&) {
  recd::v1::DeleteUserRequest request;
  request.set_user_id(Get(f, "user"));
  grpc::ClientContext context;
  SetDeadline(&context, f);
  recd::v1::DeleteUserResponse response;
  grpc::Status status = Connect(f)->DeleteUser(&context, request, &response);
  if (!status.ok()) return Fail(status, f);
  std::printf("deleted user %s (%llu interactions erased)\n", request.user_id().c_str(),
              static_cast<unsigned long long>(response.erased_interactions()));
  return 0;
}

int CmdDeleteItem(const std::map<std::string, std::string>& f, const std::vector<std::string>&) {
  recd::v1::DeleteItemRequest request;
  request.set_item_id(Get(f, "item"));
  grpc::ClientContext context;
  SetDeadline(&context, f);
  recd::v1::DeleteItemResponse response;
  grpc::Status status = Connect(f)->DeleteItem(&context, request, &response);
  if (!status.ok()) return Fail(status, f);
  std::printf("deleted item %s\n", request.item_id().c_str());
  return 0;
}

int CmdInfo(const std::map<std::string, std::string>& f, const std::vector<std::string>&) {
  recd::v1::GetModelInfoRequest request;
  request.set_model(Get(f, "model"));
  grpc::ClientContext context;
  SetDeadline(&context, f);
  recd::v1::GetModelInfoResponse response;
  grpc::Status status = Connect(f)->GetModelInfo(&context, request, &response);
  if (!status.ok()) return Fail(status, f);
  if (IsTrue(f, "json")) {
    PrintJson(response);
    return 0;
  }
  std::printf("recd %s  scorer %s  users %u  items %u  interactions %llu (%llu since last train)\n",
              response.server_version().c_str(), response.scorer_isa().c_str(), response.num_users(),
              response.num_items(), static_cast<unsigned long long>(response.num_interactions()),
              static_cast<unsigned long long>(response.interactions_since_train()));
  for (const recd::v1::ModelInfo& m : response.models()) {
    std::printf("\nmodel %s (%s)%s  live v%llu%s%s\n", m.name().c_str(), m.algorithm().c_str(),
                m.is_default() ? " [default]" : "", static_cast<unsigned long long>(m.live_version()),
                m.scorer().empty() ? "" : "  scorer ", m.scorer().c_str());
    for (const recd::v1::ModelVersionInfo& v : m.versions()) {
      const char* state = v.state() == recd::v1::VERSION_LIVE       ? "live"
                          : v.state() == recd::v1::VERSION_REJECTED ? "rejected"
                                                                    : "retired";
      std::printf("  v%-4llu %-8s %8.2f s  %9llu interactions  %6u users  %6u items", 
                  static_cast<unsigned long long>(v.version()), state, v.train_seconds(),
                  static_cast<unsigned long long>(v.num_interactions()), v.num_users(), v.num_items());
      for (const auto& [key, value] : v.metrics()) std::printf("  %s=%.4g", key.c_str(), value);
      if (!v.reject_reason().empty()) std::printf("  reason: %s", v.reject_reason().c_str());
      std::printf("\n");
    }
  }
  return 0;
}

int CmdTrain(const std::map<std::string, std::string>& f, const std::vector<std::string>&) {
  recd::v1::TrainNowRequest request;
  for (const std::string& m : SplitList(Get(f, "model"))) request.add_models(m);
  request.set_wait(!IsTrue(f, "no-wait"));
  grpc::ClientContext context;
  std::map<std::string, std::string> flags = f;
  if (Get(f, "timeout") == "30") flags["timeout"] = "3600";  // training may take a while
  SetDeadline(&context, flags);
  recd::v1::TrainNowResponse response;
  grpc::Status status = Connect(f)->TrainNow(&context, request, &response);
  if (!status.ok()) return Fail(status, f);
  int failures = 0;
  for (const recd::v1::TrainResult& r : response.results()) {
    const char* outcome = r.outcome() == recd::v1::TRAIN_PUBLISHED  ? "published"
                          : r.outcome() == recd::v1::TRAIN_QUEUED   ? "queued"
                          : r.outcome() == recd::v1::TRAIN_REJECTED ? "rejected"
                                                                    : "failed";
    if (r.outcome() == recd::v1::TRAIN_FAILED || r.outcome() == recd::v1::TRAIN_REJECTED) ++failures;
    std::printf("%-16s %-9s", r.model().c_str(), outcome);
    if (r.version() > 0) std::printf(" v%llu", static_cast<unsigned long long>(r.version()));
    if (r.train_seconds() > 0) std::printf(" in %.2f s", r.train_seconds());
    if (!r.message().empty()) std::printf("  %s", r.message().c_str());
    std::printf("\n");
  }
  return failures == 0 ? 0 : 1;
}

int CmdRollback(const std::map<std::string, std::string>& f, const std::vector<std::string>&) {
  recd::v1::RollbackModelRequest request;
  request.set_model(Get(f, "model"));
  auto version = GetInt(f, "version", 0);
  if (!version) return 2;
  request.set_version(static_cast<uint64_t>(*version));
  grpc::ClientContext context;
  SetDeadline(&context, f);
  recd::v1::RollbackModelResponse response;
  grpc::Status status = Connect(f)->RollbackModel(&context, request, &response);
  if (!status.ok()) return Fail(status, f);
  std::printf("%s is now live at v%llu\n", request.model().c_str(),
              static_cast<unsigned long long>(response.live_version()));
  return 0;
}

int CmdCheckpoint(const std::map<std::string, std::string>& f, const std::vector<std::string>&) {
  recd::v1::CreateCheckpointRequest request;
  request.set_path(Get(f, "path"));
  grpc::ClientContext context;
  SetDeadline(&context, f);
  recd::v1::CreateCheckpointResponse response;
  grpc::Status status = Connect(f)->CreateCheckpoint(&context, request, &response);
  if (!status.ok()) return Fail(status, f);
  std::printf("checkpoint written to %s\n", response.path().c_str());
  return 0;
}

int CmdHealth(const std::map<std::string, std::string>& f, const std::vector<std::string>&) {
  auto stub = grpc::health::v1::Health::NewStub(Channel(f));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(Get(f, "service"));
  grpc::ClientContext context;
  SetDeadline(&context, f);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) return Fail(status, f);
  const bool serving = response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  std::printf("%s\n", serving ? "SERVING" : grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()).c_str());
  return serving ? 0 : 1;
}

// Draws "[=====>    ]  45%  45,000 lines  30,000/s" on stderr when it is a terminal, else prints
// a line every 10%.
class ProgressBar {
 public:
  explicit ProgressBar(uint64_t total_bytes)
      : total_(total_bytes), tty_(isatty(STDERR_FILENO)), start_(std::chrono::steady_clock::now()) {}

  void Update(uint64_t bytes, uint64_t lines, bool final = false) {
    const double fraction = total_ == 0 ? 1.0 : std::min(1.0, static_cast<double>(bytes) / total_);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = seconds > 0 ? lines / seconds : 0;
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(fraction * kWidth);
      std::string bar(filled, '=');
      if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
      std::fprintf(stderr, "\r[%s] %3d%%  %llu lines  %.0f/s", bar.c_str(), static_cast<int>(fraction * 100),
                   static_cast<unsigned long long>(lines), rate);
      if (final) std::fprintf(stderr, "\n");
    } else {
      const int decile = static_cast<int>(fraction * 10);
      if (decile > last_decile_ || final) {
        last_decile_ = decile;
        std::fprintf(stderr, "import: %3d%%  %llu lines  %.0f/s\n", static_cast<int>(fraction * 100),
                     static_cast<unsigned long long>(lines), rate);
      }
    }
  }

 private:
  const uint64_t total_;
  const bool tty_;
  const std::chrono::steady_clock::time_point start_;
  int last_decile_ = -1;
};

int CmdImport(const std::map<std::string, std::string>& f, const std::vector<std::string>& positional) {
  if (positional.size() != 1) {
    std::fprintf(stderr, "recctl import: give exactly one file (see recctl import --help)\n");
    return 2;
  }
  const std::string path = positional[0];
  std::string format = Get(f, "format");
  if (format.empty()) format = absl::EndsWithIgnoreCase(path, ".csv") ? "csv" : "movielens";
  if (format != "csv" && format != "movielens") {
    std::fprintf(stderr, "recctl import: --format: '%s' is not csv or movielens\n", format.c_str());
    return 2;
  }
  auto batch_size = GetInt(f, "batch", 5000);
  if (!batch_size || *batch_size < 1) return 2;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "recctl import: cannot open %s\n", path.c_str());
    return 1;
  }
  struct stat st{};
  const uint64_t total_bytes = stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;

  auto stub = Connect(f);
  std::optional<recd::CsvInteractionParser> csv;
  recd::v1::LogInteractionsRequest request;
  uint64_t lines = 0, bytes = 0, accepted = 0;
  ProgressBar progress(total_bytes);

  auto flush = [&]() -> bool {
    if (request.interactions_size() == 0) return true;
    grpc::ClientContext context;
    SetDeadline(&context, f);
    recd::v1::LogInteractionsResponse response;
    grpc::Status status = stub->LogInteractions(&context, request, &response);
    if (!status.ok()) {
      std::fprintf(stderr, "\n");
      Fail(status, f);
      std::fprintf(stderr, "recctl import: stopped at line %llu; %llu interactions were imported before it\n",
                   static_cast<unsigned long long>(lines), static_cast<unsigned long long>(accepted));
      return false;
    }
    accepted += response.accepted();
    request.clear_interactions();
    progress.Update(bytes, lines);
    return true;
  };

  std::string line;
  while (std::getline(in, line)) {
    ++lines;
    bytes += line.size() + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    absl::StatusOr<recd::ExternalInteraction> parsed;
    if (format == "csv") {
      if (!csv.has_value()) {
        absl::StatusOr<recd::CsvInteractionParser> header = recd::CsvInteractionParser::FromHeader(line);
        if (!header.ok()) {
          std::fprintf(stderr, "recctl import: %s: %s\n", path.c_str(), std::string(header.status().message()).c_str());
          return 1;
        }
        csv.emplace(std::move(*header));
        continue;
      }
      parsed = csv->ParseLine(line, static_cast<int64_t>(lines));
    } else {
      parsed = recd::ParseMovieLensLine(line, static_cast<int64_t>(lines));
    }
    if (!parsed.ok()) {
      std::fprintf(stderr, "\nrecctl import: %s: %s\n", path.c_str(), std::string(parsed.status().message()).c_str());
      std::fprintf(stderr, "recctl import: %llu interactions were imported before this line\n",
                   static_cast<unsigned long long>(accepted));
      return 1;
    }
    recd::v1::Interaction* out = request.add_interactions();
    out->set_user_id(parsed->user_id);
    out->set_item_id(parsed->item_id);
    out->set_event_type(static_cast<recd::v1::EventType>(parsed->event));
    if (parsed->has_value) out->set_value(parsed->value);
    out->set_timestamp_ms(parsed->timestamp_ms);
    if (request.interactions_size() >= *batch_size && !flush()) return 1;
  }
  if (!flush()) return 1;
  progress.Update(total_bytes, lines, /*final=*/true);
  std::printf("imported %llu interactions from %s\n", static_cast<unsigned long long>(accepted), path.c_str());
  return 0;
}

std::vector<Command> Commands() {
  return {
      {"recommend", "Top-K items for a user.", "--user=ID [--k=10]",
       {{"user", "user id (required)"}, {"k", "number of items", false, "10"}, {"model", "model name (default: server's)"},
        {"include-seen", "do not exclude items the user already interacted with", true},
        {"exclude", "comma-separated item ids to exclude"}, {"category", "only items in one of these categories"},
        {"not-category", "no items in these categories"}, {"explain", "show which past items led to each", true},
        {"page-token", "continue from a previous page"}},
       CmdRecommend},
      {"similar", "Items similar to an item (cosine of embeddings).", "--item=ID [--k=10]",
       {{"item", "item id (required)"}, {"k", "number of items", false, "10"}, {"model", "model name"},
        {"category", "only items in one of these categories"}},
       CmdSimilar},
      {"log", "Log one interaction.", "--user=ID --item=ID [--event=view]",
       {{"user", "user id (required)"}, {"item", "item id (required)"},
        {"event", "view|click|add_to_cart|purchase|like|dislike|rating|impression", false, "view"},
        {"value", "rating (for --event=rating) or weight override"},
        {"timestamp-ms", "Unix ms (default: now)"}},
       CmdLog},
      {"upsert-item", "Create or replace an item's metadata.", "--item=ID [--categories=a,b] [--tags=x,y]",
       {{"item", "item id (required)"}, {"categories", "comma-separated categories"}, {"tags", "comma-separated tags"},
        {"title", "display title"}, {"inactive", "never recommend this item", true}},
       CmdUpsertItem},
      {"delete-user", "Erase a user: interactions, history, id and embeddings.", "--user=ID",
       {{"user", "user id (required)"}}, CmdDeleteUser},
      {"delete-item", "Remove an item from the catalogue.", "--item=ID", {{"item", "item id (required)"}}, CmdDeleteItem},
      {"info", "Models, versions, metrics and catalogue sizes.", "[--model=NAME]", {{"model", "only this model"}}, CmdInfo},
      {"train", "Train models now and wait for the result.", "[--model=a,b] [--no-wait]",
       {{"model", "comma-separated model names (default: all)"}, {"no-wait", "return once queued", true}},
       CmdTrain},
      {"rollback", "Make an earlier stored version live.", "--model=NAME [--version=N]",
       {{"model", "model name (required)"}, {"version", "version (default: the previous one)"}}, CmdRollback},
      {"checkpoint", "Write a consistent copy of the store on the server's disk.", "--path=/abs/folder",
       {{"path", "absolute folder that does not exist yet (required)"}}, CmdCheckpoint},
      {"health", "Check the gRPC health service; exit 0 only when SERVING (for probes).", "[--service=NAME]",
       {{"service", "service name (default: the whole server)"}}, CmdHealth},
      {"import", "Import interactions from a MovieLens u.data file or a CSV file.", "FILE [--format=movielens|csv]",
       {{"format", "movielens (tab-separated user item rating unix_seconds) or csv (header "
                   "user_id,item_id[,event][,value][,timestamp_ms]); default from the file name"},
        {"batch", "interactions per LogInteractions call", false, "5000"}},
       CmdImport},
  };
}

void PrintUsage(const std::vector<Command>& commands) {
  std::printf("recctl: command-line client of recd.\n\nUsage: recctl <command> [flags]\n\nCommands:\n");
  for (const Command& c : commands) std::printf("  %-12s %s\n", c.name.c_str(), c.summary.c_str());
  std::printf("\nEvery command takes --server=host:port (default $RECD_SERVER or 127.0.0.1:50051),\n"
              "--timeout=SECONDS and --help.\n");
}

// Flags every command requires, checked before connecting.
bool CheckRequired(const Command& c, const std::map<std::string, std::string>& flags) {
  static const std::map<std::string, std::vector<std::string>> kRequired = {
      {"recommend", {"user"}}, {"similar", {"item"}},   {"log", {"user", "item"}},
      {"upsert-item", {"item"}}, {"delete-user", {"user"}}, {"delete-item", {"item"}},
      {"rollback", {"model"}}, {"checkpoint", {"path"}}};
  auto it = kRequired.find(c.name);
  if (it == kRequired.end()) return true;
  for (const std::string& name : it->second) {
    if (Get(flags, name).empty()) {
      std::fprintf(stderr, "recctl %s: --%s is required (see recctl %s --help)\n", c.name.c_str(),
                   name.c_str(), c.name.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<Command> commands = Commands();
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" ||
      std::string(argv[1]) == "help") {
    PrintUsage(commands);
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  auto command = std::find_if(commands.begin(), commands.end(), [&](const Command& c) { return c.name == name; });
  if (command == commands.end()) {
    std::fprintf(stderr, "recctl: unknown command '%s'\n\n", name.c_str());
    PrintUsage(commands);
    return 2;
  }
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      PrintCommandHelp(*command);
      return 0;
    }
  }
  auto parsed = ParseArgs(*command, argc, argv, 2);
  if (!parsed) return 2;
  if (!CheckRequired(*command, parsed->first)) return 2;
  return command->run(parsed->first, parsed->second);
}
