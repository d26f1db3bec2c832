#include "core/ease.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "Eigen/QR"
#include "Eigen/SVD"
#include "absl/strings/str_cat.h"
#include "core/interaction_matrix.h"
#include "core/parallel_for.h"
#include "core/pure_svd.h"
#include "core/random.h"
#include "core/spd_inverse.h"
#include "core/status_macros.h"

namespace recd {
namespace {

// Randomized SVD of B: test vectors beyond the rank, and passes of BᵀB. B's spectrum decays
// slowly (it is close to the identity on the popular directions), so more passes than PureSVD's.
constexpr int kOversampling = 10;
constexpr int kPowerIterations = 6;

bool IsCancelled(const TrainOptions& o) { return o.cancel != nullptr && o.cancel->load(); }

// Number of kSpdBlock-wide column blocks of an n-column matrix.
int64_t Blocks(int64_t n) { return (n + kSpdBlock - 1) / kSpdBlock; }

// X restricted to the modelled items, columns renumbered 0..n-1 in item order (CSR).
struct ModelledRows {
  std::vector<int64_t> begin;  // num_users + 1
  std::vector<int32_t> column;
  std::vector<float> weight;
};

ModelledRows RestrictColumns(const InteractionMatrix& x, const std::vector<int32_t>& slot) {
  ModelledRows m;
  m.begin.reserve(x.rows() + 1);
  m.begin.push_back(0);
  for (int64_t u = 0; u < x.rows(); ++u) {
    for (InteractionMatrix::InnerIterator it(x, u); it; ++it) {
      if (slot[it.col()] < 0) continue;
      m.column.push_back(slot[it.col()]);
      m.weight.push_back(it.value());
    }
    m.begin.push_back(static_cast<int64_t>(m.column.size()));
  }
  return m;
}

// The lower triangle of XᵀX (n x n). Each column block is one task that adds, user by user in
// index order, the products of the user's entries in the block with their entries at or after
// them: every entry is summed in the same order for any thread count.
Eigen::MatrixXd LowerGram(const ModelledRows& x, int64_t n, int num_threads) {
  Eigen::MatrixXd g = Eigen::MatrixXd::Zero(n, n);
  const int64_t users = static_cast<int64_t>(x.begin.size()) - 1;
  const int64_t blocks = Blocks(n);
  ParallelForBlocks(blocks, num_threads, [&](int64_t b) {
    const int32_t j0 = static_cast<int32_t>(b * kSpdBlock);
    const int32_t j1 = static_cast<int32_t>(std::min(n, (b + 1) * kSpdBlock));
    for (int64_t u = 0; u < users; ++u) {
      const int32_t* cols = x.column.data();
      const int64_t end = x.begin[u + 1];
      int64_t a = std::lower_bound(cols + x.begin[u], cols + end, j0) - cols;
      for (; a < end && cols[a] < j1; ++a) {
        const double wa = x.weight[a];
        double* column = g.col(cols[a]).data();
        for (int64_t c = a; c < end; ++c) column[cols[c]] += wa * x.weight[c];
      }
    }
  });
  return g;
}

// Each user's modelled items (columns of `x`) in the order of their first positive event in the
// log, concatenated; begin[u]..begin[u+1] is user u's part.
struct Sequences {
  std::vector<int64_t> begin;
  std::vector<int32_t> column;
};

Sequences UserSequences(const TrainingData& data, const ModelledRows& x,
                        const std::vector<int32_t>& slot, int64_t n, const EventWeights& weights) {
  const int64_t users = static_cast<int64_t>(x.begin.size()) - 1;
  // Positive events on modelled items, grouped by user in log order (a stable counting sort).
  std::vector<int64_t> start(users + 1, 0);
  auto positive = [&](const Interaction& e) {
    return slot[e.item] >= 0 && InteractionWeight(e.event, e.has_value, e.value, weights) > 0.0f;
  };
  for (const Interaction& e : data.interactions) {
    if (positive(e)) ++start[e.user + 1];
  }
  std::partial_sum(start.begin(), start.end(), start.begin());
  std::vector<int32_t> events(start.back());
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (const Interaction& e : data.interactions) {
    if (positive(e)) events[fill[e.user]++] = slot[e.item];
  }
  // First occurrence of each item that the aggregation kept (a dislike may have removed it).
  Sequences s;
  s.begin.reserve(users + 1);
  s.begin.push_back(0);
  std::vector<int64_t> seen_by(n, -1);
  for (int64_t u = 0; u < users; ++u) {
    const int32_t* row = x.column.data() + x.begin[u];
    const int32_t* row_end = x.column.data() + x.begin[u + 1];
    for (int64_t k = start[u]; k < start[u + 1]; ++k) {
      const int32_t c = events[k];
      if (seen_by[c] == u) continue;
      seen_by[c] = u;
      if (!std::binary_search(row, row_end, c)) continue;
      s.column.push_back(c);
    }
    s.begin.push_back(static_cast<int64_t>(s.column.size()));
  }
  return s;
}

// The lower triangle of C + diag(users per item) (see ease.h), by column blocks as LowerGram.
Eigen::MatrixXd LowerSequenceGram(const Sequences& s, int64_t n, int window, bool triangle,
                                  int num_threads) {
  Eigen::MatrixXd g = Eigen::MatrixXd::Zero(n, n);
  const int64_t users = static_cast<int64_t>(s.begin.size()) - 1;
  std::vector<double> pair_weight(window + 1, 1.0);
  if (triangle) {
    for (int d = 0; d <= window; ++d) pair_weight[d] = 1.0 - static_cast<double>(d) / (window + 1);
  }
  ParallelForBlocks(Blocks(n), num_threads, [&](int64_t b) {
    const int32_t j0 = static_cast<int32_t>(b * kSpdBlock);
    const int32_t j1 = static_cast<int32_t>(std::min(n, (b + 1) * kSpdBlock));
    for (int64_t u = 0; u < users; ++u) {
      const int64_t begin = s.begin[u], end = s.begin[u + 1];
      for (int64_t p = begin; p < end; ++p) {
        const int32_t j = s.column[p];
        if (j < j0 || j >= j1) continue;
        double* column = g.col(j).data();
        column[j] += 1.0;
        const int64_t lo = std::max(begin, p - window), hi = std::min(end, p + window + 1);
        for (int64_t q = lo; q < hi; ++q) {
          // Each unordered pair once: at the position of its smaller column.
          if (s.column[q] > j) column[s.column[q]] += pair_weight[std::abs(q - p)];
        }
      }
    }
  });
  return g;
}

// gram (lower triangle) + Λ  ->  B = I − P diag(1/diag P), P = (gram + Λ)⁻¹, in place, with
// Λ = λI + p/(1 − p) diag(gram) for dropout p. `lambda_key` names the parameter λ comes from,
// for the error message.
absl::Status EaseWeightsInPlace(Eigen::MatrixXd& gram, double lambda, double dropout,
                                const char* what, const char* lambda_key,
                                const TrainOptions& options, double progress_from,
                                double progress_to) {
  // Skipped at p = 0 rather than scaled by 1 + 0, so that plain EASE keeps its bits.
  if (dropout > 0.0) gram.diagonal() *= 1.0 + dropout / (1.0 - dropout);
  gram.diagonal().array() += lambda;
  SpdInverseOptions so;
  so.num_threads = options.num_threads;
  so.cancel = options.cancel;
  if (options.progress) {
    so.progress = [&](double f) {
      options.progress(progress_from + f * (progress_to - progress_from));
    };
  }
  if (absl::Status s = InvertSpdInPlace(gram, so); !s.ok()) {
    if (s.code() != absl::StatusCode::kFailedPrecondition) return s;
    return absl::FailedPreconditionError(absl::StrCat(
        "ease: the ", what, " Gram matrix plus ", lambda_key, " = ", lambda,
        " times the identity is not positive definite (", s.message(), "); raise ", lambda_key));
  }
  const int64_t n = gram.rows();
  for (int64_t j = 0; j < n; ++j) {
    gram.col(j) /= -gram(j, j);
    gram(j, j) = 0.0;
  }
  return absl::OkStatus();
}

// m (n x n) times x (n x l), by row blocks of m.
Eigen::MatrixXd Times(const Eigen::MatrixXd& m, const Eigen::MatrixXd& x, int num_threads) {
  Eigen::MatrixXd out(m.rows(), x.cols());
  const int64_t n = m.rows();
  ParallelForBlocks(Blocks(n), num_threads, [&](int64_t b) {
    const int64_t r0 = b * kSpdBlock, rn = std::min(n, r0 + kSpdBlock) - r0;
    out.middleRows(r0, rn).noalias() = m.middleRows(r0, rn) * x;
  });
  return out;
}

// mᵀ (n x n) times x (n x l), by column blocks of m.
Eigen::MatrixXd TransposeTimes(const Eigen::MatrixXd& m, const Eigen::MatrixXd& x,
                               int num_threads) {
  Eigen::MatrixXd out(m.cols(), x.cols());
  const int64_t n = m.cols();
  ParallelForBlocks(Blocks(n), num_threads, [&](int64_t b) {
    const int64_t c0 = b * kSpdBlock, cn = std::min(n, c0 + kSpdBlock) - c0;
    out.middleRows(c0, cn).noalias() = m.middleCols(c0, cn).transpose() * x;
  });
  return out;
}

Eigen::MatrixXd Orthonormalize(const Eigen::MatrixXd& x) {
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(x);
  Eigen::MatrixXd q = Eigen::MatrixXd::Identity(x.rows(), x.cols());
  q.applyOnTheLeft(qr.householderQ());
  return q;
}

struct LowRank {
  Eigen::MatrixXd left;   // n x k: U S
  Eigen::MatrixXd right;  // n x k: V (orthonormal columns)
  Eigen::VectorXd singular_values;
};

// Rank-k truncated SVD of the square matrix b by randomized subspace iteration (the algorithm of
// randomized_svd.cc, on a dense matrix with blocked products).
absl::StatusOr<LowRank> TruncatedSvd(const Eigen::MatrixXd& b, int64_t k,
                                     const TrainOptions& options, double progress_from,
                                     double progress_to) {
  const int64_t n = b.rows();
  const int64_t l = std::min<int64_t>(k + kOversampling, n);
  PortableRng rng(options.seed);
  Eigen::MatrixXd z(n, l);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < l; ++j) z(i, j) = rng.Normal();
  }
  for (int it = 0; it <= kPowerIterations; ++it) {
    if (IsCancelled(options)) return absl::CancelledError("ease: training cancelled");
    z = Orthonormalize(TransposeTimes(b, Times(b, z, options.num_threads), options.num_threads));
    if (options.progress) {
      options.progress(progress_from +
                       (progress_to - progress_from) * (it + 1) / (kPowerIterations + 2.0));
    }
  }
  // b ≈ (b z) zᵀ; the SVD of b z through its QR: b z = Q R, R = U_R S V_Rᵀ.
  const Eigen::MatrixXd bz = Times(b, z, options.num_threads);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(bz);
  const Eigen::MatrixXd r = qr.matrixQR().topRows(l).triangularView<Eigen::Upper>();
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(r, Eigen::ComputeFullU | Eigen::ComputeFullV);
  LowRank out;
  out.singular_values = svd.singularValues().head(k);
  out.right = z * svd.matrixV().leftCols(k);
  Eigen::MatrixXd u = Eigen::MatrixXd::Identity(n, l);
  u.applyOnTheLeft(qr.householderQ());
  out.left = (u * svd.matrixU().leftCols(k)) * out.singular_values.asDiagonal();
  // Fix the sign ambiguity: the largest-magnitude entry of each right vector is positive.
  for (int64_t c = 0; c < k; ++c) {
    Eigen::Index arg = 0;
    out.right.col(c).cwiseAbs().maxCoeff(&arg);
    if (out.right(arg, c) < 0.0) {
      out.right.col(c) *= -1.0;
      out.left.col(c) *= -1.0;
    }
  }
  return out;
}

