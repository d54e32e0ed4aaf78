// Scalar references for the fused element-wise training kernels (the oracle for
// elementwise.cc and for the JS tests' expectations).
#pragma once
#include <cmath>
#include <cstddef>

namespace bnn::ref {

// Doubles, so coefficients such as 1 - beta2 are formed exactly before rounding to float.
struct AdamWParams {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0;  // decoupled: p -= lr * weight_decay * p
  double step = 1;          // 1-based step count after this update (bias correction)
  double clip = 0;          // > 0: clip p to [-clip, clip] after the update
};

// One AdamW step, in the order of PyTorch's AdamW: decay, moments, bias-corrected step, clip.
// Returns true when some updated parameter or second moment v is NaN or ±Inf: a NaN or ±Inf
// gradient value always makes its v so (v = β2·v + (1−β2)·g²), a parameter that overflows its
// own, so the test of two outputs covers the inputs too and rides along the update's pass.
inline bool adamw(float* p, const float* g, float* m, float* v, size_t n, const AdamWParams& h) {
  const double bc1 = 1.0 - std::pow(h.beta1, h.step), bc2 = 1.0 - std::pow(h.beta2, h.step);
  bool bad = false;
  for (size_t i = 0; i < n; ++i) {
    m[i] = static_cast<float>(h.beta1 * m[i] + (1.0 - h.beta1) * g[i]);
    v[i] = static_cast<float>(h.beta2 * v[i] + (1.0 - h.beta2) * double(g[i]) * g[i]);
    double q = p[i] * (1.0 - h.lr * h.weight_decay);
    q -= h.lr / bc1 * m[i] / (std::sqrt(v[i] / bc2) + h.eps);
    if (h.clip > 0) q = q < -h.clip ? -h.clip : q > h.clip ? h.clip : q;
    p[i] = static_cast<float>(q);
    bad |= !std::isfinite(p[i]) || !std::isfinite(v[i]);
  }
  return bad;
}

// BatchNorm training forward over row-major [rows][c] (c innermost): batch mean, biased
// variance, inv_std = 1 / sqrt(var + eps), y = (x - mean) * inv_std * gamma + beta.
// gamma / beta may be null (1 / 0).
inline void batch_norm_forward(const float* x, size_t rows, size_t c, const float* gamma, const float* beta, float eps,
                               float* y, float* mean, float* inv_std) {
  for (size_t j = 0; j < c; ++j) {
    double s = 0, s2 = 0;
    for (size_t r = 0; r < rows; ++r) s += x[r * c + j];
    const double mu = s / rows;
    for (size_t r = 0; r < rows; ++r) s2 += (x[r * c + j] - mu) * (x[r * c + j] - mu);
    const double is = 1.0 / std::sqrt(s2 / rows + eps);
    mean[j] = static_cast<float>(mu);
    inv_std[j] = static_cast<float>(is);
    for (size_t r = 0; r < rows; ++r)
      y[r * c + j] = static_cast<float>((x[r * c + j] - mu) * is * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f));
  }
}

// Gradients of batch_norm_forward's y (batch statistics, so dx includes the paths through
// mean and variance). dgamma / dbeta may be null when not wanted.
inline void batch_norm_backward(const float* dy, const float* x, size_t rows, size_t c, const float* gamma,
                                const float* mean, const float* inv_std, float* dx, float* dgamma, float* dbeta) {
  for (size_t j = 0; j < c; ++j) {
    double sdy = 0, sdyx = 0;
    for (size_t r = 0; r < rows; ++r) {
      sdy += dy[r * c + j];
      sdyx += double(dy[r * c + j]) * (x[r * c + j] - mean[j]) * inv_std[j];
    }
    if (dgamma) dgamma[j] = static_cast<float>(sdyx);
    if (dbeta) dbeta[j] = static_cast<float>(sdy);
    const double gi = (gamma ? gamma[j] : 1.0) * inv_std[j];
    for (size_t r = 0; r < rows; ++r) {
      const double xhat = (x[r * c + j] - mean[j]) * double(inv_std[j]);
      dx[r * c + j] = static_cast<float>(gi * (dy[r * c + j] - sdy / rows - xhat * sdyx / rows));
    }
  }
}

}  // namespace bnn::ref
