// Grow-only per-thread scratch buffers for the im2col paths: reused across calls so big
// temporaries cost no page faults or zeroing each time. Contents are uninitialised.
// Each call site passes its own Tag type, so two live buffers never share storage.
// (Baseline-compiled code only: ISA files keep their own, see xnor_gemm/kernels.h.)
#pragma once
#include <cstddef>
#include <memory>

namespace bnn {

template <class T, class Tag>
T* scratch_buffer(size_t n) {
  thread_local std::unique_ptr<T[]> buf;
  thread_local size_t cap = 0;
  if (n > cap) {
    buf.reset();
    buf.reset(new T[n]);
    cap = n;
  }
  return buf.get();
}

}  // namespace bnn