// Users whose scores set the graph-filter term's scale (see ease.h): every active user up to
// this many, else this many evenly spaced ones.
constexpr int64_t kScaleSampleUsers = 1024;

// The users with at least one modelled item, in index order.
std::vector<int64_t> ActiveUsers(const ModelledRows& x) {
  std::vector<int64_t> active;
  for (size_t u = 0; u + 1 < x.begin.size(); ++u) {
    if (x.begin[u + 1] > x.begin[u]) active.push_back(static_cast<int64_t>(u));
  }
  return active;
}

// The root mean square of the scores x_u M (over every modelled item) of a fixed, evenly spaced
// sample of the `active` users. Single-threaded, so it does not depend on the thread count;
// reads m column by column (a user's entries gathered from one contiguous column), no copy.
double ScoreRms(const ModelledRows& x, const std::vector<int64_t>& active,
                const Eigen::MatrixXd& m) {
  const int64_t sample = std::min<int64_t>(kScaleSampleUsers, static_cast<int64_t>(active.size()));
  if (sample == 0) return 0.0;
  double sum = 0.0;
  for (int64_t s = 0; s < sample; ++s) {
    const int64_t u = active[s * static_cast<int64_t>(active.size()) / sample];
    for (int64_t j = 0; j < m.cols(); ++j) {
      const double* column = m.col(j).data();
      double score = 0.0;
      for (int64_t k = x.begin[u]; k < x.begin[u + 1]; ++k) {
        score += static_cast<double>(x.weight[k]) * column[x.column[k]];
      }
      sum += score * score;
    }
  }
  return std::sqrt(sum / (static_cast<double>(sample) * static_cast<double>(m.cols())));
}

