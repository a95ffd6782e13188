// GPU side of the embedding-table ops: DeviceTable<GPUDevice>, a ResourceBase
// over the CUDA core des::gpu::GpuEmbeddingTable (ops/cuda/gpu_table.h), and
// the GPU registrations of the kernels in embedding_table_kernels.h. Every op
// the CPU table has runs here too. Compiled only with CUDA.
//
// The core table is made by the first call that uses it, on that call's
// device allocator and stream, so no kernel keeps per-call state; calls on one
// table are serialised by its mutex (the core needs one stream at a time).
#if GOOGLE_CUDA

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../../cuda/cuda_status.h"
#include "../../cuda/gpu_table.h"
#include "embedding_table_kernels.h"
#include "tf_gpu.h"

namespace des {

using ::tensorflow::DEVICE_GPU;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;

template <>
class DeviceTable<GPUDevice> : public tensorflow::ResourceBase {
 public:
  explicit DeviceTable(const TableConfig& config) : config_(config) {}

  const TableConfig& config() const { return config_; }
  int64_t Size() const { return Statistic(&gpu::GpuEmbeddingTable::Size); }
  int64_t MemoryBytes() const { return Statistic(&gpu::GpuEmbeddingTable::MemoryBytes); }
  std::string DebugString() const override {
    return "DesEmbeddingTable on GPU(dim=" + std::to_string(config_.dim) +
           ", rows=" + std::to_string(Size()) + ")";
  }
  int64_t MemoryUsed() const override { return MemoryBytes(); }

  absl::Status Lookup(OpKernelContext* ctx, const int64_t* keys, int64_t n, float* values) {
    return WithTable(ctx, [&](gpu::GpuEmbeddingTable& table, cudaStream_t stream) {
      return CoreStatus(table.LookupOrInsert(keys, n, values, stream));
    });
  }

  absl::Status Find(OpKernelContext* ctx, const int64_t* keys, int64_t n,
                    const float* default_value, int default_size, float* values, bool* found) {
    return WithTable(ctx, [&](gpu::GpuEmbeddingTable& table, cudaStream_t stream) {
      return CoreStatus(table.Find(keys, n, default_value, default_size, values, found, stream));
    });
  }

  absl::Status ApplyGradients(OpKernelContext* ctx, const int64_t* keys, int64_t n,
                              const float* grads, int64_t step, float learning_rate,
                              int64_t* updated_rows) {
    return WithTable(ctx, [&](gpu::GpuEmbeddingTable& table, cudaStream_t stream) {
      return CoreStatus(
          table.ApplyGradients(keys, n, grads, step, learning_rate, stream, updated_rows));
    });
  }

  absl::Status Export(OpKernelContext* ctx) {
    return WithTable(ctx, [&](gpu::GpuEmbeddingTable& table, cudaStream_t stream) {
      ExportOutputs out;
      TF_RETURN_IF_ERROR(AllocateExportOutputs(ctx, table.Size(), config_, &out));
      return CoreStatus(table.Export(out.keys, out.values, out.slots, out.metadata, stream));
    });
  }

  absl::Status Import(OpKernelContext* ctx, const int64_t* keys, int64_t n, const float* values,
                      const float* slots, const std::vector<RowMeta>& metadata,
                      bool clear_first) {
    Tensor device_metadata;
    TF_RETURN_IF_ERROR(ctx->allocate_temp(tensorflow::DT_INT8,
                                          TensorShape({n * int64_t{sizeof(RowMeta)}}),
                                          &device_metadata));
    RowMeta* meta = reinterpret_cast<RowMeta*>(device_metadata.flat<int8_t>().data());
    return WithTable(ctx, [&](gpu::GpuEmbeddingTable& table, cudaStream_t stream) {
      if (n > 0) {
        // From pageable memory: the copy has read `metadata` when it returns.
        const cudaError_t copied = cudaMemcpyAsync(meta, metadata.data(), n * sizeof(RowMeta),
                                                   cudaMemcpyHostToDevice, stream);
        TF_RETURN_IF_ERROR(CoreStatus(gpu::CudaStatus(copied, "copying import metadata")));
      }
      return CoreStatus(table.Import(keys, n, values, slots, meta, clear_first, stream));
    });
  }

  absl::Status Remove(OpKernelContext* ctx, const int64_t* keys, int64_t n) {
    Tensor removed;
    TF_RETURN_IF_ERROR(ctx->allocate_temp(tensorflow::DT_INT64, TensorShape({n}), &removed));
    int64_t count = 0;
    TF_RETURN_IF_ERROR(WithTable(ctx, [&](gpu::GpuEmbeddingTable& table, cudaStream_t stream) {
      return CoreStatus(table.Remove(keys, n, removed.flat<int64_t>().data(), &count, stream));
    }));
    return OutputKeys(ctx, removed, count);
  }

