// Checks every kernel variant this CPU supports against the scalar references
// (reference.h files): bit-exact for packing, XNOR GEMM and binary conv, with explicit
// tolerances for the FP32 and element-wise kernels. Exit status 1 on any mismatch.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>

#include "../check_util.h"
#include "codec_check.h"
#include "binary_conv/binary_conv.h"
#include "binary_conv/reference.h"
#include "common/thread_pool.h"
#include "elementwise/elementwise.h"
#include "fp32/fp32.h"
#include "fp32/reference.h"
#include "xnor_gemm/reference.h"
#include "xnor_gemm/xnor_gemm.h"

using namespace bnn;
using tools::Checks;

namespace {

std::mt19937_64 rng(20240611);
const size_t kRagged[] = {1, 2, 3, 17, 63, 64, 65, 127, 129};

std::string dims(const char* what, const std::string& variant, size_t a, size_t b, size_t c) {
  return std::string(what) + " [" + variant + "] " + std::to_string(a) + "x" + std::to_string(b) + "x" +
         std::to_string(c);
}

std::string geom_str(const conv::Geometry& g) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "n%zu %zux%zux%zu f%zux%zu->%zu s%zu,%zu p%zu,%zu o%zux%zu", g.batch, g.in_h, g.in_w,
                g.in_c, g.filter_h, g.filter_w, g.out_c, g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.out_h,
                g.out_w);
  return buf;
}

bool close(const std::vector<float>& got, const std::vector<float>& want, double rel, double abs_tol,
           double* worst = nullptr) {
  double w = 0;
  bool ok = got.size() == want.size();
  for (size_t i = 0; ok && i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - want[i]);
    const double tol = abs_tol + rel * std::fabs(double(want[i]));
    if (!(err <= tol)) ok = false;
    w = std::max(w, err);
  }
  if (worst) *worst = w;
  return ok;
}

void check_packing(Checks& t, const xnor::Kernels& kern) {
  for (size_t rows : {size_t{1}, size_t{3}, size_t{17}, size_t{70}})
    for (size_t k : kRagged) {
      auto src = tools::random_floats(rows * k, rng);
      if (src.size() > 4) {  // the packing rule for special values: only x < 0 is a 1 bit
        src[0] = std::numeric_limits<float>::quiet_NaN();
        src[1] = -std::numeric_limits<float>::infinity();
        src[2] = -0.0f;
        src[3] = -std::numeric_limits<float>::denorm_min();
      }
      const size_t kw = ref::packed_words(k);
      std::vector<uint64_t> got(rows * kw, ~uint64_t{0}), want(rows * kw);
      xnor::pack_rows(src.data(), rows, k, got.data(), kern);
      ref::pack_rows(src.data(), rows, k, k, want.data());
      t.expect(got == want, dims("pack_rows", kern.name, rows, k, 1));
      // As columns: src is [k][rows].
      std::vector<uint64_t> gotc(rows * kw, ~uint64_t{0}), wantc(rows * kw);
      xnor::pack_cols(src.data(), k, rows, gotc.data(), kern);
      ref::pack_cols(src.data(), k, rows, wantc.data());
      t.expect(gotc == wantc, dims("pack_cols", kern.name, k, rows, 1));
    }
}

void gemm_case(Checks& t, const xnor::Kernels& kern, size_t m, size_t n, size_t k) {
  const auto a = tools::random_floats(m * k, rng), b = tools::random_floats(n * k, rng);
  const size_t kw = ref::packed_words(k);
  std::vector<uint64_t> pa(m * kw), pb(n * kw);
  ref::pack_rows(a.data(), m, k, k, pa.data());
  ref::pack_rows(b.data(), n, k, k, pb.data());
  std::vector<float> got(m * n, NAN), want(m * n);
  xnor::gemm(pa.data(), pb.data(), got.data(), m, n, k, kern);
  ref::xnor_gemm(pa.data(), pb.data(), want.data(), m, n, k);
  t.expect(got == want, dims("xnor_gemm", kern.name, m, n, k));
}

void check_gemm(Checks& t, const xnor::Kernels& kern) {
  for (size_t m : kRagged)
    for (size_t n : kRagged)
      for (size_t k : kRagged) gemm_case(t, kern, m, n, k);
  gemm_case(t, kern, 200, 300, 1000);
  gemm_case(t, kern, 100, 33, 40000);  // A spans several cache blocks in the AVX-512 kernel
  gemm_case(t, kern, 24, 8, 4096);     // exact tile multiples
  gemm_case(t, kern, 25, 9, 4097);
}