// The graph filter G (see ease.h): with R = D_U^-1/2 X D_I^-1/2 (the degrees are the row and
// column sums of X's weights), G = RᵀR + α D_I^-1/2 V Vᵀ D_I^1/2, V the `cutoff` leading
// eigenvectors of RᵀR.
absl::StatusOr<Eigen::MatrixXd> GraphFilter(const ModelledRows& x, int64_t n, int64_t cutoff,
                                            double alpha, const TrainOptions& options,
                                            double progress_from, double progress_to) {
  const int64_t users = static_cast<int64_t>(x.begin.size()) - 1;
  std::vector<double> item_degree(n, 0.0);
  for (size_t k = 0; k < x.column.size(); ++k) item_degree[x.column[k]] += x.weight[k];
  ModelledRows r = x;
  for (int64_t u = 0; u < users; ++u) {
    double user_degree = 0.0;
    for (int64_t k = x.begin[u]; k < x.begin[u + 1]; ++k) user_degree += x.weight[k];
    for (int64_t k = x.begin[u]; k < x.begin[u + 1]; ++k) {
      r.weight[k] = static_cast<float>(x.weight[k] /
                                       std::sqrt(user_degree * item_degree[x.column[k]]));
    }
  }
  Eigen::MatrixXd g = LowerGram(r, n, options.num_threads);
  g.triangularView<Eigen::StrictlyUpper>() = g.transpose();
  if (IsCancelled(options)) return absl::CancelledError("ease: training cancelled");
  // RᵀR is symmetric positive semi-definite: its right singular vectors are its eigenvectors.
  ASSIGN_OR_RETURN(LowRank top, TruncatedSvd(g, cutoff, options, progress_from, progress_to));
  Eigen::MatrixXd down = top.right, up = top.right;
  for (int64_t i = 0; i < n; ++i) {
    const double root = std::sqrt(item_degree[i]);
    down.row(i) /= root;
    up.row(i) *= root;
  }
  g.noalias() += alpha * down * up.transpose();
  return g;
}

