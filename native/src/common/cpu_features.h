// Run-time CPU feature detection (CPUID via the compiler's builtins). Compiled without
// ISA flags so it runs on any x86-64 (and reports nothing elsewhere).
#pragma once

namespace bnn {

struct CpuFeatures {
  bool avx2 = false;
  bool popcnt = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512dq = false;
  bool avx512vl = false;
  bool avx512vpopcntdq = false;
};

const CpuFeatures& cpu_features();

}  // namespace bnn
