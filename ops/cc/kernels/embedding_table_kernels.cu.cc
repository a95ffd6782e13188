// GPU kernels of the embedding-table ops: a ResourceBase holding the CUDA
// core des::gpu::GpuEmbeddingTable (ops/cuda/gpu_table.h) and thin kernels
// for the ops it supports: create, Lookup, Find, ApplyGradients, Size,
// MemoryBytes and Export. Import, Remove and Evict have CPU kernels only:
// calling them on a table created on a GPU fails with TF's resource-type error.
// Compiled only with CUDA. Calls on one table are serialised by its mutex.
#if GOOGLE_CUDA

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../../cuda/gpu_table.h"
#include "../ops/key_checks.h"
#include "table_attrs.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tf_gpu.h"

namespace des {

using ::tensorflow::DEVICE_GPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::ResourceBase;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::errors::InvalidArgument;

class GpuTableResource : public ResourceBase {
 public:
  GpuTableResource(std::unique_ptr<gpu::GpuEmbeddingTable> table,
                   std::unique_ptr<TfDeviceAllocator> allocator)
      : allocator_(std::move(allocator)), table_(std::move(table)) {}
  gpu::GpuEmbeddingTable& table() { return *table_; }
  std::mutex& mu() { return mu_; }
  std::string DebugString() const override {
    return "DesEmbeddingTable on GPU(dim=" + std::to_string(table_->dim()) +
           ", rows=" + std::to_string(table_->Size()) + ")";
  }
  int64_t MemoryUsed() const override { return table_->MemoryBytes(); }

 private:
  std::unique_ptr<TfDeviceAllocator> allocator_;  // outlives the table's arrays
  std::unique_ptr<gpu::GpuEmbeddingTable> table_;
  std::mutex mu_;
};

class GpuEmbeddingTableOp : public tensorflow::ResourceOpKernel<GpuTableResource> {
 public:
  explicit GpuEmbeddingTableOp(OpKernelConstruction* ctx) : ResourceOpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ParseTableConfig(ctx, &config_));
  }

  void Compute(OpKernelContext* ctx) override {
    ctx_ = ctx;  // CreateResource needs the device's allocator and stream
    ResourceOpKernel::Compute(ctx);
    ctx_ = nullptr;
  }

 private:
  absl::Status CreateResource(GpuTableResource** resource) override {
    auto allocator = std::make_unique<TfDeviceAllocator>(TfDeviceAllocator::ForContext(ctx_));
    std::unique_ptr<gpu::GpuEmbeddingTable> table;
    const std::string error =
        gpu::GpuEmbeddingTable::Create(config_, allocator.get(), TfCudaStream(ctx_), &table);
    if (!error.empty()) return InvalidArgument("DesEmbeddingTable: ", error);
    *resource = new GpuTableResource(std::move(table), std::move(allocator));
    return absl::OkStatus();
  }
  absl::Status VerifyResource(GpuTableResource* resource) override {
    if (resource->table().dim() != config_.dim) {
      return InvalidArgument("DesEmbeddingTable: shared table '", cinfo_.name(), "' has dim ",
                             resource->table().dim(), ", not ", config_.dim);
    }
    return absl::OkStatus();
  }

  TableConfig config_;
  OpKernelContext* ctx_ = nullptr;
};

// Base of the kernels that act on an existing GPU table (input 0), holding its
// mutex for the whole call; `dim_attr` also checks the op's dim attr.
class GpuTableKernel : public OpKernel {
 public:
  GpuTableKernel(OpKernelConstruction* ctx, const char* op, bool takes_keys, bool dim_attr)
      : OpKernel(ctx), op_(op) {
    if (takes_keys) OP_REQUIRES_OK(ctx, CheckKeysAreInt64(ctx, op));
    if (dim_attr) OP_REQUIRES_OK(ctx, ctx->GetAttr("dim", &dim_));
  }

  void Compute(OpKernelContext* ctx) override {
    tensorflow::core::RefCountPtr<GpuTableResource> resource;
    OP_REQUIRES_OK(ctx, LookupResource(ctx, HandleFromInput(ctx, 0), &resource));
    OP_REQUIRES(ctx, dim_ < 0 || dim_ == resource->table().dim(),
                InvalidArgument(op_, ": called with dim ", dim_, " on a table of dim ",
                                resource->table().dim()));
    std::lock_guard<std::mutex> lock(resource->mu());
    ComputeWithTable(ctx, resource->table());
  }

 protected:
  virtual void ComputeWithTable(OpKernelContext* ctx, gpu::GpuEmbeddingTable& table) = 0;
  const char* op_;

 private:
  int64_t dim_ = -1;
};

class GpuLookupOp : public GpuTableKernel {
 public:
  explicit GpuLookupOp(OpKernelConstruction* ctx)
      : GpuTableKernel(ctx, "DesEmbeddingTableLookup", true, true) {}

 private:
  void ComputeWithTable(OpKernelContext* ctx, gpu::GpuEmbeddingTable& table) override {
    const Tensor& keys = ctx->input(1);
    TensorShape shape = keys.shape();
    shape.AddDim(table.dim());
    Tensor* values = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, shape, &values));
    DES_OP_REQUIRES_CORE(ctx, op_,
                         table.LookupOrInsert(keys.flat<int64_t>().data(), keys.NumElements(),
                                              values->flat<float>().data(), TfCudaStream(ctx)));
  }
};

class GpuFindOp : public GpuTableKernel {
 public:
  explicit GpuFindOp(OpKernelConstruction* ctx)
      : GpuTableKernel(ctx, "DesEmbeddingTableFind", true, true) {}