class EaseModel final : public Model {
 public:
  EaseModel(std::shared_ptr<const ModelData> data, InteractionMatrixOptions options)
      : Model(std::move(data)),
        options_(std::move(options)),
        input_(this->data().tensors.at(kEaseInputFactorsTensor)),
        modelled_(input_.rows()) {
    for (int64_t i = 0; i < input_.rows(); ++i)
      modelled_[i] = (input_.row(i).array() != 0.0f).any();
  }

  EmbeddingVector FoldInUser(absl::Span<const HistoryEntry> history) const override {
    const std::vector<WeightedItem> row = AggregateHistory(history, options_, NumItems());
    const bool any = std::any_of(row.begin(), row.end(),
                                 [&](const WeightedItem& e) { return modelled_[e.item]; });
    if (!any) return EmbeddingVector();
    return ProjectWeightedItems(row, input_);
  }

  std::vector<float> ExplainScore(absl::Span<const HistoryEntry> history,
                                  ItemIndex item) const override {
    std::vector<float> out(history.size(), 0.0f);
    if (item >= NumItems()) return out;
    const std::vector<float> c = HistoryContributions(history, options_, NumItems());
    const Eigen::VectorXd target = item_factors().row(item).cast<double>().transpose();
    for (size_t j = 0; j < history.size(); ++j) {
      if (c[j] == 0.0f) continue;  // 0 for items outside the model too
      out[j] = static_cast<float>(
          c[j] * input_.row(history[j].item).cast<double>().dot(target.transpose()));
    }
    return out;
  }

 private:
  uint32_t NumItems() const { return static_cast<uint32_t>(item_factors().rows()); }

  InteractionMatrixOptions options_;
  const EmbeddingMatrix& input_;  // owned by data()
  std::vector<bool> modelled_;
};

}  // namespace

