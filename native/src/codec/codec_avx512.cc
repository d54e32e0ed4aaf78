// AVX-512 (F, BW, DQ, VL) + F16C codec kernels (built with those -m flags and
// -ffp-contract=off). Bit-identical to reference.h: element-wise float32 arithmetic, and each
// sign-ef block scale from the same 16 float64 lanes (two 8-lane accumulators).
#include <immintrin.h>

#include <cstring>

#include "kernels.h"
#include "reference.h"

namespace bnn::codec {

namespace {

inline __m512 sel_div(__m512 x, float divisor) {
  return divisor != 1.0f ? _mm512_div_ps(x, _mm512_set1_ps(divisor)) : x;
}

inline __mmask16 tail_mask(size_t left) { return static_cast<__mmask16>((1u << left) - 1u); }

// Lanes where x is NaN (quiet or signaling) or ±Inf.
inline __mmask16 non_finite_lanes(__m512 x) { return _mm512_fpclass_ps_mask(x, 0x01 | 0x08 | 0x10 | 0x80); }

bool add_f32(const uint8_t* src, float* acc, size_t n, bool first, float divisor) {
  size_t i = 0;
  __mmask16 bad = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 s = _mm512_loadu_ps(reinterpret_cast<const float*>(src + 4 * i));
    bad |= non_finite_lanes(s);
    const __m512 r = first ? s : _mm512_add_ps(_mm512_loadu_ps(acc + i), s);
    _mm512_storeu_ps(acc + i, sel_div(r, divisor));
  }
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 s = _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(src + 4 * i));
    bad |= non_finite_lanes(s);  // masked-off lanes load as 0
    const __m512 r = first ? s : _mm512_add_ps(_mm512_maskz_loadu_ps(m, acc + i), s);
    _mm512_mask_storeu_ps(acc + i, m, sel_div(r, divisor));
  }
  return bad != 0;
}

void sign_encode(const float* values, float* residual, uint8_t* scales, uint8_t* bits, float* decoded_out, size_t n) {
  const __m512 zero = _mm512_setzero_ps();
  for (size_t b0 = 0, blk = 0; b0 < n; b0 += kSignBlock, ++blk) {
    const size_t end = b0 + kSignBlock < n ? b0 + kSignBlock : n;
    const size_t full = b0 + (end - b0) / 16 * 16;
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    for (size_t i = b0; i < full; i += 16) {
      const __m512 u = _mm512_add_ps(_mm512_add_ps(_mm512_loadu_ps(values + i), _mm512_loadu_ps(residual + i)), zero);
      _mm512_storeu_ps(residual + i, u);
      const __m512 a = _mm512_abs_ps(u);
      lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(a)));
      hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1))));
    }
    double lanes[ref::kLanes];
    _mm512_storeu_pd(lanes, lo);
    _mm512_storeu_pd(lanes + 8, hi);
    for (size_t i = full; i < end; ++i) residual[i] = (values[i] + residual[i]) + 0.0f;
    ref::sum_abs_tail(residual, full, end, lanes);
    const float scale = ref::scale_from_lanes(lanes, end - b0);
    ref::store_f32(scales + 4 * blk, scale);
    const __m512 pos = _mm512_set1_ps(scale), neg = _mm512_set1_ps(-scale);
    for (size_t i = b0; i < full; i += 16) {
      const __m512 u = _mm512_loadu_ps(residual + i);
      const __mmask16 nonneg = static_cast<__mmask16>(~_mm512_movepi32_mask(_mm512_castps_si512(u)));
      const __m512 d = _mm512_mask_blend_ps(nonneg, neg, pos);
      _mm512_storeu_ps(residual + i, _mm512_sub_ps(u, d));
      if (decoded_out) _mm512_storeu_ps(decoded_out + i, d);
      const uint16_t bb = static_cast<uint16_t>(nonneg);
      std::memcpy(bits + i / 8, &bb, 2);
    }
    ref::sign_pass2(residual, bits, decoded_out, full, end, scale);
  }
}

