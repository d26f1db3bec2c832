#include "core/text_import.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace recd {
namespace {

constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1000;

absl::string_view StripLineEnd(absl::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  return line;
}

absl::string_view TrimBlanks(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

absl::Status LineError(int64_t line_no, absl::string_view column, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("line ", line_no, ", column ", column, ": ", problem));
}

// Error text shows at most this much of an offending field.
std::string Excerpt(absl::string_view s) {
  constexpr size_t kMax = 40;
  return s.size() <= kMax ? std::string(s) : absl::StrCat(s.substr(0, kMax), "...");
}

absl::StatusOr<float> ParseFiniteFloat(absl::string_view text, int64_t line_no,
                                       absl::string_view column) {
  float v = 0.0f;
  if (!absl::SimpleAtof(text, &v)) {
    return LineError(line_no, column, absl::StrCat("'", Excerpt(text), "' is not a number"));
  }
  if (!std::isfinite(v)) {
    return LineError(line_no, column,
                     absl::StrCat("'", Excerpt(text), "' is not a finite float32 number"));
  }
  return v;
}

absl::StatusOr<int64_t> ParseNonNegativeInt(absl::string_view text, int64_t line_no,
                                            absl::string_view column, int64_t max) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v)) {
    return LineError(line_no, column, absl::StrCat("'", Excerpt(text), "' is not an integer"));
  }
  if (v < 0 || v > max) {
    return LineError(line_no, column,
                     absl::StrCat(v, " is outside the allowed range [0, ", max, "]"));
  }
  return v;
}

absl::StatusOr<EventType> ParseEventName(absl::string_view text, int64_t line_no,
                                         absl::string_view column) {
  for (int e = 1; e <= kMaxEventType; ++e) {
    const EventType type = static_cast<EventType>(e);
    if (absl::EqualsIgnoreCase(text, EventTypeName(type))) return type;
  }
  return LineError(line_no, column,
                   absl::StrCat("unknown event '", Excerpt(text),
                                "'; expected view, click, add_to_cart, purchase, like, dislike, "
                                "rating or impression"));
}

}  // namespace

bool IsBlankLine(absl::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

absl::StatusOr<ExternalInteraction> ParseMovieLensLine(absl::string_view line, int64_t line_no) {
  line = StripLineEnd(line);
  const std::vector<absl::string_view> fields =
      absl::StrContains(line, "::") ? std::vector<absl::string_view>(absl::StrSplit(line, "::"))
                                    : std::vector<absl::string_view>(absl::StrSplit(line, '\t'));
  if (fields.size() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", line_no, ": expected 4 fields (user, item, rating, timestamp), got ",
                     fields.size()));
  }
  ExternalInteraction x;
  const absl::string_view user = TrimBlanks(fields[0]);
  const absl::string_view item = TrimBlanks(fields[1]);
  if (user.empty()) return LineError(line_no, "1 (user)", "empty user id");
  if (item.empty()) return LineError(line_no, "2 (item)", "empty item id");
  x.user_id = std::string(user);
  x.item_id = std::string(item);
  auto rating = ParseFiniteFloat(TrimBlanks(fields[2]), line_no, "3 (rating)");
  if (!rating.ok()) return rating.status();
  auto seconds = ParseNonNegativeInt(TrimBlanks(fields[3]), line_no, "4 (timestamp)", kMaxSeconds);
  if (!seconds.ok()) return seconds.status();
  x.event = EventType::kRating;
  x.has_value = true;
  x.value = *rating;
  x.timestamp_ms = *seconds * 1000;
  return x;
}

absl::StatusOr<std::vector<std::string>> SplitCsvLine(absl::string_view line, int64_t line_no) {
  line = StripLineEnd(line);
  std::vector<std::string> fields;
  size_t i = 0;
  while (true) {
    // One field starting at i.
    size_t start = i;
    while (start < line.size() && (line[start] == ' ' || line[start] == '\t')) ++start;
    std::string field;
    if (start < line.size() && line[start] == '"') {
      size_t j = start + 1;
      bool closed = false;
      while (j < line.size()) {
        if (line[j] == '"') {
          if (j + 1 < line.size() && line[j + 1] == '"') {
            field.push_back('"');
            j += 2;
            continue;
          }
          closed = true;
          ++j;
          break;
        }
        field.push_back(line[j++]);
      }
      if (!closed) {
        return LineError(line_no, absl::StrCat(fields.size() + 1),
                         "unterminated quoted field (quoted fields cannot span lines)");
      }
      while (j < line.size() && (line[j] == ' ' || line[j] == '\t')) ++j;
      if (j < line.size() && line[j] != ',') {
        return LineError(line_no, absl::StrCat(fields.size() + 1),
                         "unexpected text after a closing quote");
      }
      i = j;
    } else {
      size_t j = line.find(',', i);
      if (j == absl::string_view::npos) j = line.size();
      const absl::string_view raw = TrimBlanks(line.substr(i, j - i));
      if (absl::StrContains(raw, '"')) {
        return LineError(line_no, absl::StrCat(fields.size() + 1),
                         "a double quote inside an unquoted field (quote the whole field and "
                         "double the quote)");
      }
      field = std::string(raw);
      i = j;
    }
    fields.push_back(std::move(field));
    if (i >= line.size()) break;
    ++i;  // the comma; a trailing comma yields a final empty field
  }
  return fields;
}

