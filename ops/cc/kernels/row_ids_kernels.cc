// CPU kernel of DesRowIds over the TF-independent core (row_ids.h). There is no
// GPU kernel: TF places the op on the CPU.
#include <cstdint>
#include <limits>
#include <string>

#include "kernel_support.h"
#include "row_ids.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace des {

template <typename Id>
class RowIdsOp : public tensorflow::OpKernel {
 public:
  explicit RowIdsOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& lengths = ctx->input(0);
    OP_REQUIRES(ctx, lengths.dims() == 1,
                tensorflow::errors::InvalidArgument("DesRowIds: lengths must be 1-D, got shape ",
                                                    lengths.shape().DebugString()));
    const int64_t rows = lengths.NumElements();
    OP_REQUIRES(ctx, rows - 1 <= static_cast<int64_t>(std::numeric_limits<Id>::max()),
                tensorflow::errors::InvalidArgument(
                    "DesRowIds: ", rows, " rows do not fit the output dtype"));
    std::string error;
    const int64_t total = TotalLength(lengths.flat<int64_t>().data(), rows, &error);
    OP_REQUIRES_OK(ctx, Named("DesRowIds", CoreStatus(error)));
    tensorflow::Tensor* ids = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, tensorflow::TensorShape({total}), &ids));
    RowIds(lengths.flat<int64_t>().data(), rows, ids->flat<Id>().data());
  }
};

REGISTER_KERNEL_BUILDER(
    Name("DesRowIds").Device(tensorflow::DEVICE_CPU).TypeConstraint<int32_t>("out_type"),
    RowIdsOp<int32_t>);
REGISTER_KERNEL_BUILDER(
    Name("DesRowIds").Device(tensorflow::DEVICE_CPU).TypeConstraint<int64_t>("out_type"),
    RowIdsOp<int64_t>);

}  // namespace des
