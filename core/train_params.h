// Hyperparameter parsing shared by the training algorithms.
//
// ModelConfig::params is text (it arrives from flags, config files and the API). Each algorithm
// declares its parameters once, as a list of ParamSpec; ParseParams checks the given map against
// it, rejecting unknown keys and out-of-range values with messages that name the key, the value
// and the accepted range, and fills in defaults. The same specs parse a stored version's
// ModelMetadata::params when the model is loaded, so training and serving agree on the values.
#ifndef RECD_CORE_TRAIN_PARAMS_H_
#define RECD_CORE_TRAIN_PARAMS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace recd {

struct ParamSpec {
  enum class Kind { kInt, kDouble, kChoice };

  static ParamSpec Int(std::string key, int default_value, int min, int max, std::string help);
  // [min, max] inclusive; NaN and infinities are always rejected.
  static ParamSpec Double(std::string key, double default_value, double min, double max,
                          std::string help);
  static ParamSpec Choice(std::string key, std::string default_value,
                          std::vector<std::string> choices, std::string help);

  std::string key;
  Kind kind = Kind::kInt;
  std::string default_text;
  double min = 0.0;
  double max = 0.0;
  std::vector<std::string> choices;
  std::string help;
};

// The parsed values of one parameter set. Getters must name a key of the specs it was parsed
// with and the matching kind (a programming error otherwise: they return 0 / empty).
class ParsedParams {
 public:
  int GetInt(absl::string_view key) const;
  double GetDouble(absl::string_view key) const;
  const std::string& GetChoice(absl::string_view key) const;

  // Every parameter as text, defaults filled in: what ModelMetadata::params records.
  const std::map<std::string, std::string>& text() const { return text_; }

 private:
  friend absl::StatusOr<ParsedParams> ParseParams(absl::string_view algorithm,
                                                  absl::Span<const ParamSpec> specs,
                                                  const std::map<std::string, std::string>& params);
  std::map<std::string, std::string, std::less<>> strings_;
  std::map<std::string, double, std::less<>> numbers_;
  std::map<std::string, std::string> text_;
};

// Parses `params` against `specs`. Leading/trailing spaces around values are ignored.
// InvalidArgument (prefixed with `algorithm`) for an unknown key (listing the accepted keys), a
// value that does not parse, or a value outside the allowed range or choices.
absl::StatusOr<ParsedParams> ParseParams(absl::string_view algorithm,
                                         absl::Span<const ParamSpec> specs,
                                         const std::map<std::string, std::string>& params);

}  // namespace recd

#endif  // RECD_CORE_TRAIN_PARAMS_H_
