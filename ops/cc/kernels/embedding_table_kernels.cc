// CPU kernels of the embedding-table ops: a ResourceBase holding the
// TF-independent des::EmbeddingTable, and thin kernels that validate tensors,
// then call the table with TF's intra-op thread pool.
#include <string>
#include <vector>

#include "../ops/key_checks.h"
#include "embedding_table.h"
#include "table_attrs.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tf_parallel_for.h"

namespace des {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::ResourceBase;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::errors::InvalidArgument;

class EmbeddingTableResource : public ResourceBase {
 public:
  explicit EmbeddingTableResource(const TableConfig& config) : table_(config) {}
  EmbeddingTable& table() { return table_; }
  std::string DebugString() const override {
    return "DesEmbeddingTable(dim=" + std::to_string(table_.dim()) +
           ", rows=" + std::to_string(table_.Size()) + ")";
  }
  int64_t MemoryUsed() const override { return table_.MemoryBytes(); }

 private:
  EmbeddingTable table_;
};

namespace {

// The table's work units are its stripes: ~100 cycles per key, spread over them.
ParallelFor StripeParallelFor(OpKernelContext* ctx, int64_t keys) {
  return TfParallelFor(ctx, 100 * (keys / EmbeddingTable::kNumStripes + 1));
}

}  // namespace

class EmbeddingTableOp : public tensorflow::ResourceOpKernel<EmbeddingTableResource> {
 public:
  explicit EmbeddingTableOp(OpKernelConstruction* ctx) : ResourceOpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ParseTableConfig(ctx, &config_));
  }

 private:
  absl::Status CreateResource(EmbeddingTableResource** resource) override {
    *resource = new EmbeddingTableResource(config_);
    return absl::OkStatus();
  }
  absl::Status VerifyResource(EmbeddingTableResource* resource) override {
    if (resource->table().dim() != config_.dim) {
      return InvalidArgument("DesEmbeddingTable: shared table '", cinfo_.name(),
                             "' has dim ", resource->table().dim(), ", not ", config_.dim);
    }
    return absl::OkStatus();
  }

  TableConfig config_;
};

// Base of the kernels that act on an existing table (input 0).
class TableKernel : public OpKernel {
 public:
  using OpKernel::OpKernel;

  void Compute(OpKernelContext* ctx) override {
    tensorflow::core::RefCountPtr<EmbeddingTableResource> resource;
    OP_REQUIRES_OK(ctx, LookupResource(ctx, HandleFromInput(ctx, 0), &resource));
    ComputeWithTable(ctx, resource->table());
  }

 protected:
  virtual void ComputeWithTable(OpKernelContext* ctx, EmbeddingTable& table) = 0;

  // Allocates output `index` shaped keys.shape + [dim].
  static absl::Status AllocateRows(OpKernelContext* ctx, int index, const Tensor& keys,
                                   int dim, Tensor** out) {
    TensorShape shape = keys.shape();
    shape.AddDim(dim);
    return ctx->allocate_output(index, shape, out);
  }
};

// Base of the kernels whose `dim` attr (their static output width) must match the
// table's: Lookup, Find, Export; `takes_keys` also validates the Tkeys attr.
class DimKernel : public TableKernel {
 public:
  DimKernel(OpKernelConstruction* ctx, const char* op, bool takes_keys)
      : TableKernel(ctx), op_(op) {
    if (takes_keys) OP_REQUIRES_OK(ctx, CheckKeysAreInt64(ctx, op));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("dim", &dim_));
  }

 protected:
  virtual void ComputeWithRows(OpKernelContext* ctx, EmbeddingTable& table) = 0;

 private:
  void ComputeWithTable(OpKernelContext* ctx, EmbeddingTable& table) final {
    OP_REQUIRES(ctx, dim_ == table.dim(),
                InvalidArgument(op_, ": called with dim ", dim_, " on a table of dim ",
                                table.dim()));
    ComputeWithRows(ctx, table);
  }

  const char* op_;
  int64_t dim_;
};

class LookupOp : public DimKernel {
 public:
  explicit LookupOp(OpKernelConstruction* ctx)
      : DimKernel(ctx, "DesEmbeddingTableLookup", /*takes_keys=*/true) {}

 private:
  void ComputeWithRows(OpKernelContext* ctx, EmbeddingTable& table) override {
    const Tensor& keys = ctx->input(1);
    Tensor* values = nullptr;
    OP_REQUIRES_OK(ctx, AllocateRows(ctx, 0, keys, table.dim(), &values));
    const int64_t n = keys.NumElements();
    table.LookupOrInsert(keys.flat<int64_t>().data(), n, values->flat<float>().data(),
                         StripeParallelFor(ctx, n));
  }
};

class FindOp : public DimKernel {
 public:
  explicit FindOp(OpKernelConstruction* ctx)
      : DimKernel(ctx, "DesEmbeddingTableFind", /*takes_keys=*/true) {}

