// recload: load generator for recd. Run `recload --help`; the commands are
//
//   recload populate   load the synthetic catalogue (users u*, items i*) and train
//   recload run        one open-loop (--rate) or closed-loop (--mode=closed --concurrency) run of
//                      the --mix, optionally followed by the same load on the health check
//                      (--baseline)
//   recload step       raise the rate until the p99 target breaks; report the highest rate held
//                      (--baseline: the same search on the health check, the gRPC floor)
//   recload freshness  how soon after a LogInteractions ack Recommend reflects it (freshness.h)
//
// `run --during_train` starts TrainNow as the measured window begins and ends the window when
// training ends: serving latency while a retrain runs.
//
// Every run is bounded (--time_limit, --max_requests) and only targets loopback addresses.
// Results: a table on stdout, <out>.json, and SVG charts <out>_*.svg.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "loadtest/driver.h"
#include "loadtest/freshness.h"
#include "loadtest/pacing.h"
#include "loadtest/populate.h"
#include "loadtest/proc_stats.h"
#include "loadtest/report.h"
#include "loadtest/target.h"
#include "recd/v1/recommender.grpc.pb.h"

// Target and outputs.
ABSL_FLAG(std::string, target, "", "recd address, loopback only (e.g. 127.0.0.1:50051). Default: from --port_file, else 127.0.0.1:50051.");
ABSL_FLAG(std::string, port_file, "", "Read the port from the first line of this file (recd --port_file) and target 127.0.0.1:<port>.");
ABSL_FLAG(int, server_pid, 0, "Sample this process's RSS and CPU from /proc every second (the recd process).");
ABSL_FLAG(std::string, out, "recload", "Prefix of the result files: <out>.json, <out>_*.svg.");

// Workload.
ABSL_FLAG(uint64_t, users, 100000, "Users u0..u<users-1> (as loaded by populate).");
ABSL_FLAG(uint64_t, items, 100000, "Items i0..i<items-1>.");
ABSL_FLAG(std::string, user_prefix, "u", "Prefix of user ids.");
ABSL_FLAG(std::string, item_prefix, "i", "Prefix of item ids.");
ABSL_FLAG(double, user_zipf, 1.0, "Zipf exponent of user popularity in requests (0 = uniform).");
ABSL_FLAG(double, item_zipf, 1.0, "Zipf exponent of item popularity (SimilarItems anchors, logged items; populate).");
ABSL_FLAG(int, k, 10, "Items per answer (Recommend, RecommendBatch, SimilarItems).");
ABSL_FLAG(int, batch_users, 8, "Users per RecommendBatch call.");
ABSL_FLAG(int, log_batch, 1, "Interactions per LogInteractions call.");
ABSL_FLAG(std::string, model, "", "Model name in requests (empty = the server's default).");
ABSL_FLAG(std::string, mix, "recommend:1",
          "Workload mix, name:weight, of recommend, batch, similar, log, health; e.g. recommend:70,batch:5,similar:15,log:10.");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the request stream and the synthetic catalogue.");
ABSL_FLAG(bool, allow_missing_ids, false, "Run even if the server holds fewer users/items than --users/--items.");

// populate.
ABSL_FLAG(uint64_t, interactions, 3000000, "populate: interactions to log (approximately).");
ABSL_FLAG(int, categories, 50, "populate: item categories.");
ABSL_FLAG(int, populate_batch, 10000, "populate: items / interactions per call.");
ABSL_FLAG(int, populate_in_flight, 8, "populate: LogInteractions calls in flight.");
ABSL_FLAG(bool, train, true, "populate: TrainNow(wait) after loading.");
ABSL_FLAG(absl::Duration, train_timeout, absl::Minutes(30), "populate: deadline of TrainNow.");
ABSL_FLAG(bool, force, false, "populate: load even if the server already holds the catalogue.");

// run.
ABSL_FLAG(std::string, mode, "open", "run: 'open' (constant --rate) or 'closed' (--concurrency calls in flight).");
ABSL_FLAG(double, rate, 100, "run: target requests per second (open loop).");
ABSL_FLAG(int, concurrency, 16, "run: calls in flight (closed loop).");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(5), "Warm-up before the measured window (not recorded).");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(30), "run: measured window.");
ABSL_FLAG(std::string, label, "", "run: name of the phase in the outputs (default: the mix and load).");
ABSL_FLAG(bool, baseline, false,
          "run/step: repeat the same load (run) or search (step) on grpc.health.v1.Health/Check: the gRPC floor.");

ABSL_FLAG(bool, during_train, false,
          "run: start TrainNow (--train_models) as the measured window begins and end the window when training "
          "ends (at the latest after --duration): serving latency while a retrain runs. Open loop only.");
ABSL_FLAG(std::string, train_models, "", "run --during_train: comma-separated models to retrain (empty = every model).");
ABSL_FLAG(absl::Duration, train_min_window, absl::ZeroDuration(),
          "run --during_train: retrain back to back until the window is at least this long (one run at least).");

// freshness.
ABSL_FLAG(int, probes, 500, "freshness: probes, one per distinct user.");
ABSL_FLAG(absl::Duration, probe_gap, absl::Milliseconds(40),
          "freshness: mean pause before each probe (uniform in 0.5x..1.5x), to spread probes in time.");
ABSL_FLAG(absl::Duration, probe_timeout, absl::Seconds(5),
          "freshness: how long after the ack a probe keeps asking before it counts as never reflected.");