// Inputs whose answers follow by hand: all +1 rows give K; one negative element in A's
// row i (and nowhere in B) gives K - 2 in row i; the same element negated in B too gives
// K again (they agree); an all-negative A row against all-positive B gives -K.
void check_one_hot(Checks& t, const xnor::Kernels& kern) {
  for (size_t k : {size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{200}}) {
    const size_t m = 5, n = 7, kw = ref::packed_words(k);
    for (size_t pos : {size_t{0}, k / 2, k - 1}) {
      std::vector<float> a(m * k, 1.0f), b(n * k, 0.0f);  // 0 is +1
      a[2 * k + pos] = -1.0f;                              // row 2
      a[4 * k + pos] = -0.5f;                              // row 4, and column 3 of B agrees
      b[3 * k + pos] = -2.0f;
      for (size_t j = 0; j < k; ++j) a[1 * k + j] = -1.0f;  // row 1 all negative
      std::vector<uint64_t> pa(m * kw), pb(n * kw);
      xnor::pack_rows(a.data(), m, k, pa.data(), kern);
      xnor::pack_rows(b.data(), n, k, pb.data(), kern);
      std::vector<float> c(m * n);
      xnor::gemm(pa.data(), pb.data(), c.data(), m, n, k, kern);
      const float K = float(k);
      bool ok = true;
      for (size_t i = 0; i < m; ++i)
        for (size_t j = 0; j < n; ++j) {
          float want = K;
          if (i == 1) want = j == 3 ? -K + 2 : -K;
          if (i == 2) want = j == 3 ? K : K - 2;  // B col 3 has the same element negated
          if (i == 4) want = j == 3 ? K : K - 2;
          if (i != 1 && i != 2 && i != 4 && j == 3) want = K - 2;
          ok = ok && c[i * n + j] == want;
        }
      t.expect(ok, dims("one_hot", kern.name, k, pos, 0));
    }
  }
}

// Random bytes with runs of 0 and 255 mixed in (every bit plane empty and full somewhere).
std::vector<uint8_t> random_bytes(size_t n) {
  std::uniform_int_distribution<int> byte(0, 255), pick(0, 7);
  std::vector<uint8_t> v(n);
  for (auto& x : v) {
    const int p = pick(rng);
    x = p == 0 ? 0 : p == 1 ? 255 : static_cast<uint8_t>(byte(rng));
  }
  return v;
}

void bitplane_case(Checks& t, const xnor::Kernels& kern, size_t m, size_t n, size_t k, int fill = -1) {
  std::vector<uint8_t> raw = random_bytes(m * k);
  if (fill >= 0) std::fill(raw.begin(), raw.end(), static_cast<uint8_t>(fill));
  const auto w = tools::random_floats(k * n, rng);  // [k][n]
  std::vector<uint64_t> pw(n * ref::packed_words(k));
  ref::pack_cols(w.data(), k, n, pw.data());
  std::vector<float> got(m * n, NAN), want(m * n);
  xnor::bitplane_gemm(raw.data(), pw.data(), got.data(), m, n, k, kern);
  // Oracle: raw times the unpacked signs, in plain integer arithmetic.
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      int64_t sum = 0;
      for (size_t q = 0; q < k; ++q) sum += int64_t{raw[i * k + q]} * (w[q * n + j] < 0.0f ? -1 : 1);
      want[i * n + j] = static_cast<float>(sum);
    }
  std::vector<float> want_ref(m * n);
  ref::bitplane_gemm(raw.data(), pw.data(), want_ref.data(), m, n, k);
  t.expect(got == want && want_ref == want,
           dims("bitplane_gemm", kern.name, m, n, k) + (fill >= 0 ? " fill=" + std::to_string(fill) : ""));
}

