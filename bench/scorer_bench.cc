// Scorer benchmark: recd exact / int8 / HNSW, FAISS IndexFlatIP and a streaming-read bandwidth
// probe, side by side in one process on the same matrices and queries.
//
// Contenders of one configuration run round-robin (one call each, repeated), so machine noise
// (other builds, frequency changes) lands on all of them alike and the ratios stay meaningful
// even when absolute times drift. Prints one table row per contender with the median, p10/p90
// spread, p99, GB/s (single query: bytes of the matrix read) or GFLOP/s (batches), the ratio to
// FAISS, the share of the measured read bandwidth, and recall against the exact scan (for "recd int8
// exact": the share of checked queries whose answer equals the exact scan's; a difference aborts).
//
// Usage: scorer_bench [--quick] [--n=10000,100000,1000000] [--d=32,64,128] [--k=10,100]
//                     [--batch=1,64,256] [--threads=1,2] [--budget_ms=300] [--hnsw=auto|small|all|none]
//                     [--hnsw_m=16] [--hnsw_ef_construction=100] [--hnsw_ef_search=128]
//                     [--hnsw_parallel_build=1] [--recall_queries=100] [--csv=results.csv]
//                     [--data=trained|isotropic]
// --data: trained (default) = factors shaped like a trained model (taste clusters, a decaying
// spectrum, log-normal item norms); isotropic = Gaussian rows of nearly equal norms, the case
// where the int8 screen's norm-ordered early stop prunes nothing (its worst case).
#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bandwidth_probe.h"
#include "core/scorer.h"
#include "core/synthetic_embeddings.h"

#ifdef RECD_HAVE_FAISS
#include <faiss/IndexFlat.h>
#endif

namespace recd {
namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

// --- Command line ---------------------------------------------------------------------------

struct Config {
  std::vector<int64_t> n = {10000, 100000, 1000000};
  std::vector<int> d = {32, 64, 128};
  std::vector<int> k = {10, 100};
  std::vector<int> batch = {1, 64, 256};
  std::vector<int> threads = {1, 2};
  double budget_ms = 300;  // per contender and configuration
  std::string hnsw = "auto";  // auto: N <= 100k, and 1M only at d = 64; small: N <= 100k
  int hnsw_m = 16;
  int hnsw_ef_construction = 100;
  int hnsw_ef_search = 128;
  // The bench times queries; a parallel build only saves minutes of setup (the library
  // default is a serial build, see ScorerOptions::Hnsw::parallel_build).
  bool hnsw_parallel_build = true;
  int recall_queries = 100;
  std::string csv;
  std::string data = "trained";
  bool quick = false;
};

template <typename T>
std::vector<T> ParseList(const std::string& s) {
  std::vector<T> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(static_cast<T>(std::stoll(item)));
  return out;
}

Config ParseArgs(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      c.quick = true;
      c.n = {100000, 1000000};
      c.d = {64};
      c.k = {10};
      c.batch = {1, 256};
      c.budget_ms = 200;
      c.recall_queries = 50;
      c.hnsw = "small";  // a 1M-item graph takes minutes to build
      continue;
    }
    const auto eq = a.find('=');
    const std::string key = a.substr(0, eq);
    const std::string val = eq == std::string::npos ? "" : a.substr(eq + 1);
    if (key == "--n") c.n = ParseList<int64_t>(val);
    else if (key == "--d") c.d = ParseList<int>(val);
    else if (key == "--k") c.k = ParseList<int>(val);
    else if (key == "--batch") c.batch = ParseList<int>(val);
    else if (key == "--threads") c.threads = ParseList<int>(val);
    else if (key == "--budget_ms") c.budget_ms = std::stod(val);
    else if (key == "--hnsw") c.hnsw = val;
    else if (key == "--hnsw_m") c.hnsw_m = std::stoi(val);
    else if (key == "--hnsw_ef_construction") c.hnsw_ef_construction = std::stoi(val);
    else if (key == "--hnsw_ef_search") c.hnsw_ef_search = std::stoi(val);
    else if (key == "--recall_queries") c.recall_queries = std::stoi(val);
    else if (key == "--hnsw_parallel_build") c.hnsw_parallel_build = val != "0" && val != "false";
    else if (key == "--csv") c.csv = val;
    else if (key == "--data" && (val == "trained" || val == "isotropic")) c.data = val;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      std::exit(2);
    }
  }
  return c;
}

