// Streaming-read bandwidth probe: reads an array once, as fast as the cores can, so the scorer's
// scan time can be put next to the physical limit measured in the same process on the same data.
#ifndef RECD_BENCH_BANDWIDTH_PROBE_H_
#define RECD_BENCH_BANDWIDTH_PROBE_H_

#include <cstddef>

namespace recd {
namespace bench {

// Sums data[0, n) split into `threads` contiguous parts (one std::thread per extra part, started
// per call like the scorer's partitions). The sum is returned so the reads cannot be elided.
float StreamSum(const float* data, size_t n, int threads);

// "avx2" or "scalar": the loop StreamSum uses on this CPU.
const char* StreamSumIsa();

}  // namespace bench
}  // namespace recd

#endif  // RECD_BENCH_BANDWIDTH_PROBE_H_
