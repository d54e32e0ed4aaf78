// Wire-format kernels of the gradient all-reduce (src/collective/codec.ts): the fp32 sum,
// sign-ef (1-bit sign + scale, with error feedback) and fp16. Every variant (portable, AVX2,
// AVX-512, picked at run time) gives results bit-identical to the scalar definitions in
// reference.h, which are also what the JavaScript fallback computes:
//   * sums and differences are element-wise float32 operations (no reassociation);
//   * sign-ef has one scale per block of kSignBlock = 256 elements (the last block may be
//     shorter): mean |v + e| over the block as 16 float64 partial sums (lane j takes the
//     block's elements i ≡ j mod 16, in order), added lane 0..15, divided by the block's
//     length and rounded to float32.
// Byte buffers (message bodies) may sit at any alignment; float arrays too.
// The decode-and-accumulate kernels return true when a value they decoded from src was NaN or
// ±Inf (the all-reduce names the sender of such a chunk): the test rides along the pass that
// already reads every value.
#pragma once
#include <cstddef>
#include <cstdint>

#include "reference.h"  // kSignBlock, sign_blocks

namespace bnn::codec {

// acc[i] = first ? src[i] : acc[i] + src[i] (float32), then acc[i] /= divisor when divisor != 1.
// src: n little-endian float32 values. True when some src[i] is NaN or ±Inf.
bool add_f32(const uint8_t* src, float* acc, size_t n, bool first, float divisor);

// dst[i] = float32(double(src[i]) · scale): the product rounded once from float64, exactly what
// JavaScript's `dst[i] = src[i] * scale` into a Float32Array computes. dst may be src.
// True when some dst[i] is NaN or |dst[i]| >= limit (limit = +Inf: some dst[i] is not finite).
bool scale_into(const float* src, float* dst, size_t n, double scale, float limit);

// Index of the first NaN or ±Inf in src[0, n), or n when every value is finite.
size_t first_non_finite(const float* src, size_t n);

// sign-ef encode of n values with the residual e (updated in place):
//   u = (v + e) + 0 (−0 → +0); s_b = mean |u| over block b; bit i = (u_i is not negative);
//   d_i = bit ? s_b : −s_b; e_i = u_i − d_i; decoded_out[i] = d_i when decoded_out != null.
// scales: sign_blocks(n) little-endian float32; bits: ⌈n/8⌉ bytes, every byte written (bits
// past n are 0). decoded_out may alias values.
void sign_encode(const float* values, float* residual, uint8_t* scales, uint8_t* bits, float* decoded_out, size_t n);

// acc[i] = (first ? 0 : acc[i]) + (bit i ? s_b : −s_b) (first writes d_i), then /= divisor.
// True when some block's scale s_b is NaN or ±Inf.
bool sign_accumulate(const uint8_t* scales, const uint8_t* bits, float* acc, size_t n, bool first, float divisor);

// IEEE binary16, round to nearest even (as numpy's npy_floatbits_to_halfbits): dst gets n
// little-endian halves; decoded_out (may alias src) gets their float32 values when not null.
void half_encode(const float* src, uint8_t* dst, float* decoded_out, size_t n);

// acc[i] = (first ? 0 : acc[i]) + half(src[i]) (first writes), then /= divisor. True when some
// half is NaN or ±Inf.
bool half_accumulate(const uint8_t* src, float* acc, size_t n, bool first, float divisor);

// "avx512", "avx2" or "portable": the variant in use (BNN_CODEC_KERNEL=portable|avx2|avx512
// picks a lower one, e.g. for tests).
const char* active_variant();
// Forces a variant ("auto" = best available); throws std::invalid_argument if unsupported.
void set_variant(const char* name);

}  // namespace bnn::codec
