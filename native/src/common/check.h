// Kernel contract checks. A violated contract is a bug in the caller (the binding layer
// validates user input first), so it throws instead of corrupting memory; the binding
// turns it into a JS Error and the standalone checker reports it.
#pragma once
#include <stdexcept>
#include <string>

namespace bnn {

struct ContractViolation : std::logic_error {
  using std::logic_error::logic_error;
};

[[noreturn]] inline void contract_failed(const char* expr, const char* where, const std::string& msg) {
  throw ContractViolation(std::string(where) + ": contract violated (" + expr + ")" + (msg.empty() ? "" : ": " + msg));
}

}  // namespace bnn

#define BNN_REQUIRE(cond, msg)                                  \
  do {                                                          \
    if (!(cond)) ::bnn::contract_failed(#cond, __func__, (msg)); \
  } while (0)
