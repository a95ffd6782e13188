// The embedding-table ops' kernels, one OpKernel class per op for both devices:
// each reads and checks its inputs once, then calls the device's table,
// DeviceTable<Device>, a ResourceBase over the device's TF-independent core
// (embedding_table_kernels.cc: CPUDevice over embedding_table.h;
// embedding_table_kernels.cu.cc: GPUDevice over ops/cuda/gpu_table.h).
//
// What a DeviceTable<Device> provides (every method returns a status whose
// message the kernel prefixes with the op's name):
//   explicit DeviceTable(const TableConfig&);   const TableConfig& config() const;
//   int64_t Size() const;   int64_t MemoryBytes() const;
//   Lookup(ctx, keys, n, values)                 values [n, dim]
//   Find(ctx, keys, n, default_value, default_size, values, found)
//   ApplyGradients(ctx, keys, n, gradients, step, learning_rate, &updated_rows)
//   Export(ctx)          allocates and fills outputs 0..3 (AllocateExportOutputs)
//   Import(ctx, keys, n, values, slots, metadata (host, checked), clear_first)
//   Remove(ctx, keys, n) / Evict(ctx, policy, threshold): output 0 (AllocateKeysOutput)
// Tensors are in the device's memory except `metadata`, `step`,
// `learning_rate`, `threshold` and the statistics, which are host tensors.
#ifndef DES_TF_OPS_CC_KERNELS_EMBEDDING_TABLE_KERNELS_H_
#define DES_TF_OPS_CC_KERNELS_EMBEDDING_TABLE_KERNELS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "../ops/key_checks.h"
#include "kernel_support.h"
#include "table_attrs.h"
#include "table_config.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace des {

// Specialised per device (see above).
template <typename Device>
class DeviceTable;

// The four Export outputs, allocated for n rows.
struct ExportOutputs {
  int64_t* keys;      // [n]
  float* values;      // [n, dim]
  float* slots;       // [n, num_slots, dim]
  int64_t* metadata;  // [n, 3]: lookup frequency, update count, last update step
};

inline absl::Status AllocateExportOutputs(tensorflow::OpKernelContext* ctx, int64_t n,
                                          const TableConfig& config, ExportOutputs* out) {
  using ::tensorflow::TensorShape;
  tensorflow::Tensor *keys, *values, *slots, *metadata;
  const int64_t dim = config.dim, num_slots = config.optimizer.NumSlots();
  TF_RETURN_IF_ERROR(ctx->allocate_output(0, TensorShape({n}), &keys));
  TF_RETURN_IF_ERROR(ctx->allocate_output(1, TensorShape({n, dim}), &values));
  TF_RETURN_IF_ERROR(ctx->allocate_output(2, TensorShape({n, num_slots, dim}), &slots));
  TF_RETURN_IF_ERROR(ctx->allocate_output(3, TensorShape({n, 3}), &metadata));
  *out = ExportOutputs{keys->flat<int64_t>().data(), values->flat<float>().data(),
                       slots->flat<float>().data(), metadata->flat<int64_t>().data()};
  return absl::OkStatus();
}

// Output 0 as a vector of n keys (Remove's and Evict's removed keys).
inline absl::Status AllocateKeysOutput(tensorflow::OpKernelContext* ctx, int64_t n,
                                       int64_t** keys) {
  tensorflow::Tensor* out = nullptr;
  TF_RETURN_IF_ERROR(ctx->allocate_output(0, tensorflow::TensorShape({n}), &out));
  *keys = out->flat<int64_t>().data();
  return absl::OkStatus();
}

template <typename Device>
class EmbeddingTableOp : public tensorflow::ResourceOpKernel<DeviceTable<Device>> {
 public:
  explicit EmbeddingTableOp(tensorflow::OpKernelConstruction* ctx)
      : tensorflow::ResourceOpKernel<DeviceTable<Device>>(ctx) {
    OP_REQUIRES_OK(ctx, ParseTableConfig(ctx, &config_));
  }