 private:
  void ComputeWithTable(OpKernelContext* ctx, gpu::GpuEmbeddingTable& table) override {
    const Tensor& keys = ctx->input(1);
    const Tensor& fallback = ctx->input(2);
    const int64_t fallback_size = fallback.NumElements();
    OP_REQUIRES(ctx, fallback_size == 1 || fallback_size == table.dim(),
                InvalidArgument(op_, ": default_value must be a scalar or have dim=",
                                table.dim(), " values, got shape ",
                                fallback.shape().DebugString()));
    TensorShape shape = keys.shape();
    shape.AddDim(table.dim());
    Tensor* values = nullptr;
    Tensor* found = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, shape, &values));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, keys.shape(), &found));
    DES_OP_REQUIRES_CORE(ctx, op_,
                         table.Find(keys.flat<int64_t>().data(), keys.NumElements(),
                                    fallback.flat<float>().data(),
                                    static_cast<int>(fallback_size), values->flat<float>().data(),
                                    found->flat<bool>().data(), TfCudaStream(ctx)));
  }
};

class GpuApplyGradientsOp : public GpuTableKernel {
 public:
  explicit GpuApplyGradientsOp(OpKernelConstruction* ctx)
      : GpuTableKernel(ctx, "DesEmbeddingTableApplyGradients", true, false) {}

 private:
  void ComputeWithTable(OpKernelContext* ctx, gpu::GpuEmbeddingTable& table) override {
    const Tensor& keys = ctx->input(1);
    const Tensor& grads = ctx->input(2);
    const Tensor& step = ctx->input(3);
    const Tensor& learning_rate = ctx->input(4);
    const int64_t n = keys.NumElements();
    OP_REQUIRES(ctx, grads.dims() == 2 && grads.dim_size(0) == n &&
                         grads.dim_size(1) == table.dim(),
                InvalidArgument(op_, ": gradients must have shape [len(keys), dim] = [", n,
                                ", ", table.dim(), "], got ", grads.shape().DebugString()));
    OP_REQUIRES(ctx, step.NumElements() == 1 && learning_rate.NumElements() == 1,
                InvalidArgument(op_, ": step and learning_rate must be scalars"));
    int64_t updated_rows = 0;
    DES_OP_REQUIRES_CORE(ctx, op_,
                         table.ApplyGradients(keys.flat<int64_t>().data(), n,
                                              grads.flat<float>().data(), step.flat<int64_t>()(0),
                                              learning_rate.flat<float>()(0), TfCudaStream(ctx),
                                              &updated_rows));
    Tensor* updated = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({}), &updated));
    updated->scalar<int64_t>()() = updated_rows;
  }
};

// Size or MemoryBytes, answered from the host (outputs in host memory).
template <int64_t (gpu::GpuEmbeddingTable::*Statistic)() const>
class GpuStatisticOp : public GpuTableKernel {
 public:
  explicit GpuStatisticOp(OpKernelConstruction* ctx)
      : GpuTableKernel(ctx, "DesEmbeddingTableStatistic", false, false) {}

 private:
  void ComputeWithTable(OpKernelContext* ctx, gpu::GpuEmbeddingTable& table) override {
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({}), &out));
    out->scalar<int64_t>()() = (table.*Statistic)();
  }
};

class GpuExportOp : public GpuTableKernel {
 public:
  explicit GpuExportOp(OpKernelConstruction* ctx)
      : GpuTableKernel(ctx, "DesEmbeddingTableExport", false, true) {}

 private:
  void ComputeWithTable(OpKernelContext* ctx, gpu::GpuEmbeddingTable& table) override {
    const int64_t n = table.Size();
    const int dim = table.dim();
    Tensor *keys, *values, *slots, *meta;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({n}), &keys));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({n, dim}), &values));
    OP_REQUIRES_OK(ctx,
                   ctx->allocate_output(2, TensorShape({n, table.num_slots(), dim}), &slots));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({n, 3}), &meta));
    DES_OP_REQUIRES_CORE(ctx, op_,
                         table.Export(keys->flat<int64_t>().data(), values->flat<float>().data(),
                                      slots->flat<float>().data(), meta->flat<int64_t>().data(),
                                      TfCudaStream(ctx)));
  }
};

REGISTER_KERNEL_BUILDER(Name("DesEmbeddingTable").Device(DEVICE_GPU).HostMemory("table"),
                        GpuEmbeddingTableOp);
REGISTER_KERNEL_BUILDER(Name("DesEmbeddingTableLookup").Device(DEVICE_GPU).HostMemory("table"),
                        GpuLookupOp);
REGISTER_KERNEL_BUILDER(Name("DesEmbeddingTableFind").Device(DEVICE_GPU).HostMemory("table"),
                        GpuFindOp);
REGISTER_KERNEL_BUILDER(Name("DesEmbeddingTableApplyGradients")
                            .Device(DEVICE_GPU)
                            .HostMemory("table")
                            .HostMemory("step")
                            .HostMemory("learning_rate")
                            .HostMemory("updated_rows"),
                        GpuApplyGradientsOp);
REGISTER_KERNEL_BUILDER(
    Name("DesEmbeddingTableSize").Device(DEVICE_GPU).HostMemory("table").HostMemory("size"),
    GpuStatisticOp<&gpu::GpuEmbeddingTable::Size>);
REGISTER_KERNEL_BUILDER(
    Name("DesEmbeddingTableMemoryBytes").Device(DEVICE_GPU).HostMemory("table").HostMemory("bytes"),
    GpuStatisticOp<&gpu::GpuEmbeddingTable::MemoryBytes>);
REGISTER_KERNEL_BUILDER(Name("DesEmbeddingTableExport").Device(DEVICE_GPU).HostMemory("table"),
                        GpuExportOp);

}  // namespace des

#endif  // GOOGLE_CUDA
