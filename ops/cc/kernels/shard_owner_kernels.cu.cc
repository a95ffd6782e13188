// GPU kernel of DesShardOwner: the CUDA core ops/cuda/gpu_shard_owner.cu
// behind a thin OpKernel. Compiled only with CUDA (setup.py DES_TF_CUDA=1 or
// bazel --config=cuda).
#if GOOGLE_CUDA

#include "../../cuda/gpu_shard_owner.h"
#include "../ops/key_checks.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tf_gpu.h"

namespace des {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

class ShardOwnerGpuOp : public OpKernel {
 public:
  explicit ShardOwnerGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, CheckKeysAreInt64(ctx, "DesShardOwner"));
    int64_t num_shards, seed;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_shards", &num_shards));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("seed", &seed));
    OP_REQUIRES(ctx, num_shards > 0 && num_shards <= INT32_MAX,
                tensorflow::errors::InvalidArgument(
                    "DesShardOwner: num_shards must be in [1, 2^31), got ", num_shards));
    num_shards_ = static_cast<int32_t>(num_shards);
    seed_ = static_cast<uint64_t>(seed);
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& keys = ctx->input(0);
    Tensor* owners = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, keys.shape(), &owners));
    DES_OP_REQUIRES_CORE(ctx, "DesShardOwner",
                         gpu::ShardOwners(keys.flat<int64_t>().data(), keys.NumElements(), seed_,
                                          num_shards_, owners->flat<int32_t>().data(),
                                          TfCudaStream(ctx)));
  }

 private:
  int32_t num_shards_;
  uint64_t seed_;
};

REGISTER_KERNEL_BUILDER(Name("DesShardOwner").Device(tensorflow::DEVICE_GPU), ShardOwnerGpuOp);

}  // namespace des

#endif  // GOOGLE_CUDA
