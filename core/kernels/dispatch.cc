#include "core/kernels/dispatch.h"

#include <cstdlib>
#include <cstring>

namespace recd {
namespace kernels {
namespace {

IsaLevel Detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // libgcc also checks that the OS saves the wider registers (XGETBV), not only CPUID bits.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("fma")) {
    return IsaLevel::kAvx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return IsaLevel::kAvx2;
#endif
  return IsaLevel::kScalar;
}

IsaLevel FromEnvironment(IsaLevel supported) {
  const char* v = std::getenv("RECD_SCORER_ISA");
  if (v == nullptr) return supported;
  IsaLevel wanted = supported;
  if (std::strcmp(v, "scalar") == 0) wanted = IsaLevel::kScalar;
  if (std::strcmp(v, "avx2") == 0) wanted = IsaLevel::kAvx2;
  if (std::strcmp(v, "avx512") == 0) wanted = IsaLevel::kAvx512;
  return wanted < supported ? wanted : supported;
}

bool HasAvx512Vnni() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

}  // namespace

IsaLevel SupportedIsaLevel() {
  static const IsaLevel level = Detect();
  return level;
}

IsaLevel DefaultIsaLevel() {
  static const IsaLevel level = FromEnvironment(SupportedIsaLevel());
  return level;
}

const KernelTable& KernelsFor(IsaLevel level) {
  switch (level) {
    case IsaLevel::kAvx512: {
      // VNNI changes only how the int8 scan multiplies; its scores are bitwise the same.
      static const bool vnni = HasAvx512Vnni();
      return vnni ? kAvx512VnniKernels : kAvx512Kernels;
    }
    case IsaLevel::kAvx2:
      return kAvx2Kernels;
    case IsaLevel::kScalar:
      break;
  }
  return kScalarKernels;
}

const char* IsaLevelName(IsaLevel level) { return KernelsFor(level).isa; }

}  // namespace kernels
}  // namespace recd