 private:
  absl::Status CreateResource(DeviceTable<Device>** table) override {
    *table = new DeviceTable<Device>(config_);
    return absl::OkStatus();
  }
  absl::Status VerifyResource(DeviceTable<Device>* table) override {
    if (table->config().dim != config_.dim) {
      return tensorflow::errors::InvalidArgument(
          "DesEmbeddingTable: shared table '", this->cinfo_.name(), "' has dim ",
          table->config().dim, ", not ", config_.dim);
    }
    return absl::OkStatus();
  }

  TableConfig config_;
};

// Base of the kernels that act on an existing table (input 0): looks it up,
// checks the op's `dim` attr against it when the op has one, and prefixes
// every error with the op's name.
template <typename Device>
class TableOpKernel : public tensorflow::OpKernel {
 public:
  TableOpKernel(tensorflow::OpKernelConstruction* ctx, const char* op, bool takes_keys,
                bool has_dim_attr)
      : OpKernel(ctx), op_(op) {
    if (takes_keys) OP_REQUIRES_OK(ctx, CheckKeysAreInt64(ctx, op));
    if (has_dim_attr) OP_REQUIRES_OK(ctx, ctx->GetAttr("dim", &dim_));
  }

  void Compute(tensorflow::OpKernelContext* ctx) final {
    tensorflow::core::RefCountPtr<DeviceTable<Device>> table;
    OP_REQUIRES_OK(ctx, LookupResource(ctx, HandleFromInput(ctx, 0), &table));
    const int dim = table->config().dim;
    OP_REQUIRES(ctx, dim_ < 0 || dim_ == dim,
                tensorflow::errors::InvalidArgument(op_, ": called with dim ", dim_,
                                                    " on a table of dim ", dim));
    OP_REQUIRES_OK(ctx, Named(op_, ComputeWithTable(ctx, *table)));
  }

 protected:
  virtual absl::Status ComputeWithTable(tensorflow::OpKernelContext* ctx,
                                        DeviceTable<Device>& table) = 0;

 private:
  const char* op_;
  int64_t dim_ = -1;
};

template <typename Device>
class LookupOp : public TableOpKernel<Device> {
 public:
  explicit LookupOp(tensorflow::OpKernelConstruction* ctx)
      : TableOpKernel<Device>(ctx, "DesEmbeddingTableLookup", true, true) {}

 private:
  absl::Status ComputeWithTable(tensorflow::OpKernelContext* ctx,
                                DeviceTable<Device>& table) override {
    const tensorflow::Tensor& keys = ctx->input(1);
    tensorflow::TensorShape shape = keys.shape();
    shape.AddDim(table.config().dim);
    tensorflow::Tensor* values = nullptr;
    TF_RETURN_IF_ERROR(ctx->allocate_output(0, shape, &values));
    return table.Lookup(ctx, keys.flat<int64_t>().data(), keys.NumElements(),
                        values->flat<float>().data());
  }
};

template <typename Device>
class FindOp : public TableOpKernel<Device> {
 public:
  explicit FindOp(tensorflow::OpKernelConstruction* ctx)
      : TableOpKernel<Device>(ctx, "DesEmbeddingTableFind", true, true) {}

 private:
  absl::Status ComputeWithTable(tensorflow::OpKernelContext* ctx,
                                DeviceTable<Device>& table) override {
    const tensorflow::Tensor& keys = ctx->input(1);
    const tensorflow::Tensor& fallback = ctx->input(2);
    const int dim = table.config().dim;
    const int64_t fallback_size = fallback.NumElements();
    if (fallback_size != 1 && fallback_size != dim) {
      return tensorflow::errors::InvalidArgument(
          "default_value must be a scalar or have dim=", dim, " values, got shape ",
          fallback.shape().DebugString());
    }
    tensorflow::TensorShape shape = keys.shape();
    shape.AddDim(dim);
    tensorflow::Tensor *values, *found;
    TF_RETURN_IF_ERROR(ctx->allocate_output(0, shape, &values));
    TF_RETURN_IF_ERROR(ctx->allocate_output(1, keys.shape(), &found));
    return table.Find(ctx, keys.flat<int64_t>().data(), keys.NumElements(),
                      fallback.flat<float>().data(), static_cast<int>(fallback_size),
                      values->flat<float>().data(), found->flat<bool>().data());
  }
};

