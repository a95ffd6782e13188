// The kernel of DesShardOwner, one class for both devices: attributes are
// checked here once, then ShardOwnerFunctor<Device> runs the device's core
// (shard_owner_kernels.cc: CPU, over shard_owner.h; shard_owner_kernels.cu.cc:
// GPU, over ops/cuda/gpu_shard_owner.h):
//   static absl::Status Compute(ctx, keys, n, seed, num_shards, owners)
#ifndef DES_TF_OPS_CC_KERNELS_SHARD_OWNER_KERNELS_H_
#define DES_TF_OPS_CC_KERNELS_SHARD_OWNER_KERNELS_H_

#include <cstdint>

#include "../ops/key_checks.h"
#include "kernel_support.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace des {

template <typename Device>
struct ShardOwnerFunctor;

template <typename Device>
class ShardOwnerOp : public tensorflow::OpKernel {
 public:
  explicit ShardOwnerOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, CheckKeysAreInt64(ctx, "DesShardOwner"));
    OP_REQUIRES_OK(ctx, GetShardingAttrs(ctx, "DesShardOwner", &num_shards_, &seed_));
  }

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& keys = ctx->input(0);
    tensorflow::Tensor* owners = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, keys.shape(), &owners));
    OP_REQUIRES_OK(ctx, Named("DesShardOwner", ShardOwnerFunctor<Device>::Compute(
                                                   ctx, keys.flat<int64_t>().data(),
                                                   keys.NumElements(), seed_, num_shards_,
                                                   owners->flat<int32_t>().data())));
  }

 private:
  int32_t num_shards_ = 1;
  uint64_t seed_ = 0;
};

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_SHARD_OWNER_KERNELS_H_
