// owner(k) = Mix64(k ^ seed) mod num_shards on the GPU, by the same
// ShardOwner function the CPU op calls (ops/cc/kernels/shard_owner.h).
// Host API, TF-independent; pointers are device pointers.
#ifndef DES_TF_OPS_CUDA_GPU_SHARD_OWNER_H_
#define DES_TF_OPS_CUDA_GPU_SHARD_OWNER_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

namespace des {
namespace gpu {

std::string ShardOwners(const int64_t* keys, int64_t n, uint64_t seed, int32_t num_shards,
                        int32_t* owners, cudaStream_t stream);

}  // namespace gpu
}  // namespace des

#endif  // DES_TF_OPS_CUDA_GPU_SHARD_OWNER_H_
