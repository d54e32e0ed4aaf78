// CPU-side self-checks of the CUDA harness (run everywhere, GPU or not): the scalar references
// against naive float products of signs and hand-derived answers, the tensor-core kernel's index
// maps run on the CPU, the conv algorithm (packed im2col + XNOR GEMM + padding correction) against
// the float conv, and the C API's argument checks.
#pragma once
#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "../check_util.h"
#include "binary_conv/reference.h"
#include "cuda/bnn_cuda.h"
#include "cuda/conv_index.cuh"
#include "cuda/conv_params.h"
#include "cuda/mma_b1_tile.cuh"
#include "xnor_gemm/reference.h"
#include "mma_emulation.h"

namespace bnn::cuda_test {

using tools::Checks;
using tools::random_floats;
using tools::sign_of;

inline const size_t kRagged[] = {1, 2, 3, 17, 63, 64, 65, 127, 128, 129, 255, 257};

inline int popc64(uint64_t v) { return __builtin_popcountll(v); }

// Naive float GEMM of signs: C[i][j] = sum_k sign(A[i][k]) * sign(Bt[j][k]).
inline std::vector<float> sign_gemm(const std::vector<float>& a, const std::vector<float>& bt, size_t m, size_t n, size_t k) {
  std::vector<float> c(m * n);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      float s = 0.0f;
      for (size_t q = 0; q < k; ++q) s += sign_of(a[i * k + q]) * sign_of(bt[j * k + q]);
      c[i * n + j] = s;
    }
  return c;
}

inline void check_reference_pack(Checks& ck, std::mt19937_64& rng) {
  int mark[2];
  ck.mark(mark);
  for (size_t k : kRagged) {
    const size_t rows = 3, ld = k + 5, kw = ref::packed_words(k);
    const std::vector<float> x = random_floats(rows * ld, rng);
    std::vector<uint64_t> p(rows * kw, ~uint64_t{0});
    ref::pack_rows(x.data(), rows, k, ld, p.data());
    bool good = true;
    for (size_t r = 0; r < rows; ++r)
      for (size_t q = 0; q < kw * 64; ++q) {
        const bool bit = (p[r * kw + q / 64] >> (q % 64)) & 1;
        good = good && bit == (q < k && x[r * ld + q] < 0.0f);
      }
    ck.expect(good, "ref pack_rows k=%zu: bit != (x<0) or tail bit set", k);
    // pack_cols of the transpose equals pack_rows.
    std::vector<float> t(k * rows);
    for (size_t r = 0; r < rows; ++r)
      for (size_t q = 0; q < k; ++q) t[q * rows + r] = x[r * ld + q];
    std::vector<uint64_t> pc(rows * kw, ~uint64_t{0});
    ref::pack_cols(t.data(), k, rows, pc.data());
    ck.expect(pc == p, "ref pack_cols k=%zu differs from pack_rows of the transpose", k);
  }
  ck.group("cpu: reference pack_rows/pack_cols vs bit definition", mark);
}

inline void check_reference_gemm(Checks& ck, std::mt19937_64& rng) {
  int mark[2];
  ck.mark(mark);
  const size_t mn[][2] = {{1, 1}, {2, 3}, {3, 17}, {17, 2}, {5, 9}};
  for (const auto& s : mn) {
    for (size_t k : kRagged) {
      const size_t m = s[0], n = s[1], kw = ref::packed_words(k);
      const std::vector<float> a = random_floats(m * k, rng), bt = random_floats(n * k, rng);
      std::vector<uint64_t> pa(m * kw), pb(n * kw);
      ref::pack_rows(a.data(), m, k, k, pa.data());
      ref::pack_rows(bt.data(), n, k, k, pb.data());
      std::vector<float> c(m * n);
      ref::xnor_gemm(pa.data(), pb.data(), c.data(), m, n, k);
      ck.expect(c == sign_gemm(a, bt, m, n, k), "ref xnor_gemm %zux%zux%zu != float GEMM of signs", m, n, k);
      // AND-popc identity used by the tensor-core path.
      bool good = true;
      for (size_t i = 0; i < m; ++i)
        for (size_t j = 0; j < n; ++j) {
          int sa = 0, sb = 0, both = 0;
          for (size_t w = 0; w < kw; ++w) {
            sa += popc64(pa[i * kw + w]);
            sb += popc64(pb[j * kw + w]);
            both += popc64(pa[i * kw + w] & pb[j * kw + w]);
          }
          good = good && float(cuda::mma_tile::xnor_from_and(int(k), sa, sb, both)) == c[i * n + j];
        }
      ck.expect(good, "k - 2pa - 2pb + 4popc(a&b) != xnor dot at %zux%zux%zu", m, n, k);
    }
  }
  ck.group("cpu: reference xnor_gemm vs float sign GEMM, AND-popc identity", mark);
}

