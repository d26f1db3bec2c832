#include "loadtest/driver.h"

#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "loadtest/pacing.h"
#include "loadtest/proc_stats.h"
#include "loadtest/target.h"
#include "recd/v1/recommender.grpc.pb.h"

namespace recd::loadtest {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using recd::v1::Recommender;

constexpr int64_t kSecondNs = 1000000000;

void SleepUntilNs(int64_t t_ns) {
  timespec ts;
  ts.tv_sec = t_ns / kSecondNs;
  ts.tv_nsec = t_ns % kSecondNs;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

// Sleeps until `t_ns`, but busy-waits when it is less than `spin_ns` away: at high rates a
// sleep and wake-up per request costs more CPU (tens of microseconds in a VM) than the call.
void WaitUntilNs(int64_t t_ns, int64_t spin_ns) {
  int64_t now = NowNs();
  if (now >= t_ns) return;
  if (t_ns - now > spin_ns) SleepUntilNs(t_ns);
  while (NowNs() < t_ns) {
    __builtin_ia32_pause();
  }
}

// Under a real-time policy (the benchmark may run recload SCHED_FIFO to shield it from other
// work on the machine) threads of equal priority do not preempt each other: a worker busy with
// a burst of completions would delay the pacer's sends. The pacer (the caller of RunPhase) goes
// one priority above the workers. No-op under the normal policy.
void RaisePacerPriority() {
  static thread_local bool raised = false;  // once per thread: every phase calls this
  if (raised) return;
  raised = true;
  int policy = 0;
  sched_param param{};
  if (pthread_getschedparam(pthread_self(), &policy, &param) != 0) return;
  if (policy != SCHED_FIFO && policy != SCHED_RR) return;
  if (param.sched_priority >= sched_get_priority_max(policy)) return;
  param.sched_priority += 1;
  pthread_setschedparam(pthread_self(), policy, &param);
}

struct Stubs {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<Recommender::Stub> recd;
  std::unique_ptr<Health::Stub> health;
};

// One call in flight; the completion-queue tag is the Call itself.
struct Call {
  virtual ~Call() = default;
  virtual void Start(Stubs& stubs, grpc::CompletionQueue* cq) = 0;
  virtual uint64_t Units() const = 0;
  virtual uint64_t Fallbacks() const = 0;

  Method method = Method::kRecommend;
  int64_t intended_ns = 0;
  uint32_t phase = 0;
  bool measured = false;
  grpc::ClientContext context;
  grpc::Status status;
};

auto Prepare(Stubs& s, grpc::ClientContext* c, const recd::v1::RecommendRequest& r, grpc::CompletionQueue* cq) {
  return s.recd->PrepareAsyncRecommend(c, r, cq);
}
auto Prepare(Stubs& s, grpc::ClientContext* c, const recd::v1::RecommendBatchRequest& r,
             grpc::CompletionQueue* cq) {
  return s.recd->PrepareAsyncRecommendBatch(c, r, cq);
}
auto Prepare(Stubs& s, grpc::ClientContext* c, const recd::v1::SimilarItemsRequest& r,
             grpc::CompletionQueue* cq) {
  return s.recd->PrepareAsyncSimilarItems(c, r, cq);
}
auto Prepare(Stubs& s, grpc::ClientContext* c, const recd::v1::LogInteractionsRequest& r,
             grpc::CompletionQueue* cq) {
  return s.recd->PrepareAsyncLogInteractions(c, r, cq);
}
auto Prepare(Stubs& s, grpc::ClientContext* c, const HealthCheckRequest& r, grpc::CompletionQueue* cq) {
  return s.health->PrepareAsyncCheck(c, r, cq);
}

uint64_t UnitsOf(const recd::v1::RecommendResponse&) { return 1; }
uint64_t UnitsOf(const recd::v1::RecommendBatchResponse& r) { return r.responses_size(); }
uint64_t UnitsOf(const recd::v1::SimilarItemsResponse&) { return 1; }
uint64_t UnitsOf(const recd::v1::LogInteractionsResponse& r) { return r.accepted(); }
uint64_t UnitsOf(const HealthCheckResponse&) { return 1; }

uint64_t FallbacksOf(const recd::v1::RecommendResponse& r) {
  return r.source() == recd::v1::SOURCE_POPULARITY_FALLBACK ? 1 : 0;
}
uint64_t FallbacksOf(const recd::v1::RecommendBatchResponse& r) {
  uint64_t n = 0;
  for (const recd::v1::RecommendResponse& one : r.responses()) n += FallbacksOf(one);
  return n;
}
uint64_t FallbacksOf(const recd::v1::SimilarItemsResponse& r) {
  return r.source() == recd::v1::SOURCE_POPULARITY_FALLBACK ? 1 : 0;
}
uint64_t FallbacksOf(const recd::v1::LogInteractionsResponse&) { return 0; }
uint64_t FallbacksOf(const HealthCheckResponse& r) {
  return r.status() == HealthCheckResponse::SERVING ? 0 : 1;  // "not serving" answers
}

template <class Request, class Response>
struct TypedCall final : Call {
  void Start(Stubs& stubs, grpc::CompletionQueue* cq) override {
    reader = Prepare(stubs, &context, request, cq);
    reader->StartCall();
    reader->Finish(&response, &status, this);
  }
  uint64_t Units() const override { return UnitsOf(response); }
  uint64_t Fallbacks() const override { return FallbacksOf(response); }

  Request request;
  Response response;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
};

template <class Request, class Response>
std::unique_ptr<Call> Make(RequestFactory& factory) {
  auto call = std::make_unique<TypedCall<Request, Response>>();
  factory.Fill(&call->request);
  return call;
}

std::unique_ptr<Call> MakeCall(Method method, RequestFactory& factory) {
  std::unique_ptr<Call> call;
  switch (method) {
    case Method::kRecommend:
      call = Make<recd::v1::RecommendRequest, recd::v1::RecommendResponse>(factory);
      break;
    case Method::kRecommendBatch:
      call = Make<recd::v1::RecommendBatchRequest, recd::v1::RecommendBatchResponse>(factory);
      break;
    case Method::kSimilarItems:
      call = Make<recd::v1::SimilarItemsRequest, recd::v1::SimilarItemsResponse>(factory);
      break;
    case Method::kLogInteractions:
      call = Make<recd::v1::LogInteractionsRequest, recd::v1::LogInteractionsResponse>(factory);
      break;
    case Method::kHealth:
      call = Make<HealthCheckRequest, HealthCheckResponse>(factory);
      break;
  }
  call->method = method;
  return call;
}

// Results of one thread. The owner records under `mu` (uncontended except when the ticker
// collects an interval once a second).
struct Recorder {
  absl::Mutex mu;
  std::array<MethodStats, kNumMethods> total ABSL_GUARDED_BY(mu);
  Histogram all ABSL_GUARDED_BY(mu);
  Histogram send_lag ABSL_GUARDED_BY(mu);
  uint64_t window_ok ABSL_GUARDED_BY(mu) = 0;
  std::array<Histogram, kNumMethods> interval ABSL_GUARDED_BY(mu);
  std::array<uint64_t, kNumMethods> interval_ok ABSL_GUARDED_BY(mu){};
  std::array<uint64_t, kNumMethods> interval_errors ABSL_GUARDED_BY(mu){};

  void Reset() {
    absl::MutexLock lock(&mu);
    for (MethodStats& m : total) m = MethodStats();
    all.Reset();
    send_lag.Reset();
    window_ok = 0;
    for (Histogram& h : interval) h.Reset();
    interval_ok.fill(0);
    interval_errors.fill(0);
  }
};

struct ProcPoint {
  double t_s;
  ProcSample sample;
};

}  // namespace

std::string StatusCodeName(int code) {
  static const char* const kNames[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
      "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  if (code == kClientInFlightLimit) return "CLIENT_IN_FLIGHT_LIMIT";
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) return kNames[code];
  return absl::StrCat("CODE_", code);
}

uint64_t MethodStats::error_count() const {
  uint64_t n = 0;
  for (const auto& [code, count] : errors) n += count;
  return n;
}

void MethodStats::Merge(const MethodStats& other) {
  latency.Merge(other.latency);
  ok += other.ok;
  for (const auto& [code, count] : other.errors) errors[code] += count;
  units += other.units;
  fallback += other.fallback;
}

uint64_t PhaseResult::ok() const {
  uint64_t n = 0;
  for (const MethodStats& m : methods) n += m.ok;
  return n;
}

uint64_t PhaseResult::errors() const {
  uint64_t n = 0;
  for (const MethodStats& m : methods) n += m.error_count();
  return n;
}

struct LoadDriver::Impl {
  struct Worker {
    grpc::CompletionQueue cq;
    std::thread thread;
    Recorder recorder;
    std::unique_ptr<RequestFactory> factory;  // closed loop: the next call is built here
    uint64_t next_channel = 0;
  };