bool WantHnsw(const Config& c, int64_t n, int d) {
  if (c.hnsw == "none") return false;
  if (c.hnsw == "all") return true;
  if (c.hnsw == "small") return n <= 100000;
  return n <= 100000 || d == 64;
}

// --- Environment report ----------------------------------------------------------------------

std::string ReadFirstLine(const char* path, const std::string& prefix = "") {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (prefix.empty() || line.rfind(prefix, 0) == 0) return line;
  }
  return "?";
}

std::string LoadAverage() { return ReadFirstLine("/proc/loadavg"); }

// Which library provides sgemm_ (FAISS's BLAS), and OpenBLAS's own description if it is that.
std::string BlasDescription() {
  std::string out;
  void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info info;
  if (sgemm != nullptr && dladdr(sgemm, &info) != 0 && info.dli_fname != nullptr) {
    out = std::string("sgemm_ from ") + info.dli_fname;
  } else {
    out = "sgemm_ not linked";
  }
  using GetConfig = char* (*)();
  if (auto* f = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    out += std::string("; ") + f();
  }
  return out;
}

// FAISS threads: OpenMP for its per-query loops, OpenBLAS (its own pthread pool in Debian's
// default libopenblas0-pthread) for sgemm.
void SetFaissThreads(int omp_threads, int blas_threads) {
  using SetThreads = void (*)(int);
  if (auto* f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    f(blas_threads);
  }
  omp_set_num_threads(omp_threads);
}

std::string ThreadingEnvironment() {
  std::string out;
  for (const char* name : {"OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
                           "OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT"}) {
    const char* v = std::getenv(name);
    out += std::string(out.empty() ? "" : ", ") + name + "=" + (v ? v : "(unset)");
  }
  return out;
}

// --- Measurement -----------------------------------------------------------------------------

struct Contender {
  std::string name;
  std::function<void(size_t rep)> run;
  double bytes = 0;  // bytes of item data one call reads (single query)
  double flops = 0;  // multiply-adds x 2 per call (batches)
  std::vector<double> ms;
  bool leaves_spinning_threads = false;
  std::function<void()> setup;  // untimed, before each block of calls (e.g. thread counts)
};

