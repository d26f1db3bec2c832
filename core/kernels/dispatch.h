// Chooses the kernel table for this CPU once per process. Compiled with baseline flags.
#ifndef RECD_CORE_KERNELS_DISPATCH_H_
#define RECD_CORE_KERNELS_DISPATCH_H_

#include "core/kernels/kernels.h"

namespace recd {
namespace kernels {

enum class IsaLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// Highest level this CPU (and OS) supports, from CPUID. Cached after the first call.
IsaLevel SupportedIsaLevel();

// The level used when a scorer asks for "auto": SupportedIsaLevel(), lowered (never raised) by
// the environment variable RECD_SCORER_ISA=scalar|avx2|avx512 if set, for A/B runs and for
// testing the fallback on a fast machine. Cached after the first call.
IsaLevel DefaultIsaLevel();

// Kernels of `level`; the caller checks level <= SupportedIsaLevel().
const KernelTable& KernelsFor(IsaLevel level);

const char* IsaLevelName(IsaLevel level);

}  // namespace kernels
}  // namespace recd

#endif  // RECD_CORE_KERNELS_DISPATCH_H_