// step.
ABSL_FLAG(double, step_start, 100, "step: first rate.");
ABSL_FLAG(double, baseline_step_start, 0, "step --baseline: first rate of the health-check search (0 = --step_start).");
ABSL_FLAG(double, step_factor, 1.5, "step: rate multiplier between steps until the target breaks.");
ABSL_FLAG(double, step_max, 200000, "step: highest rate tried.");
ABSL_FLAG(int, step_refine, 2, "step: bisections between the last rate held and the first failure.");
ABSL_FLAG(absl::Duration, step_warmup, absl::Seconds(2), "step: warm-up of each step.");
ABSL_FLAG(absl::Duration, step_duration, absl::Seconds(10), "step: measured window of each step.");
ABSL_FLAG(absl::Duration, p99_target, absl::Milliseconds(5), "step: p99 a step must not exceed.");
ABSL_FLAG(std::string, step_method, "", "step: method whose p99 is judged (default: the first of recommend, similar, batch, log, health in the mix).");
ABSL_FLAG(double, max_error_ratio, 0.001, "step: highest error share a step may have.");
ABSL_FLAG(double, min_achieved_ratio, 0.95, "step: lowest achieved/target throughput a step may have.");

// Client and bounds.
ABSL_FLAG(int, channels, 2, "Separate connections to the server.");
ABSL_FLAG(int, threads, 0, "Completion-queue threads (0 = one per CPU recload may use; more threads than CPUs add wake-ups).");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(2), "Deadline of each call.");
ABSL_FLAG(absl::Duration, spin, absl::Microseconds(20),
          "Busy-wait instead of sleeping for gaps shorter than this (e.g. 50us): fewer wake-ups per call, "
          "so the client outruns the server on trivial calls; costs client CPU.");
ABSL_FLAG(int, max_in_flight, 20000, "Open loop: requests due while this many are outstanding are not sent (counted as errors).");
ABSL_FLAG(absl::Duration, time_limit, absl::Hours(2), "Hard bound on the whole command's load time (at most 24h).");
ABSL_FLAG(uint64_t, max_requests, 50000000, "Hard bound on calls per phase (at most 1e9).");

namespace {

using namespace recd::loadtest;  // NOLINT: a binary's main file

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "recload: error: %s\n", std::string(status.message()).c_str());
  return 1;
}

absl::StatusOr<std::string> ResolveTarget() {
  std::string target = absl::GetFlag(FLAGS_target);
  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (target.empty() && !port_file.empty()) {
    std::ifstream in(port_file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    int port = 0;
    if (!in.good() && text.empty()) return absl::NotFoundError(absl::StrCat("--port_file ", port_file, ": cannot read"));
    // The first line is the gRPC port (recd may write more lines, e.g. its metrics port).
    const absl::string_view first_line = absl::string_view(text).substr(0, text.find('\n'));
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(first_line), &port)) {
      return absl::InvalidArgumentError(absl::StrCat("--port_file ", port_file, ": not a port number"));
    }
    target = absl::StrCat("127.0.0.1:", port);
  }
  if (target.empty()) target = "127.0.0.1:50051";
  if (absl::Status s = CheckLoopbackTarget(target); !s.ok()) return s;
  return target;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return absl::StrCat(a, " ", b, " ", c);
}

WorkloadOptions WorkloadFromFlags(const Mix& mix) {
  WorkloadOptions w;
  w.num_users = std::max<uint64_t>(1, absl::GetFlag(FLAGS_users));
  w.num_items = std::max<uint64_t>(1, absl::GetFlag(FLAGS_items));
  w.user_prefix = absl::GetFlag(FLAGS_user_prefix);
  w.item_prefix = absl::GetFlag(FLAGS_item_prefix);
  w.user_zipf = absl::GetFlag(FLAGS_user_zipf);
  w.item_zipf = absl::GetFlag(FLAGS_item_zipf);
  w.k = absl::GetFlag(FLAGS_k);
  w.batch_users = absl::GetFlag(FLAGS_batch_users);
  w.log_batch = absl::GetFlag(FLAGS_log_batch);
  w.model = absl::GetFlag(FLAGS_model);
  w.mix = mix;
  w.seed = absl::GetFlag(FLAGS_seed);
  return w;
}

ClientOptions ClientFromFlags(const std::string& target) {
  ClientOptions c;
  c.target = target;
  c.channels = absl::GetFlag(FLAGS_channels);
  c.threads = absl::GetFlag(FLAGS_threads);
  c.deadline = absl::GetFlag(FLAGS_deadline);
  c.max_in_flight = std::max(1, absl::GetFlag(FLAGS_max_in_flight));
  c.server_pid = absl::GetFlag(FLAGS_server_pid);
  c.spin_ns = absl::ToInt64Nanoseconds(absl::GetFlag(FLAGS_spin));
  return c;
}

absl::Status CheckBounds() {
  if (absl::GetFlag(FLAGS_time_limit) > absl::Hours(24) || absl::GetFlag(FLAGS_time_limit) <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--time_limit must be in (0, 24h]");
  }
  if (absl::GetFlag(FLAGS_max_requests) < 1 || absl::GetFlag(FLAGS_max_requests) > 1000000000) {
    return absl::InvalidArgumentError("--max_requests must be in [1, 1e9]");
  }
  if (absl::GetFlag(FLAGS_k) < 1 || absl::GetFlag(FLAGS_batch_users) < 1 || absl::GetFlag(FLAGS_log_batch) < 1) {
    return absl::InvalidArgumentError("--k, --batch_users and --log_batch must be >= 1");
  }
  if (absl::GetFlag(FLAGS_user_zipf) < 0 || absl::GetFlag(FLAGS_item_zipf) < 0) {
    return absl::InvalidArgumentError("--user_zipf and --item_zipf must be >= 0");
  }
  return absl::OkStatus();
}

// The server's catalogue and model, recorded in the JSON; checks the ids the run will use exist.
absl::StatusOr<recd::v1::GetModelInfoResponse> ServerInfo(const std::string& target, const Mix& mix) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = recd::v1::Recommender::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  recd::v1::GetModelInfoResponse info;
  grpc::Status s = stub->GetModelInfo(&context, {}, &info);
  if (!s.ok()) {
    return absl::UnavailableError(absl::StrCat("GetModelInfo on ", target, ": ", s.error_message()));
  }
  const bool only_health = mix.Share(Method::kHealth) >= 1.0;
  if (!only_health && !absl::GetFlag(FLAGS_allow_missing_ids) &&
      (info.num_users() < absl::GetFlag(FLAGS_users) || info.num_items() < absl::GetFlag(FLAGS_items))) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the server holds %d users and %d items but --users=%d --items=%d: run `recload populate` with the "
        "same counts first, lower them, or pass --allow_missing_ids",
        info.num_users(), info.num_items(), absl::GetFlag(FLAGS_users), absl::GetFlag(FLAGS_items)));
  }
  return info;
}

