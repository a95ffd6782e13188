// Which shard (rank) owns a 64-bit feature id: owner = Mix64(key ^ seed) mod N.
//
// TF-independent core of the DesShardOwner op (docs/design.md section 1): ownership
// is a pure function of (key, seed, N), so it needs no directory and every
// rank agrees on it without communicating.
#ifndef DES_TF_OPS_CC_KERNELS_SHARD_OWNER_H_
#define DES_TF_OPS_CC_KERNELS_SHARD_OWNER_H_

#include <cstdint>

#include "hash.h"

namespace des {

// Owner of one key; num_shards must be positive (callers validate).
DES_HOST_DEVICE inline int32_t ShardOwner(int64_t key, uint64_t seed,
                                          int32_t num_shards) {
  const uint64_t mixed = Mix64(static_cast<uint64_t>(key) ^ seed);
  return static_cast<int32_t>(mixed % static_cast<uint64_t>(num_shards));
}

// Owners of keys[0..n) written to owners[0..n).
inline void ShardOwners(const int64_t* keys, int64_t n, uint64_t seed,
                        int32_t num_shards, int32_t* owners) {
  for (int64_t i = 0; i < n; ++i) {
    owners[i] = ShardOwner(keys[i], seed, num_shards);
  }
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_SHARD_OWNER_H_