bool sign_accumulate(const uint8_t* scales, const uint8_t* bits, float* acc, size_t n, bool first, float divisor) {
  bool bad = false;
  for (size_t b0 = 0, blk = 0; b0 < n; b0 += kSignBlock, ++blk) {
    const size_t end = b0 + kSignBlock < n ? b0 + kSignBlock : n;
    const size_t full = b0 + (end - b0) / 16 * 16;
    const float scale = ref::load_f32(scales + 4 * blk);
    bad |= ref::non_finite(scale);
    const __m512 pos = _mm512_set1_ps(scale), neg = _mm512_set1_ps(-scale);
    for (size_t i = b0; i < full; i += 16) {
      uint16_t b;
      std::memcpy(&b, bits + i / 8, 2);
      const __m512 d = _mm512_mask_blend_ps(static_cast<__mmask16>(b), neg, pos);
      const __m512 r = first ? d : _mm512_add_ps(_mm512_loadu_ps(acc + i), d);
      _mm512_storeu_ps(acc + i, sel_div(r, divisor));
    }
    for (size_t i = full; i < end; ++i) {
      const float d = ((bits[i >> 3] >> (i & 7)) & 1) ? scale : -scale;
      acc[i] = first ? d : acc[i] + d;
    }
    ref::finish(acc, full, end, divisor);
  }
  return bad;
}

void half_encode(const float* src, uint8_t* dst, float* decoded_out, size_t n) {
  size_t i = 0;
  const __m512i abs = _mm512_set1_epi32(0x7fffffff);
  const __m512i inf = _mm512_set1_epi32(0x7f800000), qnan = _mm512_set1_epi32(0x7fc00000);
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(src + i);
    const __m512i a = _mm512_and_si512(_mm512_castps_si512(x), abs);
    if (_mm512_cmpgt_epi32_mask(a, inf) & _mm512_cmplt_epi32_mask(a, qnan)) {
      // a signaling NaN: F16C would quiet it, the reference keeps its payload
      ref::half_encode_range(src, dst, decoded_out, i, i + 16);
      continue;
    }
    const __m256i h = _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * i), h);
    if (decoded_out) _mm512_storeu_ps(decoded_out + i, _mm512_cvtph_ps(h));
  }
  ref::half_encode_range(src, dst, decoded_out, i, n);
}

bool half_accumulate(const uint8_t* src, float* acc, size_t n, bool first, float divisor) {
  size_t i = 0;
  __mmask16 bad = 0;
  bool bad_tail = false;
  for (; i + 16 <= n; i += 16) {
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i)));
    bad |= non_finite_lanes(d);  // a half's NaN or ±Inf stays one in float32
    const __m512 r = first ? d : _mm512_add_ps(_mm512_loadu_ps(acc + i), d);
    _mm512_storeu_ps(acc + i, sel_div(r, divisor));
  }
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    bad_tail |= ref::half_non_finite(h);
    const float d = ref::half_bits_to_float(h);
    acc[i] = first ? d : acc[i] + d;
  }
  ref::finish(acc, n - n % 16, n, divisor);
  return bad_tail || bad != 0;
}

bool scale_into(const float* src, float* dst, size_t n, double scale, float limit) {
  const __m512d s = _mm512_set1_pd(scale);
  const __m512 lim = _mm512_set1_ps(limit);
  __mmask16 bad = 0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(src + i);
    const __m256 lo = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x)), s));
    const __m256 hi = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))), s));
    const __m512 d = _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
    bad |= _mm512_cmp_ps_mask(_mm512_abs_ps(d), lim, _CMP_NLT_UQ);  // NaN or |d| >= limit
    _mm512_storeu_ps(dst + i, d);
  }
  const bool bad_tail = ref::scale_range(src, dst, i, n, scale, limit);
  return bad_tail || bad != 0;
}

size_t first_non_finite(const float* src, size_t n) {
  size_t i = 0;
  // 64 values per test: the scan runs at memory speed; the lane is found in the tail loop
  for (; i + 64 <= n; i += 64) {
    const __mmask16 m = non_finite_lanes(_mm512_loadu_ps(src + i)) | non_finite_lanes(_mm512_loadu_ps(src + i + 16)) |
                        non_finite_lanes(_mm512_loadu_ps(src + i + 32)) | non_finite_lanes(_mm512_loadu_ps(src + i + 48));
    if (m) return ref::first_non_finite_range(src, i, i + 64);
  }
  return ref::first_non_finite_range(src, i, n);
}

}  // namespace

const Kernels& avx512_kernels() {
  static const Kernels k{"avx512",        add_f32,    sign_encode,     sign_accumulate, half_encode,
                         half_accumulate, scale_into, first_non_finite};
  return k;
}

}  // namespace bnn::codec