// One -1 in an all-+1 A (row i0, column k0), optionally one in B (row j0, column k0):
// C = K everywhere, K-2 on row i0 / column j0, and K (two flips cancel) at (i0, j0).
inline void check_one_hot(Checks& ck) {
  int mark[2];
  ck.mark(mark);
  for (size_t k : kRagged) {
    const size_t m = 5, n = 4, kw = ref::packed_words(k), i0 = 3, j0 = 1, k0 = k - 1;
    std::vector<float> a(m * k, 1.0f), bt(n * k, 0.0f);  // 0 is +1
    a[i0 * k + k0] = -1.0f;
    bt[j0 * k + k0] = -2.0f;
    std::vector<uint64_t> pa(m * kw), pb(n * kw);
    ref::pack_rows(a.data(), m, k, k, pa.data());
    ref::pack_rows(bt.data(), n, k, k, pb.data());
    ck.expect(pa[i0 * kw + k0 / 64] == (uint64_t{1} << (k0 % 64)), "one-hot pack k=%zu", k);
    std::vector<float> c(m * n);
    ref::xnor_gemm(pa.data(), pb.data(), c.data(), m, n, k);
    bool good = true;
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < n; ++j) {
        const float want = float(k) - ((i == i0) != (j == j0) ? 2.0f : 0.0f);
        good = good && c[i * n + j] == want;
      }
    ck.expect(good, "one-hot xnor_gemm k=%zu", k);
  }
  ck.group("cpu: one-hot inputs, hand-derived GEMM answers", mark);
}

