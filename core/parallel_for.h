// Deterministic fork-join over blocks of work, for the training loops (no OpenMP in recd).
//
// Work is cut into a number of blocks the caller fixes from the problem size alone, never from
// the thread count; threads take blocks in any order, and anything accumulated per block is
// combined by the caller in block order. The result is therefore the same for any thread count.
#ifndef RECD_CORE_PARALLEL_FOR_H_
#define RECD_CORE_PARALLEL_FOR_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace recd {

// Calls fn(block) for every block in [0, num_blocks), on up to num_threads threads (the calling
// thread is one of them). Threads are started per call: use it for work of at least a few
// hundred microseconds per call. fn must be safe to run concurrently for distinct blocks.
template <typename Fn>
void ParallelForBlocks(int64_t num_blocks, int num_threads, const Fn& fn) {
  const int64_t threads = std::clamp<int64_t>(num_threads, 1, std::max<int64_t>(1, num_blocks));
  if (threads == 1) {
    for (int64_t b = 0; b < num_blocks; ++b) fn(b);
    return;
  }
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t b = next++; b < num_blocks; b = next++) fn(b);
  };
  std::vector<std::thread> workers;
  workers.reserve(threads - 1);
  for (int64_t t = 1; t < threads; ++t) workers.emplace_back(work);
  work();
  for (std::thread& w : workers) w.join();
}

// [begin, end) of block b when n rows are cut into num_blocks near-equal contiguous blocks.
inline int64_t BlockBegin(int64_t n, int64_t num_blocks, int64_t b) { return n * b / num_blocks; }

}  // namespace recd

#endif  // RECD_CORE_PARALLEL_FOR_H_
