// receval: trains recd's models on a MovieLens folder and measures them with the field's
// standard offline protocols, printing a table (stdout), progress (stderr) and optionally JSON.
//
//   receval --data=../shared/data/ml-100k                       # every protocol, every model
//   receval --models=als,two_tower --protocols=recommenders --json=/tmp/r.json
//   receval --validation --model_params=als.factors=128 ...     # tuning: never sees the test sets
//
// Protocols (--protocols, comma-separated):
//   rating        ML-100K's five folds u1..u5.base/.test: RMSE and MAE of rating prediction,
//                 averaged over the folds (models that predict ratings: biased_mf).
//   recommenders  Microsoft Recommenders' protocol: python_stratified_split of all ratings
//                 (ratio 0.75, per item as their MovieLens benchmark notebook, seed 42), top-k
//                 over the catalogue minus the user's training items, every test rating
//                 relevant; MAP, nDCG@k, precision@k, recall@k.
//   next_item     Leave-last-out by time: each user's last rating by timestamp (ties in file
//                 order) is held out; HR@k and NDCG@k against the full catalogue.
// With --validation every protocol trains on its training part only and measures on a
// validation part carved from it the same way (u<f>.base split 90/10 per user with seed
// 4242+f; the Recommenders training part split 90/10 again, per item or per user as
// --split_by, with seed+1, or --validation_seed, so that a search can average several
// carve-outs of it; the
// second-to-last interaction), so hyperparameters can be searched without touching the test
// sets. 90/10 keeps the training density close to the real protocol's (72% and 67.5% of the
// ratings instead of 80% and 75%): regularisation and rank optima move with density.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/biased_mf.h"
#include "core/eval_metrics.h"
#include "core/eval_protocol.h"
#include "core/interaction_matrix.h"
#include "core/model.h"
#include "core/status_macros.h"
#include "eval/movielens.h"

ABSL_FLAG(std::string, data, "",
          "MovieLens folder (u.data or ratings.dat). Default: $RECD_MOVIELENS_DIR, else "
          "../shared/data/ml-100k");
ABSL_FLAG(std::string, models, "popularity,pure_svd,biased_mf,als,two_tower,ease",
          "models to evaluate, name[:algorithm], comma-separated");
ABSL_FLAG(std::string, model_params, "", "hyperparameters, name.key=value, comma-separated");
ABSL_FLAG(std::string, protocols, "rating,recommenders,next_item", "protocols to run");
ABSL_FLAG(int, k, 10, "cut-off of the ranking metrics");
ABSL_FLAG(double, split_ratio, 0.75, "recommenders protocol: training share per group");
ABSL_FLAG(std::string, split_by, "item",
          "recommenders protocol: stratify per 'item' (their benchmark notebook's "
          "filter_by=\"item\") or per 'user'");
ABSL_FLAG(uint32_t, split_seed, 42, "recommenders protocol: split seed (numpy RandomState)");
ABSL_FLAG(uint64_t, seed, 42, "training seed");
ABSL_FLAG(int, threads, 2, "training and evaluation threads");
ABSL_FLAG(int, repeat, 1, "train each model this many times per split; report median time");
ABSL_FLAG(bool, validation, false, "measure on validation parts of the training data (tuning)");
ABSL_FLAG(uint32_t, validation_seed, 0,
          "recommenders protocol with --validation: seed of the validation carve-out "
          "(0 = split_seed + 1); other seeds give repeats of the validation measure");
ABSL_FLAG(std::string, json, "", "write results as JSON to this file ('-' = stdout, no table)");

