// Biased matrix factorization for explicit ratings (Funk's "SVD"; Koren, Bell & Volinsky,
// "Matrix factorization techniques for recommender systems", IEEE Computer 2009):
//
//   r̂_ui = μ + b_u + b_i + p_uᵀ q_i
//
// fitted to the observed ratings by one of three solvers.
//
// "als" and "sgd" minimise, over the training ratings R,
//   Σ_(u,i)∈R (r_ui − r̂_ui)² + Σ_u n_u^e (λ |p_u|² + λ_b b_u²) + Σ_i n_i^e (λ |q_i|² + λ_b b_i²)
// where n_u, n_i are rating counts and e = reg_exponent: e = 1 is the per-rating regularisation
// that SGD applies and the "weighted-λ" of Zhou et al. (2008) for ALS, e = 0 a plain ridge.
//
// "mcmc" is Bayesian probabilistic matrix factorisation with biases (Salakhutdinov & Mnih,
// "Bayesian probabilistic matrix factorization using MCMC", ICML 2008): r_ui ~ N(r̂_ui, 1/α);
// the rows [p_u, b_u] are drawn from N(μ_U, Λ_U⁻¹), the rows [q_i, b_i] from N(μ_I, Λ_I⁻¹), each
// (μ, Λ) from a Normal-Wishart hyperprior (mean 0, β0 = prior_beta, ν0 = factors + 1,
// W0 = prior_scale · I). Gibbs sampling: each sweep draws (μ_U, Λ_U) given the user rows, every
// user row given the items, then the same for items, then α if noise_precision = 0 (Gamma(1, 1)
// prior). After burn_in sweeps, the rows, μ_U, Λ_U and α are averaged over the remaining sweeps,
// and the model serves the averaged (posterior-mean) factors: in a prototype on ML-100K they
// predicted better than averaging the sweeps' predictions, and scoring stays one dot product.
// Rows are drawn in blocks fixed by the problem size, each with its own generator seeded from
// (seed, sweep, side, block), so the result is bit-identical for any thread count.
//
// μ is the mean training rating (not learned).
//
// Only rating events (EventType::kRating with a value) are used; for a (user, item) pair the
// latest rating in log order counts, as in interaction_matrix.h. Other events are ignored, so a
// log without ratings trains nothing (FailedPrecondition).
//
// Model layout (algorithm "biased_mf"), k = factors, the same for every solver:
//   item_factors  num_items x (k + 1): row i = [q_i, b_i] (zero for items without ratings)
//   user_factors  num_users x (k + 1): row u = [p_u, 1] (zero for users without ratings)
//   tensors       "global_mean" 1 x 1: μ
//                 "user_bias"   num_users x 1: b_u
//                 "rating_range" 1 x 2: [min, max] training rating, predictions are clipped to it
//   mcmc only     "fold_in_prior_mean" 1 x (k + 1): μ̄_U, posterior mean of the user prior mean
//                 "fold_in_prior_precision" (k + 1) x (k + 1): Λ̄_U, symmetric positive definite
//                 "fold_in_noise_precision" 1 x 1: ᾱ (the fixed α, or the mean of its draws)
// so <user row, item row> = p_uᵀq_i + b_i, which ranks a user's items exactly as r̂_ui does (μ
// and b_u are constant per user).
//
// FoldInUser(history) returns [p_u, 1] (empty without ratings) for [p_u, b_u] computed against
// the fixed item rows:
//   als, sgd: the user's ridge regression above (the exact minimiser for fixed items). Training
//             ends with that same user step (whichever solver ran before), so a user's trained
//             row equals FoldInUser of their training history bit for bit.
//   mcmc:     the posterior mean of a new user's row given the served item rows, the prior
//             N(μ̄_U, Λ̄_U⁻¹) and noise precision ᾱ: (Λ̄_U + ᾱ XᵀX)⁻¹ (Λ̄_U μ̄_U + ᾱ Xᵀt), a ridge
//             with a full prior precision. A trained user's row is instead the average of the
//             chain's draws, so it is close to, but NOT equal to, FoldInUser of the user's
//             training history: a user's vector changes a little at their first interaction
//             after training. (On a random 90/10 split of u1.base with the defaults: RMSE
//             0.8934 with the trained rows, 0.8940 with every user re-solved this way.)
//
// Parameters (defaults in brackets). Chosen on the validation parts receval --validation
// carves from ML-100K's u1..u5.base (eval/README.md "Tuning"; the searches are in the closing
// note of issue 4); RMSE there: mcmc with the defaults 0.8971 (0.8978 averaged over seeds
// 42, 1, 2), als with its previous defaults (32 factors) 0.9133. mcmc is the default solver
// because it is 0.016 better and trains a test fold (80,000 ratings) in 2.5-4 s on 2 threads.
//   factors [16]              1..1024. mcmc is flat from 10 to 40 factors (validation RMSE
//                             0.8977-0.8991; 0.8996 at 8, 0.9014 at 5), and 16 trains in about
//                             a third of 32's time. als is 0.002 better at 32 (0.9133 against
//                             0.9151 at 16): set factors=32 with solver=als.
//   solver [mcmc]             "als": alternating exact ridge steps (parallel, deterministic for
//                             any thread count); "sgd": Koren's stochastic gradient descent in a
//                             seeded shuffled order (one thread), then the final user step;
//                             "mcmc": Gibbs sampling of Bayesian PMF (parallel, deterministic
//                             for any thread count). Cost per mcmc sweep ≈ ratings·(k+2)²/2 +
//                             rated rows·(k+1)³/3 multiply-adds, about one ALS iteration, so
//                             the default 200 sweeps cost about 20 ALS runs: on logs of
//                             millions of ratings, retrain with solver=als (or fewer samples)
//                             where retraining time matters more than the last 0.01 of RMSE.
//   iterations [10]           1..1000: ALS sweeps (user + item step) or SGD epochs
//   regularization [1.2]      0..100: λ (als, sgd)
//   bias_regularization [1]   0..100: λ_b (als, sgd)
//   reg_exponent [0.5]        0..2: e above (als, sgd)
//   learning_rate [0.01]      (0, 1]: SGD step size, multiplied by lr_decay after each epoch
//   lr_decay [0.95]           (0, 1]
//   init_std [0.1]            0..10: standard deviation of the initial factors (all solvers)
//   samples [200]             1..100000: mcmc Gibbs sweeps in total, burn-in included. 100 /
//                             150 / 200 / 300 sweeps: validation RMSE 0.8996 / 0.8977 / 0.8971 /
//                             0.8976 (seed-to-seed spread ≈ 0.001).
//   burn_in [20]              0..99999, below samples: mcmc sweeps left out of the average
//                             (3, 10 and 30 of 150 give 0.8985, 0.8977, 0.8979: within the
//                             seed spread)
//   noise_precision [0]       0..10000: mcmc α = 1 / rating noise variance; 0 = sample it from
//                             its posterior. The best fixed values on ML-100K (1.5-1.75; 2, the
//                             paper's, is 0.002-0.006 worse, 1 is 0.01 worse) match what sampling
//                             finds (ᾱ ≈ 1.64) and are not better than it, and a fixed α depends
//                             on the rating scale, so it is sampled by default.
//   prior_beta [2]            1e-6..1e6: mcmc β0, strength of the hyperprior mean (0.5-10: no
//                             change; it weighs β0 pseudo-rows against hundreds of real ones)
//   prior_scale [1]           1e-6..1e6: mcmc W0 = prior_scale · I (0.3 and 3 are worse: 0.8991,
//                             0.9017 against 0.8977)
// ALS: RMSE is nearly flat over 16-128 factors and λ 1.2-1.5 at e = 0.5, and falls off a cliff
// above λ ≈ 2 where the factors collapse to zero.
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
// Cancelled if options.cancel fires (checked every iteration or sweep). meta.metrics:
// "train_rmse" (of the served model), "global_mean", "rated_users"; als/sgd add
// "train_rmse_iter_<n>" (after iteration n, 1-based) and "objective" (final); mcmc adds
// "train_rmse_last_sample" (of the last sweep's draw), "noise_precision" (ᾱ) and
// "samples_averaged" (samples − burn_in).
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
