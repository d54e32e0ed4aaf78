// The one selector: picks the XNOR kernel variant from CPUID at run time, best first,
// portable last. BNN_XNOR_KERNEL or set_kernel() can force a variant the CPU supports.
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "../common/cpu_features.h"
#include "xnor_gemm.h"

namespace bnn::xnor {

namespace {

bool supported(const Kernels& k) {
  const CpuFeatures& f = cpu_features();
#if defined(__x86_64__)
  if (&k == &kAvx512Kernels) return f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx512vpopcntdq;
  if (&k == &kAvx2Kernels) return f.avx2 && f.popcnt;
#endif
  (void)f;
  return &k == &kPortableKernels;
}

std::vector<const Kernels*> all_best_first() {
#if defined(__x86_64__)
  return {&kAvx512Kernels, &kAvx2Kernels, &kPortableKernels};
#else
  return {&kPortableKernels};
#endif
}

const Kernels& best() {
  for (const Kernels* k : all_best_first())
    if (supported(*k)) return *k;
  return kPortableKernels;
}

std::mutex mutex;
const Kernels* active = nullptr;
std::string note;

std::string join_available() {
  std::string s;
  for (const auto& n : available_kernels()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

void init_locked() {
  if (active) return;
  const char* env = std::getenv("BNN_XNOR_KERNEL");
  const std::string want = env ? env : "";
  if (want.empty() || want == "auto") {
    active = &best();
    note = "auto";
  } else if (const Kernels* k = find_kernels(want)) {
    active = k;
    note = "BNN_XNOR_KERNEL=" + want;
  } else {
    active = &best();
    note = "BNN_XNOR_KERNEL=" + want + " is not available here (available: " + join_available() + "); using auto";
  }
}

}  // namespace

std::vector<std::string> available_kernels() {
  std::vector<std::string> names;
  for (const Kernels* k : all_best_first())
    if (supported(*k)) names.emplace_back(k->name);
  return names;
}

const Kernels* find_kernels(const std::string& name) {
  if (name == "auto") return &best();
  for (const Kernels* k : all_best_first())
    if (name == k->name) return supported(*k) ? k : nullptr;
  return nullptr;
}

const Kernels& active_kernels() {
  std::lock_guard<std::mutex> lock(mutex);
  init_locked();
  return *active;
}

void set_kernel(const std::string& name) {
  const Kernels* k = find_kernels(name);
  if (!k) throw std::invalid_argument("xnor kernel '" + name + "' is not available on this CPU (available: auto, " + join_available() + ")");
  std::lock_guard<std::mutex> lock(mutex);
  active = k;
  note = name == "auto" ? "auto" : "forced " + name;
}

std::string selection_note() {
  std::lock_guard<std::mutex> lock(mutex);
  init_locked();
  return note;
}

}  // namespace bnn::xnor
