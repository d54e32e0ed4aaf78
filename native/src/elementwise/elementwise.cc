#include "elementwise.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <vector>

#include "../common/check.h"
#include "../common/thread_pool.h"

namespace bnn::elementwise {

namespace {

// Elements per task: large enough that a hand-off (~µs) is noise, small enough to balance.
constexpr size_t kGrain = size_t{1} << 15;

template <class F>
void for_ranges(size_t n, F&& f) {
  ThreadPool::global().parallel_for((n + kGrain - 1) / kGrain,
                                    [&](size_t t) { f(t * kGrain, std::min(n, (t + 1) * kGrain)); });
}

// Row chunks for per-channel reductions; fixed by the shape alone (never by the thread
// count), and partial sums are combined in chunk order, so results are reproducible.
struct RowChunks {
  size_t rows, per, count;
  RowChunks(size_t rows_, size_t c) : rows(rows_), per(std::max<size_t>(1, kGrain / std::max<size_t>(c, 1))) {
    count = (rows + per - 1) / per;
  }
  size_t begin(size_t i) const { return i * per; }
  size_t end(size_t i) const { return std::min(rows, (i + 1) * per); }
};

// Per-channel sums run in float over at most this many rows (so they vectorise), then are
// added into double partials.
constexpr size_t kFloatRun = 128;

inline void add_into(double* __restrict dst, const float* __restrict src, size_t c) {
  for (size_t j = 0; j < c; ++j) dst[j] += src[j];
}

// s[j] += x[r][j] - shift[j], q[j] += (x[r][j] - shift[j])^2 for rows [r0, r1).
void sum_shifted(const float* __restrict x, const float* __restrict shift, size_t c, size_t r0, size_t r1,
                 float* __restrict s, float* __restrict q) {
  for (size_t r = r0; r < r1; ++r) {
    const float* xr = x + r * c;
    for (size_t j = 0; j < c; ++j) {
      const float d = xr[j] - shift[j];
      s[j] += d;
      q[j] += d * d;
    }
  }
}

// a[j] += dy[r][j], b[j] += dy[r][j] * (x[r][j] - mean[j]) for rows [r0, r1).
void sum_dy_dyx(const float* __restrict dy, const float* __restrict x, const float* __restrict mean, size_t c,
                size_t r0, size_t r1, float* __restrict a, float* __restrict b) {
  for (size_t r = r0; r < r1; ++r) {
    const float* dyr = dy + r * c;
    const float* xr = x + r * c;
    for (size_t j = 0; j < c; ++j) {
      a[j] += dyr[j];
      b[j] += dyr[j] * (xr[j] - mean[j]);
    }
  }
}

}  // namespace

void sign_into(const float* src, float* dst, size_t n) {
  BNN_REQUIRE(n == 0 || (src && dst), "null buffer");
  for_ranges(n, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) dst[i] = src[i] < 0.0f ? -1.0f : 1.0f;
  });
}

void ste_grad(const float* grad, const float* x, float* dst, size_t n, float threshold) {
  BNN_REQUIRE(n == 0 || (grad && x && dst), "null buffer");
  BNN_REQUIRE(threshold >= 0, "threshold must be >= 0");
  for_ranges(n, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      const float gi = grad[i];  // loaded unconditionally so the select vectorises
      dst[i] = std::fabs(x[i]) <= threshold ? gi : 0.0f;
    }
  });
}