namespace recd::eval {
namespace {

// Share of each user's training ratings kept for training under --validation.
constexpr double kValidationRatio = 0.9;

bool g_tty = false;
std::mutex g_progress_mu;

void Log(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_progress_mu);
  std::cerr << (g_tty ? "\r\033[K" : "") << line << "\n" << std::flush;
}

void Progress(const std::string& what, double fraction) {
  if (!g_tty) return;
  std::lock_guard<std::mutex> lock(g_progress_mu);
  std::cerr << "\r\033[K" << what << absl::StrFormat(" %3.0f%%", 100.0 * fraction) << std::flush;
}

absl::StatusOr<std::vector<ModelConfig>> ParseModels(const std::string& models,
                                                     const std::string& params) {
  std::vector<ModelConfig> out;
  for (absl::string_view entry : absl::StrSplit(models, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    std::vector<std::string> parts = absl::StrSplit(entry, absl::MaxSplits(':', 1));
    ModelConfig c;
    c.name = parts[0];
    c.algorithm = parts.size() > 1 ? parts[1] : parts[0];
    const std::vector<std::string> known = KnownAlgorithms();
    if (std::find(known.begin(), known.end(), c.algorithm) == known.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown algorithm '", c.algorithm,
                                                     "'; known: ", absl::StrJoin(known, ", ")));
    }
    out.push_back(std::move(c));
  }
  for (absl::string_view entry : absl::StrSplit(params, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    const size_t dot = entry.find('.'), eq = entry.find('=');
    if (dot == entry.npos || eq == entry.npos || dot > eq) {
      return absl::InvalidArgumentError(
          absl::StrCat("--model_params entry '", entry, "' is not name.key=value"));
    }
    const std::string name(entry.substr(0, dot));
    auto it = std::find_if(out.begin(), out.end(), [&](const ModelConfig& c) { return c.name == name; });
    if (it == out.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--model_params names model '", name,
                                                     "', which --models does not list"));
    }
    it->params[std::string(entry.substr(dot + 1, eq - dot - 1))] = std::string(entry.substr(eq + 1));
  }
  return out;
}

