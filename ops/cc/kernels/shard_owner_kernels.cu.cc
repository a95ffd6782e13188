// GPU side of DesShardOwner: ShardOwnerFunctor<GPUDevice> over the CUDA core
// (ops/cuda/gpu_shard_owner.h) and the GPU registration of the kernel in
// shard_owner_kernels.h. Compiled only with CUDA.
#if GOOGLE_CUDA

#include "../../cuda/gpu_shard_owner.h"
#include "shard_owner_kernels.h"
#include "tf_gpu.h"

namespace des {

template <>
struct ShardOwnerFunctor<GPUDevice> {
  static absl::Status Compute(tensorflow::OpKernelContext* ctx, const int64_t* keys, int64_t n,
                              uint64_t seed, int32_t num_shards, int32_t* owners) {
    return CoreStatus(gpu::ShardOwners(keys, n, seed, num_shards, owners, TfCudaStream(ctx)));
  }
};

REGISTER_KERNEL_BUILDER(Name("DesShardOwner").Device(tensorflow::DEVICE_GPU),
                        ShardOwnerOp<GPUDevice>);

}  // namespace des

#endif  // GOOGLE_CUDA