void check_bitplane(Checks& t, const xnor::Kernels& kern) {
  for (size_t m : kRagged)
    for (size_t n : kRagged)
      for (size_t k : kRagged) bitplane_case(t, kern, m, n, k);
  for (size_t k : {size_t{1}, size_t{65}, size_t{784}})
    for (int fill : {0, 255}) bitplane_case(t, kern, 5, 11, k, fill);
  bitplane_case(t, kern, 256, 70, 784);    // the first-layer shape (MNIST), fewer columns
  bitplane_case(t, kern, 200, 33, 2000);   // several byte runs (AVX2) per output
  bitplane_case(t, kern, 1, 3, 65793);     // the largest exact k, and all-255 rows at it:
  bitplane_case(t, kern, 2, 9, 65793, 255);  // |sum| = 255 k = 2^24 - 1
  bitplane_case(t, kern, 24, 8, 4096);     // exact tile multiples
  bitplane_case(t, kern, 25, 9, 4097);

  // One-hot: a single nonzero byte v at position pos in row 1, and column 2's only
  // negative weight at pos: C[1][2] = -v, C[1][j != 2] = v, every other row 0.
  for (size_t k : {size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{200}})
    for (size_t pos : {size_t{0}, k / 2, k - 1})
      for (unsigned v : {1u, 128u, 255u}) {
        const size_t m = 4, n = 9, kw = ref::packed_words(k);
        std::vector<uint8_t> raw(m * k, 0);
        raw[1 * k + pos] = static_cast<uint8_t>(v);
        std::vector<uint64_t> pw(n * kw, 0);
        pw[2 * kw + pos / 64] = uint64_t{1} << (pos % 64);
        std::vector<float> c(m * n, NAN);
        xnor::bitplane_gemm(raw.data(), pw.data(), c.data(), m, n, k, kern);
        bool ok = true;
        for (size_t i = 0; i < m; ++i)
          for (size_t j = 0; j < n; ++j) ok = ok && c[i * n + j] == (i != 1 ? 0.0f : j == 2 ? -float(v) : float(v));
        t.expect(ok, dims("bitplane_one_hot", kern.name, k, pos, v));
      }
}

std::vector<conv::Geometry> conv_cases() {
  std::vector<conv::Geometry> out;
  auto add = [&](size_t n, size_t h, size_t w, size_t c, size_t fh, size_t fw, size_t o, size_t s, bool same) {
    conv::Geometry g;
    g.batch = n, g.in_h = h, g.in_w = w, g.in_c = c, g.filter_h = fh, g.filter_w = fw, g.out_c = o;
    g.stride_h = g.stride_w = s;
    if (same) {  // tfjs 'same': out = ceil(in / s), total pad split with the extra at the bottom/right
      g.out_h = (h + s - 1) / s, g.out_w = (w + s - 1) / s;
      const size_t ph = std::max<long>(0, long((g.out_h - 1) * s + fh) - long(h));
      const size_t pw = std::max<long>(0, long((g.out_w - 1) * s + fw) - long(w));
      g.pad_top = ph / 2, g.pad_left = pw / 2;
    } else {  // 'valid'
      g.out_h = (h - fh) / s + 1, g.out_w = (w - fw) / s + 1;
    }
    out.push_back(g);
  };
  for (size_t c : {size_t{1}, size_t{3}, size_t{64}, size_t{65}, size_t{130}})
    for (size_t s : {size_t{1}, size_t{2}})
      for (bool same : {true, false}) {
        add(2, 7, 6, c, 3, 3, 5, s, same);
        add(1, 9, 9, c, 5, 3, 17, s, same);
        add(1, 4, 5, c, 1, 1, 3, s, same);
      }
  conv::Geometry g;  // explicit pads larger than the filter reach, plus bottom/right overhang
  g.batch = 1, g.in_h = 5, g.in_w = 4, g.in_c = 7, g.filter_h = 3, g.filter_w = 2, g.out_c = 9;
  g.stride_h = 2, g.stride_w = 1, g.pad_top = 2, g.pad_left = 3, g.out_h = 5, g.out_w = 8;
  out.push_back(g);
  return out;
}

void check_binary_conv(Checks& t, const xnor::Kernels& kern) {
  for (const auto& g : conv_cases()) {
    const auto x = tools::random_floats(g.input_size(), rng), w = tools::random_floats(g.filter_size(), rng);
    std::vector<uint64_t> wb(g.out_c * ref::packed_words(g.patch()));
    xnor::pack_cols(w.data(), g.patch(), g.out_c, wb.data(), kern);
    std::vector<float> got(g.output_size(), NAN), want(g.output_size());
    binary_conv::conv2d(x.data(), wb.data(), g, got.data(), kern);
    ref::binary_conv2d(x.data(), w.data(), g, want.data());
    t.expect(got == want, std::string("binary_conv2d [") + kern.name + "] " + geom_str(g));
  }
  // All-ones input and filter: each output counts the in-bounds taps times in_c.
  conv::Geometry g;
  g.batch = 1, g.in_h = 3, g.in_w = 3, g.in_c = 2, g.filter_h = 3, g.filter_w = 3, g.out_c = 1;
  g.pad_top = 1, g.pad_left = 1, g.out_h = 3, g.out_w = 3;
  std::vector<float> x(g.input_size(), 1.0f), w(g.filter_size(), 1.0f), got(g.output_size());
  std::vector<uint64_t> wb(1);
  xnor::pack_cols(w.data(), g.patch(), 1, wb.data(), kern);
  binary_conv::conv2d(x.data(), wb.data(), g, got.data(), kern);
  const std::vector<float> want = {8, 12, 8, 12, 18, 12, 8, 12, 8};  // corner 4 taps, edge 6, centre 9
  t.expect(got == want, std::string("binary_conv2d [") + kern.name + "] all-ones 3x3 same");
}

