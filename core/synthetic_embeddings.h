// Synthetic embeddings for the scorer's tests and benchmarks (header-only, pure computation):
// one generator, so that recall figures of the unit tests and of bench/scorer_bench are measured
// on the same kind of data.
#ifndef RECD_CORE_SYNTHETIC_EMBEDDINGS_H_
#define RECD_CORE_SYNTHETIC_EMBEDDINGS_H_

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "core/embedding.h"

namespace recd::synthetic {

// A planted low-rank model: items in taste clusters, a decaying spectrum across dimensions (as
// in an SVD), log-normal item norms (popularity); users are noisy cluster centres. Near-ties
// are denser than with isotropic Gaussians, which is what makes quantization hard.
struct Embeddings {
  std::shared_ptr<EmbeddingMatrix> items;
  std::shared_ptr<EmbeddingMatrix> users;
};

inline Embeddings MakeTrainedLike(int64_t num_items, int64_t num_users, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  constexpr int kClusters = 40;
  EmbeddingMatrix centres(kClusters, dim);
  for (Eigen::Index i = 0; i < centres.size(); ++i) centres.data()[i] = g(rng);
  std::vector<float> spectrum(static_cast<size_t>(dim));
  for (int j = 0; j < dim; ++j) spectrum[j] = 1.0f / std::sqrt(1.0f + j);
  std::uniform_int_distribution<int> cluster(0, kClusters - 1);
  std::lognormal_distribution<float> popularity(0.0f, 0.4f);
  Embeddings e;
  e.items = std::make_shared<EmbeddingMatrix>(num_items, dim);
  for (int64_t i = 0; i < num_items; ++i) {
    const int c = cluster(rng);
    const float s = popularity(rng);
    float* row = e.items->row(i).data();
    for (int j = 0; j < dim; ++j) row[j] = s * spectrum[j] * (centres(c, j) + 0.7f * g(rng));
  }
  e.users = std::make_shared<EmbeddingMatrix>(num_users, dim);
  for (int64_t u = 0; u < num_users; ++u) {
    const int c = cluster(rng);
    for (int j = 0; j < dim; ++j) (*e.users)(u, j) = spectrum[j] * (centres(c, j) + 0.5f * g(rng));
  }
  return e;
}

// Independent standard Gaussian entries for items and users: every item norm is close to
// sqrt(dim), so no item can be ruled out by its norm (the int8 screen's early stop does nothing).
inline Embeddings MakeIsotropic(int64_t num_items, int64_t num_users, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  Embeddings e;
  e.items = std::make_shared<EmbeddingMatrix>(num_items, dim);
  for (Eigen::Index i = 0; i < e.items->size(); ++i) e.items->data()[i] = g(rng);
  e.users = std::make_shared<EmbeddingMatrix>(num_users, dim);
  for (Eigen::Index i = 0; i < e.users->size(); ++i) e.users->data()[i] = g(rng);
  return e;
}

}  // namespace recd::synthetic

#endif  // RECD_CORE_SYNTHETIC_EMBEDDINGS_H_