void WriteHeader(JsonWriter& json, const std::string& command, const std::string& target,
                 const recd::v1::GetModelInfoResponse* info) {
  json.Key("tool").String("recload");
  json.Key("command").String(command);
  json.Key("target").String(target);
  json.Key("started_at").String(absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()));
  json.Key("machine").BeginObject();
  json.Key("online_cpus").Int(sysconf(_SC_NPROCESSORS_ONLN));
  json.Key("client_cpus").String(AllowedCpuList());
  json.Key("load_average_at_start").String(LoadAverage());
  json.EndObject();
  json.Key("workload").BeginObject();
  json.Key("users").UInt(absl::GetFlag(FLAGS_users));
  json.Key("items").UInt(absl::GetFlag(FLAGS_items));
  json.Key("user_zipf").Number(absl::GetFlag(FLAGS_user_zipf));
  json.Key("item_zipf").Number(absl::GetFlag(FLAGS_item_zipf));
  json.Key("k").Int(absl::GetFlag(FLAGS_k));
  json.Key("batch_users").Int(absl::GetFlag(FLAGS_batch_users));
  json.Key("log_batch").Int(absl::GetFlag(FLAGS_log_batch));
  json.Key("seed").UInt(absl::GetFlag(FLAGS_seed));
  json.EndObject();
  json.Key("client").BeginObject();
  json.Key("channels").Int(absl::GetFlag(FLAGS_channels));
  json.Key("threads").Int(absl::GetFlag(FLAGS_threads));
  json.Key("deadline_ms").Number(absl::ToDoubleMilliseconds(absl::GetFlag(FLAGS_deadline)));
  json.EndObject();
  if (info != nullptr) {
    json.Key("server").BeginObject();
    json.Key("pid").Int(absl::GetFlag(FLAGS_server_pid));
    json.Key("version").String(info->server_version());
    json.Key("scorer_isa").String(info->scorer_isa());
    json.Key("num_users").UInt(info->num_users());
    json.Key("num_items").UInt(info->num_items());
    json.Key("num_interactions").UInt(info->num_interactions());
    for (const recd::v1::ModelInfo& m : info->models()) {
      if (!m.is_default()) continue;
      json.Key("default_model").String(m.name());
      json.Key("live_version").UInt(m.live_version());
      for (const recd::v1::ModelVersionInfo& v : m.versions()) {
        if (v.version() == m.live_version()) json.Key("dim").UInt(v.dim());
      }
    }
    json.EndObject();
  }
}

absl::Status WriteOutputs(const std::string& json_text, const std::vector<std::pair<std::string, std::string>>& svgs) {
  const std::string out = absl::GetFlag(FLAGS_out);
  if (absl::Status s = WriteTextFile(out + ".json", json_text); !s.ok()) return s;
  std::printf("wrote %s.json", out.c_str());
  for (const auto& [suffix, svg] : svgs) {
    if (absl::Status s = WriteTextFile(absl::StrCat(out, suffix), svg); !s.ok()) return s;
    std::printf(", %s%s", out.c_str(), suffix.c_str());
  }
  std::printf("\n");
  return absl::OkStatus();
}

void PrintWarningsNow(const PhaseResult& r) {
  for (const std::string& w : r.warnings) std::fprintf(stderr, "recload: warning: %s: %s\n", r.spec.name.c_str(), w.c_str());
}

// ---- populate ---------------------------------------------------------------------------------

int Populate(const std::string& target) {
  PopulateOptions options;
  options.target = target;
  options.catalogue.num_users = absl::GetFlag(FLAGS_users);
  options.catalogue.num_items = absl::GetFlag(FLAGS_items);
  options.catalogue.num_interactions = absl::GetFlag(FLAGS_interactions);
  options.catalogue.num_categories = absl::GetFlag(FLAGS_categories);
  options.catalogue.item_zipf = absl::GetFlag(FLAGS_item_zipf);
  options.catalogue.user_prefix = absl::GetFlag(FLAGS_user_prefix);
  options.catalogue.item_prefix = absl::GetFlag(FLAGS_item_prefix);
  options.catalogue.seed = absl::GetFlag(FLAGS_seed);
  options.batch = absl::GetFlag(FLAGS_populate_batch);
  options.in_flight = absl::GetFlag(FLAGS_populate_in_flight);
  options.train = absl::GetFlag(FLAGS_train);
  options.train_timeout = absl::GetFlag(FLAGS_train_timeout);
  options.force = absl::GetFlag(FLAGS_force);
  std::printf("%s", absl::StrFormat("populate %s: %d users, %d items, ~%d interactions, %d categories\n", target,
                                    options.catalogue.num_users, options.catalogue.num_items,
                                    options.catalogue.num_interactions, options.catalogue.num_categories)
                        .c_str());
  std::fflush(stdout);
  absl::StatusOr<PopulateResult> result = recd::loadtest::Populate(options, [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  });
  if (!result.ok()) return Fail(result.status());
  JsonWriter json;
  json.BeginObject();
  WriteHeader(json, "populate", target, &result->info);
  json.Key("populate").BeginObject();
  json.Key("skipped_load").Bool(result->skipped_load);
  json.Key("items").UInt(result->items);
  json.Key("interactions").UInt(result->interactions);
  json.Key("load_seconds").Number(result->load_seconds);
  json.Key("interactions_per_s").Number(result->load_seconds > 0 ? result->interactions / result->load_seconds : 0);
  json.Key("train_seconds").Number(result->train_seconds);
  json.EndObject();
  json.EndObject();
  std::printf("%s", absl::StrFormat("server: %d users, %d items, %d interactions, scorer %s\n",
                                    result->info.num_users(), result->info.num_items(),
                                    result->info.num_interactions(), result->info.scorer_isa())
                        .c_str());
  if (absl::Status s = WriteOutputs(json.str(), {}); !s.ok()) return Fail(s);
  return 0;
}

