// The kernels of DesPartialSums / DesPartialSumsGrad, one class per op for both
// devices: shapes are checked here once, then PartialSumsFunctor<Device> checks
// the index ranges and runs the device's core (partial_sums_kernels.cc: CPU,
// over partial_sums.h; partial_sums_kernels.cu.cc: GPU, over
// ops/cuda/gpu_partial_sums.h).
//
// What a PartialSumsFunctor<Device> provides (static; statuses name no op):
//   Validate(ctx, entries, num_rows, num_segments, &order)   index ranges, id order
//   Forward(ctx, rows, dim, entries, num_segments, order, sums, square_norms or null)
//   Backward(ctx, dsums, dsquare_norms or null, rows, dim, num_rows, entries, order,
//            row_grads)
// `num_segments` is a host tensor on both devices.
#ifndef DES_TF_OPS_CC_KERNELS_PARTIAL_SUMS_KERNELS_H_
#define DES_TF_OPS_CC_KERNELS_PARTIAL_SUMS_KERNELS_H_

#include <cstdint>

#include "kernel_support.h"
#include "partial_entries.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace des {

template <typename Device>
struct PartialSumsFunctor;

// Checks rows [U, d] and the three entry vectors, wraps the entries and lets
// the device check their ranges.
template <typename Device>
absl::Status ReadEntries(tensorflow::OpKernelContext* ctx, const tensorflow::Tensor& rows,
                         const tensorflow::Tensor& row_ids,
                         const tensorflow::Tensor& segment_ids,
                         const tensorflow::Tensor& weights, int64_t num_segments,
                         PartialEntries* entries, EntryOrder* order) {
  using ::tensorflow::errors::InvalidArgument;
  if (rows.dims() != 2) {
    return InvalidArgument("rows must be a matrix [num_rows, dim], got shape ",
                           rows.shape().DebugString());
  }
  if (row_ids.dims() != 1 || segment_ids.shape() != row_ids.shape() ||
      weights.shape() != row_ids.shape()) {
    return InvalidArgument("row_ids, segment_ids and weights must be vectors of one length, "
                           "got ", row_ids.shape().DebugString(), ", ",
                           segment_ids.shape().DebugString(), ", ",
                           weights.shape().DebugString());
  }
  *entries = PartialEntries{row_ids.flat<int64_t>().data(), segment_ids.flat<int64_t>().data(),
                            weights.flat<float>().data(), row_ids.NumElements()};
  return PartialSumsFunctor<Device>::Validate(ctx, *entries, rows.dim_size(0), num_segments,
                                              order);
}

template <typename Device>
class PartialSumsOp : public tensorflow::OpKernel {
 public:
  explicit PartialSumsOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("with_square_norms", &with_square_norms_));
  }

  void Compute(tensorflow::OpKernelContext* ctx) override {
    OP_REQUIRES_OK(ctx, Named("DesPartialSums", ComputeStatus(ctx)));
  }

 private:
  absl::Status ComputeStatus(tensorflow::OpKernelContext* ctx) {
    const tensorflow::Tensor& rows = ctx->input(0);
    const tensorflow::Tensor& num_segments_tensor = ctx->input(4);
    if (num_segments_tensor.NumElements() != 1 || num_segments_tensor.flat<int64_t>()(0) < 0) {
      return tensorflow::errors::InvalidArgument("num_segments must be a scalar >= 0");
    }
    const int64_t num_segments = num_segments_tensor.flat<int64_t>()(0);
    PartialEntries entries;
    EntryOrder order;
    TF_RETURN_IF_ERROR(ReadEntries<Device>(ctx, rows, ctx->input(1), ctx->input(2),
                                           ctx->input(3), num_segments, &entries, &order));
    const int64_t dim = rows.dim_size(1);
    tensorflow::Tensor *sums, *norms;
    TF_RETURN_IF_ERROR(
        ctx->allocate_output(0, tensorflow::TensorShape({num_segments, dim}), &sums));
    TF_RETURN_IF_ERROR(ctx->allocate_output(
        1, tensorflow::TensorShape({with_square_norms_ ? num_segments : 0}), &norms));
    return PartialSumsFunctor<Device>::Forward(
        ctx, rows.flat<float>().data(), static_cast<int>(dim), entries, num_segments, order,
        sums->flat<float>().data(), with_square_norms_ ? norms->flat<float>().data() : nullptr);
  }

  bool with_square_norms_;
};

template <typename Device>
class PartialSumsGradOp : public tensorflow::OpKernel {
 public:
  using OpKernel::OpKernel;

  void Compute(tensorflow::OpKernelContext* ctx) override {
    OP_REQUIRES_OK(ctx, Named("DesPartialSumsGrad", ComputeStatus(ctx)));
  }

 private:
  absl::Status ComputeStatus(tensorflow::OpKernelContext* ctx) {
    const tensorflow::Tensor& sums_grad = ctx->input(0);
    const tensorflow::Tensor& norms_grad = ctx->input(1);
    const tensorflow::Tensor& rows = ctx->input(2);
    if (sums_grad.dims() != 2 || rows.dims() != 2 || sums_grad.dim_size(1) != rows.dim_size(1)) {
      return tensorflow::errors::InvalidArgument(
          "sums_grad must be [num_segments, dim] with the dim of rows, got ",
          sums_grad.shape().DebugString(), " and rows ", rows.shape().DebugString());
    }
    const int64_t num_segments = sums_grad.dim_size(0);
    if (norms_grad.dims() != 1 ||
        (norms_grad.dim_size(0) != 0 && norms_grad.dim_size(0) != num_segments)) {
      return tensorflow::errors::InvalidArgument("square_norms_grad must be empty or [",
                                                 num_segments, "], got ",
                                                 norms_grad.shape().DebugString());
    }
    PartialEntries entries;
    EntryOrder order;
    TF_RETURN_IF_ERROR(ReadEntries<Device>(ctx, rows, ctx->input(3), ctx->input(4),
                                           ctx->input(5), num_segments, &entries, &order));
    tensorflow::Tensor* rows_grad = nullptr;
    TF_RETURN_IF_ERROR(ctx->allocate_output(0, rows.shape(), &rows_grad));
    return PartialSumsFunctor<Device>::Backward(
        ctx, sums_grad.flat<float>().data(),
        norms_grad.NumElements() > 0 ? norms_grad.flat<float>().data() : nullptr,
        rows.flat<float>().data(), static_cast<int>(rows.dim_size(1)), rows.dim_size(0),
        entries, order, rows_grad->flat<float>().data());
  }
};

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_PARTIAL_SUMS_KERNELS_H_
