#include "bench/bandwidth_probe.h"

#include <algorithm>
#include <thread>
#include <vector>

namespace recd {
namespace bench {

float StreamSumAvx2(const float* data, size_t n);  // bandwidth_probe_avx2.cc

namespace {

bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

float StreamSumScalar(const float* data, size_t n) {
  float s[8] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) s[l] += data[i + l];
  }
  float total = 0.0f;
  for (float x : s) total += x;
  for (; i < n; ++i) total += data[i];
  return total;
}

float SumPart(const float* data, size_t n) {
  return HasAvx2() ? StreamSumAvx2(data, n) : StreamSumScalar(data, n);
}

}  // namespace

const char* StreamSumIsa() { return HasAvx2() ? "avx2" : "scalar"; }

float StreamSum(const float* data, size_t n, int threads) {
  if (threads <= 1) return SumPart(data, n);
  std::vector<float> partial(static_cast<size_t>(threads), 0.0f);
  std::vector<std::thread> pool;
  const size_t chunk = (n + threads - 1) / threads;
  for (int t = 1; t < threads; ++t) {
    const size_t begin = std::min(n, chunk * t);
    const size_t end = std::min(n, begin + chunk);
    pool.emplace_back([&partial, data, begin, end, t] { partial[t] = SumPart(data + begin, end - begin); });
  }
  partial[0] = SumPart(data, std::min(n, chunk));
  for (auto& th : pool) th.join();
  float s = 0.0f;
  for (float x : partial) s += x;
  return s;
}

}  // namespace bench
}  // namespace recd
