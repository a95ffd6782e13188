// CPU kernel of DesShardOwner: validates attributes and input, then runs the
// TF-independent core (shard_owner.h) over TF's intra-op thread pool.
#include "shard_owner.h"

#include "../ops/key_checks.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/util/work_sharder.h"

namespace des {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::errors::InvalidArgument;

class ShardOwnerOp : public OpKernel {
 public:
  explicit ShardOwnerOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, CheckKeysAreInt64(ctx, "DesShardOwner"));
    int64_t num_shards;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_shards", &num_shards));
    OP_REQUIRES(ctx, num_shards > 0 && num_shards <= INT32_MAX,
                InvalidArgument(
                    "DesShardOwner: num_shards must be in [1, 2^31), got ",
                    num_shards));
    num_shards_ = static_cast<int32_t>(num_shards);
    int64_t seed;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("seed", &seed));
    seed_ = static_cast<uint64_t>(seed);
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& keys = ctx->input(0);
    Tensor* owners = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, keys.shape(), &owners));
    const int64_t* key_data = keys.flat<int64_t>().data();
    int32_t* owner_data = owners->flat<int32_t>().data();
    // A few dozen cycles per key: shard only batches worth the hand-off.
    constexpr int64_t kCyclesPerKey = 20;
    tensorflow::Shard(
        ctx->device()->tensorflow_cpu_worker_threads()->num_threads,
        ctx->device()->tensorflow_cpu_worker_threads()->workers,
        keys.NumElements(), kCyclesPerKey, [&](int64_t begin, int64_t end) {
          ShardOwners(key_data + begin, end - begin, seed_, num_shards_,
                      owner_data + begin);
        });
  }

 private:
  int32_t num_shards_ = 1;
  uint64_t seed_ = 0;
};

REGISTER_KERNEL_BUILDER(Name("DesShardOwner").Device(DEVICE_CPU),
                        ShardOwnerOp);

}  // namespace des
