// AVX2 + F16C codec kernels (built with -mavx2 -mf16c -ffp-contract=off). Bit-identical to
// the scalar definitions in reference.h: element-wise float32 arithmetic in the same order,
// and each sign-ef block scale from the same 16 float64 lanes.
#include <immintrin.h>

#include <cstring>

#include "kernels.h"
#include "reference.h"

namespace bnn::codec {

namespace {

inline __m256 sel_div(__m256 x, float divisor) {
  return divisor != 1.0f ? _mm256_div_ps(x, _mm256_set1_ps(divisor)) : x;
}

// All-ones lanes where x is NaN or ±Inf (its exponent bits all set).
inline __m256i non_finite_lanes(__m256 x) {
  const __m256i exp = _mm256_set1_epi32(0x7f800000);
  return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(x), exp), exp);
}

inline bool any_lane(__m256i m) { return !_mm256_testz_si256(m, m); }

bool add_f32(const uint8_t* src, float* acc, size_t n, bool first, float divisor) {
  size_t i = 0;
  const bool div = divisor != 1.0f;
  const __m256 dv = _mm256_set1_ps(divisor);
  __m256i bad = _mm256_setzero_si256();
  bool bad_tail = false;
  if (first) {
    for (; i + 8 <= n; i += 8) {
      __m256 s = _mm256_loadu_ps(reinterpret_cast<const float*>(src + 4 * i));
      bad = _mm256_or_si256(bad, non_finite_lanes(s));
      _mm256_storeu_ps(acc + i, div ? _mm256_div_ps(s, dv) : s);
    }
    for (; i < n; ++i) {
      acc[i] = ref::load_f32(src + 4 * i);
      bad_tail |= ref::non_finite(acc[i]);
    }
  } else {
    for (; i + 8 <= n; i += 8) {
      const __m256 d = _mm256_loadu_ps(reinterpret_cast<const float*>(src + 4 * i));
      bad = _mm256_or_si256(bad, non_finite_lanes(d));
      __m256 s = _mm256_add_ps(_mm256_loadu_ps(acc + i), d);
      _mm256_storeu_ps(acc + i, div ? _mm256_div_ps(s, dv) : s);
    }
    for (; i < n; ++i) {
      const float d = ref::load_f32(src + 4 * i);
      bad_tail |= ref::non_finite(d);
      acc[i] = acc[i] + d;
    }
  }
  ref::finish(acc, n - n % 8, n, divisor);
  return bad_tail || any_lane(bad);
}

void sign_encode(const float* values, float* residual, uint8_t* scales, uint8_t* bits, float* decoded_out, size_t n) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (size_t b0 = 0, blk = 0; b0 < n; b0 += kSignBlock, ++blk) {
    const size_t end = b0 + kSignBlock < n ? b0 + kSignBlock : n;
    const size_t full = b0 + (end - b0) / 16 * 16;
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    for (size_t i = b0; i < full; i += 16) {
      const __m256 u0 = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(values + i), _mm256_loadu_ps(residual + i)), zero);
      const __m256 u1 = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(values + i + 8), _mm256_loadu_ps(residual + i + 8)), zero);
      _mm256_storeu_ps(residual + i, u0);
      _mm256_storeu_ps(residual + i + 8, u1);
      const __m256 x0 = _mm256_and_ps(u0, abs_mask), x1 = _mm256_and_ps(u1, abs_mask);
      a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(x0)));
      a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(x0, 1)));
      a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm256_castps256_ps128(x1)));
      a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm256_extractf128_ps(x1, 1)));
    }
    double lanes[ref::kLanes];
    _mm256_storeu_pd(lanes, a0);
    _mm256_storeu_pd(lanes + 4, a1);
    _mm256_storeu_pd(lanes + 8, a2);
    _mm256_storeu_pd(lanes + 12, a3);
    for (size_t i = full; i < end; ++i) residual[i] = (values[i] + residual[i]) + 0.0f;
    ref::sum_abs_tail(residual, full, end, lanes);
    const float scale = ref::scale_from_lanes(lanes, end - b0);
    ref::store_f32(scales + 4 * blk, scale);
    const __m256 pos = _mm256_set1_ps(scale), neg = _mm256_set1_ps(-scale);
    const size_t full8 = b0 + (end - b0) / 8 * 8;
    for (size_t i = b0; i < full8; i += 8) {
      const __m256 u = _mm256_loadu_ps(residual + i);
      const int negative = _mm256_movemask_ps(u);
      const __m256 d = _mm256_blendv_ps(pos, neg, u);  // sign bit set -> -scale
      _mm256_storeu_ps(residual + i, _mm256_sub_ps(u, d));
      if (decoded_out) _mm256_storeu_ps(decoded_out + i, d);
      bits[i / 8] = static_cast<uint8_t>(~negative & 0xff);
    }
    ref::sign_pass2(residual, bits, decoded_out, full8, end, scale);
  }
}

