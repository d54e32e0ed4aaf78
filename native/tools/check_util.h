// Small helpers shared by kernel_check.cc and kernel_bench.cc.
#pragma once
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace tools {

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

class Tally {
 public:
  void expect(bool ok, const std::string& what) {
    if (ok) {
      ++passed_;
      return;
    }
    ++failed_;
    if (failed_ <= 40) std::fprintf(stderr, "FAIL %s\n", what.c_str());
  }
  int passed() const { return passed_; }
  int failed() const { return failed_; }

 private:
  int passed_ = 0, failed_ = 0;
};

}  // namespace tools
