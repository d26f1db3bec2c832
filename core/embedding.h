// Embedding matrices: one row per user or item, row-major float32, rows indexed by the dense
// UserIndex / ItemIndex. Row-major so a catalogue scan streams memory sequentially.
#ifndef RECD_CORE_EMBEDDING_H_
#define RECD_CORE_EMBEDDING_H_

#include <cstddef>

#include "Eigen/Core"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace recd {

using EmbeddingMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using EmbeddingVector = Eigen::VectorXf;

// OK if every entry is finite; otherwise InvalidArgument naming `what`, the row and the column.
absl::Status CheckFinite(const EmbeddingMatrix& m, absl::string_view what);

}  // namespace recd

#endif  // RECD_CORE_EMBEDDING_H_
