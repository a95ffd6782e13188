// GPU side of DesPartialSums / DesPartialSumsGrad: PartialSumsFunctor<GPUDevice>
// over the CUDA core (ops/cuda/gpu_partial_sums.h), which checks index ranges
// on the device, and the GPU registrations of the kernels in
// partial_sums_kernels.h. Compiled only with CUDA.
#if GOOGLE_CUDA

#include "../../cuda/gpu_partial_sums.h"
#include "partial_sums_kernels.h"
#include "tf_gpu.h"

namespace des {

template <>
struct PartialSumsFunctor<GPUDevice> {
  static absl::Status Validate(tensorflow::OpKernelContext* ctx, const PartialEntries& entries,
                               int64_t num_rows, int64_t num_segments, EntryOrder* order) {
    return CoreStatus(
        gpu::ValidateEntries(entries, num_rows, num_segments, TfCudaStream(ctx), order));
  }

  static absl::Status Forward(tensorflow::OpKernelContext* ctx, const float* rows, int dim,
                              const PartialEntries& entries, int64_t num_segments,
                              const EntryOrder& order, float* sums, float* square_norms) {
    TfDeviceAllocator allocator = TfDeviceAllocator::ForContext(ctx);
    return CoreStatus(gpu::PartialSums(rows, dim, entries, num_segments, order.segments_sorted,
                                       sums, square_norms, &allocator, TfCudaStream(ctx)));
  }

  static absl::Status Backward(tensorflow::OpKernelContext* ctx, const float* dsums,
                               const float* dsquare_norms, const float* rows, int dim,
                               int64_t num_rows, const PartialEntries& entries,
                               const EntryOrder& order, float* row_grads) {
    TfDeviceAllocator allocator = TfDeviceAllocator::ForContext(ctx);
    return CoreStatus(gpu::PartialSumsGrad(dsums, dsquare_norms, rows, dim, num_rows, entries,
                                           order.rows_sorted, row_grads, &allocator,
                                           TfCudaStream(ctx)));
  }
};

REGISTER_KERNEL_BUILDER(
    Name("DesPartialSums").Device(tensorflow::DEVICE_GPU).HostMemory("num_segments"),
    PartialSumsOp<GPUDevice>);
REGISTER_KERNEL_BUILDER(Name("DesPartialSumsGrad").Device(tensorflow::DEVICE_GPU),
                        PartialSumsGradOp<GPUDevice>);

}  // namespace des

#endif  // GOOGLE_CUDA
