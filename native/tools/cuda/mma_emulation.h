// CPU run of the tensor-core XNOR GEMM's data movement, for checks without a GPU.
//
// model_mma_b1 is mma.m16n8k256.row.col.s32.b1.b1.s32.and.popc written from the PTX ISA fragment
// tables, independently of the kernel's helpers. emulate_xnor_gemm_mma drives the kernel's own index
// maps (cuda/mma_b1_tile.cuh: tile_copy, smem_index, load_a_frag/load_b_frag, acc_row/acc_col,
// xnor_from_and) through it block by block, warp by warp, lane by lane, as xnor_gemm_mma.cu does.
// What it cannot cover: the instruction's real behaviour, cp.async, the pipeline's timing.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "cuda/mma_b1_tile.cuh"

namespace bnn::cuda_test {

// PTX ISA, "Matrix Fragments for mma.m16n8k256" (groupID g = lane/4, threadID_in_group t = lane%4):
//  A (16x256, .b1, 4 x .b32): a0 row g, k 32t..32t+31; a1 row g+8, same k; a2 row g, k 128+32t..;
//                             a3 row g+8, k 128+32t..; element i of a register is bit i.
//  B (256x8, .b1, 2 x .b32):  b0 column g, k 32t..32t+31; b1 column g, k 128+32t..
//  C/D (16x8, .s32, 4 regs):  c0,c1 row g, columns 2t, 2t+1; c2,c3 row g+8, columns 2t, 2t+1.
inline void model_mma_b1(const uint32_t a[32][4], const uint32_t b[32][2], int32_t d[32][4]) {
  for (int row = 0; row < 16; ++row) {
    for (int col = 0; col < 8; ++col) {
      int32_t sum = 0;
      for (int k = 0; k < 256; ++k) {
        const int t = (k % 128) / 32, bit = k % 32;
        const uint32_t av = a[(row % 8) * 4 + t][(row >= 8 ? 1 : 0) + (k >= 128 ? 2 : 0)];
        const uint32_t bv = b[col * 4 + t][k >= 128 ? 1 : 0];
        sum += static_cast<int32_t>((av >> bit) & (bv >> bit) & 1u);
      }
      d[(row % 8) * 4 + col / 2][(row >= 8 ? 2 : 0) + col % 2] += sum;
    }
  }
}

// Returns false if a stage fill left a word unwritten (the copies must tile the stage exactly).
template <int kVec>
bool emulate_xnor_gemm_mma(const uint64_t* a, const uint64_t* b, float* c, const int32_t* pa, const int32_t* pb, int m,
                           int n, int kw, int k_bits) {
  using namespace bnn::cuda::mma_tile;
  constexpr uint64_t kPoison = 0xdeadbeefcafef00dull;
  const int ktiles = (kw + kBKW - 1) / kBKW;
  std::vector<uint64_t> sa(kTileWords), sb(kTileWords);
  std::vector<int> acc(size_t(kThreads) * kMT * kNT * 4);
  auto acc_at = [&](int tid, int i, int j, int e) -> int& { return acc[((size_t(tid) * kMT + i) * kNT + j) * 4 + e]; };
  bool covered = true;
  for (int bm = 0; bm < m; bm += kBM) {
    for (int bn = 0; bn < n; bn += kBN) {
      std::fill(acc.begin(), acc.end(), 0);
      for (int kt = 0; kt < ktiles; ++kt) {
        std::fill(sa.begin(), sa.end(), kPoison);
        std::fill(sb.begin(), sb.end(), kPoison);
        std::vector<uint8_t> wa(kTileWords, 0), wb(kTileWords, 0);
        for (int tid = 0; tid < kThreads; ++tid) {
          for (int j = 0; j < CopiesPerThread<kVec>::value; ++j) {
            const TileCopy ca = tile_copy<kVec>(tid, j, bm, m, kt * kBKW, kw);
            const TileCopy cb = tile_copy<kVec>(tid, j, bn, n, kt * kBKW, kw);
            for (int q = 0; q < kVec / 8; ++q) {
              sa[ca.smem + q] = ca.valid ? a[ca.gmem + q] : 0;
              sb[cb.smem + q] = cb.valid ? b[cb.gmem + q] : 0;
              ++wa[ca.smem + q];
              ++wb[cb.smem + q];
            }
          }
        }
        for (int q = 0; q < kTileWords; ++q) covered = covered && wa[q] == 1 && wb[q] == 1;
        for (int warp = 0; warp < kThreads / 32; ++warp) {
          for (int ks = 0; ks < kKSteps; ++ks) {
            uint32_t af[kMT][32][4], bf[kNT][32][2];
            for (int lane = 0; lane < 32; ++lane) {
              for (int i = 0; i < kMT; ++i) load_a_frag(sa.data(), warp_row0(warp) + 16 * i, ks, lane, af[i][lane]);
              for (int j = 0; j < kNT; ++j) load_b_frag(sb.data(), warp_col0(warp) + 8 * j, ks, lane, bf[j][lane]);
            }
            for (int i = 0; i < kMT; ++i) {
              for (int j = 0; j < kNT; ++j) {
                int32_t d[32][4];
                for (int lane = 0; lane < 32; ++lane)
                  for (int e = 0; e < 4; ++e) d[lane][e] = acc_at(warp * 32 + lane, i, j, e);
                model_mma_b1(af[i], bf[j], d);
                for (int lane = 0; lane < 32; ++lane)
                  for (int e = 0; e < 4; ++e) acc_at(warp * 32 + lane, i, j, e) = d[lane][e];
              }
            }
          }
        }
      }
      // Epilogue, as in the kernel.
      for (int tid = 0; tid < kThreads; ++tid) {
        const int lane = tid & 31, warp = tid >> 5;
        for (int i = 0; i < kMT; ++i) {
          for (int h = 0; h < 2; ++h) {
            const int row = bm + warp_row0(warp) + 16 * i + acc_row(lane, 2 * h);
            if (row >= m) continue;
            for (int j = 0; j < kNT; ++j) {
              const int col = bn + warp_col0(warp) + 8 * j + acc_col(lane, 2 * h);
              for (int e = 0; e < 2; ++e) {
                if (col + e >= n) continue;
                c[int64_t(row) * n + col + e] =
                    static_cast<float>(xnor_from_and(k_bits, pa[row], pb[col + e], acc_at(tid, i, j, 2 * h + e)));
              }
            }
          }
        }
      }
    }
  }
  return covered;
}

}  // namespace bnn::cuda_test
