// GPU kernels of DesPartialSums / DesPartialSumsGrad: validate shapes on the
// host and index ranges on the device (ops/cuda/gpu_partial_sums.h), then run
// the CUDA core. Compiled only with CUDA. num_segments lives in host memory.
#if GOOGLE_CUDA

#include "../../cuda/gpu_partial_sums.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tf_gpu.h"

namespace des {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::errors::InvalidArgument;

namespace {

// Shape checks as the CPU kernel's ReadEntries, then the device range check.
absl::Status ReadGpuEntries(OpKernelContext* ctx, const char* op, const Tensor& rows,
                            const Tensor& row_ids, const Tensor& segment_ids,
                            const Tensor& weights, int64_t num_segments,
                            gpu::GpuPartialEntries* entries, gpu::EntryOrder* order) {
  if (rows.dims() != 2) {
    return InvalidArgument(op, ": rows must be a matrix [num_rows, dim], got shape ",
                           rows.shape().DebugString());
  }
  if (row_ids.dims() != 1 || segment_ids.shape() != row_ids.shape() ||
      weights.shape() != row_ids.shape()) {
    return InvalidArgument(op, ": row_ids, segment_ids and weights must be vectors of one "
                           "length, got ", row_ids.shape().DebugString(), ", ",
                           segment_ids.shape().DebugString(), ", ",
                           weights.shape().DebugString());
  }
  *entries = gpu::GpuPartialEntries{row_ids.flat<int64_t>().data(),
                                    segment_ids.flat<int64_t>().data(),
                                    weights.flat<float>().data(), row_ids.NumElements()};
  const std::string error =
      gpu::ValidateEntries(*entries, rows.dim_size(0), num_segments, TfCudaStream(ctx), order);
  if (!error.empty()) return InvalidArgument(op, ": ", error);
  return absl::OkStatus();
}

}  // namespace

class PartialSumsGpuOp : public OpKernel {
 public:
  explicit PartialSumsGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("with_square_norms", &with_square_norms_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& rows = ctx->input(0);
    const Tensor& num_segments_tensor = ctx->input(4);
    OP_REQUIRES(ctx, num_segments_tensor.NumElements() == 1 &&
                         num_segments_tensor.flat<int64_t>()(0) >= 0,
                InvalidArgument("DesPartialSums: num_segments must be a scalar >= 0"));
    const int64_t num_segments = num_segments_tensor.flat<int64_t>()(0);
    gpu::GpuPartialEntries entries;
    gpu::EntryOrder order;
    OP_REQUIRES_OK(ctx, ReadGpuEntries(ctx, "DesPartialSums", rows, ctx->input(1),
                                       ctx->input(2), ctx->input(3), num_segments, &entries,
                                       &order));
    const int64_t dim = rows.dim_size(1);
    Tensor* sums = nullptr;
    Tensor* norms = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({num_segments, dim}), &sums));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            1, TensorShape({with_square_norms_ ? num_segments : 0}), &norms));
    TfDeviceAllocator allocator = TfDeviceAllocator::ForContext(ctx);
    DES_OP_REQUIRES_CORE(ctx, "DesPartialSums",
                         gpu::PartialSums(rows.flat<float>().data(), static_cast<int>(dim),
                                          entries, num_segments, order.segments_sorted,
                                          sums->flat<float>().data(),
                                          with_square_norms_ ? norms->flat<float>().data()
                                                             : nullptr,
                                          &allocator, TfCudaStream(ctx)));
  }

 private:
  bool with_square_norms_;
};

class PartialSumsGradGpuOp : public OpKernel {
 public:
  using OpKernel::OpKernel;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& sums_grad = ctx->input(0);
    const Tensor& norms_grad = ctx->input(1);
    const Tensor& rows = ctx->input(2);
    OP_REQUIRES(ctx, sums_grad.dims() == 2 && rows.dims() == 2 &&
                         sums_grad.dim_size(1) == rows.dim_size(1),
                InvalidArgument("DesPartialSumsGrad: sums_grad must be [num_segments, dim] "
                                "with the dim of rows, got ", sums_grad.shape().DebugString(),
                                " and rows ", rows.shape().DebugString()));
    const int64_t num_segments = sums_grad.dim_size(0);
    OP_REQUIRES(ctx, norms_grad.dims() == 1 && (norms_grad.dim_size(0) == 0 ||
                                                norms_grad.dim_size(0) == num_segments),
                InvalidArgument("DesPartialSumsGrad: square_norms_grad must be empty or [",
                                num_segments, "], got ", norms_grad.shape().DebugString()));
    gpu::GpuPartialEntries entries;
    gpu::EntryOrder order;
    OP_REQUIRES_OK(ctx, ReadGpuEntries(ctx, "DesPartialSumsGrad", rows, ctx->input(3),
                                       ctx->input(4), ctx->input(5), num_segments, &entries,
                                       &order));
    Tensor* rows_grad = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, rows.shape(), &rows_grad));
    TfDeviceAllocator allocator = TfDeviceAllocator::ForContext(ctx);
    DES_OP_REQUIRES_CORE(
        ctx, "DesPartialSumsGrad",
        gpu::PartialSumsGrad(sums_grad.flat<float>().data(),
                             norms_grad.NumElements() > 0 ? norms_grad.flat<float>().data()
                                                          : nullptr,
                             rows.flat<float>().data(), static_cast<int>(rows.dim_size(1)),
                             rows.dim_size(0), entries, order.rows_sorted,
                             rows_grad->flat<float>().data(), &allocator, TfCudaStream(ctx)));
  }
};

REGISTER_KERNEL_BUILDER(
    Name("DesPartialSums").Device(tensorflow::DEVICE_GPU).HostMemory("num_segments"),
    PartialSumsGpuOp);
REGISTER_KERNEL_BUILDER(Name("DesPartialSumsGrad").Device(tensorflow::DEVICE_GPU),
                        PartialSumsGradGpuOp);

}  // namespace des

#endif  // GOOGLE_CUDA