inline void check_mma_tile_maps(Checks& ck, std::mt19937_64& rng) {
  using namespace cuda::mma_tile;
  int mark[2];
  ck.mark(mark);
  // smem_index is a bijection onto the stage buffer and keeps 16-byte units whole.
  std::vector<int> hit(kTileWords, 0);
  bool units = true;
  for (int r = 0; r < kBM; ++r)
    for (int w = 0; w < kBKW; ++w) {
      const int s = smem_index(r, w);
      if (s >= 0 && s < kTileWords) ++hit[s];
      if (w % 2 == 0) units = units && s % 2 == 0 && smem_index(r, w + 1) == s + 1;
    }
  ck.expect(std::all_of(hit.begin(), hit.end(), [](int h) { return h == 1; }), "smem_index is not a bijection");
  ck.expect(units, "smem_index splits a 16-byte unit");
  // Fragment loads: each half-warp's 8-byte loads hit 16 distinct bank pairs (no conflicts).
  bool banks = true;
  for (int row0 = 0; row0 < kBM; row0 += 8)
    for (int ks = 0; ks < kKSteps; ++ks)
      for (int half = 0; half < 2; ++half) {
        std::vector<int> used(32, 0);
        for (int lane = half * 16; lane < half * 16 + 16; ++lane) {
          const int s = smem_index(row0 + (lane >> 2), 4 * ks + (lane & 3));
          ++used[(2 * s) % 32];
          ++used[(2 * s + 1) % 32];
        }
        banks = banks && std::all_of(used.begin(), used.end(), [](int u) { return u == 1; });
      }
  ck.expect(banks, "fragment loads have shared-memory bank conflicts");
  // The kernel's data movement through the PTX-table model of the instruction.
  const int cases[][3] = {{1, 1, 1}, {17, 3, 65}, {16, 8, 256}, {130, 129, 600}, {3, 140, 1025}, {128, 128, 512}, {65, 63, 2049}};
  for (const auto& cs : cases) {
    const int m = cs[0], n = cs[1], k = cs[2], kw = int(ref::packed_words(k));
    const std::vector<float> a = random_floats(size_t(m) * k, rng), bt = random_floats(size_t(n) * k, rng);
    std::vector<uint64_t> pa(size_t(m) * kw), pb(size_t(n) * kw);
    ref::pack_rows(a.data(), m, k, k, pa.data());
    ref::pack_rows(bt.data(), n, k, k, pb.data());
    std::vector<float> want(size_t(m) * n);
    ref::xnor_gemm(pa.data(), pb.data(), want.data(), m, n, k);
    std::vector<int32_t> ca(m), cb(n);
    for (int i = 0; i < m; ++i)
      for (int w = 0; w < kw; ++w) ca[i] += popc64(pa[size_t(i) * kw + w]);
    for (int j = 0; j < n; ++j)
      for (int w = 0; w < kw; ++w) cb[j] += popc64(pb[size_t(j) * kw + w]);
    std::vector<float> got(want.size(), -12345.0f);
    bool covered = emulate_xnor_gemm_mma<8>(pa.data(), pb.data(), got.data(), ca.data(), cb.data(), m, n, kw, k);
    ck.expect(covered && got == want, "mma emulation (8-byte copies) %dx%dx%d", m, n, k);
    if (kw % 2 == 0) {
      std::fill(got.begin(), got.end(), -12345.0f);
      covered = emulate_xnor_gemm_mma<16>(pa.data(), pb.data(), got.data(), ca.data(), cb.data(), m, n, kw, k);
      ck.expect(covered && got == want, "mma emulation (16-byte copies) %dx%dx%d", m, n, k);
    }
  }
  ck.group("cpu: mma kernel index maps through the PTX fragment model", mark);
}

// The GPU conv algorithm on the CPU: packed pixels, packed im2col with zero words for padded taps,
// per-tap packed filter, XNOR dot over taps*cw words with k = taps*in_c, minus the padded-tap sums.
inline std::vector<float> conv_packed_mirror(const std::vector<float>& x, const std::vector<float>& w,
                                             const bnn_cuda_conv2d_params& p) {
  const cuda::ConvGeom g{p.batch, p.in_h, p.in_w, p.in_c, p.k_h, p.k_w, p.out_c, p.stride_h, p.stride_w,
                         p.pad_top, p.pad_left, p.out_h, p.out_w};
  const int64_t cw = g.cw(), rw = g.row_words();
  std::vector<uint64_t> xp(size_t(g.pixels() * cw));
  ref::pack_rows(x.data(), size_t(g.pixels()), size_t(p.in_c), size_t(p.in_c), xp.data());
  std::vector<uint64_t> col(size_t(g.positions() * rw));
  for (int64_t i = 0; i < int64_t(col.size()); ++i) {
    const int64_t s = cuda::im2col_source_word(g, i);
    col[size_t(i)] = s >= 0 ? xp[size_t(s)] : 0;
  }
  std::vector<uint64_t> wp(size_t(p.out_c * rw));
  for (int64_t t = 0; t < g.taps(); ++t) {
    std::vector<float> tap(size_t(p.in_c * p.out_c));
    std::copy(w.begin() + t * p.in_c * p.out_c, w.begin() + (t + 1) * p.in_c * p.out_c, tap.begin());
    std::vector<uint64_t> packed(size_t(p.out_c * cw));
    ref::pack_cols(tap.data(), size_t(p.in_c), size_t(p.out_c), packed.data());
    for (int64_t o = 0; o < p.out_c; ++o)
      for (int64_t j = 0; j < cw; ++j) wp[size_t(o * rw + t * cw + j)] = packed[size_t(o * cw + j)];
  }
  std::vector<int32_t> wsum(size_t(g.taps() * p.out_c));
  for (int64_t t = 0; t < g.taps(); ++t)
    for (int64_t o = 0; o < p.out_c; ++o) {
      int cnt = 0;
      for (int64_t j = 0; j < cw; ++j) cnt += popc64(wp[size_t(o * rw + t * cw + j)]);
      wsum[size_t(t * p.out_c + o)] = int32_t(p.in_c) - 2 * cnt;
    }
  std::vector<float> y(size_t(g.positions() * p.out_c));
  for (int64_t q = 0; q < g.positions(); ++q) {
    const int64_t ow = q % p.out_w, oh = (q / p.out_w) % p.out_h;
    for (int64_t o = 0; o < p.out_c; ++o) {
      int diff = 0;
      for (int64_t j = 0; j < rw; ++j) diff += popc64(col[size_t(q * rw + j)] ^ wp[size_t(o * rw + j)]);
      int32_t v = int32_t(g.k_bits()) - 2 * diff;
      if (cuda::conv_touches_padding(g, oh, ow)) v -= cuda::conv_pad_correction(g, wsum.data(), oh, ow, o);
      y[size_t(q * p.out_c + o)] = float(v);
    }
  }
  return y;
}