namespace {

struct AdamWCoefficients {
  float b1, b2, one_b1, one_b2, eps, decay, step_size, inv_sqrt_bc2, clip;
};

// 1 when x is NaN or ±Inf (exponent bits all set): integer ops, so the loop still vectorises.
inline unsigned non_finite(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return (u & 0x7f800000u) == 0x7f800000u;
}

// Scalars by value and restrict pointers, so the loop vectorises (no reloads through captures).
// Returns 1 when some updated parameter or second moment of the range is NaN or ±Inf.
unsigned adamw_range(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, size_t b,
                     size_t e, const AdamWCoefficients k) {
  unsigned bad = 0;
  for (size_t i = b; i < e; ++i) {
    const float gi = g[i];
    const float mi = k.b1 * m[i] + k.one_b1 * gi;
    const float vi = k.b2 * v[i] + k.one_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float q = p[i] * k.decay - k.step_size * mi / (std::sqrt(vi) * k.inv_sqrt_bc2 + k.eps);
    q = q < -k.clip ? -k.clip : q;
    q = q > k.clip ? k.clip : q;
    p[i] = q;
    bad |= non_finite(q) | non_finite(vi);
  }
  return bad;
}

}  // namespace

bool adamw(float* p, const float* g, float* m, float* v, size_t n, const AdamWParams& h) {
  BNN_REQUIRE(n == 0 || (p && g && m && v), "null buffer");
  BNN_REQUIRE(h.step >= 1, "step must be >= 1");
  BNN_REQUIRE(h.clip >= 0, "clip must be >= 0");
  const double bc1 = 1.0 - std::pow(h.beta1, h.step), bc2 = 1.0 - std::pow(h.beta2, h.step);
  AdamWCoefficients k;
  k.b1 = static_cast<float>(h.beta1);
  k.b2 = static_cast<float>(h.beta2);
  k.one_b1 = static_cast<float>(1.0 - h.beta1);
  k.one_b2 = static_cast<float>(1.0 - h.beta2);
  k.eps = static_cast<float>(h.eps);
  k.decay = static_cast<float>(1.0 - h.lr * h.weight_decay);
  k.step_size = static_cast<float>(h.lr / bc1);
  k.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  k.clip = h.clip > 0 ? static_cast<float>(h.clip) : INFINITY;
  std::atomic<bool> bad{false};
  for_ranges(n, [&](size_t b, size_t e) {
    if (adamw_range(p, g, m, v, b, e, k)) bad.store(true, std::memory_order_relaxed);
  });
  return bad.load();
}

void batch_norm_forward(const float* x, size_t rows, size_t c, const float* gamma, const float* beta, float eps,
                        float* y, float* mean, float* inv_std) {
  BNN_REQUIRE(rows > 0 && c > 0, "rows and channels must be positive");
  BNN_REQUIRE(x && y && mean && inv_std, "null buffer");
  BNN_REQUIRE(eps >= 0, "eps must be >= 0");
  const RowChunks chunks(rows, c);
  // Sums of (x - x[0]) and its square: shifting by a sample keeps E[x^2] - E[x]^2 accurate.
  std::vector<double> sum(chunks.count * c, 0.0), sq(chunks.count * c, 0.0);
  ThreadPool::global().parallel_for(chunks.count, [&](size_t i) {
    std::vector<float> fs(c), fq(c);
    for (size_t r0 = chunks.begin(i); r0 < chunks.end(i); r0 += kFloatRun) {
      std::fill(fs.begin(), fs.end(), 0.0f);
      std::fill(fq.begin(), fq.end(), 0.0f);
      sum_shifted(x, x, c, r0, std::min(chunks.end(i), r0 + kFloatRun), fs.data(), fq.data());
      add_into(sum.data() + i * c, fs.data(), c);
      add_into(sq.data() + i * c, fq.data(), c);
    }
  });
  std::vector<float> scale(c), shift(c), mean_f(c);
  for (size_t j = 0; j < c; ++j) {
    double s = 0, q = 0;
    for (size_t i = 0; i < chunks.count; ++i) {
      s += sum[i * c + j];
      q += sq[i * c + j];
    }
    const double d_mean = s / rows;
    const double var = std::max(0.0, q / rows - d_mean * d_mean);
    const double mu = x[j] + d_mean, is = 1.0 / std::sqrt(var + eps);
    mean[j] = static_cast<float>(mu);
    inv_std[j] = static_cast<float>(is);
    mean_f[j] = mean[j];
    scale[j] = static_cast<float>(is * (gamma ? gamma[j] : 1.0f));
    shift[j] = beta ? beta[j] : 0.0f;
  }
  // y = (x - mean) * scale + beta: subtracting first avoids cancellation when |mean| >> std.
  ThreadPool::global().parallel_for(chunks.count, [&](size_t i) {
    for (size_t r = chunks.begin(i); r < chunks.end(i); ++r) {
      const float* xr = x + r * c;
      float* yr = y + r * c;
      for (size_t j = 0; j < c; ++j) yr[j] = (xr[j] - mean_f[j]) * scale[j] + shift[j];
    }
  });
}

