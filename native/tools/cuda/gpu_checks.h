// GPU checks of the CUDA harness: every kernel through the C API, bit-exact against the scalar
// references on fresh random inputs at ragged sizes and on one-hot inputs.
#pragma once
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "binary_conv/reference.h"
#include "cuda/bnn_cuda.h"
#include "cuda/conv_params.h"
#include "xnor_gemm/reference.h"
#include "cpu_checks.h"

namespace bnn::cuda_test {

// Device buffer owned through the C API's helpers.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bnn_cuda_malloc(&ptr_, bytes ? bytes : 1) != BNN_CUDA_OK) ptr_ = nullptr;
  }
  ~DeviceBuffer() { bnn_cuda_free(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }
  bool ok() const { return ptr_ != nullptr; }
  template <class T>
  bool upload(const std::vector<T>& v) { return bnn_cuda_memcpy(ptr_, v.data(), v.size() * sizeof(T)) == BNN_CUDA_OK; }
  template <class T>
  std::vector<T> download(size_t count) const {
    std::vector<T> v(count);
    if (bnn_cuda_memcpy(v.data(), ptr_, count * sizeof(T)) != BNN_CUDA_OK) v.clear();
    return v;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
};

inline const char* variant_name(int v) {
  return v == BNN_CUDA_GEMM_MMA ? "mma" : v == BNN_CUDA_GEMM_POPC ? "popc" : "auto";
}

// quick: a representative subset, for runs under compute-sanitizer.
inline void check_gpu_pack(Checks& ck, std::mt19937_64& rng, bool quick) {
  int mark[2];
  ck.mark(mark);
  const std::vector<size_t> ks = quick ? std::vector<size_t>{1, 33, 65, 1000}
                                       : std::vector<size_t>{1, 2, 3, 17, 31, 32, 33, 63, 64, 65, 127, 129, 1000, 4097};
  for (size_t k : ks) {
    for (int bits : {64, 32}) {
      const size_t rows = 37, ld = k + 3;
      const size_t kw64 = ref::packed_words(k), words = bnn_cuda_packed_words(k, bits);
      const std::vector<float> x = random_floats(rows * ld, rng);
      std::vector<uint64_t> want(rows * kw64);
      ref::pack_rows(x.data(), rows, k, ld, want.data());
      DeviceBuffer dx(x.size() * 4), dp(rows * words * bits / 8);
      ck.expect(dx.ok() && dp.ok() && dx.upload(x), "alloc/upload");
      int s = bnn_cuda_pack_rows(dx.as<float>(), rows, k, ld, dp.as<void>(), bits, nullptr);
      ck.expect(s == BNN_CUDA_OK, "pack_rows k=%zu bits=%d: %s", k, bits, bnn_cuda_last_error());
      // Reference words viewed at this width (little-endian uint64 = two uint32, low first).
      std::vector<uint8_t> got = dp.download<uint8_t>(rows * words * bits / 8), exp(got.size());
      for (size_t r = 0; r < rows; ++r)
        std::memcpy(exp.data() + r * words * bits / 8, reinterpret_cast<const uint8_t*>(want.data() + r * kw64),
                    words * bits / 8);
      ck.expect(got == exp, "pack_rows k=%zu bits=%d differs from reference", k, bits);

      // Columns: the transpose [k][rows] (row stride rows + 2) packs to the same rows.
      const size_t ldt = rows + 2;
      std::vector<float> t(k * ldt, 7.0f);
      for (size_t r = 0; r < rows; ++r)
        for (size_t q = 0; q < k; ++q) t[q * ldt + r] = x[r * ld + q];
      DeviceBuffer dt(t.size() * 4), dq(rows * words * bits / 8);
      ck.expect(dt.ok() && dq.ok() && dt.upload(t), "alloc/upload");
      s = bnn_cuda_pack_cols(dt.as<float>(), k, rows, ldt, dq.as<void>(), bits, nullptr);
      ck.expect(s == BNN_CUDA_OK, "pack_cols k=%zu bits=%d: %s", k, bits, bnn_cuda_last_error());
      ck.expect(dq.download<uint8_t>(got.size()) == exp, "pack_cols k=%zu bits=%d differs from reference", k, bits);
    }
  }
  ck.group("gpu: pack_rows / pack_cols (32- and 64-bit words) bit-exact", mark);
}

// One GEMM case through the API on packed random rows (or given packed rows).
inline bool gemm_case(Checks& ck, const std::vector<uint64_t>& pa, const std::vector<uint64_t>& pb, size_t m, size_t n,
                      size_t k, int variant, bool offset_a, bool give_popc) {
  std::vector<float> want(m * n);
  ref::xnor_gemm(pa.data(), pb.data(), want.data(), m, n, k);
  // offset_a: A starts one word into its buffer, 8- but not 16-byte aligned (the 8-byte copy path).
  DeviceBuffer da((pa.size() + 1) * 8), db(pb.size() * 8), dc(m * n * 4), dpop((m + n) * 4);
  uint64_t* a = da.as<uint64_t>() + (offset_a ? 1 : 0);
  bool good = da.ok() && db.ok() && dc.ok() && dpop.ok() && bnn_cuda_memcpy(a, pa.data(), pa.size() * 8) == BNN_CUDA_OK &&
              db.upload(pb);
  const int32_t* apop = nullptr;
  const int32_t* bpop = nullptr;
  if (good && give_popc) {
    good = bnn_cuda_row_popcounts(a, m, k, dpop.as<int32_t>(), nullptr) == BNN_CUDA_OK &&
           bnn_cuda_row_popcounts(db.as<uint64_t>(), n, k, dpop.as<int32_t>() + m, nullptr) == BNN_CUDA_OK;
    apop = dpop.as<int32_t>();
    bpop = dpop.as<int32_t>() + m;
  }
  const int s = good ? bnn_cuda_xnor_gemm(a, db.as<uint64_t>(), dc.as<float>(), m, n, k, variant, apop, bpop, nullptr)
                     : BNN_CUDA_ERR_CUDA;
  if (!ck.expect(s == BNN_CUDA_OK, "xnor_gemm %s %zux%zux%zu: %s", variant_name(variant), m, n, k, bnn_cuda_last_error()))
    return false;
  const std::vector<float> got = dc.download<float>(m * n);
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i)
    if (std::memcmp(&got[i], &want[i], 4) != 0 && bad++ == 0) first = i;
  return ck.expect(got.size() == want.size() && bad == 0,
                   "xnor_gemm %s %zux%zux%zu%s%s: %zu mismatches, first at (%zu,%zu) got %g want %g", variant_name(variant),
                   m, n, k, offset_a ? " (8-byte aligned A)" : "", give_popc ? " (given popcounts)" : "", bad,
                   first / n, first % n, got.empty() ? 0.0 : double(got[first]), double(want[first]));
}