  absl::Status Evict(OpKernelContext* ctx, EvictionPolicy policy, int64_t threshold) {
    Tensor evicted;
    int64_t count = 0;
    TF_RETURN_IF_ERROR(WithTable(ctx, [&](gpu::GpuEmbeddingTable& table, cudaStream_t stream) {
      TF_RETURN_IF_ERROR(
          ctx->allocate_temp(tensorflow::DT_INT64, TensorShape({table.Size()}), &evicted));
      return CoreStatus(
          table.Evict(policy, threshold, evicted.flat<int64_t>().data(), &count, stream));
    }));
    return OutputKeys(ctx, evicted, count);
  }

 private:
  // Runs fn(table, stream) -> absl::Status under the table's mutex, making the
  // core table on first use.
  template <typename Fn>
  absl::Status WithTable(OpKernelContext* ctx, Fn fn) {
    std::lock_guard<std::mutex> lock(mu_);
    const cudaStream_t stream = TfCudaStream(ctx);
    if (table_ == nullptr) {
      allocator_ = std::make_unique<TfDeviceAllocator>(TfDeviceAllocator::ForContext(ctx));
      TF_RETURN_IF_ERROR(
          CoreStatus(gpu::GpuEmbeddingTable::Create(config_, allocator_.get(), stream, &table_)));
    }
    return fn(*table_, stream);
  }

  int64_t Statistic(int64_t (gpu::GpuEmbeddingTable::*statistic)() const) const {
    std::lock_guard<std::mutex> lock(mu_);
    return table_ == nullptr ? 0 : ((*table_).*statistic)();
  }

  // Output 0 = the first `count` keys of a device buffer.
  static absl::Status OutputKeys(OpKernelContext* ctx, const Tensor& keys, int64_t count) {
    int64_t* out = nullptr;
    TF_RETURN_IF_ERROR(AllocateKeysOutput(ctx, count, &out));
    if (count == 0) return absl::OkStatus();
    return CoreStatus(gpu::CudaStatus(
        cudaMemcpyAsync(out, keys.flat<int64_t>().data(), count * sizeof(int64_t),
                        cudaMemcpyDeviceToDevice, TfCudaStream(ctx)),
        "copying removed keys"));
  }

  const TableConfig config_;
  mutable std::mutex mu_;
  std::unique_ptr<TfDeviceAllocator> allocator_;  // outlives the table's arrays
  std::unique_ptr<gpu::GpuEmbeddingTable> table_;
};

using GpuTableSizeOp = TableStatisticOp<GPUDevice, &DeviceTable<GPUDevice>::Size>;
using GpuTableMemoryOp = TableStatisticOp<GPUDevice, &DeviceTable<GPUDevice>::MemoryBytes>;

#define DES_GPU_TABLE_OP(name) Name(name).Device(DEVICE_GPU).HostMemory("table")

REGISTER_KERNEL_BUILDER(DES_GPU_TABLE_OP("DesEmbeddingTable"), EmbeddingTableOp<GPUDevice>);
REGISTER_KERNEL_BUILDER(DES_GPU_TABLE_OP("DesEmbeddingTableLookup"), LookupOp<GPUDevice>);
REGISTER_KERNEL_BUILDER(DES_GPU_TABLE_OP("DesEmbeddingTableFind"), FindOp<GPUDevice>);
REGISTER_KERNEL_BUILDER(DES_GPU_TABLE_OP("DesEmbeddingTableApplyGradients")
                            .HostMemory("step")
                            .HostMemory("learning_rate")
                            .HostMemory("updated_rows"),
                        ApplyGradientsOp<GPUDevice>);
REGISTER_KERNEL_BUILDER(DES_GPU_TABLE_OP("DesEmbeddingTableSize").HostMemory("size"),
                        GpuTableSizeOp);
REGISTER_KERNEL_BUILDER(DES_GPU_TABLE_OP("DesEmbeddingTableMemoryBytes").HostMemory("bytes"),
                        GpuTableMemoryOp);
REGISTER_KERNEL_BUILDER(DES_GPU_TABLE_OP("DesEmbeddingTableExport"), ExportOp<GPUDevice>);
REGISTER_KERNEL_BUILDER(DES_GPU_TABLE_OP("DesEmbeddingTableImport").HostMemory("metadata"),
                        ImportOp<GPUDevice>);
REGISTER_KERNEL_BUILDER(DES_GPU_TABLE_OP("DesEmbeddingTableRemove"), RemoveOp<GPUDevice>);
REGISTER_KERNEL_BUILDER(DES_GPU_TABLE_OP("DesEmbeddingTableEvict").HostMemory("threshold"),
                        EvictOp<GPUDevice>);

}  // namespace des

#endif  // GOOGLE_CUDA
