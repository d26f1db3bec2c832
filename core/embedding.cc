#include "core/embedding.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace recd {

absl::Status CheckFinite(const EmbeddingMatrix& m, absl::string_view what) {
  const float* p = m.data();
  const size_t n = static_cast<size_t>(m.size());
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(p[i])) {
      const size_t cols = m.cols() == 0 ? 1 : static_cast<size_t>(m.cols());
      return absl::InvalidArgumentError(absl::StrCat(what, ": non-finite value ", p[i], " at row ",
                                                     i / cols, ", column ", i % cols));
    }
  }
  return absl::OkStatus();
}

}  // namespace recd