bool sign_accumulate(const uint8_t* scales, const uint8_t* bits, float* acc, size_t n, bool first, float divisor) {
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  bool bad = false;
  for (size_t b0 = 0, blk = 0; b0 < n; b0 += kSignBlock, ++blk) {
    const size_t end = b0 + kSignBlock < n ? b0 + kSignBlock : n;
    const float scale = ref::load_f32(scales + 4 * blk);
    bad |= ref::non_finite(scale);
    const __m256 pos = _mm256_set1_ps(scale), neg = _mm256_set1_ps(-scale);
    const size_t full8 = b0 + (end - b0) / 8 * 8;
    for (size_t i = b0; i < full8; i += 8) {
      const __m256i b = _mm256_set1_epi32(bits[i / 8]);
      const __m256 m = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(b, lane_bit), lane_bit));
      const __m256 d = _mm256_blendv_ps(neg, pos, m);
      const __m256 r = first ? d : _mm256_add_ps(_mm256_loadu_ps(acc + i), d);
      _mm256_storeu_ps(acc + i, sel_div(r, divisor));
    }
    for (size_t i = full8; i < end; ++i) {
      const float d = ((bits[i >> 3] >> (i & 7)) & 1) ? scale : -scale;
      acc[i] = first ? d : acc[i] + d;
    }
    ref::finish(acc, full8, end, divisor);
  }
  return bad;
}

// True when any of the 8 floats is a signaling NaN (F16C would quiet it; the reference keeps the payload).
inline bool any_snan(__m256i b) {
  const __m256i x = _mm256_and_si256(b, _mm256_set1_epi32(0x7fffffff));
  const __m256i gt = _mm256_cmpgt_epi32(x, _mm256_set1_epi32(0x7f800000));
  const __m256i lt = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7fc00000), x);
  return _mm256_movemask_epi8(_mm256_and_si256(gt, lt)) != 0;
}

void half_encode(const float* src, uint8_t* dst, float* decoded_out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(src + i);
    if (any_snan(_mm256_castps_si256(x))) {
      ref::half_encode_range(src, dst, decoded_out, i, i + 8);
      continue;
    }
    const __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * i), h);
    if (decoded_out) _mm256_storeu_ps(decoded_out + i, _mm256_cvtph_ps(h));
  }
  ref::half_encode_range(src, dst, decoded_out, i, n);
}

bool half_accumulate(const uint8_t* src, float* acc, size_t n, bool first, float divisor) {
  size_t i = 0;
  __m256i bad = _mm256_setzero_si256();
  bool bad_tail = false;
  for (; i + 8 <= n; i += 8) {
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i)));
    bad = _mm256_or_si256(bad, non_finite_lanes(d));  // a half's NaN or ±Inf stays one in float32
    __m256 r = first ? d : _mm256_add_ps(_mm256_loadu_ps(acc + i), d);
    _mm256_storeu_ps(acc + i, sel_div(r, divisor));
  }
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    bad_tail |= ref::half_non_finite(h);
    const float d = ref::half_bits_to_float(h);
    acc[i] = first ? d : acc[i] + d;
  }
  ref::finish(acc, n - n % 8, n, divisor);
  return bad_tail || any_lane(bad);
}

bool scale_into(const float* src, float* dst, size_t n, double scale, float limit) {
  const __m256d s = _mm256_set1_pd(scale);
  const __m256 lim = _mm256_set1_ps(limit);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 bad = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(src + i);
    const __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), s));
    const __m128 hi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), s));
    const __m256 d = _mm256_set_m128(hi, lo);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_and_ps(d, abs_mask), lim, _CMP_NLT_UQ));  // NaN or |d| >= limit
    _mm256_storeu_ps(dst + i, d);
  }
  const bool bad_tail = ref::scale_range(src, dst, i, n, scale, limit);
  return bad_tail || _mm256_movemask_ps(bad) != 0;
}

size_t first_non_finite(const float* src, size_t n) {
  size_t i = 0;
  // 32 values per test: the scan runs at memory speed; the lane is found in the tail loop
  for (; i + 32 <= n; i += 32) {
    const __m256i m = _mm256_or_si256(
        _mm256_or_si256(non_finite_lanes(_mm256_loadu_ps(src + i)), non_finite_lanes(_mm256_loadu_ps(src + i + 8))),
        _mm256_or_si256(non_finite_lanes(_mm256_loadu_ps(src + i + 16)), non_finite_lanes(_mm256_loadu_ps(src + i + 24))));
    if (any_lane(m)) return ref::first_non_finite_range(src, i, i + 32);
  }
  return ref::first_non_finite_range(src, i, n);
}

}  // namespace

const Kernels& avx2_kernels() {
  static const Kernels k{"avx2",          add_f32,    sign_encode,     sign_accumulate, half_encode,
                         half_accumulate, scale_into, first_non_finite};
  return k;
}

}  // namespace bnn::codec