  ClientOptions client;
  WorkloadOptions workload;
  std::unique_ptr<WorkloadTables> tables;
  std::vector<Stubs> stubs;
  std::vector<std::unique_ptr<Worker>> workers;
  Recorder pacer_recorder;
  std::unique_ptr<RequestFactory> pacer_factory;
  uint64_t pacer_next_channel = 0;

  // Phase state, written by RunPhase before the phase starts (published by phase_id).
  std::atomic<uint32_t> phase_id{0};
  std::atomic<int64_t> window_start_ns{0};
  std::atomic<int64_t> window_end_ns{0};
  std::atomic<bool> closed_loop{false};
  std::atomic<uint64_t> sent{0};
  uint64_t max_requests = 0;
  std::atomic<int64_t> in_flight{0};

  ~Impl() {
    for (auto& w : workers) w->cq.Shutdown();
    for (auto& w : workers) {
      if (w->thread.joinable()) w->thread.join();
    }
  }

  // Starts `call` (built by MakeCall) on worker `worker_index`'s queue. Returns false (sends
  // nothing) when the request bound is reached.
  bool Launch(std::unique_ptr<Call> call, int worker_index, int64_t intended_ns, uint64_t* channel_counter) {
    if (sent.fetch_add(1, std::memory_order_relaxed) >= max_requests) {
      sent.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    call->intended_ns = intended_ns;
    call->phase = phase_id.load(std::memory_order_relaxed);
    call->measured = intended_ns >= window_start_ns.load(std::memory_order_relaxed) &&
                     intended_ns < window_end_ns.load(std::memory_order_relaxed);
    call->context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::nanoseconds(absl::ToInt64Nanoseconds(client.deadline)));
    in_flight.fetch_add(1, std::memory_order_relaxed);
    Stubs& s = stubs[(*channel_counter)++ % stubs.size()];
    call->Start(s, &workers[worker_index]->cq);
    call.release();  // owned by the completion queue until WorkerLoop takes it back
    return true;
  }

