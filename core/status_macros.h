// Status propagation helpers. Debian's Abseil (20220623) predates ABSL_RETURN_IF_ERROR, so the
// project keeps its own two macros here and nowhere else.
#ifndef RECD_CORE_STATUS_MACROS_H_
#define RECD_CORE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RECD_STATUS_CONCAT_INNER_(a, b) a##b
#define RECD_STATUS_CONCAT_(a, b) RECD_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status recd_status_ = (expr);          \
    if (!recd_status_.ok()) return recd_status_;   \
  } while (false)

// `ASSIGN_OR_RETURN(auto x, StatusOrExpr());` assigns the value or returns the error.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  RECD_ASSIGN_OR_RETURN_IMPL_(RECD_STATUS_CONCAT_(recd_statusor_, __LINE__), lhs, rexpr)

#define RECD_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // RECD_CORE_STATUS_MACROS_H_