template <typename Device>
class ApplyGradientsOp : public TableOpKernel<Device> {
 public:
  explicit ApplyGradientsOp(tensorflow::OpKernelConstruction* ctx)
      : TableOpKernel<Device>(ctx, "DesEmbeddingTableApplyGradients", true, false) {}

 private:
  absl::Status ComputeWithTable(tensorflow::OpKernelContext* ctx,
                                DeviceTable<Device>& table) override {
    const tensorflow::Tensor& keys = ctx->input(1);
    const tensorflow::Tensor& grads = ctx->input(2);
    const tensorflow::Tensor& step = ctx->input(3);
    const tensorflow::Tensor& learning_rate = ctx->input(4);
    const int64_t n = keys.NumElements();
    const int dim = table.config().dim;
    if (grads.dims() != 2 || grads.dim_size(0) != n || grads.dim_size(1) != dim) {
      return tensorflow::errors::InvalidArgument(
          "gradients must have shape [len(keys), dim] = [", n, ", ", dim, "], got ",
          grads.shape().DebugString());
    }
    if (step.NumElements() != 1 || learning_rate.NumElements() != 1) {
      return tensorflow::errors::InvalidArgument("step and learning_rate must be scalars");
    }
    int64_t updated_rows = 0;
    TF_RETURN_IF_ERROR(table.ApplyGradients(ctx, keys.flat<int64_t>().data(), n,
                                            grads.flat<float>().data(), step.flat<int64_t>()(0),
                                            learning_rate.flat<float>()(0), &updated_rows));
    tensorflow::Tensor* updated = nullptr;
    TF_RETURN_IF_ERROR(ctx->allocate_output(0, tensorflow::TensorShape({}), &updated));
    updated->scalar<int64_t>()() = updated_rows;
    return absl::OkStatus();
  }
};

// Reports one int64 statistic of the table (its size, its memory) in host memory.
template <typename Device, int64_t (DeviceTable<Device>::*Statistic)() const>
class TableStatisticOp : public TableOpKernel<Device> {
 public:
  explicit TableStatisticOp(tensorflow::OpKernelConstruction* ctx)
      : TableOpKernel<Device>(ctx, "DesEmbeddingTableStatistic", false, false) {}

 private:
  absl::Status ComputeWithTable(tensorflow::OpKernelContext* ctx,
                                DeviceTable<Device>& table) override {
    tensorflow::Tensor* out = nullptr;
    TF_RETURN_IF_ERROR(ctx->allocate_output(0, tensorflow::TensorShape({}), &out));
    out->scalar<int64_t>()() = (table.*Statistic)();
    return absl::OkStatus();
  }
};

template <typename Device>
class ExportOp : public TableOpKernel<Device> {
 public:
  explicit ExportOp(tensorflow::OpKernelConstruction* ctx)
      : TableOpKernel<Device>(ctx, "DesEmbeddingTableExport", false, true) {}

 private:
  absl::Status ComputeWithTable(tensorflow::OpKernelContext* ctx,
                                DeviceTable<Device>& table) override {
    return table.Export(ctx);
  }
};

