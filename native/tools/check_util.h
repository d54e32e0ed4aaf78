// Helpers shared by the check and bench programs of native/tools/cpu and native/tools/cuda:
// a tally of checks, random inputs that exercise the sign(0) = +1 rule, a clock.
#pragma once
#include <chrono>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace bnn::tools {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Uniform floats in [-1, 1) with some exact +0, -0 and small values sprinkled in, so the
// sign(0) = +1 rule and the x < 0 test are exercised.
inline std::vector<float> random_floats(size_t n, std::mt19937_64& rng, bool with_zeros = true) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 15);
  std::vector<float> v(n);
  for (auto& x : v) {
    x = u(rng);
    if (with_zeros) {
      const int p = pick(rng);
      if (p == 0) x = 0.0f;
      else if (p == 1) x = -0.0f;
    }
  }
  return v;
}

// The sign as the kernels define it: -1 for x < 0, else +1 (so sign(+0) = sign(-0) = +1).
inline float sign_of(float x) { return x < 0.0f ? -1.0f : 1.0f; }

// Counts checks and prints the first 40 failures ("  FAIL <what>"); group() prints one summary
// line for the checks since mark().
class Checks {
 public:
  bool expect(bool ok, const char* fmt, ...) __attribute__((format(printf, 3, 4))) {
    if (ok) {
      ++passed_;
      return true;
    }
    ++failed_;
    if (failed_ <= 40) {
      va_list ap;
      va_start(ap, fmt);
      std::printf("  FAIL ");
      std::vprintf(fmt, ap);
      std::printf("\n");
      va_end(ap);
      std::fflush(stdout);
    }
    return false;
  }
  bool expect(bool ok, const std::string& what) { return expect(ok, "%s", what.c_str()); }

  void mark(int out[2]) const {
    out[0] = passed_;
    out[1] = failed_;
  }
  void group(const char* name, const int mark[2]) const {
    const int p = passed_ - mark[0], f = failed_ - mark[1];
    std::printf("%-4s %-58s %d/%d\n", f ? "FAIL" : "ok", name, p, p + f);
    std::fflush(stdout);
  }
  int passed() const { return passed_; }
  int failed() const { return failed_; }

 private:
  int passed_ = 0;
  int failed_ = 0;
};

}  // namespace bnn::tools