// ---- run --during_train -----------------------------------------------------------------------

std::chrono::system_clock::time_point In(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d);
}

// Live version of every model, by name.
absl::StatusOr<std::map<std::string, uint64_t>> LiveVersions(recd::v1::Recommender::Stub& stub) {
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(10)));
  recd::v1::GetModelInfoResponse info;
  if (grpc::Status s = stub.GetModelInfo(&context, {}, &info); !s.ok()) {
    return absl::UnavailableError(absl::StrCat("GetModelInfo: ", s.error_message()));
  }
  std::map<std::string, uint64_t> live;
  for (const recd::v1::ModelInfo& m : info.models()) live[m.name()] = m.live_version();
  return live;
}

// The retrain(s) a --during_train window overlaps, on NowNs()'s clock.
struct TrainingRecord {
  std::vector<std::string> models;  // empty = every model
  bool started = false;
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  struct Run {
    int64_t start_ns = 0;
    int64_t end_ns = 0;
    recd::v1::TrainNowResponse response;
  };
  std::vector<Run> runs;
  std::string error;
  std::map<std::string, uint64_t> live_before;
  std::map<std::string, uint64_t> live_after;
};

// Waits for the measured window to begin, then runs TrainNow(wait) back to back until at least
// `min_window` passed (one run at least).
void RetrainInWindow(recd::v1::Recommender::Stub& stub, absl::Notification& window_started,
                     absl::Duration wait_for_window, absl::Duration min_window, absl::Duration call_deadline,
                     TrainingRecord& record) {
  if (!window_started.WaitForNotificationWithTimeout(wait_for_window)) {
    record.error = "the measured window never began: no training started";
    return;
  }
  record.started = true;
  record.start_ns = NowNs();
  do {
    TrainingRecord::Run run;
    recd::v1::TrainNowRequest request;
    for (const std::string& m : record.models) request.add_models(m);
    request.set_wait(true);
    grpc::ClientContext context;
    context.set_deadline(In(call_deadline));
    run.start_ns = NowNs();
    grpc::Status s = stub.TrainNow(&context, request, &run.response);
    run.end_ns = NowNs();
    if (!s.ok()) {
      record.error = absl::StrCat("TrainNow: ", s.error_message());
      break;
    }
    record.runs.push_back(std::move(run));
  } while (NowNs() - record.start_ns < absl::ToInt64Nanoseconds(min_window));
  record.end_ns = NowNs();
}

struct Overlap {
  double window_s = 0;
  double training_s = 0;
  double overlap_s = 0;
  double window_share = 0;    // of the window, the part during training
  double training_share = 0;  // of the training, the part inside the window
};

Overlap ComputeOverlap(const PhaseResult& phase, const TrainingRecord& t) {
  Overlap o;
  o.window_s = static_cast<double>(phase.window_end_ns - phase.window_start_ns) / 1e9;
  if (!t.started) return o;
  o.training_s = static_cast<double>(t.end_ns - t.start_ns) / 1e9;
  const int64_t from = std::max(phase.window_start_ns, t.start_ns);
  const int64_t to = std::min(phase.window_end_ns, t.end_ns);
  o.overlap_s = std::max<int64_t>(0, to - from) / 1e9;
  o.window_share = o.window_s > 0 ? o.overlap_s / o.window_s : 0;
  o.training_share = o.training_s > 0 ? o.overlap_s / o.training_s : 0;
  return o;
}

void WriteTrainingJson(JsonWriter& json, const PhaseResult& phase, const TrainingRecord& t) {
  const Overlap o = ComputeOverlap(phase, t);
  auto rel = [&](int64_t ns) { return static_cast<double>(ns - phase.window_start_ns) / 1e9; };
  json.Key("training").BeginObject();
  json.Key("models").BeginArray();
  for (const std::string& m : t.models) json.String(m);
  json.EndArray();
  json.Key("started").Bool(t.started);
  json.Key("error").String(t.error);
  json.Key("started_s").Number(t.started ? rel(t.start_ns) : 0);  // relative to the window start
  json.Key("ended_s").Number(t.started ? rel(t.end_ns) : 0);
  json.Key("seconds").Number(o.training_s);
  json.Key("window_s").Number(o.window_s);
  json.Key("overlap_s").Number(o.overlap_s);
  json.Key("window_overlap_share").Number(o.window_share);
  json.Key("training_in_window_share").Number(o.training_share);
  json.Key("runs").BeginArray();
  for (const TrainingRecord::Run& run : t.runs) {
    json.BeginObject();
    json.Key("started_s").Number(rel(run.start_ns));
    json.Key("ended_s").Number(rel(run.end_ns));
    json.Key("results").BeginArray();
    for (const recd::v1::TrainResult& r : run.response.results()) {
      json.BeginObject();
      json.Key("model").String(r.model());
      json.Key("outcome").String(recd::v1::TrainOutcome_Name(r.outcome()));
      json.Key("version").UInt(r.version());
      json.Key("train_seconds").Number(r.train_seconds());
      json.Key("message").String(r.message());
      json.EndObject();
    }
    json.EndArray();
    json.EndObject();
  }
  json.EndArray();
  for (const auto& [key, live] : {std::pair{"live_versions_before", &t.live_before}, {"live_versions_after", &t.live_after}}) {
    json.Key(key).BeginObject();
    for (const auto& [name, version] : *live) json.Key(name).UInt(version);
    json.EndObject();
  }
  json.EndObject();
}