struct Result {
  std::string protocol;
  std::string model;
  std::string algorithm;
  std::map<std::string, double> metrics;  // ordered by name
  std::vector<double> train_seconds;      // one per fold/repeat
  std::map<std::string, double> train_metrics;  // meta.metrics of the (last) trained version
  std::map<std::string, std::string> params;
  int64_t users = 0;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Trained {
  ModelData data;
  std::vector<double> seconds;
};

absl::StatusOr<Trained> TrainTimed(const ModelConfig& config, const TrainingData& data,
                                   const std::string& label) {
  Trained out;
  const int repeat = std::max(1, absl::GetFlag(FLAGS_repeat));
  for (int r = 0; r < repeat; ++r) {
    TrainOptions o;
    o.seed = absl::GetFlag(FLAGS_seed);
    o.num_threads = absl::GetFlag(FLAGS_threads);
    const std::string what = absl::StrCat(label, " training ", config.name);
    o.progress = [what](double f) { Progress(what, f); };
    const auto start = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(ModelData d, TrainModel(config, data, o));
    out.seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    out.data = std::move(d);
  }
  return out;
}

// --- rating ---------------------------------------------------------------------------------

absl::Status RunRating(const MovieLensData& ml, const std::vector<ModelConfig>& models,
                       std::vector<Result>& results) {
  if (!ml.has_folds) {
    Log("[rating] skipped: the folder has no u1..u5.base/.test fold files");
    return absl::OkStatus();
  }
  for (const ModelConfig& config : models) {
    if (config.algorithm != kBiasedMfAlgorithm) continue;
    Result r{"rating", config.name, config.algorithm};
    double rmse = 0.0, mae = 0.0;
    for (int f = 1; f <= 5; ++f) {
      ASSIGN_OR_RETURN(TrainingData base,
                       LoadRatingsWithIndex(absl::StrCat(ml.dir, "/u", f, ".base"), ml));
      TrainingData test;
      if (absl::GetFlag(FLAGS_validation)) {
        StratifiedSplitOptions so;
        so.ratio = kValidationRatio;
        so.seed = 4242 + f;
        ASSIGN_OR_RETURN(TrainTestSplit s, StratifiedSplit(base, so));
        base = std::move(s.train);
        test = std::move(s.test);
      } else {
        ASSIGN_OR_RETURN(test, LoadRatingsWithIndex(absl::StrCat(ml.dir, "/u", f, ".test"), ml));
      }
      base = SortByTimestamp(std::move(base));
      const std::string label = absl::StrCat("[rating u", f, "]");
      ASSIGN_OR_RETURN(Trained t, TrainTimed(config, base, label));
      ASSIGN_OR_RETURN(BiasedMfPredictor predictor, BiasedMfPredictor::Create(t.data));
      std::vector<float> predicted, actual;
      for (const Interaction& x : test.interactions) {
        predicted.push_back(predictor.Predict(x.user, x.item));
        actual.push_back(x.value);
      }
      const RatingErrors e = ComputeRatingErrors(predicted, actual);
      Log(absl::StrFormat("%s %s: RMSE %.4f MAE %.4f (%d ratings), trained in %.2f s", label,
                          config.name, e.rmse, e.mae, e.count, Median(t.seconds)));
      rmse += e.rmse / 5.0;
      mae += e.mae / 5.0;
      r.train_seconds.push_back(Median(t.seconds));
      r.train_metrics = t.data.meta.metrics;
      r.params = t.data.meta.params;
    }
    r.metrics["rmse"] = rmse;
    r.metrics["mae"] = mae;
    results.push_back(std::move(r));
  }
  return absl::OkStatus();
}

// --- ranking protocols ----------------------------------------------------------------------

absl::Status RunRanking(const std::string& protocol, const TrainingData& train,
                        const std::vector<std::vector<ItemIndex>>& relevant,
                        const std::vector<ModelConfig>& models, std::vector<Result>& results) {
  const std::vector<std::vector<ItemIndex>> exclude = ItemsByUser(train);
  const std::vector<std::vector<HistoryEntry>> history = HistoriesByUser(train);
  const int k = absl::GetFlag(FLAGS_k);
  for (const ModelConfig& config : models) {
    const std::string label = absl::StrCat("[", protocol, "]");
    Log(absl::StrCat(label, " training ", config.name, " (", config.algorithm, ") on ",
                     train.interactions.size(), " interactions"));
    ASSIGN_OR_RETURN(Trained t, TrainTimed(config, train, label));
    ASSIGN_OR_RETURN(std::shared_ptr<const Model> model,
                     CreateModel(std::make_shared<const ModelData>(std::move(t.data))));
    RankingEvalOptions eo;
    eo.k = k;
    eo.num_threads = absl::GetFlag(FLAGS_threads);
    const std::string what = absl::StrCat(label, " evaluating ", config.name);
    eo.progress = [what](double f) { Progress(what, f); };
    ASSIGN_OR_RETURN(RankingEvalResult e, EvaluateRanking(*model, relevant, exclude, history, eo));
    Result r{protocol, config.name, config.algorithm};
    const std::string ks = absl::StrCat("@", k);
    if (protocol == "next_item") {
      r.metrics["hr" + ks] = e.mean.hit_rate;
      r.metrics["ndcg" + ks] = e.mean.ndcg;
    } else {
      r.metrics["map"] = e.mean.average_precision;
      r.metrics["ndcg" + ks] = e.mean.ndcg;
      r.metrics["precision" + ks] = e.mean.precision;
      r.metrics["recall" + ks] = e.mean.recall;
    }
    r.users = e.num_users;
    r.train_seconds = t.seconds;
    r.train_metrics = model->meta().metrics;
    r.params = model->meta().params;
    std::string line = absl::StrFormat("%s %s: trained in %.2f s, %d users", label, config.name,
                                       Median(t.seconds), e.num_users);
    for (const auto& [name, value] : r.metrics) absl::StrAppendFormat(&line, ", %s %.4f", name, value);
    if (e.users_without_vector > 0) absl::StrAppend(&line, ", ", e.users_without_vector, " users without a vector");
    Log(line);
    results.push_back(std::move(r));
  }
  return absl::OkStatus();
}

absl::Status RunRecommenders(const MovieLensData& ml, const std::vector<ModelConfig>& models,
                             std::vector<Result>& results) {
  StratifiedSplitOptions so;
  so.ratio = absl::GetFlag(FLAGS_split_ratio);
  so.seed = absl::GetFlag(FLAGS_split_seed);
  const std::string by = absl::GetFlag(FLAGS_split_by);
  if (by == "item") {
    so.by = StratifiedSplitOptions::By::kItem;
  } else if (by != "user") {
    return absl::InvalidArgumentError("--split_by must be 'user' or 'item'");
  }
  ASSIGN_OR_RETURN(TrainTestSplit split, StratifiedSplit(ml.ratings, so));
  if (absl::GetFlag(FLAGS_validation)) {
    StratifiedSplitOptions vo = so;
    vo.ratio = kValidationRatio;
    const uint32_t validation_seed = absl::GetFlag(FLAGS_validation_seed);
    vo.seed = validation_seed != 0 ? validation_seed : so.seed + 1;
    ASSIGN_OR_RETURN(split, StratifiedSplit(split.train, vo));
  }
  // Models see a time-ordered log, as a server's (the two-tower pools the recent history).
  split.train = SortByTimestamp(std::move(split.train));
  Log(absl::StrFormat("[recommenders] split per %s, ratio %.2f, seed %d: %d train / %d test", by,
                      so.ratio, so.seed, split.train.interactions.size(),
                      split.test.interactions.size()));
  return RunRanking("recommenders", split.train, ItemsByUser(split.test), models, results);
}

absl::Status RunNextItem(const MovieLensData& ml, const std::vector<ModelConfig>& models,
                         std::vector<Result>& results) {
  InteractionMatrixOptions mo;  // raw weights: every rating is a positive interaction
  ASSIGN_OR_RETURN(LeaveLastOutSplit split, SplitLeaveLastOut(SortByTimestamp(ml.ratings), mo));
  if (absl::GetFlag(FLAGS_validation)) {
    ASSIGN_OR_RETURN(split, SplitLeaveLastOut(split.train, mo));
  }
  std::vector<std::vector<ItemIndex>> relevant(split.holdout.size());
  for (size_t u = 0; u < split.holdout.size(); ++u) {
    if (split.holdout[u] != kNoIndex) relevant[u] = {split.holdout[u]};
  }
  Log(absl::StrFormat("[next_item] leave-last-out by time: %d users hold out one item",
                      split.num_held_out));
  return RunRanking("next_item", split.train, relevant, models, results);
}

// --- output ---------------------------------------------------------------------------------

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.6g", v);
}

