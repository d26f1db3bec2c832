// Structured logging: one line per event on stderr,
//   2026-11-26T10:00:00.123Z INFO  trainer  published pure_svd v3 (1.2 s)
// Levels below the configured minimum are dropped. Thread-safe; cheap when filtered out.
#ifndef RECD_SERVER_LOGGING_H_
#define RECD_SERVER_LOGGING_H_

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace recd::server {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();
// Parses "debug" | "info" | "warning" | "error"; false on anything else.
bool ParseLogLevel(absl::string_view text, LogLevel* level);

// Writes one line. `request_id` may be empty.
void LogLine(LogLevel level, absl::string_view component, absl::string_view message,
             absl::string_view request_id = "");

// LOG(kInfo, "trainer", "published ", name, " v", version);
#define RECD_LOG(level, component, ...)                                                 \
  do {                                                                                  \
    if (::recd::server::LogLevel::level >= ::recd::server::MinLogLevel()) {             \
      ::recd::server::LogLine(::recd::server::LogLevel::level, component,               \
                              ::absl::StrCat(__VA_ARGS__));                             \
    }                                                                                   \
  } while (false)

}  // namespace recd::server

#endif  // RECD_SERVER_LOGGING_H_