// One line per run, then the overlap.
void PrintTraining(const PhaseResult& phase, const TrainingRecord& t) {
  const Overlap o = ComputeOverlap(phase, t);
  if (!t.error.empty()) std::printf("training: error: %s\n", t.error.c_str());
  for (size_t i = 0; i < t.runs.size(); ++i) {
    std::vector<std::string> parts;
    for (const recd::v1::TrainResult& r : t.runs[i].response.results()) {
      parts.push_back(absl::StrFormat("%s %s v%d %.1f s", r.model(), recd::v1::TrainOutcome_Name(r.outcome()),
                                      r.version(), r.train_seconds()));
    }
    std::printf("training run %d: %.1f s (%s)\n", static_cast<int>(i + 1),
                (t.runs[i].end_ns - t.runs[i].start_ns) / 1e9, absl::StrJoin(parts, ", ").c_str());
  }
  std::printf("measured window %.1f s, %.1f %% of it during training; training %.1f s, %.1f %% of it inside the window\n",
              o.window_s, 100 * o.window_share, o.training_s, 100 * o.training_share);
}

// ---- run --------------------------------------------------------------------------------------

int Run(const std::string& target, const Mix& mix) {
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode != "open" && mode != "closed") return Fail(absl::InvalidArgumentError("--mode must be 'open' or 'closed'"));
  PhaseSpec spec;
  spec.closed_loop = mode == "closed";
  spec.rate = absl::GetFlag(FLAGS_rate);
  spec.concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  spec.warmup = absl::GetFlag(FLAGS_warmup);
  spec.duration = absl::GetFlag(FLAGS_duration);
  spec.max_requests = absl::GetFlag(FLAGS_max_requests);
  if (!spec.closed_loop && !(spec.rate > 0)) return Fail(absl::InvalidArgumentError("--rate must be > 0"));
  const bool baseline = absl::GetFlag(FLAGS_baseline);
  const bool during_train = absl::GetFlag(FLAGS_during_train);
  if (during_train && (spec.closed_loop || baseline)) {
    return Fail(absl::InvalidArgumentError("--during_train needs --mode=open and no --baseline"));
  }
  const absl::Duration planned = (spec.warmup + spec.duration) * (baseline ? 2 : 1);
  if (planned > absl::GetFlag(FLAGS_time_limit)) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("warm-up + duration", baseline ? " (x2 with --baseline)" : "",
                                                        " = ", absl::FormatDuration(planned), " exceeds --time_limit=",
                                                        absl::FormatDuration(absl::GetFlag(FLAGS_time_limit)))));
  }
  spec.name = absl::GetFlag(FLAGS_label);
  if (spec.name.empty()) {
    spec.name = spec.closed_loop ? absl::StrCat("closed N=", spec.concurrency) : absl::StrFormat("open %.0f/s", spec.rate);
  }
  absl::StatusOr<recd::v1::GetModelInfoResponse> info = ServerInfo(target, mix);
  if (!info.ok()) return Fail(info.status());
  absl::StatusOr<std::unique_ptr<LoadDriver>> driver = LoadDriver::Create(ClientFromFlags(target), WorkloadFromFlags(mix));
  if (!driver.ok()) return Fail(driver.status());

  std::printf("run %s on %s: mix %s, %s, warm-up %s, %s; client CPUs %s; load average %s\n", spec.name.c_str(),
              target.c_str(), mix.ToString().c_str(),
              spec.closed_loop ? absl::StrCat(spec.concurrency, " in flight").c_str()
                               : absl::StrFormat("%.1f/s", spec.rate).c_str(),
              absl::FormatDuration(spec.warmup).c_str(), absl::FormatDuration(spec.duration).c_str(),
              AllowedCpuList().c_str(), LoadAverage().c_str());
  std::fflush(stdout);
  std::vector<PhaseResult> phases;
  // --during_train: a thread starts training as the window begins; the window ends with it.
  TrainingRecord training;
  std::unique_ptr<recd::v1::Recommender::Stub> admin;
  std::atomic<bool> training_done{false};
  absl::Notification window_started;
  std::thread trainer;
  if (during_train) {
    for (absl::string_view m : absl::StrSplit(absl::GetFlag(FLAGS_train_models), ',', absl::SkipEmpty())) {
      training.models.emplace_back(m);
    }
    admin = recd::v1::Recommender::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
    absl::StatusOr<std::map<std::string, uint64_t>> live = LiveVersions(*admin);
    if (!live.ok()) return Fail(live.status());
    training.live_before = *live;
    spec.on_window_start = [&window_started] { window_started.Notify(); };
    spec.stop_early = &training_done;
    trainer = std::thread([&] {
      RetrainInWindow(*admin, window_started, spec.warmup + absl::Seconds(30), absl::GetFlag(FLAGS_train_min_window),
                      absl::GetFlag(FLAGS_time_limit), training);
      training_done.store(true, std::memory_order_release);
    });
    std::printf("training (TrainNow %s) starts as the measured window begins; the window ends when it ends "
                "(at the latest after %s)\n",
                training.models.empty() ? "of every model" : absl::StrJoin(training.models, ",").c_str(),
                absl::FormatDuration(spec.duration).c_str());
    std::fflush(stdout);
  }
  phases.push_back((*driver)->RunPhase(spec, mix));
  if (trainer.joinable()) {
    if (!training_done.load()) {
      std::printf("the window ended (--duration) before training did: waiting for training to end\n");
      std::fflush(stdout);
    }
    trainer.join();
    absl::StatusOr<std::map<std::string, uint64_t>> live = LiveVersions(*admin);
    if (live.ok()) training.live_after = *live;
    PrintTraining(phases.back(), training);
    const Overlap o = ComputeOverlap(phases.back(), training);
    if (!training.started || o.window_share < 0.95) {
      phases.back().warnings.push_back(absl::StrFormat(
          "only %.1f %% of the measured window overlapped training", 100 * o.window_share));
    }
  }
  PrintWarningsNow(phases.back());
  if (baseline) {
    PhaseSpec health = spec;
    health.name = spec.name + " health baseline";
    phases.push_back((*driver)->RunPhase(health, Mix::Only(Method::kHealth)));
    PrintWarningsNow(phases.back());
  }
  std::vector<const PhaseResult*> views;
  for (const PhaseResult& p : phases) views.push_back(&p);
  std::printf("\n%s", FormatTable(views).c_str());

  JsonWriter json;
  json.BeginObject();
  WriteHeader(json, "run", target, &*info);
  json.Key("load_average_at_end").String(LoadAverage());
  json.Key("phases").BeginArray();
  for (const PhaseResult& p : phases) WritePhaseJson(json, p);
  json.EndArray();
  if (during_train) WriteTrainingJson(json, phases[0], training);
  json.EndObject();

  std::vector<Plot> timeline;
  for (const PhaseResult& p : phases) {
    timeline.push_back(LatencyOverTimePlot(p));
    timeline.push_back(ThroughputOverTimePlot(p));
    if (p.server_rss_start > 0) {
      timeline.push_back(ServerMemoryPlot(p));
      timeline.push_back(ServerCpuPlot(p));
    }
  }
  const std::string title = absl::StrCat("latency percentiles (", target, ")");
  if (absl::Status s = WriteOutputs(json.str(), {{"_latency.svg", RenderSvg(timeline)},
                                                 {"_percentiles.svg", RenderSvg({PercentilePlot(views, title)}, 960, 480)}});
      !s.ok()) {
    return Fail(s);
  }
  return 0;
}

