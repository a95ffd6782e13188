// Stable 64-bit mixing shared by shard ownership and per-key initialisation.
//
// TF-independent: plain C++17 (and CUDA-callable), so the same bits come out
// of the CPU kernels, the CUDA kernels and the standalone core tests.
#ifndef DES_TF_OPS_CC_KERNELS_HASH_H_
#define DES_TF_OPS_CC_KERNELS_HASH_H_

#include <cstdint>

#include "host_device.h"

namespace des {

// SplitMix64 finaliser: a bijection on 64-bit words in which every input bit
// flips each output bit with probability ~1/2, so sequential keys spread
// uniformly. Never change it: it defines which rank owns every stored row.
DES_HOST_DEVICE constexpr uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_HASH_H_