  void Record(Recorder& rec, const Call& call, int64_t done_ns) {
    const int m = static_cast<int>(call.method);
    const uint64_t latency = static_cast<uint64_t>(std::max<int64_t>(0, done_ns - call.intended_ns));
    absl::MutexLock lock(&rec.mu);
    if (call.status.ok()) {
      rec.interval[m].Record(latency);
      ++rec.interval_ok[m];
      if (call.measured) {
        MethodStats& stats = rec.total[m];
        stats.latency.Record(latency);
        ++stats.ok;
        stats.units += call.Units();
        stats.fallback += call.Fallbacks();
        rec.all.Record(latency);
      }
      if (done_ns >= window_start_ns.load(std::memory_order_relaxed) &&
          done_ns <= window_end_ns.load(std::memory_order_relaxed)) {
        ++rec.window_ok;
      }
    } else {
      ++rec.interval_errors[m];
      if (call.measured) ++rec.total[m].errors[static_cast<int>(call.status.error_code())];
    }
  }

  void WorkerLoop(int index) {
    Worker& w = *workers[index];
    void* tag = nullptr;
    bool ok = false;
    // Polls without blocking for up to spin_ns after each completion before blocking in Next:
    // completions that arrive close together are then taken without a sleep and wake-up each.
    auto next = [&]() -> bool {
      if (client.spin_ns > 0) {
        const int64_t until = NowNs() + client.spin_ns;
        do {
          switch (w.cq.AsyncNext(&tag, &ok, gpr_time_0(GPR_CLOCK_MONOTONIC))) {
            case grpc::CompletionQueue::GOT_EVENT: return true;
            case grpc::CompletionQueue::SHUTDOWN: return false;
            case grpc::CompletionQueue::TIMEOUT: break;
          }
        } while (NowNs() < until);
      }
      return w.cq.Next(&tag, &ok);
    };
    while (next()) {
      std::unique_ptr<Call> call(static_cast<Call*>(tag));
      const int64_t done = NowNs();
      const bool current = call->phase == phase_id.load(std::memory_order_acquire);
      if (current) Record(w.recorder, *call, done);
      if (current && closed_loop.load(std::memory_order_relaxed) &&
          done < window_end_ns.load(std::memory_order_relaxed)) {
        std::unique_ptr<Call> next = MakeCall(w.factory->PickMethod(), *w.factory);
        Launch(std::move(next), index, NowNs(), &w.next_channel);
      }
      call.reset();
      in_flight.fetch_sub(1, std::memory_order_release);
    }
  }

