// The one threading hook of the TF-independent cores: the caller supplies how to
// run fn over [0, n) (TF's intra-op pool in the kernels, std::thread in tests).
#ifndef DES_TF_OPS_CC_KERNELS_PARALLEL_FOR_H_
#define DES_TF_OPS_CC_KERNELS_PARALLEL_FOR_H_

#include <cstdint>
#include <functional>

namespace des {

// Runs fn(begin, end) over disjoint ranges covering [0, n), possibly in parallel.
using ParallelFor =
    std::function<void(int64_t n, const std::function<void(int64_t, int64_t)>& fn)>;

inline void SerialFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n > 0) fn(0, n);
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_PARALLEL_FOR_H_
