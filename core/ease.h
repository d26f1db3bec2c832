// EASE (Steck, "Embarrassingly shallow autoencoders for sparse data", WWW 2019): an item x item
// linear model B with a zero diagonal, in closed form,
//   P = (XᵀX + Λ)⁻¹,   B = I − P diag(1 / diag P),   score(u, ·) = x_u B,
// where X is the user x item InteractionMatrix (interaction_matrix.h; `weighting` picks binary,
// log or raw weights) restricted to the `max_items` most popular items, and Λ = λI plus, with
// dropout p > 0, p/(1 − p) diag(XᵀX): the emphasized-denoising (EDLAE) penalty of Steck,
// "Autoencoders that don't overfit towards the identity" (NeurIPS 2020), which regularises
// popular items more. p = 0 (the default) is plain EASE, bit for bit.
//
// Sequence term (seq_weight > 0): with each user's modelled items in the order of their first
// positive event in the log, C[i][j] sums a weight over the pairs of positions at most
// seq_window apart that hold items i and j (i ≠ j; each pair once): 1 − d / (seq_window + 1)
// for positions d apart (seq_kernel=triangle), or 1 (box). B_seq is the EASE solution for the
// Gram matrix C + diag(users per item) with λ = seq_lambda and the same dropout p, and the
// model is B + seq_weight · B_seq: items consumed near each other vote for each other beyond
// plain co-occurrence. With the triangle kernel the Gram matrix is that of sliding windows of
// seq_window + 1 items (divided by seq_window + 1), positive semi-definite, so every seq_lambda
// > 0 works; the box kernel's can be indefinite (e.g. every user consuming the same items in the
// same order), and training then fails with FailedPrecondition unless seq_lambda is raised.
//
// Graph-filter term (gf_weight > 0): the linear filter of Shen et al., "How powerful is graph
// convolution for recommendation?" (CIKM 2021, GF-CF). With R = D_U^-1/2 X D_I^-1/2 (D_U, D_I
// the users' and items' sums of x_ui over the modelled items) and V the gf_rank leading
// eigenvectors of RᵀR,
//   G = RᵀR + gf_alpha · D_I^-1/2 V Vᵀ D_I^1/2:
// a degree-normalised co-occurrence filter plus an "ideal low-pass" one that smooths along the
// catalogue's dominant directions, the global structure EASE's item-by-item weights miss. It is
// scaled to gf_weight times B's score scale (the ratio of the root mean square of the scores
// x_u B and x_u G over up to 1,024 evenly spaced active users) and served beside B, so the
// model is B + c·G with c = gf_weight · rms(XB) / rms(XG).
//
// Serving is a dot product: B (n x n) is replaced by its rank-r truncated SVD B ≈ U S Vᵀ
// (randomized subspace iteration, see randomized_svd.h, in double), c·G by its rank-gf_rank
// one, and the two are concatenated (truncating their sum instead keeps G's strong leading
// directions and drops B's detail: nDCG@10 0.4884 at rank 128 against 0.4911 at 128 + 64 in a
// numpy probe, eval/ease_probe.py):
//   x_u (B + c·G) ≈ (Σ_i x_ui L_i) Vᵀ   with L = [U S | U_G S_G], V = [V | V_G].
// Model layout (algorithm "ease"), d = r + gf_rank (just r with the filter off):
//   item_factors  num_items x d: row i = V_i; zero for items not modelled (without interactions
//                 or beyond max_items): those are cold items to the server.
//   user_factors  0 x d: every user vector is a fold-in (Model::FoldInUser).
//   tensors       "item_input_factors" num_items x d: row i = L_i, what history item i adds to
//                 a user vector (zero for items not modelled); item-indexed, so erasing a user
//                 leaves it alone. "event_weights" 1 x 8 (see pure_svd.h).
// FoldInUser(history) = Σ_i x_i L_i over the history's aggregated row x (AggregateHistory, the
// same weights as training, summed in double and rounded once: for a training user's history it
// is exactly the vector their training scores x_u L Vᵀ use). Empty when no history item is
// modelled. ExplainScore is exact: history entry j contributes c_j L_{item_j} · V_target, c_j its
// share of its item's weight (HistoryContributions).
//
// Deterministic for a seed and any num_threads (the dense steps are cut into blocks fixed by n,
// see spd_inverse.h).
//
// Cost, for n modelled items (n = min(max_items, items with interactions)): about n³
// floating-point operations per inverse (two with the sequence term, see spd_inverse.h) plus
// 15 products of n x n by n x (r + 10) for the SVD (and, with the graph filter, 30 by
// n x (gf_rank + 10) for its two), and one n x n double matrix per inverse
// (8 n² bytes; 16 n² with the sequence term) on top of O(interactions). Measured with
// bench/train_bench.cc's synthetic logs, default parameters, 2 threads on a 2-core AMD EPYC
// shared with other work: n = 1024: 0.5 s, 30 MB peak RSS; n = 2048: 1.5-2.4 s, 84 MB;
// n = 4096: 12-13 s, 290 MB (5 s and 190 MB without the sequence term). The graph filter adds
// about half (same run, filter off -> on: n = 1024 0.45 -> 0.66 s, n = 4096 7.7 -> 11.7 s) and
// no peak memory (G replaces B once B is factorised). Time grows as n³ and memory as n², so
// n = 8192 would take about 100 s and 1.1 GB: hence max_items 4096. ML-100K (1,682 items)
// trains in about 2 s.
//
// Parameters (defaults in brackets; chosen on the validation part of ML-100K's Recommenders
// protocol, see eval/README.md "Tuning" and the closing note of issue 4. Validation nDCG@10:
// without the sequence term λ 300-800 and rank 128 form the plateau (0.185 at λ 500; rank 64
// 0.182, 256 0.183); the sequence term adds about 0.01 over windows 8-20, seq_lambda 20-50 and
// seq_weight 0.25-0.75 (0.198 at the defaults), the triangle kernel at least matches the box
// (best 0.195, window 5), and binary weighting beats log by 0.007. Re-checked with dropout as
// the mean over five validation carve-outs (tune.py --validation_seeds=43,44,45,46,47; the
// defaults give 0.1877, spread 0.179-0.198 by carve-out): dropout 0.1-0.5 x λ 300-800 stays
// within 0.0006 of it (best p 0.33, λ 300: 0.1883, +0.0006 ± 0.0010 paired), and so do window
// 5-25 x seq_lambda 15-60 x seq_weight 0.35-1 and rank 64-256 (-0.0015 to 0), so the defaults
// stay as they were; log weighting 0.1810, raw 0.1738, no sequence term 0.1800). The graph
// filter was found with eval/ease_probe.py (its own five carve-outs: +0.0032, every carve-out
// up; a dozen other probes stayed within ±0.001) and checked on receval's: gf_weight 0.4-0.8 x
// gf_rank 32-96 give 0.1862-0.1891 against 0.1877 without it, 0.6 and 64 0.1888 (range
// 0.1814-0.1948); the test split's nDCG@10 went from 0.4872 to 0.4905. These searches used
// per-user carve-outs; receval's split became per item afterwards (eval/README.md), where the
// sequence term still adds 0.006 and the filter nothing on top of it (0.1824 vs 0.1825), and
// the defaults give 0.5021 on the test split:
//   lambda [500]          (0, 1e9] L2 weight λ on B
//   dropout [0]           0..0.99 EDLAE dropout p of both terms (0 = plain EASE)
//   rank [128]            1..1024 served dimension r (clamped to n)
//   max_items [4096]      1..16384 items modelled, most users first (ties: lower index)
//   seq_window [15]       1..1000 positions apart that count as near
//   seq_lambda [30]       (0, 1e9] λ of the sequence term
//   seq_weight [0.5]      0..100 weight β of the sequence term (0 = off)
//   seq_kernel [triangle] "triangle" | "box" (see above)
//   gf_weight [0.6]       0..100 weight of the graph-filter term relative to B (0 = off)
//   gf_rank [64]          1..1024 its low-pass cutoff and served dimension (clamped to n)
//   gf_alpha [1]          0..1e6 weight of its low-pass part
//   weighting [binary]    "binary" | "log" | "raw": x_ui (the paper's X is binary)
//   log_alpha [1], log_epsilon [1]: as pure_svd
#ifndef RECD_CORE_EASE_H_
#define RECD_CORE_EASE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "core/train_params.h"

namespace recd {

inline constexpr char kEaseAlgorithm[] = "ease";
// The tensor holding L (see above).
inline constexpr char kEaseInputFactorsTensor[] = "item_input_factors";

std::vector<ParamSpec> EaseParamSpecs();

// Trains EASE on options.num_threads threads; the result does not depend on the thread count.
// FailedPrecondition without positive pairs or when a Gram matrix plus λ is not positive
// definite; InvalidArgument for bad params; Cancelled. meta.metrics: "items_modelled",
// "items_capped" (items with interactions beyond max_items), "rank", "explained_energy" (share
// of ‖B‖²_F the rank-r factorisation keeps), "active_users".
absl::StatusOr<ModelData> TrainEase(const TrainingData& data,
                                    const std::map<std::string, std::string>& params,
                                    const TrainOptions& options);

absl::StatusOr<std::shared_ptr<const Model>> CreateEaseModel(std::shared_ptr<const ModelData> data);

}  // namespace recd

#endif  // RECD_CORE_EASE_H_
