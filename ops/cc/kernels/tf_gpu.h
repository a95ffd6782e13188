// What the GPU kernels take from TensorFlow: the op's CUDA stream and a
// des::gpu::DeviceAllocator backed by TF's GPU allocator (so the cores share
// TF's memory pool instead of competing with it). Compiled only with CUDA.
#ifndef DES_TF_OPS_CC_KERNELS_TF_GPU_H_
#define DES_TF_OPS_CC_KERNELS_TF_GPU_H_

#if GOOGLE_CUDA

#include <cuda_runtime_api.h>

#include "../../cuda/device_allocator.h"
#include "tensorflow/core/framework/allocator.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "xla/stream_executor/stream.h"

namespace des {

inline cudaStream_t TfCudaStream(tensorflow::OpKernelContext* ctx) {
  return static_cast<cudaStream_t>(
      ctx->op_device_context()->stream()->platform_specific_handle().stream);
}

// TF's allocators are stream-ordered on the compute stream already, which is
// the stream every core call runs on: the stream argument is not needed.
class TfDeviceAllocator : public gpu::DeviceAllocator {
 public:
  explicit TfDeviceAllocator(tensorflow::Allocator* allocator) : allocator_(allocator) {}
  static TfDeviceAllocator ForContext(tensorflow::OpKernelContext* ctx) {
    return TfDeviceAllocator(ctx->device()->GetAllocator(tensorflow::AllocatorAttributes()));
  }
  void* Allocate(size_t bytes, cudaStream_t) override {
    return allocator_->AllocateRaw(tensorflow::Allocator::kAllocatorAlignment, bytes);
  }
  void Free(void* ptr, cudaStream_t) override {
    if (ptr != nullptr) allocator_->DeallocateRaw(ptr);
  }

 private:
  tensorflow::Allocator* allocator_;
};

}  // namespace des

#endif  // GOOGLE_CUDA
#endif  // DES_TF_OPS_CC_KERNELS_TF_GPU_H_