std::vector<ParamSpec> EaseParamSpecs() {
  return {
      ParamSpec::Double("lambda", 500.0, 1e-9, 1e9, "L2 weight on B"),
      ParamSpec::Double("dropout", 0.0, 0.0, 0.99,
                        "EDLAE dropout p: both terms' L2 gains p/(1-p) diag(Gram) (0 = EASE)"),
      ParamSpec::Int("rank", 128, 1, 1024, "served dimension (truncated SVD of B)"),
      ParamSpec::Int("max_items", 4096, 1, 16384, "most popular items modelled"),
      ParamSpec::Int("seq_window", 15, 1, 1000, "positions apart that count as near"),
      ParamSpec::Double("seq_lambda", 30.0, 1e-9, 1e9, "L2 weight of the sequence term"),
      ParamSpec::Double("seq_weight", 0.5, 0.0, 100.0, "weight of the sequence term (0 = off)"),
      ParamSpec::Choice("seq_kernel", "triangle", {"box", "triangle"}, "pair weight by distance"),
      ParamSpec::Double("gf_weight", 0.6, 0.0, 100.0,
                        "weight of the graph-filter term, relative to B's score scale (0 = off)"),
      ParamSpec::Int("gf_rank", 64, 1, 1024, "graph filter: low-pass cutoff and served dimension"),
      ParamSpec::Double("gf_alpha", 1.0, 0.0, 1e6, "graph filter: weight of the low-pass part"),
      ParamSpec::Choice("weighting", "binary", {"binary", "log", "raw"}, "x_ui"),
      ParamSpec::Double("log_alpha", 1.0, 1e-6, 1e6, "log weighting: 1 + alpha*log(1 + w/eps)"),
      ParamSpec::Double("log_epsilon", 1.0, 1e-6, 1e6, "log weighting epsilon"),
  };
}

