// CPU side of DesShardOwner: ShardOwnerFunctor<CPUDevice> over the
// TF-independent core (shard_owner.h) on TF's intra-op thread pool, and the
// CPU registration of the kernel in shard_owner_kernels.h.
#include "shard_owner.h"

#include "shard_owner_kernels.h"
#include "tf_parallel_for.h"

namespace des {

template <>
struct ShardOwnerFunctor<CPUDevice> {
  static absl::Status Compute(tensorflow::OpKernelContext* ctx, const int64_t* keys, int64_t n,
                              uint64_t seed, int32_t num_shards, int32_t* owners) {
    // A few dozen cycles per key: shard only batches worth the hand-off.
    constexpr int64_t kCyclesPerKey = 20;
    TfParallelFor(ctx, kCyclesPerKey)(n, [&](int64_t begin, int64_t end) {
      ShardOwners(keys + begin, end - begin, seed, num_shards, owners + begin);
    });
    return absl::OkStatus();
  }
};

REGISTER_KERNEL_BUILDER(Name("DesShardOwner").Device(tensorflow::DEVICE_CPU),
                        ShardOwnerOp<CPUDevice>);

}  // namespace des
