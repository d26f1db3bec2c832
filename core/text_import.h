// Parsing of interaction files, one line at a time. Pure: no file I/O here; the caller reads
// lines (and skips blank ones, see IsBlankLine) and feeds them in with their 1-based numbers.
//
// Formats:
//
// (a) MovieLens ratings. u.data (ML-100K): `user<TAB>item<TAB>rating<TAB>unix_seconds`; also the
//     ratings.dat form of ML-1M/10M, `user::item::rating::unix_seconds`. Each line becomes
//     {user_id, item_id, event = rating, has_value, value = rating, timestamp_ms = seconds*1000}.
//
// (b) CSV (RFC 4180 quoting, one record per line). The first line is a header naming the columns,
//     in any order:
//         user_id   required, non-empty
//         item_id   required, non-empty
//         event     optional: view, click, add_to_cart, purchase, like, dislike, rating,
//                   impression (EventTypeName; matched ignoring ASCII case). Empty or column
//                   absent = view.
//         value     optional: finite number; empty = unset (has_value = false). Required for
//                   rating; for other events an explicit weight overriding the event default.
//         timestamp_ms  optional: Unix ms, integer >= 0; empty or absent = 0 (unset; the
//                   server stamps arrival time).
//     Example:
//         user_id,item_id,event,value,timestamp_ms
//         alice,"The Matrix, 1999",rating,4.5,1700000000000
//         bob,i42,view,,
//     Fields may be quoted with double quotes; a quote inside a quoted field is doubled ("").
//     Quoted fields cannot span lines. Unquoted fields are trimmed of spaces and tabs; a
//     trailing CR (CRLF files) and a UTF-8 byte-order mark on the header are ignored.
//
// Errors are InvalidArgument naming the line number, the column and the problem.
#ifndef RECD_CORE_TEXT_IMPORT_H_
#define RECD_CORE_TEXT_IMPORT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/types.h"

namespace recd {

// True for a line with nothing but spaces, tabs and CR/LF. Callers skip these.
bool IsBlankLine(absl::string_view line);

// Parses one MovieLens ratings line (either separator). line_no is for messages only.
absl::StatusOr<ExternalInteraction> ParseMovieLensLine(absl::string_view line, int64_t line_no);

// Splits one CSV record into fields (RFC 4180 quoting as described above). InvalidArgument for
// an unterminated quote or text after a closing quote.
absl::StatusOr<std::vector<std::string>> SplitCsvLine(absl::string_view line, int64_t line_no);

// Parses the CSV format above. Immutable after FromHeader; ParseLine is thread-safe.
class CsvInteractionParser {
 public:
  // Reads the header (line 1). InvalidArgument for an unknown or duplicate column name, or a
  // missing user_id / item_id column.
  static absl::StatusOr<CsvInteractionParser> FromHeader(absl::string_view header_line);

  // Parses one data line. The field count must equal the header's.
  absl::StatusOr<ExternalInteraction> ParseLine(absl::string_view line, int64_t line_no) const;

  int num_columns() const { return num_columns_; }

 private:
  CsvInteractionParser() = default;

  int num_columns_ = 0;
  int user_col_ = -1;
  int item_col_ = -1;
  int event_col_ = -1;      // -1 when absent
  int value_col_ = -1;      // -1 when absent
  int timestamp_col_ = -1;  // -1 when absent
};

}  // namespace recd

#endif  // RECD_CORE_TEXT_IMPORT_H_
