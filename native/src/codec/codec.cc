// Portable codec kernels and the run-time choice of variant (see codec.h).
#include "codec.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "../common/cpu_features.h"
#include "kernels.h"
#include "reference.h"

namespace bnn::codec {

namespace {

bool add_f32_portable(const uint8_t* src, float* acc, size_t n, bool first, float divisor) {
  bool bad = false;
  for (size_t i = 0; i < n; ++i) {
    const float d = ref::load_f32(src + 4 * i);
    bad |= ref::non_finite(d);
    acc[i] = first ? d : acc[i] + d;
  }
  ref::finish(acc, 0, n, divisor);
  return bad;
}

void sign_encode_portable(const float* values, float* residual, uint8_t* scales, uint8_t* bits, float* decoded_out, size_t n) {
  for (size_t b0 = 0, blk = 0; b0 < n; b0 += kSignBlock, ++blk) {
    const size_t end = b0 + kSignBlock < n ? b0 + kSignBlock : n;
    double lanes[ref::kLanes] = {0};
    for (size_t i = b0; i < end; ++i) residual[i] = (values[i] + residual[i]) + 0.0f;
    ref::sum_abs_tail(residual, b0, end, lanes);
    const float scale = ref::scale_from_lanes(lanes, end - b0);
    ref::store_f32(scales + 4 * blk, scale);
    ref::sign_pass2(residual, bits, decoded_out, b0, end, scale);
  }
}

bool sign_accumulate_portable(const uint8_t* scales, const uint8_t* bits, float* acc, size_t n, bool first, float divisor) {
  bool bad = false;
  for (size_t b0 = 0, blk = 0; b0 < n; b0 += kSignBlock, ++blk) {
    const size_t end = b0 + kSignBlock < n ? b0 + kSignBlock : n;
    const float scale = ref::load_f32(scales + 4 * blk);
    bad |= ref::non_finite(scale);
    for (size_t i = b0; i < end; ++i) {
      const float d = ((bits[i >> 3] >> (i & 7)) & 1) ? scale : -scale;
      acc[i] = first ? d : acc[i] + d;
    }
  }
  ref::finish(acc, 0, n, divisor);
  return bad;
}

void half_encode_portable(const float* src, uint8_t* dst, float* decoded_out, size_t n) {
  ref::half_encode_range(src, dst, decoded_out, 0, n);
}

bool half_accumulate_portable(const uint8_t* src, float* acc, size_t n, bool first, float divisor) {
  bool bad = false;
  for (size_t i = 0; i < n; ++i) {
    const uint16_t h = static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8));
    bad |= ref::half_non_finite(h);
    const float d = ref::half_bits_to_float(h);
    acc[i] = first ? d : acc[i] + d;
  }
  ref::finish(acc, 0, n, divisor);
  return bad;
}

bool scale_into_portable(const float* src, float* dst, size_t n, double scale, float limit) {
  return ref::scale_range(src, dst, 0, n, scale, limit);
}

size_t first_non_finite_portable(const float* src, size_t n) { return ref::first_non_finite_range(src, 0, n); }

bool supports(const std::string& name) {
  if (name == "portable") return true;
#if defined(__x86_64__)
  const CpuFeatures& f = cpu_features();
  __builtin_cpu_init();
  const bool f16c = __builtin_cpu_supports("f16c");
  if (name == "avx2") return f.avx2 && f16c;
  if (name == "avx512") return f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f16c;
#endif
  return false;
}

const Kernels& by_name(const std::string& name) {
#if defined(__x86_64__)
  if (name == "avx512") return avx512_kernels();
  if (name == "avx2") return avx2_kernels();
#endif
  return portable_kernels();
}

const Kernels& best() {
  for (const char* n : {"avx512", "avx2"})
    if (supports(n)) return by_name(n);
  return portable_kernels();
}

const Kernels* initial() {
  const char* env = std::getenv("BNN_CODEC_KERNEL");
  if (env && *env && std::string(env) != "auto" && supports(env)) return &by_name(env);
  return &best();
}

const Kernels*& active() {
  static const Kernels* k = initial();
  return k;
}

}  // namespace

const Kernels& portable_kernels() {
  static const Kernels k{"portable", add_f32_portable, sign_encode_portable, sign_accumulate_portable,
                         half_encode_portable, half_accumulate_portable, scale_into_portable,
                         first_non_finite_portable};
  return k;
}

bool add_f32(const uint8_t* src, float* acc, size_t n, bool first, float divisor) {
  return active()->add_f32(src, acc, n, first, divisor);
}
void sign_encode(const float* values, float* residual, uint8_t* scales, uint8_t* bits, float* decoded_out, size_t n) {
  active()->sign_encode(values, residual, scales, bits, decoded_out, n);
}
bool sign_accumulate(const uint8_t* scales, const uint8_t* bits, float* acc, size_t n, bool first, float divisor) {
  return active()->sign_accumulate(scales, bits, acc, n, first, divisor);
}
void half_encode(const float* src, uint8_t* dst, float* decoded_out, size_t n) {
  active()->half_encode(src, dst, decoded_out, n);
}
bool half_accumulate(const uint8_t* src, float* acc, size_t n, bool first, float divisor) {
  return active()->half_accumulate(src, acc, n, first, divisor);
}

bool scale_into(const float* src, float* dst, size_t n, double scale, float limit) {
  return active()->scale_into(src, dst, n, scale, limit);
}

size_t first_non_finite(const float* src, size_t n) { return active()->first_non_finite(src, n); }

const char* active_variant() { return active()->name; }

void set_variant(const char* name) {
  const std::string s = name ? name : "";
  if (s == "auto") {
    active() = &best();
    return;
  }
  if (s != "portable" && s != "avx2" && s != "avx512")
    throw std::invalid_argument("codec kernel '" + s + "' is unknown: expected auto, avx512, avx2 or portable");
  if (!supports(s)) throw std::invalid_argument("codec kernel '" + s + "' is not supported by this CPU");
  active() = &by_name(s);
}

}  // namespace bnn::codec
