#include "server/options.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace recd::server {

absl::StatusOr<std::vector<ModelConfig>> ParseModelConfigs(absl::string_view models,
                                                           absl::string_view params) {
  std::vector<ModelConfig> configs;
  const std::vector<std::string> known = KnownAlgorithms();
  for (absl::string_view entry : absl::StrSplit(models, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    ModelConfig config;
    std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(entry, ':');
    config.name = std::string(parts.first);
    config.algorithm = parts.second.empty() ? config.name : std::string(parts.second);
    if (config.name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--models: empty model name in '", models, "'"));
    }
    if (std::find(known.begin(), known.end(), config.algorithm) == known.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--models: unknown algorithm '", config.algorithm,
                                                     "' for model '", config.name, "'; known: ",
                                                     absl::StrJoin(known, ", ")));
    }
    for (const ModelConfig& c : configs) {
      if (c.name == config.name) {
        return absl::InvalidArgumentError(
            absl::StrCat("--models: model '", config.name, "' listed twice"));
      }
    }
    configs.push_back(std::move(config));
  }
  if (std::none_of(configs.begin(), configs.end(),
                   [](const ModelConfig& c) { return c.name == "popularity"; })) {
    configs.insert(configs.begin(), ModelConfig{"popularity", "popularity", {}});
  }
  for (absl::string_view entry : absl::StrSplit(params, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    const size_t dot = entry.find('.');
    const size_t eq = entry.find('=');
    if (dot == absl::string_view::npos || eq == absl::string_view::npos || eq < dot || dot == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--model_params: '", entry, "' is not of the form model.key=value"));
    }
    const std::string name(entry.substr(0, dot));
    auto it = std::find_if(configs.begin(), configs.end(),
                           [&](const ModelConfig& c) { return c.name == name; });
    if (it == configs.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--model_params: '", entry, "' names model '", name, "', not in --models"));
    }
    it->params[std::string(entry.substr(dot + 1, eq - dot - 1))] = std::string(entry.substr(eq + 1));
  }
  return configs;
}

absl::StatusOr<EventWeights> ParseEventWeights(absl::string_view spec, EventWeights base) {
  for (absl::string_view entry : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(absl::StripAsciiWhitespace(entry), '=');
    float v = 0;
    if (!absl::SimpleAtof(kv.second, &v) || !std::isfinite(v) || v < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--event_weights: '", entry, "' needs a finite weight >= 0"));
    }
    if (kv.first == "view") base.view = v;
    else if (kv.first == "click") base.click = v;
    else if (kv.first == "add_to_cart") base.add_to_cart = v;
    else if (kv.first == "purchase") base.purchase = v;
    else if (kv.first == "like") base.like = v;
    else if (kv.first == "rating_scale") base.rating_scale = v;
    else
      return absl::InvalidArgumentError(absl::StrCat(
          "--event_weights: unknown event '", kv.first,
          "'; known: view, click, add_to_cart, purchase, like, rating_scale"));
  }
  return base;
}

}  // namespace recd::server