std::string ToJson(const MovieLensData& ml, const std::vector<Result>& results) {
  std::string out = "{\n";
  absl::StrAppend(&out, "  \"data\": ", JsonString(ml.dir), ",\n");
  absl::StrAppend(&out, "  \"validation\": ", absl::GetFlag(FLAGS_validation) ? "true" : "false",
                  ",\n  \"validation_seed\": ", absl::GetFlag(FLAGS_validation_seed),
                  ",\n  \"k\": ", absl::GetFlag(FLAGS_k), ",\n  \"threads\": ",
                  absl::GetFlag(FLAGS_threads), ",\n  \"seed\": ", absl::GetFlag(FLAGS_seed),
                  ",\n  \"results\": [\n");
  for (size_t n = 0; n < results.size(); ++n) {
    const Result& r = results[n];
    absl::StrAppend(&out, "    {\"protocol\": ", JsonString(r.protocol), ", \"model\": ",
                    JsonString(r.model), ", \"algorithm\": ", JsonString(r.algorithm),
                    ", \"users\": ", r.users, ",\n     \"metrics\": {");
    bool first = true;
    for (const auto& [name, v] : r.metrics) {
      absl::StrAppend(&out, first ? "" : ", ", JsonString(name), ": ", JsonNumber(v));
      first = false;
    }
    std::vector<double> sorted = r.train_seconds;
    std::sort(sorted.begin(), sorted.end());
    absl::StrAppend(&out, "},\n     \"train_seconds\": ", JsonNumber(Median(r.train_seconds)),
                    ", \"train_seconds_min\": ", JsonNumber(sorted.empty() ? 0 : sorted.front()),
                    ", \"train_seconds_max\": ", JsonNumber(sorted.empty() ? 0 : sorted.back()),
                    ",\n     \"params\": {");
    first = true;
    for (const auto& [name, v] : r.params) {
      absl::StrAppend(&out, first ? "" : ", ", JsonString(name), ": ", JsonString(v));
      first = false;
    }
    absl::StrAppend(&out, "},\n     \"train_metrics\": {");
    first = true;
    for (const auto& [name, v] : r.train_metrics) {
      absl::StrAppend(&out, first ? "" : ", ", JsonString(name), ": ", JsonNumber(v));
      first = false;
    }
    absl::StrAppend(&out, "}}", n + 1 < results.size() ? "," : "", "\n");
  }
  absl::StrAppend(&out, "  ]\n}\n");
  return out;
}

