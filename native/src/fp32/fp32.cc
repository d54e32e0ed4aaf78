#include "fp32.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../common/scratch.h"
#include "../common/thread_pool.h"

// OpenBLAS extensions (declared in its cblas.h, repeated so other CBLAS headers work too).
extern "C" {
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
char* openblas_get_config(void);
char* openblas_get_corename(void);
}

namespace bnn::fp32 {

namespace {

constexpr size_t kRowsPerTask = 16;
struct ColsTag {};  // the one im2col / col2im buffer (never two live at once)
// im2col buffers are cut to about this many floats (32 MiB).
constexpr size_t kColBudget = size_t{1} << 23;

// cols[r][K] for output rows [r0, r0 + nrows): the input patch of each output position,
// zeros where the patch reaches into the padding.
void im2col(const float* x, const conv::Geometry& g, size_t r0, size_t nrows, float* cols) {
  const size_t k = g.patch();
  ThreadPool::global().parallel_for((nrows + kRowsPerTask - 1) / kRowsPerTask, [&](size_t t) {
    for (size_t r = t * kRowsPerTask; r < std::min(nrows, (t + 1) * kRowsPerTask); ++r) {
      const size_t row = r0 + r;
      const size_t ow = row % g.out_w, oh = (row / g.out_w) % g.out_h, n = row / (g.out_w * g.out_h);
      float* dst = cols + r * k;
      for (size_t kh = 0; kh < g.filter_h; ++kh) {
        const long ih = g.in_row(oh, kh);
        for (size_t kw = 0; kw < g.filter_w; ++kw, dst += g.in_c) {
          const long iw = ih < 0 ? -1 : g.in_col(ow, kw);
          if (iw < 0) std::memset(dst, 0, g.in_c * sizeof(float));
          else std::memcpy(dst, x + ((n * g.in_h + ih) * g.in_w + iw) * g.in_c, g.in_c * sizeof(float));
        }
      }
    }
  });
}

// dx for images [n0, n0 + images) from dcols [image rows][K]: each input pixel gathers the
// patch entries that read it (a gather, so threads never write the same pixel).
void col2im(const float* dcols, const conv::Geometry& g, size_t n0, size_t images, float* dx) {
  const size_t k = g.patch();
  const size_t in_rows = images * g.in_h;
  ThreadPool::global().parallel_for(in_rows, [&](size_t t) {
    const size_t ih = t % g.in_h, n = t / g.in_h;
    float* drow = dx + ((n0 + n) * g.in_h + ih) * g.in_w * g.in_c;
    std::memset(drow, 0, g.in_w * g.in_c * sizeof(float));
    for (size_t kh = 0; kh < g.filter_h; ++kh) {
      const long th = static_cast<long>(ih + g.pad_top) - static_cast<long>(kh);
      if (th < 0 || th % static_cast<long>(g.stride_h) != 0) continue;
      const size_t oh = static_cast<size_t>(th) / g.stride_h;
      if (oh >= g.out_h) continue;
      for (size_t iw = 0; iw < g.in_w; ++iw) {
        float* d = drow + iw * g.in_c;
        for (size_t kw = 0; kw < g.filter_w; ++kw) {
          const long tw = static_cast<long>(iw + g.pad_left) - static_cast<long>(kw);
          if (tw < 0 || tw % static_cast<long>(g.stride_w) != 0) continue;
          const size_t ow = static_cast<size_t>(tw) / g.stride_w;
          if (ow >= g.out_w) continue;
          const float* s = dcols + ((n * g.out_h + oh) * g.out_w + ow) * k + (kh * g.filter_w + kw) * g.in_c;
          for (size_t c = 0; c < g.in_c; ++c) d[c] += s[c];
        }
      }
    }
  });
}

// Tiles of C that one single-threaded OpenBLAS call computes. They depend on the shape
// alone, never on the thread count: OpenBLAS's own threading splits the work by thread
// count, and its result for an element depends on the blocking around it, so letting it
// thread would make training numerics (and accuracy) change with --threads.
constexpr size_t kTileCols = 256;   // C columns per tile when n >= 2 * kTileCols
constexpr size_t kTileRows = 1024;  // C rows per tile when m >= 2 * kTileRows

size_t tile_span(size_t extent, size_t tile) { return extent >= 2 * tile ? tile : extent; }

// false: one OpenBLAS call threaded by OpenBLAS (the benchmark's baseline).
bool g_tiled = true;

}  // namespace

void set_tiled(bool tiled) {
  g_tiled = tiled;
  set_blas_threads(ThreadPool::global().threads());
}
bool tiled() { return g_tiled; }

void sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float* a, const float* b,
           float beta, float* c) {
  if (m == 0 || n == 0) return;
  BNN_REQUIRE(c != nullptr, "null output");
  if (k == 0) {  // OpenBLAS requires lda >= 1; the product is empty, so C = beta * C.
    for (size_t i = 0; i < m * n; ++i) c[i] = beta == 0.0f ? 0.0f : beta * c[i];
    return;
  }
  BNN_REQUIRE(a && b, "null input");
  const size_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
  // C[i0.., j0..] (mm x nn) of the product; op(A) rows are columns of A when transposed.
  const auto block = [&](size_t i0, size_t j0, size_t mm, size_t nn) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                static_cast<int>(mm), static_cast<int>(nn), static_cast<int>(k), alpha,
                trans_a ? a + i0 : a + i0 * lda, static_cast<int>(lda), trans_b ? b + j0 * ldb : b + j0,
                static_cast<int>(ldb), beta, c + i0 * n + j0, static_cast<int>(n));
  };
  if (!g_tiled) return block(0, 0, m, n);
  const size_t tm = tile_span(m, kTileRows), tn = tile_span(n, kTileCols);
  const size_t cols = (n + tn - 1) / tn, tiles = ((m + tm - 1) / tm) * cols;
  ThreadPool::global().parallel_for(tiles, [&](size_t t) {
    const size_t i0 = (t / cols) * tm, j0 = (t % cols) * tn;
    block(i0, j0, std::min(tm, m - i0), std::min(tn, n - j0));
  });
}