struct Stats {
  double median = 0, p10 = 0, p90 = 0, p99 = 0;
  size_t samples = 0;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

Stats Summarize(const std::vector<double>& v) {
  Stats s;
  s.samples = v.size();
  s.median = Percentile(v, 0.5);
  s.p10 = Percentile(v, 0.1);
  s.p90 = Percentile(v, 0.9);
  s.p99 = Percentile(v, 0.99);
  return s;
}

// Interleaved measurement: three passes, the contender order rotated each pass, each
// contender timed call by call for a third of its budget per pass (at least 2 calls), after one
// warm-up call. Drift over the run (other jobs, clock changes) thus lands on every contender.
// Blocks rather than call-by-call alternation because OpenMP / OpenBLAS workers busy-wait for a
// while after a multi-threaded call; a contender that leaves spinning workers behind is
// followed by a pause so they park before the next contender is timed.
void RunSideBySide(std::vector<Contender>& cs, double budget_ms) {
  constexpr int kPasses = 3;
  for (auto& c : cs) {
    if (c.setup) c.setup();
    c.run(0);
  }
  size_t call = 0;
  for (int pass = 0; pass < kPasses; ++pass) {
    for (size_t i = 0; i < cs.size(); ++i) {
      Contender& c = cs[(i + static_cast<size_t>(pass)) % cs.size()];
      if (c.setup) c.setup();
      const auto start = Clock::now();
      for (int reps = 0;; ++reps) {
        const auto t0 = Clock::now();
        c.run(call++);
        const auto t1 = Clock::now();
        c.ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        const double elapsed = std::chrono::duration<double, std::milli>(t1 - start).count();
        if (reps + 1 >= 2 && (elapsed >= budget_ms / kPasses || reps + 1 >= 1000)) break;
      }
      if (c.leaves_spinning_threads) std::this_thread::sleep_for(std::chrono::milliseconds(150));
    }
  }
}

volatile float g_sink = 0;  // keeps results observable

// --- Report ----------------------------------------------------------------------------------

struct Row {
  int64_t n;
  int d, k, batch, threads;
  std::string contender;
  Stats stats;
  double gbps = 0, gflops = 0;
  double vs_faiss = 0;   // FAISS median / this median (speed-up over FAISS)
  double vs_bw = 0;      // probe median / this median (share of measured read bandwidth)
  double recall = -1;    // recall@k against the exact scan
};

std::vector<Row> g_rows;

void PrintHeader() {
  std::printf("%8s %4s %4s %5s %3s  %-18s %9s %9s %9s %9s %8s %8s %8s %6s %7s %4s\n", "N", "d",
              "k", "batch", "thr", "contender", "median_ms", "p10_ms", "p90_ms", "p99_ms", "GB/s",
              "GFLOP/s", "x_FAISS", "%bw", "recall", "reps");
}

void PrintRow(const Row& r) {
  auto opt = [](double v, const char* fmt) {
    char buf[32];
    if (v <= 0) return std::string("-");
    std::snprintf(buf, sizeof(buf), fmt, v);
    return std::string(buf);
  };
  std::printf("%8lld %4d %4d %5d %3d  %-18s %9.3f %9.3f %9.3f %9.3f %8s %8s %8s %6s %7s %4zu\n",
              static_cast<long long>(r.n), r.d, r.k, r.batch, r.threads, r.contender.c_str(),
              r.stats.median, r.stats.p10, r.stats.p90, r.stats.p99, opt(r.gbps, "%.1f").c_str(),
              opt(r.gflops, "%.1f").c_str(), opt(r.vs_faiss, "%.2f").c_str(),
              opt(r.vs_bw * 100, "%.0f").c_str(),
              r.recall < 0 ? "-" : opt(r.recall, "%.4f").c_str(), r.stats.samples);
  std::fflush(stdout);
}

void WriteCsv(const std::string& path) {
  std::ofstream f(path);
  f << "n,d,k,batch,threads,contender,median_ms,p10_ms,p90_ms,p99_ms,gbps,gflops,x_faiss,"
       "frac_bandwidth,recall,reps\n";
  for (const Row& r : g_rows) {
    f << r.n << ',' << r.d << ',' << r.k << ',' << r.batch << ',' << r.threads << ','
      << r.contender << ',' << r.stats.median << ',' << r.stats.p10 << ',' << r.stats.p90 << ','
      << r.stats.p99 << ',' << r.gbps << ',' << r.gflops << ',' << r.vs_faiss << ',' << r.vs_bw
      << ',' << r.recall << ',' << r.stats.samples << '\n';
  }
}

double Recall(const std::vector<ScoredIndex>& got, const std::vector<ScoredIndex>& want) {
  if (want.empty()) return 1.0;
  std::set<ItemIndex> w;
  for (const auto& s : want) w.insert(s.item);
  size_t hit = 0;
  for (const auto& s : got) hit += w.count(s.item);
  return static_cast<double>(hit) / static_cast<double>(want.size());
}

std::unique_ptr<ItemScorer> MustCreate(std::shared_ptr<const EmbeddingMatrix> items,
                                       const ScorerOptions& o) {
  auto s = CreateItemScorer(std::move(items), o);
  if (!s.ok()) {
    std::fprintf(stderr, "CreateItemScorer: %s\n", std::string(s.status().message()).c_str());
    std::exit(1);
  }
  return *std::move(s);
}

// --- One shape ---------------------------------------------------------------------------

void BenchShape(const Config& cfg, int64_t n, int d) {
  const int num_queries = std::max(256, cfg.recall_queries);
  std::fprintf(stderr, "== N=%lld d=%d: generating data\n", static_cast<long long>(n), d);
  const uint64_t seed = 1234 + static_cast<uint64_t>(d);
  const synthetic::Embeddings data = cfg.data == "isotropic"
                                         ? synthetic::MakeIsotropic(n, num_queries, d, seed)
                                         : synthetic::MakeTrainedLike(n, num_queries, d, seed);
  const EmbeddingMatrix& users = *data.users;
  const float* items = data.items->data();
  const double matrix_bytes = static_cast<double>(n) * d * sizeof(float);

  std::map<int, std::unique_ptr<ItemScorer>> exact, int8, int8_exact, scalar;
  for (int t : cfg.threads) {
    ScorerOptions o;
    o.num_threads = t;
    exact[t] = MustCreate(data.items, o);
    o.kind = ScorerOptions::Kind::kQuantizedInt8;
    int8_exact[t] = MustCreate(data.items, o);
    o.quantized.exact = false;
    int8[t] = MustCreate(data.items, o);
  }
  {
    ScorerOptions o;
    o.isa = ScorerOptions::Isa::kScalar;
    scalar[1] = MustCreate(data.items, o);
  }
  std::unique_ptr<ItemScorer> hnsw;
  if (WantHnsw(cfg, n, d)) {
    ScorerOptions o;
    o.kind = ScorerOptions::Kind::kHnsw;
    o.num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    o.hnsw.m = cfg.hnsw_m;
    o.hnsw.ef_construction = cfg.hnsw_ef_construction;
    o.hnsw.ef_search = cfg.hnsw_ef_search;
    o.hnsw.parallel_build = cfg.hnsw_parallel_build;
    const auto t0 = Clock::now();
    hnsw = MustCreate(data.items, o);
    std::printf("# N=%lld d=%d: %s built in %.1f s (%s)\n", static_cast<long long>(n), d,
                hnsw->Describe().c_str(), std::chrono::duration<double>(Clock::now() - t0).count(),
                o.hnsw.parallel_build ? "parallel build" : "serial build");
  }
#ifdef RECD_HAVE_FAISS
  faiss::IndexFlatIP faiss_index(d);
  faiss_index.add(n, items);
#endif
  const int max_k = *std::max_element(cfg.k.begin(), cfg.k.end());

  // Recall of the approximate scorers against the exact scan, per k (outside the timings).
  // The exact int8 mode must return the exact scan's answer itself (items, scores, order): its
  // recall column is the share of queries whose answer is identical, and any difference aborts.
  std::map<int, double> int8_recall, hnsw_recall, int8_exact_identical;
  for (int k : cfg.k) {
    double r8 = 0, rh = 0, same = 0;
    for (int q = 0; q < cfg.recall_queries; ++q) {
      const absl::Span<const float> query(users.row(q).data(), static_cast<size_t>(d));
      const auto want = exact.rbegin()->second->TopK(query, k, nullptr);
      r8 += Recall(int8.rbegin()->second->TopK(query, k, nullptr), want);
      for (const auto& [t, scorer] : int8_exact) {
        const bool identical = scorer->TopK(query, k, nullptr) == want;
        if (!identical) {
          std::fprintf(stderr, "int8 exact (threads=%d) differs from the exact scan: N=%lld d=%d k=%d query %d\n",
                       t, static_cast<long long>(n), d, k, q);
          std::exit(1);
        }
        same += identical ? 1.0 / static_cast<double>(int8_exact.size()) : 0.0;
      }
      if (hnsw) rh += Recall(hnsw->TopK(query, k, nullptr), want);
    }
    int8_recall[k] = r8 / cfg.recall_queries;
    int8_exact_identical[k] = same / cfg.recall_queries;
    hnsw_recall[k] = hnsw ? rh / cfg.recall_queries : -1;
  }

  std::vector<float> distances(static_cast<size_t>(256) * max_k);
  std::vector<int64_t> labels(static_cast<size_t>(256) * max_k);
  auto query_row = [&](size_t rep) {
    return absl::Span<const float>(users.row(static_cast<Eigen::Index>(rep % 256)).data(),
                                   static_cast<size_t>(d));
  };

  for (int batch : cfg.batch) {
    for (int k : cfg.k) {
      for (int t : cfg.threads) {
        std::vector<Contender> cs;
        if (batch == 1) {
          cs.push_back({"bandwidth probe",
                        [&, t](size_t) { g_sink = g_sink + StreamSum(items, n * d, t); },
                        matrix_bytes, 0, {}});
          cs.push_back({"recd exact",
                        [&, k, t](size_t rep) {
                          g_sink = g_sink + exact[t]->TopK(query_row(rep), k, nullptr)[0].score;
                        },
                        matrix_bytes, 0, {}});
          cs.push_back({"recd int8",
                        [&, k, t](size_t rep) {
                          g_sink = g_sink + int8[t]->TopK(query_row(rep), k, nullptr)[0].score;
                        },
                        static_cast<double>(n) * ((d + 3) / 4 * 4 + 4), 0, {}});
          cs.push_back({"recd int8 exact",
                        [&, k, t](size_t rep) {
                          g_sink = g_sink + int8_exact[t]->TopK(query_row(rep), k, nullptr)[0].score;
                        },
                        static_cast<double>(n) * ((d + 3) / 4 * 4 + 4), 0, {}});
          if (hnsw && t == cfg.threads.front()) {
            cs.push_back({"recd hnsw",
                          [&, k](size_t rep) {
                            g_sink = g_sink + hnsw->TopK(query_row(rep), k, nullptr)[0].score;
                          },
                          0, 0, {}});
          }
          if (t == 1) {
            cs.push_back({"recd exact scalar",
                          [&, k](size_t rep) {
                            g_sink = g_sink + scalar[1]->TopK(query_row(rep), k, nullptr)[0].score;
                          },
                          matrix_bytes, 0, {}});
          }
        } else {
          const EmbeddingMatrix queries = users.topRows(batch);
          cs.push_back({"recd exact batch",
                        [&, k, queries](size_t) {
                          g_sink = g_sink + exact[t]->TopKBatch(queries, k, {})[0][0].score;
                        },
                        0, 2.0 * n * d * batch, {}});
          // The int8 screen's batch must answer each query as the exact scan (checked here on
          // the batch's first 8 queries, outside the timings).
          {
            const auto got = int8_exact[t]->TopKBatch(queries, k, {});
            for (int q = 0; q < std::min(batch, 8); ++q) {
              if (got[q] != exact[t]->TopK(query_row(q), k, nullptr)) {
                std::fprintf(stderr, "int8 exact batch differs from the exact scan: N=%lld d=%d k=%d query %d\n",
                             static_cast<long long>(n), d, k, q);
                std::exit(1);
              }
            }
          }
          cs.push_back({"recd int8 exact batch",
                        [&, k, queries](size_t) {
                          g_sink = g_sink + int8_exact[t]->TopKBatch(queries, k, {})[0][0].score;
                        },
                        0, 2.0 * n * d * batch, {}});
        }
#ifdef RECD_HAVE_FAISS
        auto faiss_search = [&, k, batch](size_t rep) {
          const float* x = batch == 1 ? query_row(rep).data() : users.data();
          faiss_index.search(batch, x, k, distances.data(), labels.data());
          g_sink = g_sink + distances[0];
        };
        cs.push_back({batch == 1 ? "faiss flat" : "faiss flat batch", faiss_search,
                      batch == 1 ? matrix_bytes : 0, batch == 1 ? 0 : 2.0 * n * d * batch, {},
                      /*leaves_spinning_threads=*/t > 1, [t] { SetFaissThreads(t, t); }});
        if (batch > 1 && t > 1) {
          // Debian's pthread OpenBLAS and FAISS's OpenMP team busy-wait in turn and can
          // oversubscribe the cores; FAISS with a single-threaded BLAS is sometimes faster.
          // x_FAISS compares against the faster of the two.
          cs.push_back({"faiss batch blas1", faiss_search, 0, 2.0 * n * d * batch, {},
                        /*leaves_spinning_threads=*/true, [t] { SetFaissThreads(t, 1); }});
        }
#endif
        std::fprintf(stderr, "   batch=%d k=%d threads=%d (load %s)\n", batch, k, t,
                     LoadAverage().c_str());
        RunSideBySide(cs, cfg.budget_ms);
        double faiss_median = 0, probe_median = 0;
        for (const auto& c : cs) {
          const double m = Summarize(c.ms).median;
          if (c.name.rfind("faiss", 0) == 0 && (faiss_median == 0 || m < faiss_median)) {
            faiss_median = m;  // the better FAISS configuration
          }
          if (c.name == "bandwidth probe") probe_median = m;
        }
        for (const auto& c : cs) {
          Row r{n, d, k, batch, t, c.name, Summarize(c.ms)};
          if (c.bytes > 0) r.gbps = c.bytes / (r.stats.median * 1e-3) / 1e9;
          if (c.flops > 0) r.gflops = c.flops / (r.stats.median * 1e-3) / 1e9;
          if (faiss_median > 0) r.vs_faiss = faiss_median / r.stats.median;
          if (probe_median > 0 && c.name != "bandwidth probe") {
            r.vs_bw = probe_median / r.stats.median;
          }
          if (c.name == "recd int8") r.recall = int8_recall[k];
          if (c.name == "recd int8 exact") r.recall = int8_exact_identical[k];
          if (c.name == "recd hnsw") r.recall = hnsw_recall[k];
          PrintRow(r);
          g_rows.push_back(r);
        }
      }
    }
  }
}

// The issue-3 targets, evaluated on the rows of this run.
void PrintTargets() {
  auto find = [](int64_t n, int d, int k, int batch, int t, const std::string& name) -> const Row* {
    for (const Row& r : g_rows) {
      if (r.n == n && r.d == d && r.k == k && r.batch == batch && r.threads == t &&
          r.contender == name) {
        return &r;
      }
    }
    return nullptr;
  };
  std::printf("\nIssue 3 targets (1M x 64; medians from this run):\n");
  for (int k : {10, 100}) {
    for (int t : {1, 2}) {
      const Row* exact = find(1000000, 64, k, 1, t, "recd exact");
      const Row* faiss = find(1000000, 64, k, 1, t, "faiss flat");
      const Row* int8 = find(1000000, 64, k, 1, t, "recd int8");
      const Row* int8_exact = find(1000000, 64, k, 1, t, "recd int8 exact");
      if (exact == nullptr) continue;
      std::printf("  k=%d threads=%d: exact %.2f ms = %.0f%% of read bandwidth (target >= 90%%: %s)",
                  k, t, exact->stats.median, exact->vs_bw * 100,
                  exact->vs_bw >= 0.9 ? "met" : "MISSED");
      if (faiss) {
        std::printf("; %.2fx FAISS Flat (target >= 4x: %s)", exact->vs_faiss,
                    exact->vs_faiss >= 4 ? "met" : "MISSED");
      }
      std::printf("\n");
      if (int8) {
        const double speedup = exact->stats.median / int8->stats.median;
        std::printf("               int8+re-rank %.2f ms = %.2fx exact (target >= 2.5x: %s), "
                    "recall@%d %.4f (target >= 0.99: %s)\n",
                    int8->stats.median, speedup, speedup >= 2.5 ? "met" : "MISSED", k,
                    int8->recall, int8->recall >= 0.99 ? "met" : "MISSED");
      }
      if (int8_exact) {
        std::printf("               int8 exact (the exact scan's answers, proven bounds) %.2f ms = "
                    "%.2fx exact scan, %.2fx FAISS Flat, %.0f%% of queries checked identical\n",
                    int8_exact->stats.median, exact->stats.median / int8_exact->stats.median,
                    int8_exact->vs_faiss, int8_exact->recall * 100);
      }
    }
  }
  for (int k : {10, 100}) {
    for (int t : {1, 2}) {
      const Row* batch = find(1000000, 64, k, 256, t, "recd exact batch");
      const Row* int8_batch = find(1000000, 64, k, 256, t, "recd int8 exact batch");
      if (batch == nullptr || batch->vs_faiss <= 0) continue;
      std::printf("  batch 256 k=%d threads=%d: float32 %.1f ms = %.2fx FAISS Flat batched",
                  k, t, batch->stats.median, batch->vs_faiss);
      double best = batch->vs_faiss;
      if (int8_batch != nullptr && int8_batch->vs_faiss > 0) {
        std::printf("; int8 screen (exact answers) %.1f ms = %.2fx", int8_batch->stats.median,
                    int8_batch->vs_faiss);
        best = std::max(best, int8_batch->vs_faiss);
      }
      std::printf(" (target >= 1.5x: %s)\n", best >= 1.5 ? "met" : "MISSED");
    }
  }
}

int Main(int argc, char** argv) {
  const Config cfg = ParseArgs(argc, argv);
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += std::string(i ? " " : "") + argv[i];
  std::printf("# recd scorer benchmark: %s\n", cmd.c_str());
  std::printf("# cpu: %s; %u hardware threads\n",
              ReadFirstLine("/proc/cpuinfo", "model name").c_str(),
              std::thread::hardware_concurrency());
  std::printf("# data: %s (--data)\n", cfg.data.c_str());
  std::printf("# recd kernels: %s; bandwidth probe loop: %s\n", ScorerIsaName().c_str(),
              StreamSumIsa());
#ifdef RECD_HAVE_FAISS
  std::printf("# faiss %d.%d.%d IndexFlatIP; BLAS: %s\n", FAISS_VERSION_MAJOR, FAISS_VERSION_MINOR,
              FAISS_VERSION_PATCH, BlasDescription().c_str());
#else
  std::printf("# faiss: not built (libfaiss-dev missing); FAISS columns empty\n");
#endif
  std::printf("# threading environment: %s\n", ThreadingEnvironment().c_str());
  std::printf("# load average at start: %s\n", LoadAverage().c_str());
  std::printf("# x_FAISS = (faster) FAISS median / row median (>1: faster than FAISS); %%bw = probe"
              " median / row median; GB/s counts matrix bytes read once per query\n");
  PrintHeader();
  for (int64_t n : cfg.n) {
    for (int d : cfg.d) BenchShape(cfg, n, d);
  }
  PrintTargets();
  std::printf("# load average at end: %s\n", LoadAverage().c_str());
  if (!cfg.csv.empty()) WriteCsv(cfg.csv);
  return 0;
}

}  // namespace
}  // namespace bench
}  // namespace recd

int main(int argc, char** argv) { return recd::bench::Main(argc, argv); }
