// The codec kernel table each ISA variant provides (codec.cc picks one at run time).
#pragma once
#include <cstddef>
#include <cstdint>

namespace bnn::codec {

struct Kernels {
  const char* name;
  bool (*add_f32)(const uint8_t* src, float* acc, size_t n, bool first, float divisor);
  void (*sign_encode)(const float* values, float* residual, uint8_t* scales, uint8_t* bits, float* decoded_out, size_t n);
  bool (*sign_accumulate)(const uint8_t* scales, const uint8_t* bits, float* acc, size_t n, bool first, float divisor);
  void (*half_encode)(const float* src, uint8_t* dst, float* decoded_out, size_t n);
  bool (*half_accumulate)(const uint8_t* src, float* acc, size_t n, bool first, float divisor);
  bool (*scale_into)(const float* src, float* dst, size_t n, double scale, float limit);
  size_t (*first_non_finite)(const float* src, size_t n);
};

const Kernels& portable_kernels();
#if defined(__x86_64__)
const Kernels& avx2_kernels();    // codec_avx2.cc (-mavx2 -mf16c)
const Kernels& avx512_kernels();  // codec_avx512.cc (-mavx512f -mavx512bw -mavx512dq -mavx512vl)
#endif

}  // namespace bnn::codec