void batch_norm_backward(const float* dy, const float* x, size_t rows, size_t c, const float* gamma,
                         const float* mean, const float* inv_std, float* dx, float* dgamma, float* dbeta) {
  BNN_REQUIRE(rows > 0 && c > 0, "rows and channels must be positive");
  BNN_REQUIRE(dy && x && mean && inv_std && dx, "null buffer");
  const RowChunks chunks(rows, c);
  std::vector<double> sdy(chunks.count * c, 0.0), sdyx(chunks.count * c, 0.0);
  ThreadPool::global().parallel_for(chunks.count, [&](size_t i) {
    std::vector<float> fa(c), fb(c);
    for (size_t r0 = chunks.begin(i); r0 < chunks.end(i); r0 += kFloatRun) {
      std::fill(fa.begin(), fa.end(), 0.0f);
      std::fill(fb.begin(), fb.end(), 0.0f);
      sum_dy_dyx(dy, x, mean, c, r0, std::min(chunks.end(i), r0 + kFloatRun), fa.data(), fb.data());
      add_into(sdy.data() + i * c, fa.data(), c);
      add_into(sdyx.data() + i * c, fb.data(), c);
    }
  });
  // dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat))
  //    = a * dy + b * (x - mean) + k, per channel.
  std::vector<float> ka(c), kb(c), kc(c), mu(c);
  for (size_t j = 0; j < c; ++j) {
    double s = 0, sx = 0;
    for (size_t i = 0; i < chunks.count; ++i) {
      s += sdy[i * c + j];
      sx += sdyx[i * c + j];
    }
    const double is = inv_std[j], dg = sx * is;  // dgamma = sum(dy * xhat)
    if (dgamma) dgamma[j] = static_cast<float>(dg);
    if (dbeta) dbeta[j] = static_cast<float>(s);
    const double gi = (gamma ? gamma[j] : 1.0) * is;
    const double xhat_coef = dg / rows * is;  // multiplies (x - mean)
    ka[j] = static_cast<float>(gi);
    kb[j] = static_cast<float>(-gi * xhat_coef);
    kc[j] = static_cast<float>(-gi * s / rows);
    mu[j] = mean[j];
  }
  ThreadPool::global().parallel_for(chunks.count, [&](size_t i) {
    for (size_t r = chunks.begin(i); r < chunks.end(i); ++r) {
      const float* dyr = dy + r * c;
      const float* xr = x + r * c;
      float* dxr = dx + r * c;
      for (size_t j = 0; j < c; ++j) dxr[j] = ka[j] * dyr[j] + kb[j] * (xr[j] - mu[j]) + kc[j];
    }
  });
}

void batch_norm_apply(const float* x, size_t rows, size_t c, const float* scale, const float* shift, float* y) {
  BNN_REQUIRE(rows == 0 || c == 0 || (x && scale && shift && y), "null buffer");
  const RowChunks chunks(rows, c);
  ThreadPool::global().parallel_for(chunks.count, [&](size_t i) {
    for (size_t r = chunks.begin(i); r < chunks.end(i); ++r) {
      const float* xr = x + r * c;
      float* yr = y + r * c;
      for (size_t j = 0; j < c; ++j) yr[j] = xr[j] * scale[j] + shift[j];
    }
  });
}

}  // namespace bnn::elementwise
