// CPU kernel of DesGroupByOwner over the TF-independent core (group_by_owner.h)
// on TF's intra-op thread pool. There is no GPU kernel: TF places the op on the CPU.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "../ops/key_checks.h"
#include "group_by_owner.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tf_parallel_for.h"

namespace des {

template <typename Index>
class GroupByOwnerOp : public tensorflow::OpKernel {
 public:
  explicit GroupByOwnerOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, CheckKeysAreInt64(ctx, "DesGroupByOwner"));
    OP_REQUIRES_OK(ctx, GetShardingAttrs(ctx, "DesGroupByOwner", &num_shards_, &seed_));
  }

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& keys = ctx->input(0);
    OP_REQUIRES(ctx, keys.dims() == 1,
                tensorflow::errors::InvalidArgument(
                    "DesGroupByOwner: keys must be 1-D, got shape ", keys.shape().DebugString()));
    const int64_t n = keys.NumElements();
    OP_REQUIRES(ctx, n <= std::numeric_limits<int32_t>::max(),
                tensorflow::errors::InvalidArgument(
                    "DesGroupByOwner: ", n, " keys do not fit its int32 positions"));
    const tensorflow::TensorShape shards({num_shards_});
    tensorflow::Tensor *distinct_counts, *index, *order, *counts;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, shards, &distinct_counts));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, keys.shape(), &index));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, keys.shape(), &order));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(4, shards, &counts));
    // Per thread, not per kernel: concurrent steps may run this kernel at once.
    thread_local GroupByOwnerScratch scratch;
    thread_local std::vector<int64_t> distinct;
    distinct.resize(n);
    // Hashing and in-cache probing: some tens of cycles per key (as DesUnique).
    constexpr int64_t kCyclesPerUnit = 40;
    const OwnerGroups<Index> out{distinct.data(), distinct_counts->flat<int32_t>().data(),
                                 index->flat<Index>().data(), order->flat<int32_t>().data(),
                                 counts->flat<int32_t>().data()};
    const int64_t num_distinct = GroupByOwner(keys.flat<int64_t>().data(), n, seed_,
                                              num_shards_, TfParallelFor(ctx, kCyclesPerUnit),
                                              &scratch, out);
    tensorflow::Tensor* distinct_out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, tensorflow::TensorShape({num_distinct}),
                                             &distinct_out));
    std::copy_n(distinct.data(), num_distinct, distinct_out->flat<int64_t>().data());
  }

 private:
  int32_t num_shards_ = 1;
  uint64_t seed_ = 0;
};

REGISTER_KERNEL_BUILDER(Name("DesGroupByOwner")
                            .Device(tensorflow::DEVICE_CPU)
                            .TypeConstraint<int32_t>("out_idx"),
                        GroupByOwnerOp<int32_t>);
REGISTER_KERNEL_BUILDER(Name("DesGroupByOwner")
                            .Device(tensorflow::DEVICE_CPU)
                            .TypeConstraint<int64_t>("out_idx"),
                        GroupByOwnerOp<int64_t>);

}  // namespace des