void check_sgemm(Checks& t) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (size_t m : {size_t{1}, size_t{17}, size_t{65}})
        for (size_t n : {size_t{1}, size_t{3}, size_t{64}})
          for (size_t k : {size_t{1}, size_t{63}, size_t{129}}) {
            const auto a = tools::random_floats(m * k, rng), b = tools::random_floats(k * n, rng);
            auto c0 = tools::random_floats(m * n, rng);
            for (float beta : {0.0f, 0.5f}) {
              std::vector<float> got = c0, want = c0;
              fp32::sgemm(ta, tb, m, n, k, 1.5f, a.data(), b.data(), beta, got.data());
              ref::sgemm(ta, tb, m, n, k, 1.5f, a.data(), b.data(), beta, want.data());
              t.expect(close(got, want, 1e-5, 1e-5 * std::sqrt(double(k))),
                       dims(ta ? (tb ? "sgemm TT" : "sgemm TN") : (tb ? "sgemm NT" : "sgemm NN"), "blas", m, n, k));
            }
          }
}

void check_fp32_conv(Checks& t) {
  for (const auto& g : conv_cases()) {
    const auto x = tools::random_floats(g.input_size(), rng), w = tools::random_floats(g.filter_size(), rng);
    const auto dy = tools::random_floats(g.output_size(), rng);
    const double tol = 1e-5 * std::sqrt(double(g.patch() * g.out_c));
    std::vector<float> got(g.output_size(), NAN), want(g.output_size());
    fp32::conv2d(x.data(), w.data(), g, got.data());
    ref::conv2d(x.data(), w.data(), g, want.data());
    t.expect(close(got, want, 1e-5, tol), "conv2d " + geom_str(g));
    std::vector<float> gdx(g.input_size(), NAN), wdx(g.input_size());
    fp32::conv2d_backprop_input(dy.data(), w.data(), g, gdx.data());
    ref::conv2d_backprop_input(dy.data(), w.data(), g, wdx.data());
    t.expect(close(gdx, wdx, 1e-5, tol), "conv2d_backprop_input " + geom_str(g));
    std::vector<float> gdw(g.filter_size(), NAN), wdw(g.filter_size());
    fp32::conv2d_backprop_filter(x.data(), dy.data(), g, gdw.data());
    ref::conv2d_backprop_filter(x.data(), dy.data(), g, wdw.data());
    t.expect(close(gdw, wdw, 1e-5, 1e-5 * std::sqrt(double(g.out_rows()))), "conv2d_backprop_filter " + geom_str(g));
  }
}