absl::StatusOr<ModelData> TrainEase(const TrainingData& data,
                                    const std::map<std::string, std::string>& params,
                                    const TrainOptions& options) {
  ASSIGN_OR_RETURN(ParsedParams p, ParseParams(kEaseAlgorithm, EaseParamSpecs(), params));
  ASSIGN_OR_RETURN(InteractionMatrixOptions mopts, ImplicitMatrixOptions(p, options.event_weights));
  ASSIGN_OR_RETURN(InteractionMatrix x, BuildInteractionMatrix(data, mopts));
  if (x.nonZeros() == 0) {
    return absl::FailedPreconditionError(
        "ease: the training data has no positive (user, item) pair");
  }
  const double seq_weight = p.GetDouble("seq_weight");
  const double dropout = p.GetDouble("dropout");
  const bool with_sequence = seq_weight > 0.0;
  auto progress = [&](double f) {
    if (options.progress) options.progress(f);
  };

  // The modelled items: most users first, lower index on ties, then back in index order.
  std::vector<int64_t> users_per_item(x.cols(), 0);
  for (int64_t k = 0; k < x.nonZeros(); ++k) ++users_per_item[x.innerIndexPtr()[k]];
  std::vector<ItemIndex> kept;
  for (int64_t i = 0; i < x.cols(); ++i) {
    if (users_per_item[i] > 0) kept.push_back(static_cast<ItemIndex>(i));
  }
  const int64_t active_items = static_cast<int64_t>(kept.size());
  const int64_t max_items = p.GetInt("max_items");
  if (active_items > max_items) {
    std::stable_sort(kept.begin(), kept.end(), [&](ItemIndex a, ItemIndex b) {
      return users_per_item[a] > users_per_item[b];
    });
    kept.resize(max_items);
    std::sort(kept.begin(), kept.end());
  }
  const int64_t n = static_cast<int64_t>(kept.size());
  std::vector<int32_t> slot(x.cols(), -1);
  for (int64_t c = 0; c < n; ++c) slot[kept[c]] = static_cast<int32_t>(c);
  const ModelledRows rows = RestrictColumns(x, slot);

  const double inverse_share = with_sequence ? 0.4 : 0.8;
  Eigen::MatrixXd b = LowerGram(rows, n, options.num_threads);
  progress(0.05);
  if (IsCancelled(options)) return absl::CancelledError("ease: training cancelled");
  RETURN_IF_ERROR(EaseWeightsInPlace(b, p.GetDouble("lambda"), dropout, "interaction", "lambda",
                                     options, 0.05, 0.05 + inverse_share));
  if (with_sequence) {
    const Sequences s = UserSequences(data, rows, slot, n, options.event_weights);
    Eigen::MatrixXd b_seq = LowerSequenceGram(
        s, n, p.GetInt("seq_window"), p.GetChoice("seq_kernel") == "triangle", options.num_threads);
    if (IsCancelled(options)) return absl::CancelledError("ease: training cancelled");
    RETURN_IF_ERROR(EaseWeightsInPlace(b_seq, p.GetDouble("seq_lambda"), dropout, "sequence",
                                       "seq_lambda", options, 0.45, 0.85));
    b += seq_weight * b_seq;
  }

  const double gf_weight = p.GetDouble("gf_weight");
  const bool with_filter = gf_weight > 0.0;
  const int64_t k = std::min<int64_t>(p.GetInt("rank"), n);
  const int64_t k_filter = with_filter ? std::min<int64_t>(p.GetInt("gf_rank"), n) : 0;
  ASSIGN_OR_RETURN(LowRank low, TruncatedSvd(b, k, options, 0.85, with_filter ? 0.9 : 1.0));
  const double energy = b.squaredNorm();
  const std::vector<int64_t> active_users = ActiveUsers(rows);
  LowRank filter;
  if (with_filter) {
    const double b_scale = ScoreRms(rows, active_users, b);
    b.resize(0, 0);  // G takes its place: one n x n matrix at a time
    ASSIGN_OR_RETURN(Eigen::MatrixXd g, GraphFilter(rows, n, k_filter, p.GetDouble("gf_alpha"),
                                                    options, 0.9, 0.95));
    const double g_scale = ScoreRms(rows, active_users, g);
    if (g_scale > 0.0) g *= gf_weight * b_scale / g_scale;
    ASSIGN_OR_RETURN(filter, TruncatedSvd(g, k_filter, options, 0.95, 1.0));
  }

  ModelData out;
  const int64_t dim = k + k_filter;
  out.user_factors = EmbeddingMatrix(0, dim);
  out.item_factors = EmbeddingMatrix::Zero(x.cols(), dim);
  EmbeddingMatrix input = EmbeddingMatrix::Zero(x.cols(), dim);
  for (int64_t c = 0; c < n; ++c) {
    out.item_factors.row(kept[c]).head(k) = low.right.row(c).cast<float>();
    input.row(kept[c]).head(k) = low.left.row(c).cast<float>();
    if (with_filter) {
      out.item_factors.row(kept[c]).tail(k_filter) = filter.right.row(c).cast<float>();
      input.row(kept[c]).tail(k_filter) = filter.left.row(c).cast<float>();
    }
  }
  out.tensors[kEaseInputFactorsTensor] = std::move(input);
  out.tensors[kEventWeightsTensor] = EventWeightsTensor(options.event_weights);

  out.meta.params = p.text();
  out.meta.metrics["items_modelled"] = static_cast<double>(n);
  out.meta.metrics["items_capped"] = static_cast<double>(active_items - n);
  out.meta.metrics["rank"] = static_cast<double>(k);
  out.meta.metrics["gf_rank"] = static_cast<double>(k_filter);
  out.meta.metrics["explained_energy"] =
      energy > 0.0 ? low.singular_values.squaredNorm() / energy : 0.0;
  out.meta.metrics["active_users"] = static_cast<double>(active_users.size());
  progress(1.0);
  return out;
}

absl::StatusOr<std::shared_ptr<const Model>> CreateEaseModel(
    std::shared_ptr<const ModelData> data) {
  const std::string prefix =
      absl::StrCat("model '", data->meta.name, "' version ", data->meta.version, ": ");
  ASSIGN_OR_RETURN(StoredImplicitModel stored,
                   ParseStoredImplicitModel(*data, kEaseAlgorithm, EaseParamSpecs()));
  auto it = data->tensors.find(kEaseInputFactorsTensor);
  if (it == data->tensors.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "tensor '", kEaseInputFactorsTensor, "' is missing"));
  }
  if (it->second.rows() != data->item_factors.rows() ||
      it->second.cols() != data->item_factors.cols()) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "tensor '", kEaseInputFactorsTensor, "' is ", it->second.rows(), " x ",
                     it->second.cols(), " but item_factors is ", data->item_factors.rows(), " x ",
                     data->item_factors.cols()));
  }
  return std::shared_ptr<const Model>(std::make_shared<EaseModel>(std::move(data), stored.matrix));
}

}  // namespace recd
