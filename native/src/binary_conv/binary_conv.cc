#include "binary_conv.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../common/scratch.h"
#include "../common/thread_pool.h"
#include "../xnor_gemm/reference.h"

namespace bnn::binary_conv {

namespace {

struct PixelsTag {};
struct PatchesTag {};

// ORs the low `bits` bits of src (whose bits past `bits` are 0) into dst at bit offset pos.
inline void append_bits(uint64_t* dst, size_t dst_words, size_t pos, const uint64_t* src, size_t bits) {
  const size_t words = ref::packed_words(bits);
  size_t wi = pos / 64;
  const unsigned off = pos % 64;
  if (off == 0) {
    for (size_t i = 0; i < words; ++i) dst[wi + i] |= src[i];
    return;
  }
  for (size_t i = 0; i < words; ++i, ++wi) {
    dst[wi] |= src[i] << off;
    if (wi + 1 < dst_words) dst[wi + 1] |= src[i] >> (64 - off);
  }
}

// popcount of bits [begin, begin + len) of a packed row.
inline int popcount_range(const uint64_t* row, size_t begin, size_t len) {
  int count = 0;
  for (size_t b = begin; b < begin + len;) {
    const size_t w = b / 64, off = b % 64, take = std::min<size_t>(64 - off, begin + len - b);
    const uint64_t mask = take == 64 ? ~uint64_t{0} : ((uint64_t{1} << take) - 1) << off;
    count += __builtin_popcountll(row[w] & mask);
    b += take;
  }
  return count;
}

}  // namespace

void conv2d(const float* x, const uint64_t* w_bits, const conv::Geometry& g, float* out, const xnor::Kernels& kern) {
  conv::require_valid(g);
  BNN_REQUIRE(x && w_bits && out, "null buffer");
  const size_t k = g.patch(), kw = ref::packed_words(k);
  const size_t cw = ref::packed_words(g.in_c);
  const size_t taps = g.taps();
  ThreadPool& pool = ThreadPool::global();

  // Sign bits of every input pixel: [batch * in_h * in_w][cw].
  uint64_t* pixels = scratch_buffer<uint64_t, PixelsTag>(g.batch * g.in_h * g.in_w * cw);
  xnor::pack_rows(x, g.batch * g.in_h * g.in_w, g.in_c, pixels, kern);

  // tap_sum[t][o] = sum over c of sign(w[t][c][o]): what a padded tap (bits 0 = +1) adds.
  std::vector<int32_t> tap_sum(taps * g.out_c);
  for (size_t o = 0; o < g.out_c; ++o)
    for (size_t t = 0; t < taps; ++t)
      tap_sum[t * g.out_c + o] =
          static_cast<int32_t>(g.in_c) - 2 * popcount_range(w_bits + o * kw, t * g.in_c, g.in_c);

  // Per output position (oh, ow) touching the padding: the sum of tap_sum over its padded
  // taps. The same for every image, so it is built once; only border positions get a slot.
  std::vector<int32_t> slot(g.out_h * g.out_w, -1);
  std::vector<float> correction;
  for (size_t oh = 0; oh < g.out_h; ++oh)
    for (size_t ow = 0; ow < g.out_w; ++ow) {
      const size_t pos = oh * g.out_w + ow;
      for (size_t kh = 0; kh < g.filter_h; ++kh)
        for (size_t kx = 0; kx < g.filter_w; ++kx) {
          if (g.in_row(oh, kh) >= 0 && g.in_col(ow, kx) >= 0) continue;
          if (slot[pos] < 0) {
            slot[pos] = static_cast<int32_t>(correction.size() / g.out_c);
            correction.resize(correction.size() + g.out_c, 0.0f);
          }
          const int32_t* s = tap_sum.data() + (kh * g.filter_w + kx) * g.out_c;
          float* corr = correction.data() + slot[pos] * g.out_c;
          for (size_t o = 0; o < g.out_c; ++o) corr[o] += static_cast<float>(s[o]);
        }
    }
  const bool any_padding = !correction.empty();

  // Output rows in chunks so the bit patches stay near 8 MiB.
  const size_t rows = g.out_rows();
  const size_t chunk = std::min(rows, std::max<size_t>(64, (size_t{1} << 20) / kw));
  uint64_t* patches = scratch_buffer<uint64_t, PatchesTag>(chunk * kw);
  constexpr size_t kRowsPerTask = 32;

  for (size_t r0 = 0; r0 < rows; r0 += chunk) {
    const size_t nrows = std::min(chunk, rows - r0);
    pool.parallel_for((nrows + kRowsPerTask - 1) / kRowsPerTask, [&](size_t t) {
      for (size_t r = t * kRowsPerTask; r < std::min(nrows, (t + 1) * kRowsPerTask); ++r) {
        const size_t row = r0 + r;
        const size_t ow = row % g.out_w, oh = (row / g.out_w) % g.out_h, n = row / (g.out_w * g.out_h);
        uint64_t* dst = patches + r * kw;
        std::memset(dst, 0, kw * sizeof(uint64_t));
        for (size_t kh = 0; kh < g.filter_h; ++kh) {
          const long ih = g.in_row(oh, kh);
          if (ih < 0) continue;  // padded taps keep bits 0 (+1); corrected below
          for (size_t kx = 0; kx < g.filter_w; ++kx) {
            const long iw = g.in_col(ow, kx);
            if (iw < 0) continue;
            const uint64_t* src = pixels + ((n * g.in_h + ih) * g.in_w + iw) * cw;
            append_bits(dst, kw, (kh * g.filter_w + kx) * g.in_c, src, g.in_c);
          }
        }
      }
    });

    float* c = out + r0 * g.out_c;
    xnor::gemm(patches, w_bits, c, nrows, g.out_c, k, kern);

    // Zero-padding correction: a padded tap contributed tap_sum[t][o] but must add 0.
    if (any_padding) pool.parallel_for((nrows + kRowsPerTask - 1) / kRowsPerTask, [&](size_t t) {
      for (size_t r = t * kRowsPerTask; r < std::min(nrows, (t + 1) * kRowsPerTask); ++r) {
        const size_t pos = (r0 + r) % (g.out_h * g.out_w);
        if (slot[pos] < 0) continue;
        const float* corr = correction.data() + slot[pos] * g.out_c;
        float* crow = c + r * g.out_c;
        for (size_t o = 0; o < g.out_c; ++o) crow[o] -= corr[o];
      }
    });
  }
}

}  // namespace bnn::binary_conv