// ---- step -------------------------------------------------------------------------------------

StepRun StepSearchOn(LoadDriver& driver, const std::string& name, const Mix& mix, Method judged,
                     double start_rate, absl::Time give_up_at) {
  StepRun run;
  run.name = name;
  run.judged_method = MethodName(judged);
  run.criteria.p99_target_ms = absl::ToDoubleMilliseconds(absl::GetFlag(FLAGS_p99_target));
  run.criteria.max_error_ratio = absl::GetFlag(FLAGS_max_error_ratio);
  run.criteria.min_achieved_ratio = absl::GetFlag(FLAGS_min_achieved_ratio);
  StepSearch::Options options;
  options.start_rate = start_rate;
  options.factor = absl::GetFlag(FLAGS_step_factor);
  options.max_rate = absl::GetFlag(FLAGS_step_max);
  options.refine_steps = absl::GetFlag(FLAGS_step_refine);
  StepSearch search(options);
  const absl::Duration step_time = absl::GetFlag(FLAGS_step_warmup) + absl::GetFlag(FLAGS_step_duration);
  while (std::optional<double> rate = search.NextRate()) {
    if (absl::Now() + step_time > give_up_at) {
      std::printf("  stopping: the next step would pass --time_limit\n");
      break;
    }
    PhaseSpec spec;
    spec.name = absl::StrFormat("%s %.0f/s", name, *rate);
    spec.rate = *rate;
    spec.warmup = absl::GetFlag(FLAGS_step_warmup);
    spec.duration = absl::GetFlag(FLAGS_step_duration);
    spec.max_requests = absl::GetFlag(FLAGS_max_requests);
    StepRecord record;
    record.rate = *rate;
    record.phase = driver.RunPhase(spec, mix);
    const MethodStats& m = record.phase.methods[static_cast<int>(judged)];
    StepObservation observed;
    observed.target_rate = *rate;
    observed.achieved_rate = record.phase.achieved_rate;
    observed.p99_ms = m.latency.ValueAtQuantile(0.99) / 1e6;
    observed.ok = record.phase.ok();
    observed.errors = record.phase.errors();
    const StepVerdict verdict = JudgeStep(observed, run.criteria);
    record.held = verdict.held;
    record.reason = verdict.reason;
    std::printf("  %-26s achieved %9.1f/s  %s p50 %7.3f ms p99 %8.3f ms  errors %-6d CPU client %.2f server %.2f  %s\n",
                spec.name.c_str(), observed.achieved_rate, run.judged_method.c_str(),
                m.latency.ValueAtQuantile(0.5) / 1e6, observed.p99_ms, static_cast<int>(observed.errors),
                record.phase.client_cpu_cores, record.phase.server_cpu_cores,
                verdict.held ? "held" : ("FAILED: " + verdict.reason).c_str());
    std::fflush(stdout);
    PrintWarningsNow(record.phase);
    search.Report(*rate, verdict.held);
    run.steps.push_back(std::move(record));
  }
  run.highest_held = search.highest_held();
  run.lowest_failed = search.lowest_failed();
  return run;
}

