// Public entry points for packing and XNOR GEMM: contracts checked here, work split over
// the global thread pool, the kernel variant chosen by select.cc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels.h"

namespace bnn::xnor {

// Variants this CPU can run, best first ("avx512", "avx2", "portable").
std::vector<std::string> available_kernels();
// The variant in use. Initially chosen by BNN_XNOR_KERNEL (auto|avx512|avx2|portable,
// unset = auto); an unsupported name there falls back to auto (see selection_note()).
const Kernels& active_kernels();
// Forces a variant ("auto" = best available). Throws std::invalid_argument naming the
// available variants when `name` is unknown or unsupported on this CPU.
void set_kernel(const std::string& name);
// Why the current variant was chosen, e.g. "BNN_XNOR_KERNEL=avx512 unsupported on this CPU".
std::string selection_note();
// The table for one variant name, or nullptr when unknown/unsupported here.
const Kernels* find_kernels(const std::string& name);

void pack_rows(const float* src, size_t rows, size_t k, uint64_t* dst, const Kernels& kern = active_kernels());
void pack_cols(const float* src, size_t k, size_t n, uint64_t* dst, const Kernels& kern = active_kernels());
void gemm(const uint64_t* a, const uint64_t* b, float* c, size_t m, size_t n, size_t k,
          const Kernels& kern = active_kernels());
// C[m][n] = sum_k raw[m][k] * s[k][n] (exact) for 8-bit raw [m][k] and the signs packed as
// columns in b [n][ceil(k/64)] (pack_cols layout); 1 <= k <= ref::kBitplaneMaxK.
void bitplane_gemm(const uint8_t* raw, const uint64_t* b, float* c, size_t m, size_t n, size_t k,
                   const Kernels& kern = active_kernels());

}  // namespace bnn::xnor
