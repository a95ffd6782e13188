// CPU kernel of DesUnique over the TF-independent core (unique.h) on TF's
// intra-op thread pool. There is no GPU kernel: TF places the op on the CPU.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "../ops/key_checks.h"
#include "kernel_support.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tf_parallel_for.h"
#include "unique.h"

namespace des {

template <typename Index>
class UniqueOp : public tensorflow::OpKernel {
 public:
  explicit UniqueOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, CheckKeysAreInt64(ctx, "DesUnique"));
  }

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& keys = ctx->input(0);
    OP_REQUIRES(ctx, keys.dims() == 1,
                tensorflow::errors::InvalidArgument("DesUnique: keys must be 1-D, got shape ",
                                                    keys.shape().DebugString()));
    const int64_t n = keys.NumElements();
    OP_REQUIRES(ctx, n <= static_cast<int64_t>(std::numeric_limits<Index>::max()),
                tensorflow::errors::InvalidArgument(
                    "DesUnique: ", n, " keys do not fit the index dtype; use out_idx=int64"));
    tensorflow::Tensor* index = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, keys.shape(), &index));
    int64_t num_unique = 0;
    // Hashing and in-cache probing: some tens of cycles per key.
    constexpr int64_t kCyclesPerUnit = 40;
    // Per thread, not per kernel: concurrent steps may run this kernel at once.
    thread_local UniqueScratch scratch;
    thread_local std::vector<int64_t> unique;
    unique.resize(n);
    UniqueKeys(keys.flat<int64_t>().data(), n, TfParallelFor(ctx, kCyclesPerUnit), &scratch,
               unique.data(), index->flat<Index>().data(), &num_unique);
    tensorflow::Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, tensorflow::TensorShape({num_unique}), &out));
    std::copy_n(unique.data(), num_unique, out->flat<int64_t>().data());
  }
};

REGISTER_KERNEL_BUILDER(Name("DesUnique")
                            .Device(tensorflow::DEVICE_CPU)
                            .TypeConstraint<int32_t>("out_idx"),
                        UniqueOp<int32_t>);
REGISTER_KERNEL_BUILDER(Name("DesUnique")
                            .Device(tensorflow::DEVICE_CPU)
                            .TypeConstraint<int64_t>("out_idx"),
                        UniqueOp<int64_t>);

}  // namespace des
