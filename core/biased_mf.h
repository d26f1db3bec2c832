// Biased matrix factorization for explicit ratings (Funk's "SVD"; Koren, Bell & Volinsky,
// "Matrix factorization techniques for recommender systems", IEEE Computer 2009):
//
//   r̂_ui = μ + b_u + b_i + p_uᵀ q_i
//
// fitted to the observed ratings by minimising, over the training ratings R,
//   Σ_(u,i)∈R (r_ui − r̂_ui)² + Σ_u n_u^e (λ |p_u|² + λ_b b_u²) + Σ_i n_i^e (λ |q_i|² + λ_b b_i²)
// where n_u, n_i are rating counts and e = reg_exponent: e = 1 is the per-rating regularisation
// that SGD applies and the "weighted-λ" of Zhou et al. (2008) for ALS, e = 0 a plain ridge.
// μ is the mean training rating (not learned).
//
// Only rating events (EventType::kRating with a value) are used; for a (user, item) pair the
// latest rating in log order counts, as in interaction_matrix.h. Other events are ignored, so a
// log without ratings trains nothing (FailedPrecondition).
//
// Model layout (algorithm "biased_mf"), k = factors:
//   item_factors  num_items x (k + 1): row i = [q_i, b_i] (zero for items without ratings)
//   user_factors  num_users x (k + 1): row u = [p_u, 1] (zero for users without ratings)
//   tensors       "global_mean" 1 x 1: μ
//                 "user_bias"   num_users x 1: b_u
//                 "rating_range" 1 x 2: [min, max] training rating, predictions are clipped to it
// so <user row, item row> = p_uᵀq_i + b_i, which ranks a user's items exactly as r̂_ui does (μ
// and b_u are constant per user).
//
// FoldInUser(history) solves the user's ridge regression above for [p_u, b_u] against the fixed
// item rows (the exact minimiser for fixed items) and returns [p_u, 1]; empty without ratings.
// Training ends with that same user step (whichever solver ran before), so a user's trained row
// equals FoldInUser of their training history bit for bit.
//
// Parameters (defaults in brackets; chosen on validation parts carved from ML-100K's
// u1..u5.base, see eval/README.md "Tuning" and the closing note of issue 4; RMSE is flat over 16-128 factors and λ 1.2-1.5 at e = 0.5,
// and falls off a cliff above λ ≈ 2 where the factors collapse to zero):
//   factors [32]              1..1024
//   solver [als]              "als": alternating exact ridge steps (parallel, deterministic for
//                             any thread count); "sgd": Koren's stochastic gradient descent in a
//                             seeded shuffled order (one thread), then the final user step
//   iterations [10]           1..1000: ALS sweeps (user + item step) or SGD epochs
//   regularization [1.2]      0..100: λ
//   bias_regularization [1]   0..100: λ_b
//   reg_exponent [0.5]        0..2: e above
//   learning_rate [0.01]      (0, 1]: SGD step size, multiplied by lr_decay after each epoch
//   lr_decay [0.95]           (0, 1]
//   init_std [0.1]            0..10: standard deviation of the initial factors
#ifndef RECD_CORE_BIASED_MF_H_
#define RECD_CORE_BIASED_MF_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/model.h"
#include "core/train_params.h"

namespace recd {

inline constexpr char kBiasedMfAlgorithm[] = "biased_mf";

std::vector<ParamSpec> BiasedMfParamSpecs();

// Trains biased MF. FailedPrecondition without ratings; InvalidArgument for bad params;
// Cancelled if options.cancel fires. meta.metrics: "train_rmse" (final), "train_rmse_iter_<n>"
// (after iteration n, 1-based), "objective" (final), "global_mean", "rated_users".
absl::StatusOr<ModelData> TrainBiasedMf(const TrainingData& data,
                                        const std::map<std::string, std::string>& params,
                                        const TrainOptions& options);

absl::StatusOr<std::shared_ptr<const Model>> CreateBiasedMfModel(
    std::shared_ptr<const ModelData> data);

// The rating predictor of a trained biased_mf ModelData (no Model needed), for evaluation.
// Unknown users/items (beyond the tables or with zero rows) fall back to the terms available:
// μ + b_i for an unknown user, μ + b_u for an unknown item. Clipped to the training range.
// The ModelData must outlive the predictor.
class BiasedMfPredictor {
 public:
  static absl::StatusOr<BiasedMfPredictor> Create(const ModelData& data);
  float Predict(UserIndex user, ItemIndex item) const;

 private:
  explicit BiasedMfPredictor(const ModelData& data) : data_(&data) {}
  const ModelData* data_;
  const EmbeddingMatrix* user_bias_ = nullptr;
  float mean_ = 0.0f, min_ = 0.0f, max_ = 0.0f;
};

}  // namespace recd

#endif  // RECD_CORE_BIASED_MF_H_
