// Scalar definitions of the codec kernels (codec.h), shared by every variant for tails and
// by the portable variant. Written with memcpy for unaligned little-endian loads. Everything
// here has internal linkage (anonymous namespaces): the AVX2/AVX-512 files include it too,
// and an inline function they emitted must never stand in for the baseline copy.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace bnn::codec {
namespace {

// Elements per sign-ef scale (a multiple of 16 lanes and of 8 bits).
constexpr size_t kSignBlock = 256;
inline size_t sign_blocks(size_t n) { return (n + kSignBlock - 1) / kSignBlock; }

}  // namespace
}  // namespace bnn::codec

namespace bnn::codec::ref {
namespace {

constexpr int kLanes = 16;

inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

inline void store_f32(uint8_t* p, float v) { std::memcpy(p, &v, 4); }

inline uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// NaN or ±Inf: the exponent bits all set (the test every variant makes, on bits or by class).
inline bool non_finite(float f) { return (bits_of(f) & 0x7f800000u) == 0x7f800000u; }

// A half's NaN or ±Inf: its exponent bits all set.
inline bool half_non_finite(uint16_t h) { return (h & 0x7c00u) == 0x7c00u; }

// Whether x is NaN or |x| >= limit (scale_into's range test; limit = +Inf tests for non-finite).
inline bool out_of_range(float x, float limit) { return !(std::fabs(x) < limit); }

// Index of the first non-finite value in [from, to), or to.
inline size_t first_non_finite_range(const float* src, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i)
    if (non_finite(src[i])) return i;
  return to;
}

// scale_into over [from, to): the product rounded once from float64; true when some result is out of range.
inline bool scale_range(const float* src, float* dst, size_t from, size_t to, double scale, float limit) {
  bool bad = false;
  for (size_t i = from; i < to; ++i) {
    dst[i] = static_cast<float>(static_cast<double>(src[i]) * scale);
    bad |= out_of_range(dst[i], limit);
  }
  return bad;
}

// npy_floatbits_to_halfbits: round to nearest even, overflow to ±Inf, NaN stays NaN.
inline uint16_t float_to_half_bits(uint32_t f) {
  const uint32_t h_sgn = (f >> 16) & 0x8000u;
  const uint32_t f_exp = f & 0x7f800000u;
  if (f_exp >= 0x47800000u) {
    if (f_exp == 0x7f800000u) {
      const uint32_t f_sig = f & 0x007fffffu;
      if (f_sig != 0) {
        uint32_t ret = 0x7c00u + (f_sig >> 13);
        if (ret == 0x7c00u) ret++;
        return static_cast<uint16_t>(h_sgn + ret);
      }
    }
    return static_cast<uint16_t>(h_sgn + 0x7c00u);
  }
  if (f_exp <= 0x38000000u) {
    if (f_exp < 0x33000000u) return static_cast<uint16_t>(h_sgn);
    const uint32_t e = f_exp >> 23;
    uint32_t f_sig = 0x00800000u + (f & 0x007fffffu);
    f_sig >>= 113 - e;
    if ((f_sig & 0x00003fffu) != 0x00001000u || (f & 0x000007ffu) != 0) f_sig += 0x00001000u;
    return static_cast<uint16_t>(h_sgn + (f_sig >> 13));
  }
  const uint32_t h_exp = (f_exp - 0x38000000u) >> 13;
  uint32_t f_sig = f & 0x007fffffu;
  if ((f_sig & 0x00003fffu) != 0x00001000u) f_sig += 0x00001000u;
  return static_cast<uint16_t>(h_sgn + h_exp + (f_sig >> 13));
}

inline float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  const uint32_t m = h & 0x3ffu;
  if (e == 0) {
    const float v = static_cast<float>(m) * 5.9604644775390625e-8f;  // m · 2^-24, exact
    return sign ? -v : v;
  }
  uint32_t bits;
  if (e == 31) bits = sign | 0x7f800000u | (m << 13) | (m != 0 ? 0x400000u : 0);  // NaN quieted, as F16C does
  else bits = sign | ((e + 112) << 23) | (m << 13);
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

// Adds |u| of elements [from, to) into lanes[i mod 16].
inline void sum_abs_tail(const float* u, size_t from, size_t to, double* lanes) {
  for (size_t i = from; i < to; ++i) lanes[i % kLanes] += static_cast<double>(std::fabs(u[i]));
}

inline float scale_from_lanes(const double* lanes, size_t n) {
  if (n == 0) return 0.0f;
  double s = 0.0;
  for (int j = 0; j < kLanes; ++j) s += lanes[j];
  return static_cast<float>(s / static_cast<double>(n));
}

// Pass 2 of sign_encode over [from, to) (from a multiple of 8): signs, residual, decoded.
inline void sign_pass2(float* residual, uint8_t* bits, float* decoded_out, size_t from, size_t to, float scale) {
  for (size_t byte_start = from; byte_start < to; byte_start += 8) {
    uint32_t byte = 0;
    const size_t end = byte_start + 8 < to ? byte_start + 8 : to;
    for (size_t i = byte_start; i < end; ++i) {
      const float u = residual[i];
      const bool pos = (bits_of(u) >> 31) == 0;
      const float d = pos ? scale : -scale;
      byte |= static_cast<uint32_t>(pos) << (i - byte_start);
      residual[i] = u - d;
      if (decoded_out) decoded_out[i] = d;
    }
    bits[byte_start / 8] = static_cast<uint8_t>(byte);
  }
}

// fp16 encode of [from, to): dst gets little-endian halves, decoded_out (when not null) their values.
inline void half_encode_range(const float* src, uint8_t* dst, float* decoded_out, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) {
    const uint16_t h = float_to_half_bits(bits_of(src[i]));
    std::memcpy(dst + 2 * i, &h, 2);
    if (decoded_out) decoded_out[i] = half_bits_to_float(h);
  }
}

inline void finish(float* acc, size_t from, size_t to, float divisor) {
  if (divisor != 1.0f)
    for (size_t i = from; i < to; ++i) acc[i] = acc[i] / divisor;
}

}  // namespace
}  // namespace bnn::codec::ref