inline std::vector<uint64_t> random_packed(std::mt19937_64& rng, size_t rows, size_t k) {
  const std::vector<float> x = random_floats(rows * k, rng);
  std::vector<uint64_t> p(rows * ref::packed_words(k));
  ref::pack_rows(x.data(), rows, k, k, p.data());
  return p;
}

inline void check_gpu_gemm(Checks& ck, std::mt19937_64& rng, int variant, bool quick) {
  int mark[2];
  ck.mark(mark);
  using Shape = std::vector<std::vector<size_t>>;
  const Shape mn = quick ? Shape{{1, 1}, {17, 63}, {129, 127}}
                         : Shape{{1, 1}, {2, 3}, {3, 2}, {17, 63}, {64, 65}, {65, 64}, {127, 129}, {129, 127}, {128, 128}, {1, 257}};
  const std::vector<size_t> ks = quick ? std::vector<size_t>{1, 65, 256, 513, 1024}
                                       : std::vector<size_t>{1,   2,   3,   17,  63,  64,   65,   127,  128,  129,
                                                             255, 256, 257, 511, 512, 513, 1000, 1024, 2049, 4097};
  for (const auto& s : mn)
    for (size_t k : ks) gemm_case(ck, random_packed(rng, s[0], k), random_packed(rng, s[1], k), s[0], s[1], k, variant, false, false);
  // Larger, several blocks in both dimensions and many k-tiles; aligned and 8-byte A; given popcounts.
  const Shape big = quick ? Shape{{300, 200, 2500}} : Shape{{300, 200, 2500}, {1000, 777, 1537}, {256, 384, 8192}, {513, 259, 4096}};
  for (const auto& s : big) {
    const auto pa = random_packed(rng, s[0], s[2]), pb = random_packed(rng, s[1], s[2]);
    gemm_case(ck, pa, pb, s[0], s[1], s[2], variant, false, false);
    gemm_case(ck, pa, pb, s[0], s[1], s[2], variant, true, true);
  }
  // One-hot: a single -1 in A (row i0, bit k0) and in B (row j0, bit k0).
  for (size_t k : quick ? std::vector<size_t>{300} : std::vector<size_t>{65, 300, 1024}) {
    const size_t m = 150, n = 140, kw = ref::packed_words(k), i0 = 131, j0 = 7, k0 = k - 1;
    std::vector<uint64_t> pa(m * kw, 0), pb(n * kw, 0);
    pa[i0 * kw + k0 / 64] = uint64_t{1} << (k0 % 64);
    pb[j0 * kw + k0 / 64] = uint64_t{1} << (k0 % 64);
    gemm_case(ck, pa, pb, m, n, k, variant, false, false);
  }
  std::string name = std::string("gpu: xnor_gemm ") + variant_name(variant) + " ragged/one-hot bit-exact";
  ck.group(name.c_str(), mark);
}

