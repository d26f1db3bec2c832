// recload: load generator for recd. Run `recload --help`; the commands are
//
//   recload populate   load the synthetic catalogue (users u*, items i*) and train
//   recload run        one open-loop (--rate) or closed-loop (--mode=closed --concurrency) run of
//                      the --mix, optionally followed by the same load on the health check
//                      (--baseline)
//   recload step       raise the rate until the p99 target breaks; report the highest rate held
//                      (--baseline: the same search on the health check, the gRPC floor)
//
// Every run is bounded (--time_limit, --max_requests) and only targets loopback addresses.
// Results: a table on stdout, <out>.json, and SVG charts <out>_*.svg.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "loadtest/driver.h"
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
  phases.push_back((*driver)->RunPhase(spec, mix));
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

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "load generator for recd (loopback targets only)\n"
      "  recload populate --port_file=F [--users=100000 --items=100000 --interactions=3000000]\n"
      "  recload run  --port_file=F --mix=recommend:70,batch:5,similar:15,log:10 --rate=500 --duration=30s [--baseline]\n"
      "  recload run  --port_file=F --mode=closed --concurrency=64 --mix=log --log_batch=100\n"
      "  recload step --port_file=F --mix=recommend --p99_target=5ms [--baseline]\n"
      "Outputs: a table on stdout, <out>.json and <out>_*.svg (--out).");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  // Debian builds Abseil without NDEBUG, which turns on Mutex deadlock detection: every lock
  // (gRPC's included) then updates a global lock graph under a global lock, about 45 ns per
  // lock and a point of contention. A load generator wants none of that.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (args.size() != 2) {
    std::fprintf(stderr, "recload: give one command: populate, run or step (see --help)\n");
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
  std::fprintf(stderr, "recload: unknown command '%s': populate, run or step\n", command.c_str());
  return 2;
}
