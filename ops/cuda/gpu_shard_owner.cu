#include "gpu_shard_owner.h"

#include "../cc/kernels/shard_owner.h"
#include "cuda_status.h"
#include "row_groups.cuh"

namespace des {
namespace gpu {
namespace {

__global__ void ShardOwnerKernel(const int64_t* keys, int64_t n, uint64_t seed,
                                 int32_t num_shards, int32_t* owners) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) owners[i] = ShardOwner(keys[i], seed, num_shards);
}

}  // namespace

std::string ShardOwners(const int64_t* keys, int64_t n, uint64_t seed, int32_t num_shards,
                        int32_t* owners, cudaStream_t stream) {
  if (num_shards <= 0) return "num_shards must be > 0, got " + std::to_string(num_shards);
  if (n == 0) return "";
  ShardOwnerKernel<<<ThreadBlocks(n), kThreadsPerBlock, 0, stream>>>(keys, n, seed, num_shards,
                                                                      owners);
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

}  // namespace gpu
}  // namespace des
