// Per-ISA kernel micro-benchmarks on cache-resident blocks (compute, not memory, bound): the
// measurement behind the dispatch (scalar vs AVX2 vs AVX-512). Levels the CPU lacks are
// reported as skipped. Run: build-bench/bench/kernels_bench [--benchmark_filter=...]
#include <limits>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/kernels/dispatch.h"
#include "core/kernels/kernels.h"

namespace recd {
namespace kernels {
namespace {

constexpr size_t kRows = 4096;  // 4096 x 64 floats = 1 MB: fits L2 on current server cores

std::vector<float> Gaussian(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(n);
  for (float& x : v) x = g(rng);
  return v;
}

bool Usable(benchmark::State& state, IsaLevel level) {
  if (level <= SupportedIsaLevel()) return true;
  state.SkipWithError("ISA level not supported by this CPU");
  return false;
}

void BM_DotFilter(benchmark::State& state, IsaLevel level) {
  if (!Usable(state, level)) return;
  const size_t d = static_cast<size_t>(state.range(0));
  const auto items = Gaussian(kRows * d, 1);
  const auto q = Gaussian(d, 2);
  std::vector<float> scores(kRows);
  std::vector<uint32_t> rows(kRows);
  const KernelTable& t = KernelsFor(level);
  for (auto _ : state) {
    // A threshold no row passes: the steady state of a top-k scan.
    benchmark::DoNotOptimize(t.dot_filter(items.data(), kRows, d, q.data(), 1e30f, scores.data(),
                                          rows.data()));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRows * d * sizeof(float)));
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(state.iterations() * kRows),
                                                benchmark::Counter::kIsRate);
}

void BM_Int8DotFilter(benchmark::State& state, IsaLevel level) {
  if (!Usable(state, level)) return;
  const size_t d = static_cast<size_t>(state.range(0));
  const size_t stride = (d + kCodeGroup - 1) / kCodeGroup * kCodeGroup;
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int> code(-127, 127);
  // Whole blocks of kCodeBlockRows rows (the layout of kernels.h; random codes, so any order).
  std::vector<int8_t> codes((kRows + kCodeBlockRows - 1) / kCodeBlockRows * kCodeBlockRows * stride),
      qcodes(stride), qfine(stride);
  for (auto& c : codes) c = static_cast<int8_t>(code(rng));
  for (auto& c : qcodes) c = static_cast<int8_t>(code(rng));
  for (auto& c : qfine) c = static_cast<int8_t>(code(rng));
  const auto scales = Gaussian(kRows, 4);
  std::vector<float> scores(kRows);
  std::vector<uint32_t> rows(kRows);
  const KernelTable& t = KernelsFor(level);
  for (auto _ : state) {
    benchmark::DoNotOptimize(t.int8_dot_filter(codes.data(), scales.data(), kRows, stride,
                                               qcodes.data(), qfine.data(), 0.01f, 0.0f, 1e30f, scores.data(),
                                               rows.data()));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRows * (stride + 4)));
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(state.iterations() * kRows),
                                                benchmark::Counter::kIsRate);
}

void BM_GemmFilter(benchmark::State& state, IsaLevel level) {
  if (!Usable(state, level)) return;
  const KernelTable& t = KernelsFor(level);
  if (t.gemm_filter == nullptr) {
    state.SkipWithError("no GEMM kernel at this level (the scorer uses Eigen)");
    return;
  }
  const size_t d = static_cast<size_t>(state.range(0));
  const size_t nq = 256, rows = 256;
  const size_t panels = nq / kPanelWidth;
  const auto items = Gaussian(rows * d, 5);
  const auto packed = Gaussian(panels * d * kPanelWidth, 6);
  std::vector<float> thresholds(nq, 1e30f);
  std::vector<float> scores(rows * nq);
  std::vector<uint32_t> r(rows * nq), qs(rows * nq);
  for (auto _ : state) {
    benchmark::DoNotOptimize(t.gemm_filter(items.data(), rows, d, packed.data(), panels,
                                           thresholds.data(), scores.data(), r.data(), qs.data()));
  }
  state.counters["GFLOP/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 2.0 * rows * nq * d, benchmark::Counter::kIsRate,
      benchmark::Counter::kIs1000);
}

#define RECD_KERNEL_BENCH(fn)                                                          \
  BENCHMARK_CAPTURE(fn, scalar, IsaLevel::kScalar)->Arg(32)->Arg(64)->Arg(128);        \
  BENCHMARK_CAPTURE(fn, avx2, IsaLevel::kAvx2)->Arg(32)->Arg(64)->Arg(128);            \
  BENCHMARK_CAPTURE(fn, avx512, IsaLevel::kAvx512)->Arg(32)->Arg(64)->Arg(128)

RECD_KERNEL_BENCH(BM_DotFilter);
RECD_KERNEL_BENCH(BM_Int8DotFilter);
RECD_KERNEL_BENCH(BM_GemmFilter);

}  // namespace
}  // namespace kernels
}  // namespace recd

BENCHMARK_MAIN();