void conv2d(const float* x, const float* w, const conv::Geometry& g, float* out) {
  conv::require_valid(g);
  const size_t k = g.patch(), rows = g.out_rows();
  if (g.is_pointwise()) return sgemm(false, false, rows, g.out_c, k, 1.0f, x, w, 0.0f, out);
  const size_t chunk = std::min(rows, std::max<size_t>(1, kColBudget / k));
  float* cols = scratch_buffer<float, ColsTag>(chunk * k);
  for (size_t r0 = 0; r0 < rows; r0 += chunk) {
    const size_t nrows = std::min(chunk, rows - r0);
    im2col(x, g, r0, nrows, cols);
    sgemm(false, false, nrows, g.out_c, k, 1.0f, cols, w, 0.0f, out + r0 * g.out_c);
  }
}

void conv2d_backprop_input(const float* dy, const float* w, const conv::Geometry& g, float* dx) {
  conv::require_valid(g);
  const size_t k = g.patch();
  if (g.is_pointwise()) return sgemm(false, true, g.out_rows(), g.in_c, g.out_c, 1.0f, dy, w, 0.0f, dx);
  // Whole images per chunk, so col2im sees every patch that touches a pixel.
  const size_t image_rows = g.out_h * g.out_w;
  const size_t images = std::min(g.batch, std::max<size_t>(1, kColBudget / (image_rows * k)));
  float* dcols = scratch_buffer<float, ColsTag>(images * image_rows * k);
  for (size_t n0 = 0; n0 < g.batch; n0 += images) {
    const size_t nimg = std::min(images, g.batch - n0);
    sgemm(false, true, nimg * image_rows, k, g.out_c, 1.0f, dy + n0 * image_rows * g.out_c, w, 0.0f, dcols);
    col2im(dcols, g, n0, nimg, dx);
  }
}

void conv2d_backprop_filter(const float* x, const float* dy, const conv::Geometry& g, float* dw) {
  conv::require_valid(g);
  const size_t k = g.patch(), rows = g.out_rows();
  if (g.is_pointwise()) return sgemm(true, false, k, g.out_c, rows, 1.0f, x, dy, 0.0f, dw);
  const size_t chunk = std::min(rows, std::max<size_t>(1, kColBudget / k));
  float* cols = scratch_buffer<float, ColsTag>(chunk * k);
  for (size_t r0 = 0; r0 < rows; r0 += chunk) {
    const size_t nrows = std::min(chunk, rows - r0);
    im2col(x, g, r0, nrows, cols);
    sgemm(true, false, k, g.out_c, nrows, 1.0f, cols, dy + r0 * g.out_c, r0 == 0 ? 0.0f : 1.0f, dw);
  }
}

// Tiled: OpenBLAS runs single-threaded and sgemm threads over its tiles in the kernels' pool.
void set_blas_threads(size_t n) { openblas_set_num_threads(g_tiled ? 1 : static_cast<int>(std::max<size_t>(1, n))); }
size_t blas_threads() { return static_cast<size_t>(std::max(1, openblas_get_num_threads())); }
std::string blas_config() {
  std::string s = openblas_get_config();
  s += " core=";
  s += openblas_get_corename();
  return s;
}

}  // namespace bnn::fp32
