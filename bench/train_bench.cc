// Retrain time per model at a given log size, on the synthetic demo generator's data (latent
// taste structure, power-law popularity), with the same TrainModel call the server's trainer
// makes. Prints one row per (size, algorithm): wall time, interactions per second, peak RSS.
//
//   train_bench [--sizes=1000000,10000000] [--algorithms=popularity,pure_svd,...] [--threads=2]
//               [--params=pure_svd.rank=64,...]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/demo_data.h"
#include "core/model.h"

namespace {

std::string Arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]).rfind(prefix, 0) == 0) return std::string(argv[i]).substr(prefix.size());
  }
  return fallback;
}

double PeakRssMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

recd::TrainingData Generate(int64_t interactions) {
  recd::DemoDataOptions o;
  o.num_interactions = static_cast<int>(interactions);
  o.num_users = static_cast<int>(interactions / 20);
  o.num_items = static_cast<int>(std::max<int64_t>(1000, interactions / 100));
  o.num_genres = 50;
  absl::StatusOr<recd::DemoDataset> demo = recd::GenerateDemoData(o);
  if (!demo.ok()) {
    std::fprintf(stderr, "train_bench: %s\n", std::string(demo.status().message()).c_str());
    std::exit(1);
  }
  return recd::DemoTrainingData(*demo);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> sizes;
  for (absl::string_view s : absl::StrSplit(Arg(argc, argv, "sizes", "1000000,10000000"), ',', absl::SkipEmpty())) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(s, &n) || n <= 0) {
      std::fprintf(stderr, "train_bench: bad size '%s'\n", std::string(s).c_str());
      return 2;
    }
    sizes.push_back(n);
  }
  std::vector<std::string> algorithms = absl::StrSplit(
      Arg(argc, argv, "algorithms", absl::StrJoin(recd::KnownAlgorithms(), ",")), ',', absl::SkipEmpty());
  int threads = 2;
  absl::SimpleAtoi(Arg(argc, argv, "threads", "2"), &threads);
  std::map<std::string, std::map<std::string, std::string>> params;
  for (absl::string_view p : absl::StrSplit(Arg(argc, argv, "params", ""), ',', absl::SkipEmpty())) {
    const size_t dot = p.find('.'), eq = p.find('=');
    if (dot == absl::string_view::npos || eq == absl::string_view::npos || eq < dot) continue;
    params[std::string(p.substr(0, dot))][std::string(p.substr(dot + 1, eq - dot - 1))] = std::string(p.substr(eq + 1));
  }

  std::printf("%-12s %-12s %8s %8s %10s %14s %10s  %s\n", "interactions", "algorithm", "users", "items", "seconds",
              "interactions/s", "peak MiB", "notes");
  for (int64_t size : sizes) {
    const auto gen_start = std::chrono::steady_clock::now();
    recd::TrainingData data = Generate(size);
    const double gen_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - gen_start).count();
    std::fprintf(stderr, "generated %zu interactions (%u users, %u items) in %.1f s\n", data.interactions.size(),
                 data.num_users, data.num_items, gen_s);
    for (const std::string& algorithm : algorithms) {
      recd::TrainOptions options;
      options.num_threads = threads;
      const auto start = std::chrono::steady_clock::now();
      absl::StatusOr<recd::ModelData> model = recd::TrainModel({algorithm, algorithm, params[algorithm]}, data, options);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::string notes;
      if (!model.ok()) {
        notes = std::string(model.status().message());
      } else {
        notes = "dim " + std::to_string(model->dim());
      }
      std::printf("%-12lld %-12s %8u %8u %10.2f %14.0f %10.0f  %s\n", static_cast<long long>(data.interactions.size()),
                  algorithm.c_str(), data.num_users, data.num_items, s, data.interactions.size() / s, PeakRssMiB(),
                  notes.c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
