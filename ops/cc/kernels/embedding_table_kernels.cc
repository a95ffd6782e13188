// CPU side of the embedding-table ops: DeviceTable<CPUDevice>, a ResourceBase
// over the TF-independent des::EmbeddingTable that runs it on TF's intra-op
// thread pool, and the CPU registrations of the kernels in
// embedding_table_kernels.h.
#include <algorithm>
#include <string>
#include <vector>

#include "embedding_table.h"
#include "embedding_table_kernels.h"
#include "tf_parallel_for.h"

namespace des {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernelContext;

template <>
class DeviceTable<CPUDevice> : public tensorflow::ResourceBase {
 public:
  explicit DeviceTable(const TableConfig& config) : table_(config) {}

  const TableConfig& config() const { return table_.config(); }
  int64_t Size() const { return table_.Size(); }
  int64_t MemoryBytes() const { return table_.MemoryBytes(); }
  std::string DebugString() const override {
    return "DesEmbeddingTable(dim=" + std::to_string(table_.dim()) +
           ", rows=" + std::to_string(table_.Size()) + ")";
  }
  int64_t MemoryUsed() const override { return table_.MemoryBytes(); }

  absl::Status Lookup(OpKernelContext* ctx, const int64_t* keys, int64_t n, float* values) {
    table_.LookupOrInsert(keys, n, values, StripeParallelFor(ctx, n));
    return absl::OkStatus();
  }

  absl::Status Find(OpKernelContext* ctx, const int64_t* keys, int64_t n,
                    const float* default_value, int default_size, float* values, bool* found) {
    std::vector<float> default_row(table_.dim(), default_value[0]);
    if (default_size > 1) std::copy_n(default_value, table_.dim(), default_row.begin());
    table_.Find(keys, n, default_row.data(), values, found, StripeParallelFor(ctx, n));
    return absl::OkStatus();
  }

  absl::Status ApplyGradients(OpKernelContext* ctx, const int64_t* keys, int64_t n,
                              const float* grads, int64_t step, float learning_rate,
                              int64_t* updated_rows) {
    return CoreStatus(table_.ApplyGradients(keys, n, grads, step, learning_rate,
                                            StripeParallelFor(ctx, n), updated_rows));
  }

  absl::Status Export(OpKernelContext* ctx) {
    const TableRows rows = table_.Export();
    const int64_t n = static_cast<int64_t>(rows.keys.size());
    ExportOutputs out;
    TF_RETURN_IF_ERROR(AllocateExportOutputs(ctx, n, config(), &out));
    std::copy(rows.keys.begin(), rows.keys.end(), out.keys);
    std::copy(rows.values.begin(), rows.values.end(), out.values);
    std::copy(rows.slots.begin(), rows.slots.end(), out.slots);
    for (int64_t i = 0; i < n; ++i) {
      out.metadata[i * 3 + 0] = rows.meta[i].frequency;
      out.metadata[i * 3 + 1] = rows.meta[i].update_count;
      out.metadata[i * 3 + 2] = rows.meta[i].last_step;
    }
    return absl::OkStatus();
  }

  absl::Status Import(OpKernelContext*, const int64_t* keys, int64_t n, const float* values,
                      const float* slots, const std::vector<RowMeta>& metadata,
                      bool clear_first) {
    const int64_t slot_floats = int64_t{table_.num_slots()} * table_.dim();
    TableRows rows;
    rows.keys.assign(keys, keys + n);
    rows.values.assign(values, values + n * table_.dim());
    rows.slots.assign(slots, slots + n * slot_floats);
    rows.meta = metadata;
    table_.Import(rows, clear_first);
    return absl::OkStatus();
  }

  absl::Status Remove(OpKernelContext* ctx, const int64_t* keys, int64_t n) {
    return OutputKeys(ctx, table_.Remove(keys, n));
  }

  absl::Status Evict(OpKernelContext* ctx, EvictionPolicy policy, int64_t threshold) {
    return OutputKeys(ctx, table_.Evict(policy, threshold));
  }

 private:
  // The table's work units are its stripes: ~100 cycles per key, spread over them.
  static ParallelFor StripeParallelFor(OpKernelContext* ctx, int64_t keys) {
    return TfParallelFor(ctx, 100 * (keys / EmbeddingTable::kNumStripes + 1));
  }

  static absl::Status OutputKeys(OpKernelContext* ctx, const std::vector<int64_t>& keys) {
    int64_t* out = nullptr;
    TF_RETURN_IF_ERROR(AllocateKeysOutput(ctx, static_cast<int64_t>(keys.size()), &out));
    std::copy(keys.begin(), keys.end(), out);
    return absl::OkStatus();
  }

  EmbeddingTable table_;
};

using CpuTableSizeOp = TableStatisticOp<CPUDevice, &DeviceTable<CPUDevice>::Size>;
using CpuTableMemoryOp = TableStatisticOp<CPUDevice, &DeviceTable<CPUDevice>::MemoryBytes>;

#define DES_REGISTER_CPU(name, kernel) \
  REGISTER_KERNEL_BUILDER(Name(name).Device(DEVICE_CPU), kernel)

DES_REGISTER_CPU("DesEmbeddingTable", EmbeddingTableOp<CPUDevice>);
DES_REGISTER_CPU("DesEmbeddingTableLookup", LookupOp<CPUDevice>);
DES_REGISTER_CPU("DesEmbeddingTableFind", FindOp<CPUDevice>);
DES_REGISTER_CPU("DesEmbeddingTableApplyGradients", ApplyGradientsOp<CPUDevice>);
DES_REGISTER_CPU("DesEmbeddingTableSize", CpuTableSizeOp);
DES_REGISTER_CPU("DesEmbeddingTableMemoryBytes", CpuTableMemoryOp);
DES_REGISTER_CPU("DesEmbeddingTableExport", ExportOp<CPUDevice>);
DES_REGISTER_CPU("DesEmbeddingTableImport", ImportOp<CPUDevice>);
DES_REGISTER_CPU("DesEmbeddingTableRemove", RemoveOp<CPUDevice>);
DES_REGISTER_CPU("DesEmbeddingTableEvict", EvictOp<CPUDevice>);

}  // namespace des