inline void check_gpu_conv(Checks& ck, std::mt19937_64& rng, int variant, bool quick) {
  int mark[2];
  ck.mark(mark);
  std::vector<bnn_cuda_conv2d_params> cases = conv_cases();
  if (quick) cases.resize(4);
  cases.push_back({4, 16, 16, 96, 3, 3, 160, 1, 1, 1, 1, 16, 16});  // several GEMM blocks
  if (!quick) cases.push_back({2, 15, 13, 200, 3, 3, 33, 2, 2, 1, 1, 8, 7});
  for (size_t i = 0; i < cases.size(); ++i) {
    const bnn_cuda_conv2d_params& p = cases[i];
    const std::vector<float> x = random_floats(size_t(p.batch * p.in_h * p.in_w * p.in_c), rng);
    const std::vector<float> w = random_floats(size_t(p.k_h * p.k_w * p.in_c * p.out_c), rng);
    std::vector<float> want(size_t(p.batch * p.out_h * p.out_w * p.out_c));
    ref::binary_conv2d(x.data(), w.data(), cuda::to_geometry(p), want.data());
    size_t ws_bytes = 0;
    bnn_cuda_conv2d_workspace_bytes(&p, &ws_bytes);
    DeviceBuffer dx(x.size() * 4), dw(w.size() * 4), dy(want.size() * 4), dws(ws_bytes);
    bool good = dx.ok() && dw.ok() && dy.ok() && dws.ok() && dx.upload(x) && dw.upload(w);
    // Alternate between a caller workspace and internal scratch.
    const bool own = i % 2 == 0;
    const int s = good ? bnn_cuda_binary_conv2d(dx.as<float>(), dw.as<float>(), dy.as<float>(), &p, variant,
                                                own ? dws.as<void>() : nullptr, own ? ws_bytes : 0, nullptr)
                       : BNN_CUDA_ERR_CUDA;
    if (!ck.expect(s == BNN_CUDA_OK, "conv %s case %zu: %s", variant_name(variant), i, bnn_cuda_last_error())) continue;
    const std::vector<float> got = dy.download<float>(want.size());
    ck.expect(got == want, "conv %s case %zu (in_c %lld, k %lldx%lld, stride %lld, pad %lld/%lld) differs from reference",
              variant_name(variant), i, (long long)p.in_c, (long long)p.k_h, (long long)p.k_w, (long long)p.stride_h,
              (long long)p.pad_top, (long long)p.pad_left);
  }
  std::string name = std::string("gpu: binary_conv2d ") + variant_name(variant) + " vs float conv of signs";
  ck.group(name.c_str(), mark);
}

inline void check_gpu_popcounts(Checks& ck, std::mt19937_64& rng) {  // already small
  int mark[2];
  ck.mark(mark);
  for (size_t k : {1, 64, 65, 1000, 5000}) {
    const size_t rows = 300, kw = ref::packed_words(k);
    const auto p = random_packed(rng, rows, k);
    std::vector<int32_t> want(rows, 0);
    for (size_t r = 0; r < rows; ++r)
      for (size_t w = 0; w < kw; ++w) want[r] += popc64(p[r * kw + w]);
    DeviceBuffer dp(p.size() * 8), dout(rows * 4);
    const bool up = dp.ok() && dout.ok() && dp.upload(p);
    ck.expect(up && bnn_cuda_row_popcounts(dp.as<uint64_t>(), rows, k, dout.as<int32_t>(), nullptr) == BNN_CUDA_OK,
              "row_popcounts k=%zu: %s", k, bnn_cuda_last_error());
    ck.expect(dout.download<int32_t>(rows) == want, "row_popcounts k=%zu differs", k);
  }
  ck.group("gpu: row popcounts", mark);
}

inline void run_gpu_checks(Checks& ck, std::mt19937_64& rng, bool mma_available, bool quick) {
  check_gpu_pack(ck, rng, quick);
  check_gpu_popcounts(ck, rng);
  check_gpu_gemm(ck, rng, BNN_CUDA_GEMM_POPC, quick);
  if (mma_available) check_gpu_gemm(ck, rng, BNN_CUDA_GEMM_MMA, quick);
  if (!quick) check_gpu_gemm(ck, rng, BNN_CUDA_GEMM_AUTO, quick);
  check_gpu_conv(ck, rng, BNN_CUDA_GEMM_POPC, quick);
  if (mma_available) check_gpu_conv(ck, rng, BNN_CUDA_GEMM_MMA, quick);
  if (!quick) check_gpu_conv(ck, rng, BNN_CUDA_GEMM_AUTO, quick);
}

}  // namespace bnn::cuda_test