 private:
  void ComputeWithRows(OpKernelContext* ctx, EmbeddingTable& table) override {
    const Tensor& keys = ctx->input(1);
    const Tensor& fallback = ctx->input(2);
    const int64_t fallback_size = fallback.NumElements();
    OP_REQUIRES(ctx, fallback_size == 1 || fallback_size == table.dim(),
                InvalidArgument("DesEmbeddingTableFind: default_value must be a scalar or "
                                "have dim=", table.dim(), " values, got shape ",
                                fallback.shape().DebugString()));
    std::vector<float> default_row(table.dim(), fallback.flat<float>()(0));
    if (fallback_size > 1) {
      std::copy_n(fallback.flat<float>().data(), table.dim(), default_row.begin());
    }
    Tensor* values = nullptr;
    Tensor* found = nullptr;
    OP_REQUIRES_OK(ctx, AllocateRows(ctx, 0, keys, table.dim(), &values));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, keys.shape(), &found));
    const int64_t n = keys.NumElements();
    table.Find(keys.flat<int64_t>().data(), n, default_row.data(),
               values->flat<float>().data(), found->flat<bool>().data(),
               StripeParallelFor(ctx, n));
  }
};

class ApplyGradientsOp : public TableKernel {
 public:
  explicit ApplyGradientsOp(OpKernelConstruction* ctx) : TableKernel(ctx) {
    OP_REQUIRES_OK(ctx, CheckKeysAreInt64(ctx, "DesEmbeddingTableApplyGradients"));
  }

 private:
  void ComputeWithTable(OpKernelContext* ctx, EmbeddingTable& table) override {
    const Tensor& keys = ctx->input(1);
    const Tensor& grads = ctx->input(2);
    const Tensor& step = ctx->input(3);
    const Tensor& learning_rate = ctx->input(4);
    const int64_t n = keys.NumElements();
    OP_REQUIRES(ctx, grads.dims() == 2 && grads.dim_size(0) == n &&
                         grads.dim_size(1) == table.dim(),
                InvalidArgument("DesEmbeddingTableApplyGradients: gradients must have "
                                "shape [len(keys), dim] = [", n, ", ", table.dim(),
                                "], got ", grads.shape().DebugString()));
    OP_REQUIRES(ctx, step.NumElements() == 1 && learning_rate.NumElements() == 1,
                InvalidArgument("DesEmbeddingTableApplyGradients: step and "
                                "learning_rate must be scalars"));
    int64_t updated_rows = 0;
    const std::string error = table.ApplyGradients(
        keys.flat<int64_t>().data(), n, grads.flat<float>().data(),
        step.flat<int64_t>()(0), learning_rate.flat<float>()(0), StripeParallelFor(ctx, n),
        &updated_rows);
    OP_REQUIRES(ctx, error.empty(),
                InvalidArgument("DesEmbeddingTableApplyGradients: ", error));
    Tensor* updated = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({}), &updated));
    updated->scalar<int64_t>()() = updated_rows;
  }
};

// Reports one int64 statistic of the table (its size, its memory).
template <int64_t (EmbeddingTable::*Statistic)() const>
class TableStatisticOp : public TableKernel {
 public:
  using TableKernel::TableKernel;

 private:
  void ComputeWithTable(OpKernelContext* ctx, EmbeddingTable& table) override {
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({}), &out));
    out->scalar<int64_t>()() = (table.*Statistic)();
  }
};

class ExportOp : public DimKernel {
 public:
  explicit ExportOp(OpKernelConstruction* ctx)
      : DimKernel(ctx, "DesEmbeddingTableExport", /*takes_keys=*/false) {}

 private:
  void ComputeWithRows(OpKernelContext* ctx, EmbeddingTable& table) override {
    const TableRows rows = table.Export();
    const int64_t n = static_cast<int64_t>(rows.keys.size());
    const int dim = table.dim();
    Tensor *keys, *values, *slots, *meta;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({n}), &keys));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({n, dim}), &values));
    OP_REQUIRES_OK(ctx,
                   ctx->allocate_output(2, TensorShape({n, table.num_slots(), dim}), &slots));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({n, 3}), &meta));
    std::copy(rows.keys.begin(), rows.keys.end(), keys->flat<int64_t>().data());
    std::copy(rows.values.begin(), rows.values.end(), values->flat<float>().data());
    std::copy(rows.slots.begin(), rows.slots.end(), slots->flat<float>().data());
    auto meta_matrix = meta->matrix<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      meta_matrix(i, 0) = rows.meta[i].frequency;
      meta_matrix(i, 1) = rows.meta[i].update_count;
      meta_matrix(i, 2) = rows.meta[i].last_step;
    }
  }
};

