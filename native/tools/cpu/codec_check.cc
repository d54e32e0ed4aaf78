// The all-reduce codec kernels' non-finite reports (native/src/codec) on every variant this
// CPU supports, and the fused AdamW's: values bit for bit against scalar definitions written
// out here, flags against std::isfinite, on ragged sizes with NaN, ±Inf and -0 placed at the
// start, middle and end.
#include "codec_check.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "elementwise/elementwise.h"
#include "elementwise/reference.h"

namespace bnn::tools {

namespace {

std::mt19937_64 rng(20250113);
const size_t kSizes[] = {1, 2, 3, 17, 63, 64, 65, 255, 256, 257, 1000};
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Bit for bit, any NaN equal to any NaN.
bool same(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (bits(a[i]) != bits(b[i]) && !(std::isnan(a[i]) && std::isnan(b[i]))) return false;
  return true;
}

bool any_non_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return true;
  return false;
}

// Where a special value goes in a vector of n: start, middle, end.
std::vector<size_t> places(size_t n) {
  std::vector<size_t> p{0};
  if (n > 2) p.push_back(n / 2);
  if (n > 1) p.push_back(n - 1);
  return p;
}

// Each input once clean, once with -0 sprinkled (finite: never reported), then once per
// (special, place) for NaN, +Inf and -Inf.
template <class Fn>
void for_each_input(size_t n, float scale, Fn&& fn) {
  auto base = random_floats(n, rng);
  for (auto& x : base) x *= scale;
  fn(base, std::string("clean"));
  auto zeros = base;
  for (size_t i = 0; i < n; i += 3) zeros[i] = -0.0f;
  fn(zeros, std::string("-0"));
  for (float special : {kNaN, kInf, -kInf})
    for (size_t at : places(n)) {
      auto v = base;
      v[at] = special;
      fn(v, std::to_string(special) + "@" + std::to_string(at));
    }
}

std::vector<std::string> variants() {
  std::vector<std::string> out;
  for (const char* v : {"avx512", "avx2", "portable"}) {
    try {
      codec::set_variant(v);
      out.push_back(v);
    } catch (const std::invalid_argument&) {
      // not supported by this CPU
    }
  }
  codec::set_variant("auto");
  return out;
}

void check_add_f32(Checks& t, const std::string& var, size_t n) {
  for_each_input(n, 2.0f, [&](const std::vector<float>& src, const std::string& what) {
    for (bool first : {true, false})
      for (float divisor : {1.0f, 3.0f}) {
        auto acc = random_floats(n, rng), want = acc;
        for (size_t i = 0; i < n; ++i) want[i] = (first ? src[i] : want[i] + src[i]) / divisor;
        // one byte off alignment, as message bodies may be
        std::vector<uint8_t> bytes(4 * n + 1);
        std::memcpy(bytes.data() + 1, src.data(), 4 * n);
        const bool bad = codec::add_f32(bytes.data() + 1, acc.data(), n, first, divisor);
        t.expect(same(acc, want) && bad == any_non_finite(src), "add_f32 [%s] n=%zu %s first=%d divisor=%g", var.c_str(), n,
                 what.c_str(), first, double(divisor));
      }
  });
}

void check_half_accumulate(Checks& t, const std::string& var, size_t n) {
  const uint16_t specials[] = {0x7c00, 0xfc00, 0x7e00, 0x7d01, 0x8000, 0x7bff};  // ±Inf, NaNs, -0, max finite
  for (uint16_t special : specials)
    for (size_t at : places(n)) {
      std::vector<uint16_t> h(n);
      for (size_t i = 0; i < n; ++i) h[i] = codec::ref::float_to_half_bits(bits(random_floats(1, rng)[0] * 100.0f));
      h[at] = special;
      std::vector<float> decoded(n);
      for (size_t i = 0; i < n; ++i) decoded[i] = codec::ref::half_bits_to_float(h[i]);
      for (bool first : {true, false}) {
        auto acc = random_floats(n, rng), want = acc;
        for (size_t i = 0; i < n; ++i) want[i] = (first ? decoded[i] : want[i] + decoded[i]) / 2.0f;
        const bool bad = codec::half_accumulate(reinterpret_cast<const uint8_t*>(h.data()), acc.data(), n, first, 2.0f);
        t.expect(same(acc, want) && bad == any_non_finite(decoded), "half_accumulate [%s] n=%zu half 0x%04x@%zu first=%d",
                 var.c_str(), n, special, at, first);
      }
    }
}

void check_sign_accumulate(Checks& t, const std::string& var, size_t n) {
  const size_t blocks = (n + 255) / 256;
  for (float special : {1.5f, -0.0f, kNaN, kInf, -kInf})
    for (size_t at : places(blocks)) {
      std::vector<float> scales(blocks);
      for (auto& s : scales) s = std::fabs(random_floats(1, rng)[0]);
      scales[at] = special;
      std::vector<uint8_t> signs((n + 7) / 8);
      for (auto& b : signs) b = static_cast<uint8_t>(rng());
      std::vector<float> decoded(n);
      for (size_t i = 0; i < n; ++i) {
        const float s = scales[i / 256];
        decoded[i] = (signs[i / 8] >> (i % 8)) & 1 ? s : -s;
      }
      for (bool first : {true, false}) {
        auto acc = random_floats(n, rng), want = acc;
        for (size_t i = 0; i < n; ++i) want[i] = first ? decoded[i] : want[i] + decoded[i];
        const bool bad =
            codec::sign_accumulate(reinterpret_cast<const uint8_t*>(scales.data()), signs.data(), acc.data(), n, first, 1.0f);
        t.expect(same(acc, want) && bad == any_non_finite(scales), "sign_accumulate [%s] n=%zu scale %g in block %zu first=%d",
                 var.c_str(), n, double(special), at, first);
      }
    }
}

void check_scale_into(Checks& t, const std::string& var, size_t n) {
  for_each_input(n, 7e4f, [&](const std::vector<float>& src, const std::string& what) {
    for (double scale : {1.0, 0.5, 1.0 / 3.0})
      for (float limit : {kInf, 65520.0f}) {
        std::vector<float> want(n), got(n, 42.0f);
        bool want_bad = false;
        for (size_t i = 0; i < n; ++i) {
          want[i] = static_cast<float>(static_cast<double>(src[i]) * scale);
          want_bad |= std::isnan(want[i]) || std::fabs(want[i]) >= limit;
        }
        const bool bad = codec::scale_into(src.data(), got.data(), n, scale, limit);
        t.expect(same(got, want) && bad == want_bad, "scale_into [%s] n=%zu %s scale=%g limit=%g", var.c_str(), n,
                 what.c_str(), scale, double(limit));
      }
  });
  // at the limit: 65519.99 is below it, 65520 is not (the smallest float that rounds to half Inf)
  std::vector<float> edge(n, 65519.99f), out(n);
  t.expect(!codec::scale_into(edge.data(), out.data(), n, 1.0, 65520.0f), "scale_into [%s] n=%zu below the limit", var.c_str(), n);
  edge[n - 1] = -65520.0f;
  t.expect(codec::scale_into(edge.data(), out.data(), n, 1.0, 65520.0f), "scale_into [%s] n=%zu at the limit", var.c_str(), n);
}

void check_first_non_finite(Checks& t, const std::string& var, size_t n) {
  for_each_input(n, 1.0f, [&](const std::vector<float>& src, const std::string& what) {
    size_t want = n;
    for (size_t i = 0; i < n && want == n; ++i)
      if (!std::isfinite(src[i])) want = i;
    t.expect(codec::first_non_finite(src.data(), n) == want, "first_non_finite [%s] n=%zu %s", var.c_str(), n, what.c_str());
  });
}

// The fused AdamW reports a NaN or ±Inf gradient, parameter or second moment, as its reference does.
void check_adamw_report(Checks& t) {
  for (size_t n : kSizes)
    for (double clip : {0.0, 1.0}) {
      elementwise::AdamWParams h;
      h.lr = 0.01, h.step = 2, h.clip = clip;
      const auto run = [&](std::vector<float> g, std::vector<float> p, const elementwise::AdamWParams& hh, const char* what,
                           bool expected) {
        auto m1 = random_floats(n, rng), v1 = random_floats(n, rng);
        for (auto& x : v1) x = std::fabs(x);
        auto p2 = p, m2 = m1, v2 = v1;
        const bool got = elementwise::adamw(p.data(), g.data(), m1.data(), v1.data(), n, hh);
        const bool want = ref::adamw(p2.data(), g.data(), m2.data(), v2.data(), n, hh);
        t.expect(got == expected && want == expected, "adamw n=%zu clip=%g %s: got %d, reference %d, expected %d", n, clip, what,
                 got, want, expected);
      };
      const auto p = random_floats(n, rng);
      for_each_input(n, 1.0f, [&](const std::vector<float>& g, const std::string& what) {
        run(g, p, h, ("gradient " + what).c_str(), any_non_finite(g));
      });
      // a finite gradient whose square overflows the second moment
      auto huge = random_floats(n, rng);
      huge[n / 2] = 1e30f;
      run(huge, p, h, "gradient 1e30", true);
      // decay that overflows a parameter: p·(1 − lr·wd) = 3e38·(−2); clipped, it stays finite
      auto big = p;
      big[n - 1] = 3e38f;
      auto hd = h;
      hd.lr = 1.0, hd.weight_decay = 3.0;
      run(random_floats(n, rng), big, hd, "decay overflow", clip == 0.0);
    }
}

}  // namespace

void check_codec(Checks& t) {
  for (const auto& var : variants()) {
    codec::set_variant(var.c_str());
    int mark[2];
    t.mark(mark);
    for (size_t n : kSizes) {
      check_add_f32(t, var, n);
      check_half_accumulate(t, var, n);
      check_sign_accumulate(t, var, n);
      check_scale_into(t, var, n);
      check_first_non_finite(t, var, n);
    }
    t.group(("codec non-finite reports [" + var + "]").c_str(), mark);
  }
  codec::set_variant("auto");
  int mark[2];
  t.mark(mark);
  check_adamw_report(t);
  t.group("adamw non-finite report", mark);
}

}  // namespace bnn::tools
