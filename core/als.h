// Implicit-feedback ALS (Hu, Koren & Volinsky, "Collaborative filtering for implicit feedback
// datasets", ICDM 2008) with the conjugate-gradient solver of Takács, Pilászy & Tikk
// ("Applications of the conjugate gradient method for implicit feedback collaborative
// filtering", RecSys 2011).
//
// With w_ui the InteractionMatrix weight of a pair (see interaction_matrix.h; the `weighting`
// parameter picks raw, log or binary), preference p_ui = 1 and confidence c_ui = 1 + α w_ui for
// observed pairs, p_ui = 0 and c_ui = 1 for all others, ALS minimises
//   L = Σ_(u,i) c_ui (p_ui − x_uᵀ y_i)² + Σ_u λ_u |x_u|² + Σ_i λ_i |y_i|²
// over every user x item pair (the unobserved ones through the Gram matrix YᵀY, never
// enumerated), alternating user and item steps. Each row's step is a few conjugate-gradient
// iterations on its normal equations, started from the row's current value: every CG
// iteration lowers L, so L decreases every sweep (reported per sweep in meta.metrics). The last
// user step is exact (LDLT in double) and is what FoldInUser computes.
//
// Model layout (algorithm "als"):
//   item_factors  num_items x k: y_i (zero for items without interactions)
//   user_factors  num_users x k: x_u (zero for users without interactions)
//   tensors       "event_weights" 1 x 8 (see pure_svd.h): the aggregation used for w_ui
// FoldInUser(history) = argmin_x Σ_i c_i (p_i − xᵀy_i)² + λ_u|x|² against the fixed item
// factors: (YᵀY + Σ_i α w_i y_i y_iᵀ + λ_u I) x = Σ_i (1 + α w_i) y_i. For a user's training
// history it reproduces the trained row bit for bit. ExplainScore splits x_uᵀy_j exactly over
// the history (the Hu et al. explanation: item i contributes c_i y_jᵀ A⁻¹ y_i, shared among
// the item's events in proportion to their weight).
//
// Warm start (TrainOptions::warm_start): a previous "als" version with the same `factors`
// initialises the item rows it has (new items get random rows) and the user rows it has; a
// version that does not fit is ignored (meta.metrics "warm_started" = 0).
//
// Parameters (defaults in brackets; chosen on the validation part of ML-100K's Recommenders
// protocol, see eval/README.md "Tuning" and the closing note of issue 4: a broad plateau around λ 50-100, α 5-10, 32-256 factors):
//   factors [64]            1..1024
//   iterations [10]         1..1000 sweeps (user step + item step)
//   regularization [100]    0..1e6: λ (large: it multiplies |x|², against a Gram matrix summed
//                           over the whole catalogue)
//   alpha [10]              0..1e6: confidence slope α
//   weighting [log]         "raw" | "log" | "binary": w_ui
//   log_alpha [1], log_epsilon [1]: as pure_svd
//   cg_steps [3]            1..100 CG iterations per row and step
//   reg_exponent [0]        0..2: ν. A row's λ is λ · (1 + Σ_i α w_i / n)^ν, n the number of
//                           rows on the other side: regularisation grows with the row's
//                           confidence mass (Rendle et al., "Revisiting the performance of
//                           iALS on item recommendation benchmarks", 2021); 0 = plain λ
//   tolerance [0]           0..1: stop early once a sweep lowers L by less than this fraction
//   init_std [0.01]         (0, 10]: standard deviation of the initial item factors
#ifndef RECD_CORE_ALS_H_
#define RECD_CORE_ALS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "core/train_params.h"

namespace recd {

inline constexpr char kAlsAlgorithm[] = "als";

std::vector<ParamSpec> AlsParamSpecs();

// Trains ALS on options.num_threads threads; the result does not depend on the thread count.
// FailedPrecondition without positive pairs; InvalidArgument for bad params; Cancelled.
// meta.metrics: "objective_iter_<n>" (L after sweep n, 1-based), "objective" (after the final
// exact user step), "iterations_run", "warm_started", "active_users".
absl::StatusOr<ModelData> TrainAls(const TrainingData& data,
                                   const std::map<std::string, std::string>& params,
                                   const TrainOptions& options);

absl::StatusOr<std::shared_ptr<const Model>> CreateAlsModel(std::shared_ptr<const ModelData> data);

}  // namespace recd

#endif  // RECD_CORE_ALS_H_