int Step(const std::string& target, const Mix& mix) {
  Method judged;
  if (const std::string m = absl::GetFlag(FLAGS_step_method); !m.empty()) {
    absl::StatusOr<Method> parsed = ParseMethod(m);
    if (!parsed.ok()) return Fail(parsed.status());
    judged = *parsed;
    if (!mix.Has(judged)) return Fail(absl::InvalidArgumentError(absl::StrCat("--step_method=", m, " is not in --mix")));
  } else {
    judged = Method::kHealth;
    for (Method m : {Method::kHealth, Method::kLogInteractions, Method::kRecommendBatch, Method::kSimilarItems,
                     Method::kRecommend}) {
      if (mix.Has(m)) judged = m;  // the last one present in this order wins: recommend first
    }
  }
  absl::StatusOr<recd::v1::GetModelInfoResponse> info = ServerInfo(target, mix);
  if (!info.ok()) return Fail(info.status());
  absl::StatusOr<std::unique_ptr<LoadDriver>> driver = LoadDriver::Create(ClientFromFlags(target), WorkloadFromFlags(mix));
  if (!driver.ok()) return Fail(driver.status());
  const absl::Time give_up_at = absl::Now() + absl::GetFlag(FLAGS_time_limit);

  std::printf("step search on %s: mix %s, p99 of %s <= %s, from %.0f/s x%.2f; client CPUs %s; load average %s\n",
              target.c_str(), mix.ToString().c_str(), MethodName(judged),
              absl::FormatDuration(absl::GetFlag(FLAGS_p99_target)).c_str(), absl::GetFlag(FLAGS_step_start),
              absl::GetFlag(FLAGS_step_factor), AllowedCpuList().c_str(), LoadAverage().c_str());
  std::fflush(stdout);
  std::vector<StepRun> runs;
  // A single-method mix is named by its method, a real mix "mix".
  std::string name = "mix";
  for (int m = 0; m < kNumMethods; ++m) {
    if (mix.Share(static_cast<Method>(m)) >= 1.0) name = MethodName(static_cast<Method>(m));
  }
  runs.push_back(StepSearchOn(**driver, name, mix, judged, absl::GetFlag(FLAGS_step_start), give_up_at));
  if (absl::GetFlag(FLAGS_baseline) && judged != Method::kHealth) {
    std::printf("baseline: the same search on grpc.health.v1.Health/Check\n");
    const double start = absl::GetFlag(FLAGS_baseline_step_start) > 0 ? absl::GetFlag(FLAGS_baseline_step_start)
                                                                       : absl::GetFlag(FLAGS_step_start);
    runs.push_back(StepSearchOn(**driver, "health", Mix::Only(Method::kHealth), Method::kHealth, start, give_up_at));
  }
  std::printf("\n");
  for (const StepRun& run : runs) std::printf("%s", FormatSteps(run).c_str());
  if (runs.size() == 2 && runs[1].highest_held > 0) {
    std::printf("ratio to the health-check floor: %.1f %% (%.1f/s vs %.1f/s)\n",
                100 * runs[0].highest_held / runs[1].highest_held, runs[0].highest_held, runs[1].highest_held);
  }
  // The detailed table of the best step of each run.
  std::vector<const PhaseResult*> best;
  for (const StepRun& run : runs) {
    for (const StepRecord& s : run.steps) {
      if (s.held && s.rate == run.highest_held) best.push_back(&s.phase);
    }
  }
  if (!best.empty()) std::printf("\nat the highest rate held:\n%s", FormatTable(best).c_str());

  JsonWriter json;
  json.BeginObject();
  WriteHeader(json, "step", target, &*info);
  json.Key("load_average_at_end").String(LoadAverage());
  json.Key("highest_rate_held").Number(runs[0].highest_held);
  if (runs.size() == 2) {
    json.Key("baseline_highest_rate_held").Number(runs[1].highest_held);
    json.Key("ratio_to_baseline").Number(runs[1].highest_held > 0 ? runs[0].highest_held / runs[1].highest_held : 0);
  }
  json.Key("step_runs").BeginArray();
  for (const StepRun& run : runs) WriteStepRunJson(json, run);
  json.EndArray();
  json.EndObject();

  std::vector<const StepRun*> run_views;
  for (const StepRun& run : runs) run_views.push_back(&run);
  std::vector<std::pair<std::string, std::string>> svgs = {{"_steps.svg", RenderSvg({StepPlot(run_views)}, 960, 480)}};
  if (!best.empty()) {
    svgs.emplace_back("_percentiles.svg",
                      RenderSvg({PercentilePlot(best, "latency percentiles at the highest rate held")}, 960, 480));
  }
  if (absl::Status s = WriteOutputs(json.str(), svgs); !s.ok()) return Fail(s);
  return 0;
}

// ---- freshness --------------------------------------------------------------------------------