inline std::vector<bnn_cuda_conv2d_params> conv_cases() {
  // batch, in_h, in_w, in_c, k_h, k_w, out_c, stride_h, stride_w, pad_top, pad_left, out_h, out_w
  return {
      {1, 5, 5, 1, 3, 3, 1, 1, 1, 1, 1, 5, 5},       {2, 6, 7, 3, 3, 3, 5, 1, 1, 1, 1, 6, 7},
      {1, 7, 6, 17, 3, 2, 4, 2, 2, 1, 0, 4, 3},      {2, 5, 5, 63, 1, 1, 3, 1, 1, 0, 0, 5, 5},
      {1, 4, 9, 64, 3, 3, 7, 1, 2, 2, 2, 6, 6},      {1, 8, 8, 65, 3, 3, 9, 2, 1, 1, 1, 4, 8},
      {3, 5, 4, 130, 2, 3, 2, 1, 1, 0, 1, 5, 4},     {1, 3, 3, 5, 5, 5, 3, 1, 1, 2, 2, 3, 3},
      {1, 9, 9, 127, 3, 3, 17, 3, 3, 0, 0, 3, 3},    {1, 6, 6, 8, 3, 3, 129, 1, 1, 1, 1, 6, 6},
      {2, 4, 4, 2, 3, 3, 2, 1, 1, 0, 0, 4, 4},  // output past the input: bottom/right padding
  };
}