template <typename Device>
class ImportOp : public TableOpKernel<Device> {
 public:
  explicit ImportOp(tensorflow::OpKernelConstruction* ctx)
      : TableOpKernel<Device>(ctx, "DesEmbeddingTableImport", false, false) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("clear_first", &clear_first_));
  }

 private:
  absl::Status ComputeWithTable(tensorflow::OpKernelContext* ctx,
                                DeviceTable<Device>& table) override {
    const tensorflow::Tensor& keys = ctx->input(1);
    const tensorflow::Tensor& values = ctx->input(2);
    const tensorflow::Tensor& slots = ctx->input(3);
    const tensorflow::Tensor& meta = ctx->input(4);
    const int64_t n = keys.NumElements();
    const int dim = table.config().dim, num_slots = table.config().optimizer.NumSlots();
    const auto shape_error = [&](const char* what, const tensorflow::Tensor& t,
                                 const char* want) {
      return tensorflow::errors::InvalidArgument(
          what, " must have shape ", want, " for ", n, " keys into a table of dim ", dim,
          " with ", num_slots, " optimizer slots, got ", t.shape().DebugString());
    };
    if (keys.dims() != 1) return shape_error("keys", keys, "[n]");
    if (values.dims() != 2 || values.dim_size(0) != n || values.dim_size(1) != dim) {
      return shape_error("values", values, "[n, dim]");
    }
    if (slots.dims() != 3 || slots.dim_size(0) != n || slots.dim_size(1) != num_slots ||
        slots.dim_size(2) != dim) {
      return shape_error("slots", slots, "[n, num_slots, dim]");
    }
    if (meta.dims() != 2 || meta.dim_size(0) != n || meta.dim_size(1) != 3) {
      return shape_error("metadata", meta, "[n, 3]");
    }
    std::vector<RowMeta> metadata;
    metadata.reserve(n);
    const auto meta_matrix = meta.matrix<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      if (meta_matrix(i, 0) < 0 || meta_matrix(i, 0) > UINT32_MAX || meta_matrix(i, 1) < 0 ||
          meta_matrix(i, 1) > UINT32_MAX) {
        return tensorflow::errors::InvalidArgument(
            "metadata row ", i, " has a frequency or update count outside [0, 2^32)");
      }
      metadata.push_back(RowMeta{static_cast<uint32_t>(meta_matrix(i, 0)),
                                 static_cast<uint32_t>(meta_matrix(i, 1)), meta_matrix(i, 2)});
    }
    return table.Import(ctx, keys.flat<int64_t>().data(), n, values.flat<float>().data(),
                        slots.flat<float>().data(), metadata, clear_first_);
  }

  bool clear_first_;
};

template <typename Device>
class RemoveOp : public TableOpKernel<Device> {
 public:
  explicit RemoveOp(tensorflow::OpKernelConstruction* ctx)
      : TableOpKernel<Device>(ctx, "DesEmbeddingTableRemove", true, false) {}

 private:
  absl::Status ComputeWithTable(tensorflow::OpKernelContext* ctx,
                                DeviceTable<Device>& table) override {
    const tensorflow::Tensor& keys = ctx->input(1);
    return table.Remove(ctx, keys.flat<int64_t>().data(), keys.NumElements());
  }
};

template <typename Device>
class EvictOp : public TableOpKernel<Device> {
 public:
  explicit EvictOp(tensorflow::OpKernelConstruction* ctx)
      : TableOpKernel<Device>(ctx, "DesEmbeddingTableEvict", false, false) {
    std::string policy;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("policy", &policy));
    policy_ = policy == "min_frequency" ? EvictionPolicy::kMinFrequency
              : policy == "max_age"     ? EvictionPolicy::kMaxAge
                                        : EvictionPolicy::kRowBudget;
  }

 private:
  absl::Status ComputeWithTable(tensorflow::OpKernelContext* ctx,
                                DeviceTable<Device>& table) override {
    const tensorflow::Tensor& threshold = ctx->input(1);
    if (threshold.NumElements() != 1 || threshold.flat<int64_t>()(0) < 0) {
      return tensorflow::errors::InvalidArgument("threshold must be a scalar >= 0, got ",
                                                 threshold.DebugString());
    }
    return table.Evict(ctx, policy_, threshold.flat<int64_t>()(0));
  }

  EvictionPolicy policy_;
};

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_EMBEDDING_TABLE_KERNELS_H_