int Freshness(const std::string& target, const Mix& mix) {
  absl::StatusOr<recd::v1::GetModelInfoResponse> info = ServerInfo(target, mix);
  if (!info.ok()) return Fail(info.status());
  FreshnessOptions options;
  options.target = target;
  options.num_users = std::max<uint64_t>(1, absl::GetFlag(FLAGS_users));
  options.user_prefix = absl::GetFlag(FLAGS_user_prefix);
  options.probes = absl::GetFlag(FLAGS_probes);
  options.k = absl::GetFlag(FLAGS_k);
  options.model = absl::GetFlag(FLAGS_model);
  options.gap = absl::GetFlag(FLAGS_probe_gap);
  options.timeout = absl::GetFlag(FLAGS_probe_timeout);
  options.deadline = absl::GetFlag(FLAGS_deadline);
  options.time_limit = absl::GetFlag(FLAGS_time_limit);
  options.seed = absl::GetFlag(FLAGS_seed);
  std::printf("freshness on %s: %d probes over distinct users of %d, k=%d, about %s apart, give up after %s; "
              "client CPUs %s; load average %s\n",
              target.c_str(), options.probes, static_cast<int>(options.num_users), options.k,
              absl::FormatDuration(options.gap).c_str(), absl::FormatDuration(options.timeout).c_str(),
              AllowedCpuList().c_str(), LoadAverage().c_str());
  std::fflush(stdout);
  absl::StatusOr<FreshnessResult> result = RunFreshness(options, [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  });
  if (!result.ok()) return Fail(result.status());
  const FreshnessResult& r = *result;
  auto ms = [](int64_t ns) { return ns == INT64_MAX ? std::string("never") : absl::StrFormat("%.3f ms", ns / 1e6); };
  const double first_share = r.judged > 0 ? static_cast<double>(r.reflected_first) / static_cast<double>(r.judged) : 0;
  std::printf("\n%d probes judged (%d users skipped), %d reflected, %d on the first Recommend after the ack (%.1f %%); "
              "most attempts %d\n",
              static_cast<int>(r.judged), static_cast<int>(r.probes.size() - r.judged), static_cast<int>(r.reflected),
              static_cast<int>(r.reflected_first), 100 * first_share, r.max_attempts);
  std::printf("  ack -> reflecting answer     p50 %s  p90 %s  p99 %s  max %s\n", ms(r.FreshnessQuantileNs(0.5)).c_str(),
              ms(r.FreshnessQuantileNs(0.9)).c_str(), ms(r.FreshnessQuantileNs(0.99)).c_str(),
              ms(r.FreshnessQuantileNs(1.0)).c_str());
  std::printf("  LogInteractions round trip   p50 %s  p99 %s  max %s\n",
              ms(static_cast<int64_t>(r.log_ack.ValueAtQuantile(0.5))).c_str(),
              ms(static_cast<int64_t>(r.log_ack.ValueAtQuantile(0.99))).c_str(),
              ms(static_cast<int64_t>(r.log_ack.max())).c_str());
  std::printf("  reflecting Recommend         p50 %s  p99 %s  max %s\n",
              ms(static_cast<int64_t>(r.reflecting_recommend.ValueAtQuantile(0.5))).c_str(),
              ms(static_cast<int64_t>(r.reflecting_recommend.ValueAtQuantile(0.99))).c_str(),
              ms(static_cast<int64_t>(r.reflecting_recommend.max())).c_str());
  uint64_t first_item_kept = 0;
  uint64_t first_not_moved = 0;
  for (const ProbeRecord& p : r.probes) {
    if (!p.judged) continue;
    if (!p.first.item_gone) ++first_item_kept;
    if (!p.first.vector_moved) ++first_not_moved;
  }
  std::printf("  first answers after the ack: %d still held the clicked item, %d ranked as before; "
              "skipped: %d control failures, %d model version changes\n",
              static_cast<int>(first_item_kept), static_cast<int>(first_not_moved),
              static_cast<int>(r.control_failed), static_cast<int>(r.model_changed));

  JsonWriter json;
  json.BeginObject();
  WriteHeader(json, "freshness", target, &*info);
  json.Key("load_average_at_end").String(LoadAverage());
  json.Key("freshness").BeginObject();
  json.Key("definition").String(
      "ack -> arrival of the first Recommend answer in which the clicked item (the before list's top item) is gone "
      "and the model ranking differs from the before list's (clicked item cut from both): the user vector moved");
  json.Key("probes_wanted").Int(options.probes);
  json.Key("probe_gap_ms").Number(absl::ToDoubleMilliseconds(options.gap));
  json.Key("probe_timeout_ms").Number(absl::ToDoubleMilliseconds(options.timeout));
  json.Key("users_tried").UInt(r.probes.size());
  json.Key("judged").UInt(r.judged);
  json.Key("reflected").UInt(r.reflected);
  json.Key("reflected_first").UInt(r.reflected_first);
  json.Key("reflected_first_share").Number(first_share);
  json.Key("never_reflected").UInt(r.judged - r.reflected);
  json.Key("model_changed").UInt(r.model_changed);
  json.Key("control_failed").UInt(r.control_failed);
  json.Key("first_answer_still_held_item").UInt(first_item_kept);
  json.Key("first_answer_ranked_as_before").UInt(first_not_moved);
  json.Key("max_attempts").Int(r.max_attempts);
  json.Key("seconds").Number(r.seconds);
  // Over every judged probe, never-reflected ones counting as infinite (null).
  json.Key("freshness_ms").BeginObject();
  for (const auto& [name, q] : {std::pair{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"max", 1.0}}) {
    const int64_t ns = r.FreshnessQuantileNs(q);
    json.Key(name).Number(ns == INT64_MAX ? std::numeric_limits<double>::infinity() : ns / 1e6);
  }
  json.EndObject();
  json.Key("reflected_freshness_ms");
  WriteLatencyJson(json, r.freshness);
  json.Key("log_ack_ms");
  WriteLatencyJson(json, r.log_ack);
  json.Key("reflecting_recommend_ms");
  WriteLatencyJson(json, r.reflecting_recommend);
  json.EndObject();
  json.Key("probes").BeginArray();
  for (const ProbeRecord& p : r.probes) {
    json.BeginObject();
    json.Key("user").String(p.user_id);
    if (!p.judged) {
      json.Key("skipped").String(p.skip_reason);
    } else {
      json.Key("clicked").String(p.clicked);
      json.Key("reflected").Bool(p.reflected);
      json.Key("attempts").Int(p.attempts);
      json.Key("log_ms").Number(p.log_ns / 1e6);
      if (p.reflected) json.Key("freshness_ms").Number(p.freshness_ns / 1e6);
    }
    json.EndObject();
  }
  json.EndArray();
  json.EndObject();
  if (absl::Status s = WriteOutputs(json.str(), {}); !s.ok()) return Fail(s);
  return r.judged > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "load generator for recd (loopback targets only)\n"
      "  recload populate --port_file=F [--users=100000 --items=100000 --interactions=3000000]\n"
      "  recload run  --port_file=F --mix=recommend:70,batch:5,similar:15,log:10 --rate=500 --duration=30s [--baseline]\n"
      "  recload run  --port_file=F --mode=closed --concurrency=64 --mix=log --log_batch=100\n"
      "  recload step --port_file=F --mix=recommend --p99_target=5ms [--baseline]\n"
      "  recload run  --port_file=F --mix=recommend --rate=400 --during_train [--train_min_window=30s]\n"
      "  recload freshness --port_file=F [--probes=500 --probe_gap=40ms]\n"
      "Outputs: a table on stdout, <out>.json and <out>_*.svg (--out).");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  // Debian builds Abseil without NDEBUG, which turns on Mutex deadlock detection: every lock
  // (gRPC's included) then updates a global lock graph under a global lock, about 45 ns per
  // lock and a point of contention. A load generator wants none of that.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (args.size() != 2) {
    std::fprintf(stderr, "recload: give one command: populate, run, step or freshness (see --help)\n");
    return 2;
  }
  const std::string command = args[1];
  if (absl::Status s = CheckBounds(); !s.ok()) return Fail(s);
  absl::StatusOr<std::string> target = ResolveTarget();
  if (!target.ok()) return Fail(target.status());
  absl::StatusOr<Mix> mix = Mix::Parse(absl::GetFlag(FLAGS_mix));
  if (!mix.ok()) return Fail(mix.status());
  if (command == "populate") return Populate(*target);
  if (command == "run") return Run(*target, *mix);
  if (command == "step") return Step(*target, *mix);
  if (command == "freshness") return Freshness(*target, *mix);
  std::fprintf(stderr, "recload: unknown command '%s': populate, run, step or freshness\n", command.c_str());
  return 2;
}