void PrintTable(const std::vector<Result>& results) {
  std::string protocol;
  std::vector<std::string> columns;
  for (const Result& r : results) {
    if (r.protocol != protocol) {
      protocol = r.protocol;
      columns.clear();
      for (const auto& [name, v] : r.metrics) columns.push_back(name);
      std::string title =
          protocol == "rating"
              ? "rating prediction, u1..u5 folds (mean)"
              : protocol == "recommenders"
                    ? absl::StrCat("Recommenders protocol (stratified per ",
                                   absl::GetFlag(FLAGS_split_by), ", seed ",
                                   absl::GetFlag(FLAGS_split_seed), ")")
                    : "next item (leave last out by time)";
      if (absl::GetFlag(FLAGS_validation)) absl::StrAppend(&title, " -- VALIDATION");
      std::printf("\n%s\n%-14s %-11s", title.c_str(), "model", "algorithm");
      for (const std::string& c : columns) std::printf(" %12s", c.c_str());
      std::printf(" %10s\n", "train s");
    }
    std::printf("%-14s %-11s", r.model.c_str(), r.algorithm.c_str());
    for (const std::string& c : columns) {
      auto it = r.metrics.find(c);
      std::printf(" %12.4f", it == r.metrics.end() ? NAN : it->second);
    }
    std::printf(" %10.2f\n", Median(r.train_seconds));
  }
}

absl::Status Run() {
  std::string dir = absl::GetFlag(FLAGS_data);
  if (dir.empty()) {
    const char* env = std::getenv("RECD_MOVIELENS_DIR");
    dir = env != nullptr && *env ? env : "../shared/data/ml-100k";
  }
  ASSIGN_OR_RETURN(std::vector<ModelConfig> models,
                   ParseModels(absl::GetFlag(FLAGS_models), absl::GetFlag(FLAGS_model_params)));
  Log(absl::StrCat("loading ", dir));
  ASSIGN_OR_RETURN(MovieLensData ml, LoadMovieLens(dir));
  Log(absl::StrFormat("%s: %d ratings, %d users, %d items", ml.layout,
                      ml.ratings.interactions.size(), ml.ratings.num_users, ml.ratings.num_items));
  std::vector<Result> results;
  for (absl::string_view p : absl::StrSplit(absl::GetFlag(FLAGS_protocols), ',', absl::SkipWhitespace())) {
    if (p == "rating") {
      RETURN_IF_ERROR(RunRating(ml, models, results));
    } else if (p == "recommenders") {
      RETURN_IF_ERROR(RunRecommenders(ml, models, results));
    } else if (p == "next_item") {
      RETURN_IF_ERROR(RunNextItem(ml, models, results));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown protocol '", p, "'; known: rating, recommenders, next_item"));
    }
  }
  const std::string json_path = absl::GetFlag(FLAGS_json);
  if (json_path == "-") {
    std::cout << ToJson(ml, results);
    return absl::OkStatus();
  }
  PrintTable(results);
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << ToJson(ml, results);
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", json_path));
    Log(absl::StrCat("wrote ", json_path));
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace recd::eval

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Trains recd models on MovieLens and evaluates them (see eval/receval.cc).\n"
      "  receval --data=../shared/data/ml-100k [--models=...] [--protocols=...] [--json=out.json]");
  absl::ParseCommandLine(argc, argv);
  recd::eval::g_tty = isatty(2);
  absl::Status s = recd::eval::Run();
  if (!s.ok()) {
    std::cerr << "receval: " << s << "\n";
    return 1;
  }
  return 0;
}