  PhaseResult Run(const PhaseSpec& spec, const Mix& phase_mix);
};

LoadDriver::LoadDriver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LoadDriver::~LoadDriver() = default;

const ClientOptions& LoadDriver::client_options() const { return impl_->client; }

absl::StatusOr<std::unique_ptr<LoadDriver>> LoadDriver::Create(const ClientOptions& client,
                                                               const WorkloadOptions& workload) {
  if (absl::Status s = CheckLoopbackTarget(client.target); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  impl->client = client;
  impl->client.channels = std::clamp(client.channels, 1, 64);
  impl->client.threads = std::clamp(client.threads > 0 ? client.threads : AllowedCpuCount(), 1, 64);
  impl->workload = workload;
  impl->tables = std::make_unique<WorkloadTables>(impl->workload);
  impl->pacer_factory = std::make_unique<RequestFactory>(&impl->workload, impl->tables.get(), 0);
  for (int c = 0; c < impl->client.channels; ++c) {
    grpc::ChannelArguments args;
    // A private subchannel pool gives every channel its own TCP connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(64 << 20);
    // No transparent retries: a load test must see every failure, and the retry filter costs
    // a few microseconds per call.
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    Stubs s;
    s.channel = grpc::CreateCustomChannel(client.target, grpc::InsecureChannelCredentials(), args);
    if (!s.channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to ", client.target, " within 10 s: is recd running there?"));
    }
    s.recd = Recommender::NewStub(s.channel);
    s.health = Health::NewStub(s.channel);
    impl->stubs.push_back(std::move(s));
  }
  Impl* raw = impl.get();
  for (int t = 0; t < impl->client.threads; ++t) {
    auto w = std::make_unique<Impl::Worker>();
    w->factory = std::make_unique<RequestFactory>(&raw->workload, raw->tables.get(), 1 + t);
    w->next_channel = static_cast<uint64_t>(t);
    impl->workers.push_back(std::move(w));
  }
  for (int t = 0; t < impl->client.threads; ++t) {
    impl->workers[t]->thread = std::thread([raw, t] { raw->WorkerLoop(t); });
  }
  return std::unique_ptr<LoadDriver>(new LoadDriver(std::move(impl)));
}

PhaseResult LoadDriver::RunPhase(const PhaseSpec& spec, const Mix& mix) { return impl_->Run(spec, mix); }

PhaseResult LoadDriver::Impl::Run(const PhaseSpec& spec, const Mix& phase_mix) {
  PhaseResult result;
  result.spec = spec;
  result.mix = phase_mix.ToString();
  result.client_cpus = AllowedCpuCount();

  for (auto& w : workers) w->recorder.Reset();
  pacer_recorder.Reset();
  // The factories read the workload's mix; every thread is idle between phases.
  workload.mix = phase_mix;

  const int64_t warmup_ns = absl::ToInt64Nanoseconds(std::max(spec.warmup, absl::ZeroDuration()));
  const int64_t duration_ns = absl::ToInt64Nanoseconds(std::max(spec.duration, absl::Milliseconds(100)));
  const int64_t phase_start = NowNs() + 2000000;  // 2 ms to set up
  const int64_t window_start = phase_start + warmup_ns;
  int64_t window_end = window_start + duration_ns;  // earlier when spec.stop_early fires
  window_start_ns.store(window_start, std::memory_order_relaxed);
  window_end_ns.store(window_end, std::memory_order_relaxed);
  closed_loop.store(spec.closed_loop, std::memory_order_relaxed);
  sent.store(0, std::memory_order_relaxed);
  max_requests = std::max<uint64_t>(1, spec.max_requests);
  phase_id.fetch_add(1, std::memory_order_release);

  // Ticker: one-second intervals aligned on the window start, plus the server's /proc entry.
  absl::Notification stop_ticker;
  std::vector<ProcPoint> proc_points;
  auto collect = [&](int64_t tick_ns) {
    IntervalStats interval;
    interval.t_s = static_cast<double>(tick_ns - window_start) / kSecondNs;
    std::array<Histogram, kNumMethods> merged;
    std::vector<Recorder*> recorders;
    for (auto& w : workers) recorders.push_back(&w->recorder);
    recorders.push_back(&pacer_recorder);
    for (Recorder* rec : recorders) {
      absl::MutexLock lock(&rec->mu);
      for (int m = 0; m < kNumMethods; ++m) {
        merged[m].Merge(rec->interval[m]);
        rec->interval[m].Reset();
        interval.ok[m] += rec->interval_ok[m];
        interval.errors[m] += rec->interval_errors[m];
      }
      rec->interval_ok.fill(0);
      rec->interval_errors.fill(0);
    }
    for (int m = 0; m < kNumMethods; ++m) {
      interval.p50_ns[m] = merged[m].ValueAtQuantile(0.5);
      interval.p99_ns[m] = merged[m].ValueAtQuantile(0.99);
      interval.max_ns[m] = merged[m].max();
    }
    if (client.server_pid > 0) {
      if (absl::StatusOr<ProcSample> s = SampleProcess(client.server_pid); s.ok()) {
        if (!proc_points.empty()) {
          const ProcPoint& prev = proc_points.back();
          const double dt = interval.t_s - prev.t_s;
          if (dt > 0) interval.server_cpu_cores = (s->cpu_seconds - prev.sample.cpu_seconds) / dt;
        }
        interval.server_rss_bytes = s->rss_bytes;
        proc_points.push_back({interval.t_s, *s});
      }
    }
    result.series.push_back(interval);
  };
  // Ticks at window_start + k s for every k whose time falls after the phase start.
  const int64_t first_k = warmup_ns > 0 ? -((warmup_ns - 1) / kSecondNs) : 1;
  const int64_t first_tick = window_start + first_k * kSecondNs;
  std::thread ticker([&] {
    if (client.server_pid > 0) {
      // A baseline sample so the first interval has a CPU figure.
      if (absl::StatusOr<ProcSample> s = SampleProcess(client.server_pid); s.ok()) {
        proc_points.push_back({static_cast<double>(NowNs() - window_start) / kSecondNs, *s});
      }
    }
    for (int64_t tick = first_tick;; tick += kSecondNs) {
      const int64_t wait = tick - NowNs();
      if (wait > 0 && stop_ticker.WaitForNotificationWithTimeout(absl::Nanoseconds(wait))) return;
      if (stop_ticker.HasBeenNotified()) return;
      collect(tick);
    }
  });

  const double cpu_before = SelfCpuSeconds();
  const int64_t wall_before = NowNs();
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // wake the pacer within microseconds, not 50 us
  RaisePacerPriority();

  if (!spec.closed_loop) {
    const OpenLoopSchedule schedule(phase_start, std::max(spec.rate, 1e-3));
    int next_worker = 0;
    bool window_started = false;
    for (uint64_t i = 0;; ++i) {
      const int64_t intended = schedule.IntendedNs(i);
      if (intended >= window_end) break;
      // Build before sleeping: request construction stays off the timed path.
      const Method method = pacer_factory->PickMethod();
      std::unique_ptr<Call> call = MakeCall(method, *pacer_factory);
      WaitUntilNs(intended, client.spin_ns);
      const int64_t now = NowNs();
      const bool measured = intended >= window_start;
      if (measured && !window_started) {
        window_started = true;
        if (spec.on_window_start) spec.on_window_start();
      }
      if (measured && spec.stop_early != nullptr && spec.stop_early->load(std::memory_order_acquire)) {
        // The window ends here: this request and later ones are not sent.
        window_end = intended;
        window_end_ns.store(window_end, std::memory_order_relaxed);
        result.stopped_early = true;
        break;
      }
      if (in_flight.load(std::memory_order_relaxed) >= client.max_in_flight) {
        absl::MutexLock lock(&pacer_recorder.mu);
        ++pacer_recorder.interval_errors[static_cast<int>(method)];
        if (measured) ++pacer_recorder.total[static_cast<int>(method)].errors[kClientInFlightLimit];
        continue;
      }
      if (!Launch(std::move(call), next_worker, intended, &pacer_next_channel)) {
        result.hit_request_bound = true;
        break;
      }
      next_worker = (next_worker + 1) % static_cast<int>(workers.size());
      if (measured) {
        absl::MutexLock lock(&pacer_recorder.mu);
        pacer_recorder.send_lag.Record(static_cast<uint64_t>(now - intended));
      }
    }
  } else {
    SleepUntilNs(phase_start);
    const int n = std::max(1, spec.concurrency);
    for (int c = 0; c < n; ++c) {
      std::unique_ptr<Call> call = MakeCall(pacer_factory->PickMethod(), *pacer_factory);
      if (!Launch(std::move(call), c % static_cast<int>(workers.size()), NowNs(), &pacer_next_channel)) {
        break;
      }
    }
    // The chains run on the workers until the window ends (or the request bound stops them).
    while (NowNs() < window_end) {
      SleepUntilNs(std::min(window_end, NowNs() + 10000000));
      if (sent.load(std::memory_order_relaxed) >= max_requests && in_flight.load() == 0) {
        // The window ends with the last call: the achieved rate is over the time it took.
        window_end = std::min(window_end, NowNs());
        window_end_ns.store(window_end, std::memory_order_relaxed);
        break;
      }
    }
    if (sent.load(std::memory_order_relaxed) >= max_requests) result.hit_request_bound = true;
  }

  // Every call ends by its deadline; allow that plus slack, then give up on stragglers.
  const int64_t drain_limit = NowNs() + absl::ToInt64Nanoseconds(client.deadline) + 5 * kSecondNs;
  while (in_flight.load(std::memory_order_acquire) > 0 && NowNs() < drain_limit) {
    SleepUntilNs(NowNs() + 1000000);
  }
  if (const int64_t left = in_flight.load(); left > 0) {
    result.warnings.push_back(absl::StrCat(left, " calls were still in flight after the drain period"));
  }
  const int64_t wall_after = NowNs();
  const double cpu_after = SelfCpuSeconds();
  stop_ticker.Notify();
  ticker.join();
  collect(wall_after);
  // Stragglers (if any) belong to no phase from now on.
  phase_id.fetch_add(1, std::memory_order_release);

  result.measured_s = static_cast<double>(std::max<int64_t>(window_end - window_start, 1000000)) / kSecondNs;
  result.window_start_ns = window_start;
  result.window_end_ns = window_end;
  result.sent = sent.load();
  result.client_cpu_cores = (cpu_after - cpu_before) / (static_cast<double>(wall_after - wall_before) / kSecondNs);
  uint64_t window_ok = 0;
  std::vector<Recorder*> recorders;
  for (auto& w : workers) recorders.push_back(&w->recorder);
  recorders.push_back(&pacer_recorder);
  for (Recorder* rec : recorders) {
    absl::MutexLock lock(&rec->mu);
    for (int m = 0; m < kNumMethods; ++m) result.methods[m].Merge(rec->total[m]);
    result.all.Merge(rec->all);
    result.send_lag.Merge(rec->send_lag);
    window_ok += rec->window_ok;
  }
  result.measured_requests = result.ok() + result.errors();
  result.achieved_rate = static_cast<double>(window_ok) / result.measured_s;

  // Server resources over the window: the samples nearest its start and end.
  const ProcPoint* start = nullptr;
  const ProcPoint* end = nullptr;
  for (const ProcPoint& p : proc_points) {
    if (start == nullptr && p.t_s >= -0.5) start = &p;
    if (p.t_s >= -0.5 && p.t_s <= result.measured_s + 0.5) {
      end = &p;
      result.server_rss_max = std::max(result.server_rss_max, p.sample.rss_bytes);
    }
  }
  if (start != nullptr && end != nullptr) {
    result.server_rss_start = start->sample.rss_bytes;
    result.server_rss_end = end->sample.rss_bytes;
    if (end->t_s > start->t_s) {
      result.server_cpu_cores = (end->sample.cpu_seconds - start->sample.cpu_seconds) / (end->t_s - start->t_s);
    }
  }

  // Say when the figures describe the client more than the server.
  if (!spec.closed_loop && result.send_lag.count() > 0) {
    const double lag_p99_ms = result.send_lag.ValueAtQuantile(0.99) / 1e6;
    if (lag_p99_ms > 1.0) {
      result.warnings.push_back(absl::StrFormat(
          "the client started calls late (send lag p99 %.2f ms): latencies include client delay; "
          "give recload more CPU or fewer threads",
          lag_p99_ms));
    }
  }
  if (result.client_cpu_cores > 0.85 * result.client_cpus) {
    result.warnings.push_back(absl::StrFormat(
        "recload used %.2f of its %d CPU(s): the client may be the bottleneck", result.client_cpu_cores,
        result.client_cpus));
  }
  for (Method m : {Method::kRecommend, Method::kRecommendBatch, Method::kSimilarItems}) {
    const MethodStats& s = result.methods[static_cast<int>(m)];
    if (s.fallback > 0) {
      result.warnings.push_back(absl::StrFormat(
          "%s: %d answers came from the popularity fallback (ids not loaded, no trained model, or "
          "items without interactions)",
          MethodName(m), s.fallback));
    }
  }
  if (result.methods[static_cast<int>(Method::kHealth)].fallback > 0) {
    result.warnings.push_back("health: some checks answered NOT_SERVING");
  }
  if (result.hit_request_bound) {
    result.warnings.push_back(absl::StrCat("stopped at the request bound (", max_requests, " calls)"));
  }
  return result;
}

}  // namespace recd::loadtest
