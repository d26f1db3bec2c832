#include "core/train_params.h"

#include <cmath>
#include <cstdint>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace recd {

ParamSpec ParamSpec::Int(std::string key, int default_value, int min, int max, std::string help) {
  ParamSpec s;
  s.key = std::move(key);
  s.kind = Kind::kInt;
  s.default_text = absl::StrCat(default_value);
  s.min = min;
  s.max = max;
  s.help = std::move(help);
  return s;
}

ParamSpec ParamSpec::Double(std::string key, double default_value, double min, double max,
                            std::string help) {
  ParamSpec s;
  s.key = std::move(key);
  s.kind = Kind::kDouble;
  s.default_text = absl::StrCat(default_value);
  s.min = min;
  s.max = max;
  s.help = std::move(help);
  return s;
}

ParamSpec ParamSpec::Choice(std::string key, std::string default_value,
                            std::vector<std::string> choices, std::string help) {
  ParamSpec s;
  s.key = std::move(key);
  s.kind = Kind::kChoice;
  s.default_text = std::move(default_value);
  s.choices = std::move(choices);
  s.help = std::move(help);
  return s;
}

int ParsedParams::GetInt(absl::string_view key) const {
  auto it = numbers_.find(key);
  return it == numbers_.end() ? 0 : static_cast<int>(it->second);
}

double ParsedParams::GetDouble(absl::string_view key) const {
  auto it = numbers_.find(key);
  return it == numbers_.end() ? 0.0 : it->second;
}

const std::string& ParsedParams::GetChoice(absl::string_view key) const {
  static const std::string* const kEmpty = new std::string();
  auto it = strings_.find(key);
  return it == strings_.end() ? *kEmpty : it->second;
}

namespace {

std::string AcceptedKeys(absl::Span<const ParamSpec> specs) {
  std::vector<std::string> keys;
  keys.reserve(specs.size());
  for (const ParamSpec& s : specs) keys.push_back(s.key);
  return keys.empty() ? "(none)" : absl::StrJoin(keys, ", ");
}

}  // namespace

absl::StatusOr<ParsedParams> ParseParams(absl::string_view algorithm,
                                         absl::Span<const ParamSpec> specs,
                                         const std::map<std::string, std::string>& params) {
  // Unknown keys first: a misspelt key is the likeliest mistake, and silently training with the
  // default would hide it.
  for (const auto& [key, value] : params) {
    bool known = false;
    for (const ParamSpec& s : specs) known = known || s.key == key;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(algorithm, ": unknown parameter '", key,
                                                     "'; accepted: ", AcceptedKeys(specs)));
    }
  }

  ParsedParams out;
  for (const ParamSpec& s : specs) {
    auto it = params.find(s.key);
    const bool given = it != params.end();
    const absl::string_view text =
        absl::StripAsciiWhitespace(given ? absl::string_view(it->second) : s.default_text);
    auto bad = [&](absl::string_view allowed) {
      return absl::InvalidArgumentError(absl::StrCat(algorithm, ": parameter '", s.key,
                                                     "' has invalid value '", text, "'; ",
                                                     allowed));
    };
    switch (s.kind) {
      case ParamSpec::Kind::kInt: {
        int64_t v = 0;
        const std::string allowed =
            absl::StrCat("expected an integer in [", static_cast<int64_t>(s.min), ", ",
                         static_cast<int64_t>(s.max), "]");
        if (!absl::SimpleAtoi(text, &v) || v < s.min || v > s.max) return bad(allowed);
        out.numbers_[s.key] = static_cast<double>(v);
        out.text_[s.key] = absl::StrCat(v);
        break;
      }
      case ParamSpec::Kind::kDouble: {
        double v = 0.0;
        const std::string allowed = absl::StrCat("expected a number in [", s.min, ", ", s.max, "]");
        if (!absl::SimpleAtod(text, &v) || !std::isfinite(v) || v < s.min || v > s.max) {
          return bad(allowed);
        }
        out.numbers_[s.key] = v;
        out.text_[s.key] = std::string(text);  // as given: keeps every digit the caller wrote
        break;
      }
      case ParamSpec::Kind::kChoice: {
        bool ok = false;
        for (const std::string& c : s.choices) ok = ok || c == text;
        if (!ok) return bad(absl::StrCat("expected one of: ", absl::StrJoin(s.choices, ", ")));
        out.strings_[s.key] = std::string(text);
        out.text_[s.key] = std::string(text);
        break;
      }
    }
  }
  return out;
}

}  // namespace recd
