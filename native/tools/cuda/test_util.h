// Check counting and random inputs for the CUDA harness.
#pragma once
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

namespace bnn::cuda_test {

class Checks {
 public:
  // Records one check; prints failures (the first few per run in full).
  bool expect(bool ok, const char* fmt, ...) {
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
    }
    return false;
  }
  // Prints one summary line for a group of checks started at `mark`.
  void group(const char* name, const int mark[2]) const {
    const int p = passed_ - mark[0], f = failed_ - mark[1];
    std::printf("%-4s %-58s %d/%d\n", f ? "FAIL" : "ok", name, p, p + f);
    std::fflush(stdout);
  }
  void mark(int out[2]) const {
    out[0] = passed_;
    out[1] = failed_;
  }
  int passed() const { return passed_; }
  int failed() const { return failed_; }

 private:
  int passed_ = 0;
  int failed_ = 0;
};

// Signs with sign(0) = +1 exercised: ~6% exact +0, ~3% -0.0 (both pack to bit 0).
inline std::vector<float> random_floats(std::mt19937_64& rng, size_t count) {
  std::vector<float> v(count);
  std::uniform_real_distribution<float> u(-1.5f, 1.5f);
  std::uniform_int_distribution<int> pick(0, 99);
  for (float& x : v) {
    const int p = pick(rng);
    x = p < 6 ? 0.0f : (p < 9 ? -0.0f : u(rng));
  }
  return v;
}

inline float sign_of(float x) { return x < 0.0f ? -1.0f : 1.0f; }

}  // namespace bnn::cuda_test