absl::StatusOr<CsvInteractionParser> CsvInteractionParser::FromHeader(
    absl::string_view header_line) {
  if (absl::StartsWith(header_line, "\xEF\xBB\xBF")) header_line.remove_prefix(3);
  auto names = SplitCsvLine(header_line, 1);
  if (!names.ok()) return names.status();
  CsvInteractionParser p;
  p.num_columns_ = static_cast<int>(names->size());
  for (int c = 0; c < p.num_columns_; ++c) {
    const std::string name = absl::AsciiStrToLower((*names)[c]);
    int* slot = nullptr;
    if (name == "user_id") slot = &p.user_col_;
    else if (name == "item_id") slot = &p.item_col_;
    else if (name == "event") slot = &p.event_col_;
    else if (name == "value") slot = &p.value_col_;
    else if (name == "timestamp_ms") slot = &p.timestamp_col_;
    if (slot == nullptr) {
      return LineError(1, absl::StrCat(c + 1),
                       absl::StrCat("unknown header column '", Excerpt((*names)[c]),
                                    "'; expected user_id, item_id, event, value, timestamp_ms"));
    }
    if (*slot >= 0) {
      return LineError(1, absl::StrCat(c + 1), absl::StrCat("duplicate column '", name, "'"));
    }
    *slot = c;
  }
  if (p.user_col_ < 0) {
    return absl::InvalidArgumentError("line 1: the header has no user_id column");
  }
  if (p.item_col_ < 0) {
    return absl::InvalidArgumentError("line 1: the header has no item_id column");
  }
  return p;
}

absl::StatusOr<ExternalInteraction> CsvInteractionParser::ParseLine(absl::string_view line,
                                                                     int64_t line_no) const {
  auto fields_or = SplitCsvLine(line, line_no);
  if (!fields_or.ok()) return fields_or.status();
  const std::vector<std::string>& f = *fields_or;
  if (static_cast<int>(f.size()) != num_columns_) {
    return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": expected ", num_columns_,
                                                   " fields (as in the header), got ", f.size()));
  }
  auto column = [](int c, absl::string_view name) { return absl::StrCat(c + 1, " (", name, ")"); };
  ExternalInteraction x;
  if (f[user_col_].empty()) return LineError(line_no, column(user_col_, "user_id"), "empty id");
  if (f[item_col_].empty()) return LineError(line_no, column(item_col_, "item_id"), "empty id");
  x.user_id = f[user_col_];
  x.item_id = f[item_col_];
  if (event_col_ >= 0 && !f[event_col_].empty()) {
    auto event = ParseEventName(f[event_col_], line_no, column(event_col_, "event"));
    if (!event.ok()) return event.status();
    x.event = *event;
  }
  if (value_col_ >= 0 && !f[value_col_].empty()) {
    auto value = ParseFiniteFloat(f[value_col_], line_no, column(value_col_, "value"));
    if (!value.ok()) return value.status();
    x.has_value = true;
    x.value = *value;
  }
  if (x.event == EventType::kRating && !x.has_value) {
    return LineError(line_no,
                     value_col_ >= 0 ? column(value_col_, "value") : std::string("value"),
                     "a rating needs a value");
  }
  if (timestamp_col_ >= 0 && !f[timestamp_col_].empty()) {
    auto ts = ParseNonNegativeInt(f[timestamp_col_], line_no,
                                  column(timestamp_col_, "timestamp_ms"),
                                  std::numeric_limits<int64_t>::max());
    if (!ts.ok()) return ts.status();
    x.timestamp_ms = *ts;
  }
  return x;
}

}  // namespace recd