class ImportOp : public TableKernel {
 public:
  explicit ImportOp(OpKernelConstruction* ctx) : TableKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("clear_first", &clear_first_));
  }

 private:
  void ComputeWithTable(OpKernelContext* ctx, EmbeddingTable& table) override {
    const Tensor& keys = ctx->input(1);
    const Tensor& values = ctx->input(2);
    const Tensor& slots = ctx->input(3);
    const Tensor& meta = ctx->input(4);
    const int64_t n = keys.NumElements();
    const int dim = table.dim();
    const auto shape_error = [&](const char* what, const Tensor& t, const std::string& want) {
      return InvalidArgument("DesEmbeddingTableImport: ", what, " must have shape ", want,
                             " for ", n, " keys into a table of dim ", dim, " with ",
                             table.num_slots(), " optimizer slots, got ",
                             t.shape().DebugString());
    };
    OP_REQUIRES(ctx, keys.dims() == 1, shape_error("keys", keys, "[n]"));
    OP_REQUIRES(ctx, values.dims() == 2 && values.dim_size(0) == n && values.dim_size(1) == dim,
                shape_error("values", values, "[n, dim]"));
    OP_REQUIRES(ctx, slots.dims() == 3 && slots.dim_size(0) == n &&
                         slots.dim_size(1) == table.num_slots() && slots.dim_size(2) == dim,
                shape_error("slots", slots, "[n, num_slots, dim]"));
    OP_REQUIRES(ctx, meta.dims() == 2 && meta.dim_size(0) == n && meta.dim_size(1) == 3,
                shape_error("metadata", meta, "[n, 3]"));
    TableRows rows;
    rows.keys.assign(keys.flat<int64_t>().data(), keys.flat<int64_t>().data() + n);
    rows.values.assign(values.flat<float>().data(), values.flat<float>().data() + n * dim);
    rows.slots.assign(slots.flat<float>().data(),
                      slots.flat<float>().data() + slots.NumElements());
    const auto meta_matrix = meta.matrix<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      OP_REQUIRES(ctx, meta_matrix(i, 0) >= 0 && meta_matrix(i, 0) <= UINT32_MAX &&
                           meta_matrix(i, 1) >= 0 && meta_matrix(i, 1) <= UINT32_MAX,
                  InvalidArgument("DesEmbeddingTableImport: metadata row ", i,
                                  " has a frequency or update count outside [0, 2^32)"));
      rows.meta.push_back(RowMeta{static_cast<uint32_t>(meta_matrix(i, 0)),
                                  static_cast<uint32_t>(meta_matrix(i, 1)),
                                  meta_matrix(i, 2)});
    }
    table.Import(rows, clear_first_);
  }
  bool clear_first_;
};

// Shared output step of Remove and Evict: the removed keys as a vector.
void OutputKeys(OpKernelContext* ctx, const std::vector<int64_t>& keys) {
  Tensor* out = nullptr;
  OP_REQUIRES_OK(ctx, ctx->allocate_output(
                          0, TensorShape({static_cast<int64_t>(keys.size())}), &out));
  std::copy(keys.begin(), keys.end(), out->flat<int64_t>().data());
}

class RemoveOp : public TableKernel {
 public:
  explicit RemoveOp(OpKernelConstruction* ctx) : TableKernel(ctx) {
    OP_REQUIRES_OK(ctx, CheckKeysAreInt64(ctx, "DesEmbeddingTableRemove"));
  }

 private:
  void ComputeWithTable(OpKernelContext* ctx, EmbeddingTable& table) override {
    const Tensor& keys = ctx->input(1);
    OutputKeys(ctx, table.Remove(keys.flat<int64_t>().data(), keys.NumElements()));
  }
};

class EvictOp : public TableKernel {
 public:
  explicit EvictOp(OpKernelConstruction* ctx) : TableKernel(ctx) {
    std::string policy;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("policy", &policy));
    policy_ = policy == "min_frequency" ? EvictionPolicy::kMinFrequency
              : policy == "max_age"     ? EvictionPolicy::kMaxAge
                                        : EvictionPolicy::kRowBudget;
  }

 private:
  void ComputeWithTable(OpKernelContext* ctx, EmbeddingTable& table) override {
    const Tensor& threshold = ctx->input(1);
    OP_REQUIRES(ctx, threshold.NumElements() == 1 && threshold.flat<int64_t>()(0) >= 0,
                InvalidArgument("DesEmbeddingTableEvict: threshold must be a scalar >= 0, "
                                "got ", threshold.DebugString()));
    OutputKeys(ctx, table.Evict(policy_, threshold.flat<int64_t>()(0)));
  }
  EvictionPolicy policy_;
};

#define DES_REGISTER_CPU(name, kernel) \
  REGISTER_KERNEL_BUILDER(Name(name).Device(DEVICE_CPU), kernel)

DES_REGISTER_CPU("DesEmbeddingTable", EmbeddingTableOp);
DES_REGISTER_CPU("DesEmbeddingTableLookup", LookupOp);
DES_REGISTER_CPU("DesEmbeddingTableFind", FindOp);
DES_REGISTER_CPU("DesEmbeddingTableApplyGradients", ApplyGradientsOp);
DES_REGISTER_CPU("DesEmbeddingTableSize", TableStatisticOp<&EmbeddingTable::Size>);
DES_REGISTER_CPU("DesEmbeddingTableMemoryBytes",
                 TableStatisticOp<&EmbeddingTable::MemoryBytes>);
DES_REGISTER_CPU("DesEmbeddingTableExport", ExportOp);
DES_REGISTER_CPU("DesEmbeddingTableImport", ImportOp);
DES_REGISTER_CPU("DesEmbeddingTableRemove", RemoveOp);
DES_REGISTER_CPU("DesEmbeddingTableEvict", EvictOp);

}  // namespace des