void check_elementwise(Checks& t) {
  for (size_t n : {size_t{1}, size_t{17}, size_t{100000}}) {
    auto x = tools::random_floats(n, rng);
    for (size_t i = 0; i < n; i += 7) x[i] *= 3.0f;  // some |x| > 1 for the STE
    if (n > 2) x[0] = 1.0f, x[1] = -1.0f;            // the STE passes the gradient at |x| == 1
    const auto g = tools::random_floats(n, rng);
    std::vector<float> s(n), want(n);
    elementwise::sign_into(x.data(), s.data(), n);
    for (size_t i = 0; i < n; ++i) want[i] = x[i] < 0 ? -1.0f : 1.0f;
    t.expect(s == want, "sign_into n=" + std::to_string(n));
    elementwise::ste_grad(g.data(), x.data(), s.data(), n);
    for (size_t i = 0; i < n; ++i) want[i] = std::fabs(x[i]) <= 1.0f ? g[i] : 0.0f;
    t.expect(s == want, "ste_grad n=" + std::to_string(n));

    for (float clip : {0.0f, 0.05f}) {
      elementwise::AdamWParams h;
      h.lr = 0.01f, h.weight_decay = 0.1f, h.step = 3, h.clip = clip;
      auto p1 = x, m1 = tools::random_floats(n, rng), v1 = tools::random_floats(n, rng);
      for (auto& vv : v1) vv = std::fabs(vv);
      auto p2 = p1, m2 = m1, v2 = v1;
      elementwise::adamw(p1.data(), g.data(), m1.data(), v1.data(), n, h);
      ref::adamw(p2.data(), g.data(), m2.data(), v2.data(), n, h);
      t.expect(close(p1, p2, 1e-5, 1e-6) && close(m1, m2, 1e-6, 1e-7) && close(v1, v2, 1e-6, 1e-7),
               "adamw n=" + std::to_string(n) + " clip=" + std::to_string(clip));
    }
  }
  for (size_t rows : {size_t{1}, size_t{2}, size_t{37}, size_t{5000}})
    for (size_t c : {size_t{1}, size_t{3}, size_t{64}}) {
      auto x = tools::random_floats(rows * c, rng, false);
      for (auto& v : x) v = v * 3.0f + 7.0f;  // a mean far from 0
      const auto gamma = tools::random_floats(c, rng), beta = tools::random_floats(c, rng);
      const auto dy = tools::random_floats(rows * c, rng);
      std::vector<float> y1(rows * c), y2(rows * c), mu1(c), mu2(c), is1(c), is2(c);
      elementwise::batch_norm_forward(x.data(), rows, c, gamma.data(), beta.data(), 1e-3f, y1.data(), mu1.data(),
                                      is1.data());
      ref::batch_norm_forward(x.data(), rows, c, gamma.data(), beta.data(), 1e-3f, y2.data(), mu2.data(), is2.data());
      const std::string what = " rows=" + std::to_string(rows) + " c=" + std::to_string(c);
      t.expect(close(y1, y2, 1e-4, 1e-4) && close(mu1, mu2, 1e-6, 1e-6) && close(is1, is2, 1e-4, 1e-6),
               "batch_norm_forward" + what);
      std::vector<float> dx1(rows * c), dx2(rows * c), dg1(c), dg2(c), db1(c), db2(c);
      elementwise::batch_norm_backward(dy.data(), x.data(), rows, c, gamma.data(), mu2.data(), is2.data(), dx1.data(),
                                       dg1.data(), db1.data());
      ref::batch_norm_backward(dy.data(), x.data(), rows, c, gamma.data(), mu2.data(), is2.data(), dx2.data(),
                               dg2.data(), db2.data());
      const double rt = 1e-4 * std::sqrt(double(rows));
      t.expect(close(dx1, dx2, 1e-4, 1e-4) && close(dg1, dg2, 1e-4, rt) && close(db1, db2, 1e-4, rt),
               "batch_norm_backward" + what);
    }
}

// The pool resized between jobs, as setThreads does from JavaScript: every job must run
// each task exactly once and return (a pool that loses track of its workers hangs here).
// Nested calls from inside a task, and from the one-thread inline path, run inline.
void check_thread_pool(Checks& t) {
  ThreadPool& pool = ThreadPool::global();
  const size_t sizes[] = {1, 2, 3, 4, 2, 3, 1, 3};
  bool ok = true;
  for (int round = 0; round < 20000 && ok; ++round) {
    pool.set_threads(sizes[round % 8]);
    const size_t tasks = 1 + size_t(round % 37);
    std::vector<std::atomic<int>> hits(tasks);
    pool.parallel_for(tasks, [&](size_t task) {
      hits[task].fetch_add(1);
      if (task == 0) pool.parallel_for(3, [](size_t) {});  // nested: inline
    });
    for (auto& h : hits) ok = ok && h.load() == 1;
  }
  t.expect(ok, "thread_pool: resize between jobs, every task once");
}

}  // namespace

int main() {
  Checks t;
  std::printf("kernel_check: cpu variants: ");
  for (const auto& name : xnor::available_kernels()) std::printf("%s ", name.c_str());
  std::printf("\n");
  check_thread_pool(t);
  const size_t hw = ThreadPool::default_threads();
  for (size_t threads : {size_t{1}, std::max<size_t>(2, hw)}) {
    ThreadPool::global().set_threads(threads);
    fp32::set_blas_threads(threads);
    for (const auto& name : xnor::available_kernels()) {
      const xnor::Kernels& kern = *xnor::find_kernels(name);
      check_packing(t, kern);
      check_gemm(t, kern);
      check_one_hot(t, kern);
      check_binary_conv(t, kern);
      check_bitplane(t, kern);
    }
    check_sgemm(t);
    check_fp32_conv(t);
    check_elementwise(t);
    tools::check_codec(t);
    std::printf("kernel_check: threads=%zu done\n", threads);
  }
  std::printf("kernel_check: %d passed, %d failed\n", t.passed(), t.failed());
  return t.failed() == 0 ? 0 : 1;
}
