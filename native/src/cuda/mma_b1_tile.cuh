// Tile geometry and index maps of the b1 tensor-core XNOR GEMM (xnor_gemm_mma.cu).
// Host+device so native/tools/cuda/harness.cu can run the kernel's data movement on the CPU against a
// model of mma.m16n8k256 written from the PTX ISA fragment tables.
//
// Fragment choice: the PTX layout gives lane (g = lane/4, t = lane%4) register a0 = row g, hardware
// k in [32t, 32t+32), a2 = row g, k in [128+32t, ...), a1/a3 = row g+8, and b0/b1 the same k ranges
// of column g. A dot product is invariant under any permutation of k applied to both operands, so
// lane t takes uint64 word t of the k-step: low half -> a0/b0, high half -> a2/b1. One 8-byte shared
// load per row then fills two registers, and A and B see the same permutation.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels.cuh"

namespace bnn::cuda::mma_tile {

constexpr int kBM = 128;       // rows of A per block
constexpr int kBN = 128;       // rows of B (columns of C) per block
constexpr int kBKW = 8;        // uint64 words of K per stage: 512 bits = 2 mma k-steps
constexpr int kKSteps = kBKW / 4;
constexpr int kStages = 4;
constexpr int kThreads = 256;  // 8 warps: 2 along M x 4 along N
constexpr int kWarpsM = 2;
constexpr int kWarpsN = 4;
constexpr int kWM = kBM / kWarpsM;  // 64
constexpr int kWN = kBN / kWarpsN;  // 32
constexpr int kMT = kWM / 16;       // m16 tiles per warp
constexpr int kNT = kWN / 8;        // n8 tiles per warp
constexpr int kTileWords = kBM * kBKW;             // uint64 words of one operand per stage
constexpr int kStageWords = 2 * kTileWords;        // A then B
constexpr size_t kSmemBytes = size_t(kStages) * kStageWords * sizeof(uint64_t);
static_assert(kBM == kBN, "tile copies share one map for A and B");
static_assert(kWarpsM * kWarpsN * 32 == kThreads, "warp grid");
static_assert(kBKW % 4 == 0, "a stage holds whole 256-bit k-steps");

// uint64 index of word w (0..kBKW-1) of tile row r inside one operand's stage buffer. 16-byte units
// are XOR-swizzled by bit 1 of the row so that a fragment load (8 rows x 4 consecutive words per
// half-warp) touches each of the 32 banks once.
BNN_HD int smem_index(int r, int w) {
  const int unit = (w >> 1) ^ (((r >> 1) & 1) << 1);
  return r * kBKW + (unit << 1) + (w & 1);
}

BNN_HD int warp_row0(int warp) { return (warp % kWarpsM) * kWM; }
BNN_HD int warp_col0(int warp) { return (warp / kWarpsM) * kWN; }

// A fragment of m16 tile rows [row0, row0+16), k-step ks of the stage.
BNN_HD void load_a_frag(const uint64_t* sa, int row0, int ks, int lane, uint32_t a[4]) {
  const int g = lane >> 2, t = lane & 3;
  const uint64_t lo = sa[smem_index(row0 + g, 4 * ks + t)];
  const uint64_t hi = sa[smem_index(row0 + g + 8, 4 * ks + t)];
  a[0] = static_cast<uint32_t>(lo);
  a[1] = static_cast<uint32_t>(hi);
  a[2] = static_cast<uint32_t>(lo >> 32);
  a[3] = static_cast<uint32_t>(hi >> 32);
}

// B fragment of n8 tile columns [col0, col0+8) (rows of the packed B), k-step ks.
BNN_HD void load_b_frag(const uint64_t* sb, int col0, int ks, int lane, uint32_t b[2]) {
  const int g = lane >> 2, t = lane & 3;
  const uint64_t v = sb[smem_index(col0 + g, 4 * ks + t)];
  b[0] = static_cast<uint32_t>(v);
  b[1] = static_cast<uint32_t>(v >> 32);
}

// Accumulator register i (0..3) of a lane holds C(row, col) of the m16 x n8 tile at these offsets.
BNN_HD int acc_row(int lane, int i) { return (lane >> 2) + ((i >> 1) << 3); }
BNN_HD int acc_col(int lane, int i) { return ((lane & 3) << 1) + (i & 1); }

// k - 2*popc(a ^ b) from popc(a & b) and the row popcounts.
BNN_HD int xnor_from_and(int k_bits, int pa, int pb, int and_count) { return k_bits - 2 * pa - 2 * pb + 4 * and_count; }

// One cp.async of a stage fill: thread tid's copy j moves kVec bytes of global row `row0 + r`,
// words [w, w + kVec/8) into the stage at `smem`; invalid copies zero-fill (rows past `rows`, words
// past kw). kVec 16 needs kw even and 16-byte aligned operands, so a copy is all in or all out.
struct TileCopy {
  int smem;       // uint64 index in the operand's stage buffer
  int64_t gmem;   // uint64 index in the operand
  bool valid;
};
template <int kVec>
struct CopiesPerThread {
  static constexpr int value = kBM * kBKW / (kVec / 8) / kThreads;
};

template <int kVec>
BNN_HD TileCopy tile_copy(int tid, int j, int row0, int rows, int k0, int kw) {
  static_assert(kVec == 16 || kVec == 8, "cp.async size");
  constexpr int kPerRow = kBKW / (kVec / 8);
  const int q = tid + j * kThreads;
  const int r = q / kPerRow;
  const int w = (q % kPerRow) * (kVec / 8);
  TileCopy c;
  c.smem = smem_index(r, w);
  c.valid = (row0 + r < rows) && (k0 + w < kw);
  c.gmem = c.valid ? int64_t(row0 + r) * kw + (k0 + w) : 0;
  return c;
}

}  // namespace bnn::cuda::mma_tile