inline void check_conv(Checks& ck, std::mt19937_64& rng) {
  int mark[2];
  ck.mark(mark);
  for (const bnn_cuda_conv2d_params& p : conv_cases()) {
    const std::vector<float> x = random_floats(size_t(p.batch * p.in_h * p.in_w * p.in_c), rng);
    const std::vector<float> w = random_floats(size_t(p.k_h * p.k_w * p.in_c * p.out_c), rng);
    std::vector<float> y(size_t(p.batch * p.out_h * p.out_w * p.out_c));
    ref::binary_conv2d(x.data(), w.data(), cuda::to_geometry(p), y.data());
    ck.expect(conv_packed_mirror(x, w, p) == y, "packed conv algorithm != float conv (in_c %lld, k %lldx%lld)",
              (long long)p.in_c, (long long)p.k_h, (long long)p.k_w);
  }
  // Hand-derived: x all +1, w all -1 => y = -(in-bounds taps) * in_c; one -1 pixel in x with w all +1
  // lowers y by 2 for every tap of an output that reads that pixel.
  const bnn_cuda_conv2d_params p{1, 4, 5, 3, 3, 3, 2, 1, 1, 1, 1, 4, 5};
  std::vector<float> x(size_t(4 * 5 * 3), 1.0f), w(size_t(3 * 3 * 3 * 2), -1.0f), y(size_t(4 * 5 * 2));
  ref::binary_conv2d(x.data(), w.data(), cuda::to_geometry(p), y.data());
  bool good = true;
  for (int oh = 0; oh < 4; ++oh)
    for (int ow = 0; ow < 5; ++ow) {
      const int ih_lo = std::max(oh - 1, 0), ih_hi = std::min(oh + 1, 3), iw_lo = std::max(ow - 1, 0),
                iw_hi = std::min(ow + 1, 4);
      const float want = -float((ih_hi - ih_lo + 1) * (iw_hi - iw_lo + 1) * 3);
      for (int o = 0; o < 2; ++o) good = good && y[size_t((oh * 5 + ow) * 2 + o)] == want;
    }
  ck.expect(good, "conv ref: all +1 input, all -1 filter");
  ck.expect(conv_packed_mirror(x, w, p) == y, "packed conv algorithm: all +1 input, all -1 filter");
  std::fill(w.begin(), w.end(), 1.0f);
  x[size_t((2 * 5 + 3) * 3 + 1)] = -1.0f;  // pixel (2, 3), channel 1
  ref::binary_conv2d(x.data(), w.data(), cuda::to_geometry(p), y.data());
  good = true;
  for (int oh = 0; oh < 4; ++oh)
    for (int ow = 0; ow < 5; ++ow) {
      const int ih_lo = std::max(oh - 1, 0), ih_hi = std::min(oh + 1, 3), iw_lo = std::max(ow - 1, 0),
                iw_hi = std::min(ow + 1, 4);
      const bool reads = 2 >= ih_lo && 2 <= ih_hi && 3 >= iw_lo && 3 <= iw_hi;
      const float want = float((ih_hi - ih_lo + 1) * (iw_hi - iw_lo + 1) * 3) - (reads ? 2.0f : 0.0f);
      for (int o = 0; o < 2; ++o) good = good && y[size_t((oh * 5 + ow) * 2 + o)] == want;
    }
  ck.expect(good, "conv ref: one -1 input pixel, all +1 filter");
  ck.expect(conv_packed_mirror(x, w, p) == y, "packed conv algorithm: one -1 input pixel");
  ck.group("cpu: conv reference (hand-derived) and packed conv algorithm", mark);
}

