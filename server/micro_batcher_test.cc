#include "server/micro_batcher.h"

#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace recd::server {
namespace {

std::shared_ptr<EmbeddingMatrix> RandomItems(int rows, int cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  auto m = std::make_shared<EmbeddingMatrix>(rows, cols);
  for (Eigen::Index i = 0; i < m->size(); ++i) m->data()[i] = g(rng);
  return m;
}

// A scorer that records how it was called and blocks each call until released, so a test can
// hold a scan "in progress" while other calls arrive.
class GatedScorer final : public ItemScorer {
 public:
  explicit GatedScorer(std::unique_ptr<ItemScorer> inner) : inner_(std::move(inner)) {}
  std::vector<ScoredIndex> TopK(absl::Span<const float> query, int k, const ItemBitset* exclude) const override {
    Wait();
    singles_++;
    return inner_->TopK(query, k, exclude);
  }
  std::vector<std::vector<ScoredIndex>> TopKBatch(const EmbeddingMatrix& queries, int k,
                                                  absl::Span<const ItemBitset* const> excludes) const override {
    Wait();
    batches_++;
    batched_rows_ += static_cast<int>(queries.rows());
    return inner_->TopKBatch(queries, k, excludes);
  }
  size_t num_items() const override { return inner_->num_items(); }
  int dim() const override { return inner_->dim(); }

  void Close() { open_ = false; }
  void Open() { open_ = true; }
  int entered() const { return entered_; }
  int singles() const { return singles_; }
  int batches() const { return batches_; }
  int batched_rows() const { return batched_rows_; }

 private:
  void Wait() const {
    entered_++;
    while (!open_) std::this_thread::yield();
  }
  std::unique_ptr<ItemScorer> inner_;
  std::atomic<bool> open_{true};
  mutable std::atomic<int> entered_{0}, singles_{0}, batches_{0}, batched_rows_{0};
};

std::unique_ptr<ItemScorer> Exact(std::shared_ptr<const EmbeddingMatrix> items) {
  auto s = CreateItemScorer(std::move(items), ScorerOptions{});
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

TEST(MicroBatcherTest, AnIdleScorerAnswersEachCallAlone) {
  auto items = RandomItems(3000, 16, 1);
  auto exact = Exact(items);
  GatedScorer gated(Exact(items));
  MicroBatcher batcher(&gated, 8, 1);
  const EmbeddingMatrix queries = *RandomItems(5, 16, 2);
  for (int q = 0; q < 5; ++q) {
    const absl::Span<const float> query(queries.row(q).data(), 16);
    const MicroBatcher::Result r = batcher.TopK(query, 10, nullptr);
    EXPECT_FALSE(r.batched);
    EXPECT_EQ(r.items, exact->TopK(query, 10, nullptr));
  }
  EXPECT_EQ(gated.singles(), 5);
  EXPECT_EQ(gated.batches(), 0);
  EXPECT_EQ(batcher.calls(), 5u);
  EXPECT_EQ(batcher.scans(), 5u);
}

TEST(MicroBatcherTest, CallsArrivingDuringAScanShareTheNextOne) {
  auto items = RandomItems(5000, 24, 3);
  auto exact = Exact(items);
  GatedScorer gated(Exact(items));
  MicroBatcher batcher(&gated, 16, 1);  // one scan at a time
  const EmbeddingMatrix queries = *RandomItems(7, 24, 4);
  // Each call its own k and exclusion set.
  std::vector<ItemBitset> excludes(7, ItemBitset(5000));
  for (int q = 0; q < 7; ++q) {
    for (size_t i = static_cast<size_t>(q); i < 5000; i += 3 + q) excludes[q].Set(i);
  }
  auto k_of = [](int q) { return 5 + 3 * q; };
  std::vector<MicroBatcher::Result> results(7);

  gated.Close();
  std::thread first([&] { results[0] = batcher.TopK(absl::Span<const float>(queries.row(0).data(), 24), k_of(0), &excludes[0]); });
  while (gated.entered() < 1) std::this_thread::yield();  // the first call holds the scan
  std::vector<std::thread> others;
  for (int q = 1; q < 7; ++q) {
    others.emplace_back([&, q] {
      results[q] = batcher.TopK(absl::Span<const float>(queries.row(q).data(), 24), k_of(q), &excludes[q]);
    });
  }
  while (batcher.calls() < 7) std::this_thread::yield();  // all six queued behind it
  gated.Open();
  first.join();
  for (std::thread& t : others) t.join();

  EXPECT_FALSE(results[0].batched);
  EXPECT_EQ(results[0].items, exact->TopK(absl::Span<const float>(queries.row(0).data(), 24), k_of(0), &excludes[0]));
  EXPECT_EQ(gated.batches(), 1);  // the six waiting calls: one product
  EXPECT_EQ(gated.batched_rows(), 6);
  EXPECT_EQ(batcher.scans(), 2u);
  for (int q = 1; q < 7; ++q) {
    EXPECT_TRUE(results[q].batched) << q;
    EXPECT_EQ(results[q].batch_size, 6u);
    // Each row of a batch is the exact scorer's batch answer for that query alone (the blocked
    // product's scores do not depend on the other queries), cut to the call's own k.
    const EmbeddingMatrix one = queries.row(q);
    const ItemBitset* ex = &excludes[q];
    EXPECT_EQ(results[q].items, exact->TopKBatch(one.replicate(2, 1), k_of(q), {ex, ex})[0]) << q;
    ASSERT_EQ(results[q].items.size(), static_cast<size_t>(k_of(q)));
    for (const ScoredIndex& s : results[q].items) EXPECT_FALSE(excludes[q].Test(s.item));
  }
}

TEST(MicroBatcherTest, ManyConcurrentCallersGetCorrectAnswers) {
  auto items = RandomItems(20000, 32, 5);
  auto exact = Exact(items);
  MicroBatcher batcher(exact.get(), 8, 2);
  const EmbeddingMatrix queries = *RandomItems(64, 32, 6);
  std::vector<std::vector<ScoredIndex>> alone(64), batched(64);
  for (int q = 0; q < 64; ++q) {
    const absl::Span<const float> query(queries.row(q).data(), 32);
    alone[q] = exact->TopK(query, 10, nullptr);
    const EmbeddingMatrix one = queries.row(q);
    batched[q] = exact->TopKBatch(one.replicate(2, 1), 10, {})[0];
  }
  std::atomic<int> wrong{0}, batched_calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 40; ++round) {
        const int q = (t * 40 + round) % 64;
        const MicroBatcher::Result r = batcher.TopK(absl::Span<const float>(queries.row(q).data(), 32), 10, nullptr);
        // Whichever way it was answered, the answer is that path's exact answer.
        if (r.items != (r.batched ? batched[q] : alone[q])) wrong++;
        if (r.batched) batched_calls++;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(batcher.calls(), 320u);
  EXPECT_LE(batcher.scans(), batcher.calls());
}

TEST(MicroBatcherTest, DegenerateCallsAreAnsweredWithoutQueueing) {
  auto items = RandomItems(100, 8, 7);
  auto exact = Exact(items);
  MicroBatcher batcher(exact.get(), 4, 1);
  const std::vector<float> wrong_length(5, 1.0f);
  EXPECT_TRUE(batcher.TopK(wrong_length, 10, nullptr).items.empty());
  const std::vector<float> query(8, 1.0f);
  EXPECT_TRUE(batcher.TopK(query, 0, nullptr).items.empty());
  EXPECT_EQ(batcher.calls(), 0u);
}

}  // namespace
}  // namespace recd::server