// Contract checks that fail before any CUDA call, so they run without a device.
inline void check_api_arguments(Checks& ck) {
  int mark[2];
  ck.mark(mark);
  void* fake = reinterpret_cast<void*>(uintptr_t{0x100000});
  auto* fake64 = static_cast<uint64_t*>(fake);
  auto* fakef = static_cast<float*>(fake);
  const int inval = BNN_CUDA_ERR_INVALID_ARG;
  ck.expect(bnn_cuda_packed_words(65, 64) == 2 && bnn_cuda_packed_words(65, 32) == 3 && bnn_cuda_packed_words(64, 64) == 1 &&
                bnn_cuda_packed_words(1, 32) == 1 && bnn_cuda_packed_words(8, 16) == 0,
            "bnn_cuda_packed_words");
  ck.expect(bnn_cuda_pack_rows(fakef, 2, 10, 10, fake, 16, nullptr) == inval, "pack_rows word_bits 16 accepted");
  ck.expect(bnn_cuda_pack_rows(fakef, 2, 10, 9, fake, 64, nullptr) == inval, "pack_rows ld < k accepted");
  ck.expect(bnn_cuda_pack_rows(fakef, 2, 0, 9, fake, 64, nullptr) == inval, "pack_rows k = 0 accepted");
  ck.expect(bnn_cuda_pack_rows(nullptr, 2, 10, 10, fake, 64, nullptr) == inval, "pack_rows null src accepted");
  ck.expect(bnn_cuda_pack_rows(fakef, 2, 10, 10, static_cast<char*>(fake) + 4, 64, nullptr) == inval,
            "pack_rows misaligned uint64 dst accepted");
  ck.expect(std::strlen(bnn_cuda_last_error()) > 0, "no message after a failed check");
  ck.expect(bnn_cuda_pack_rows(nullptr, 0, 10, 10, nullptr, 64, nullptr) == BNN_CUDA_OK, "pack_rows of 0 rows is not a no-op");
  ck.expect(bnn_cuda_pack_cols(fakef, 10, 4, 3, fake, 32, nullptr) == inval, "pack_cols ld < n accepted");
  ck.expect(bnn_cuda_xnor_gemm(fake64, fake64, fakef, 2, 2, 10, 7, nullptr, nullptr, nullptr) == inval,
            "xnor_gemm unknown variant accepted");
  ck.expect(bnn_cuda_xnor_gemm(fake64, fake64, fakef, -1, 2, 10, 0, nullptr, nullptr, nullptr) == inval,
            "xnor_gemm m < 0 accepted");
  ck.expect(bnn_cuda_xnor_gemm(fake64, fake64, fakef, 2, 2, (int64_t{1} << 28) + 1, 0, nullptr, nullptr, nullptr) == inval,
            "xnor_gemm k > 2^28 accepted");
  ck.expect(bnn_cuda_xnor_gemm(fake64, nullptr, fakef, 2, 2, 10, 0, nullptr, nullptr, nullptr) == inval,
            "xnor_gemm null b accepted");
  ck.expect(bnn_cuda_xnor_gemm(reinterpret_cast<uint64_t*>(static_cast<char*>(fake) + 4), fake64, fakef, 2, 2, 10, 0,
                               nullptr, nullptr, nullptr) == inval,
            "xnor_gemm misaligned a accepted");
  ck.expect(bnn_cuda_xnor_gemm(nullptr, nullptr, nullptr, 0, 5, 10, 0, nullptr, nullptr, nullptr) == BNN_CUDA_OK,
            "xnor_gemm m = 0 is not a no-op");
  bnn_cuda_conv2d_params p{1, 4, 4, 3, 3, 3, 2, 1, 1, 1, 1, 4, 4};
  size_t bytes = 0;
  ck.expect(bnn_cuda_conv2d_workspace_bytes(&p, &bytes) == BNN_CUDA_OK && bytes > 0, "conv workspace size");
  ck.expect(bnn_cuda_binary_conv2d(fakef, fakef, fakef, &p, 0, fake, bytes - 1, nullptr) == inval,
            "conv small workspace accepted");
  ck.expect(bnn_cuda_binary_conv2d(fakef, fakef, fakef, nullptr, 0, nullptr, 0, nullptr) == inval, "conv null params");
  bnn_cuda_conv2d_params bad = p;
  bad.stride_h = 0;
  ck.expect(bnn_cuda_binary_conv2d(fakef, fakef, fakef, &bad, 0, nullptr, 0, nullptr) == inval, "conv stride 0 accepted");
  bad = p;
  bad.pad_left = -1;
  ck.expect(bnn_cuda_binary_conv2d(fakef, fakef, fakef, &bad, 0, nullptr, 0, nullptr) == inval, "conv pad < 0 accepted");
  bad = p;
  bad.in_c = 0;
  ck.expect(bnn_cuda_conv2d_workspace_bytes(&bad, &bytes) == inval, "conv in_c 0 accepted");
  ck.expect(bnn_cuda_binary_conv2d(nullptr, fakef, fakef, &p, 0, nullptr, 0, nullptr) == inval, "conv null x accepted");
  ck.group("cpu: C API argument checks", mark);
}

inline void run_cpu_checks(Checks& ck, std::mt19937_64& rng) {
  check_reference_pack(ck, rng);
  check_reference_gemm(ck, rng);
  check_one_hot(ck);
  check_mma_tile_maps(ck, rng);
  check_conv(ck, rng);
  check_api_arguments(ck);
}

}  // namespace bnn::cuda_test
