// A GPU int64 key -> embedding row table with in-table optimizer state: the
// device counterpart of ops/cc/kernels/embedding_table.h, built from the same
// TableConfig, initializer and optimizer formulas, so a row inserted or updated
// here holds what the CPU table would hold (bit for bit at insertion, to
// float rounding after updates).
//
// Layout: an open-addressing index of 16-byte slots (key, row id) with linear
// probing, claimed with atomicCAS on the key, plus a row arena of fixed-size
// device blocks holding [values(dim) | slots(num_slots * dim)] per row and a
// parallel RowMeta arena. Rows never move. A key equal to the index's empty
// marker (INT64_MIN) lives in one extra slot, so every int64 key is allowed.
//
// Capacity policy: GROW BY REHASH ON DEVICE. Before each call that may insert
// n keys, the index is rehashed (keys only, on the device) to the next power of
// two that keeps size + n <= capacity / 2, and arena blocks are added for
// size + n rows; an insert therefore never meets a full index. When the device
// cannot hold the larger index or arena, the call fails with an "out of GPU
// memory ..." message naming the bytes and changes nothing. Limits: < 2^31
// rows and < 2^31 keys per call.
//
// Determinism: values never depend on insertion order or thread timing (the
// initializer is a pure function of the key; gradients of duplicate keys are
// summed in input order after a stable sort). Row ids (arena placement) do
// depend on timing, which no output reveals: Export orders rows by key.
//
// Removal (Remove, Evict, Import's clear_first) keeps rows dense: the rows left
// above the new size move down into the holes and the index is rebuilt, so the
// arena holds exactly Size() rows and whole blocks above it are freed.
//
// Concurrency: calls must be serialised on one stream (the TF wrapper holds a
// mutex). Each call that can insert or remove ends with a stream sync to learn
// the new size.
// Host API, TF-independent; key / value / gradient pointers are device pointers.
#ifndef DES_TF_OPS_CUDA_GPU_TABLE_H_
#define DES_TF_OPS_CUDA_GPU_TABLE_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../cc/kernels/table_config.h"
#include "device_allocator.h"

namespace des {
namespace gpu {

struct IndexSlot;
struct IndexView;
struct ArenaView;

class GpuEmbeddingTable {
 public:
  static constexpr int kBlockRowsLog2 = 16;  // 65,536 rows per arena block
  static constexpr double kMaxLoad = 0.5;

  // Creates an empty table (index sized for config.capacity_hint rows).
  static std::string Create(const TableConfig& config, DeviceAllocator* allocator,
                            cudaStream_t stream, std::unique_ptr<GpuEmbeddingTable>* out);
  ~GpuEmbeddingTable();
  GpuEmbeddingTable(const GpuEmbeddingTable&) = delete;
  GpuEmbeddingTable& operator=(const GpuEmbeddingTable&) = delete;

  const TableConfig& config() const { return config_; }
  int dim() const { return config_.dim; }
  int num_slots() const { return config_.optimizer.NumSlots(); }
  int64_t Size() const { return size_; }
  int64_t IndexCapacity() const { return capacity_; }
  int64_t CurrentStep() const { return current_step_; }
  // Bytes held by the index, arena blocks, metadata and block tables.
  int64_t MemoryBytes() const;

  // values[i*dim..] = row of keys[i]; inserts missing keys with their initial
  // values; counts each occurrence in the row's frequency.
  std::string LookupOrInsert(const int64_t* keys, int64_t n, float* values,
                             cudaStream_t stream);

  // values[i*dim..] = row of keys[i], or the default row when absent (found[i]
  // = false). default_values holds 1 (broadcast) or dim floats. Changes nothing.
  std::string Find(const int64_t* keys, int64_t n, const float* default_values,
                   int default_size, float* values, bool* found, cudaStream_t stream) const;

  // Sums the gradient rows of duplicate keys in input order, then applies the
  // optimizer once per distinct key, inserting missing keys first; semantics,
  // error messages and the non-finite policy as EmbeddingTable::ApplyGradients.
  std::string ApplyGradients(const int64_t* keys, int64_t n, const float* grads, int64_t step,
                             float learning_rate, cudaStream_t stream, int64_t* updated_rows);

  // Every row ordered by key into caller-allocated device buffers of Size()
  // rows: keys [n], values [n, dim], slots [n, num_slots, dim], metadata [n, 3]
  // = (lookup frequency, update count, last update step).
  std::string Export(int64_t* keys, float* values, float* slots, int64_t* metadata,
                     cudaStream_t stream) const;

  // Inserts or overwrites n rows (values [n, dim], slots [n, num_slots, dim],
  // metadata [n] on the device), after removing every row when `clear_first`;
  // of duplicate keys the last wins, and the step clock advances to the newest
  // last_step, as EmbeddingTable::Import.
  std::string Import(const int64_t* keys, int64_t n, const float* values, const float* slots,
                     const RowMeta* metadata, bool clear_first, cudaStream_t stream);

  // Removes the given keys; writes those that were present, in order of first
  // occurrence, to `removed` (room for n keys) and their count to *removed_count.
  std::string Remove(const int64_t* keys, int64_t n, int64_t* removed, int64_t* removed_count,
                     cudaStream_t stream);

  // Removes the rows the policy selects (EmbeddingTable::Evict's selection);
  // writes their keys in ascending order to `evicted` (room for Size() keys)
  // and their count to *evicted_count.
  std::string Evict(EvictionPolicy policy, int64_t threshold, int64_t* evicted,
                    int64_t* evicted_count, cudaStream_t stream);

 private:
  GpuEmbeddingTable(const TableConfig& config, DeviceAllocator* allocator);

  // Device views of the index and the arena (gpu_table_index.cuh).
  IndexView Index() const;
  ArenaView Arena() const;
  // Grows the index and the arena so that `incoming` more rows fit.
  std::string Reserve(int64_t incoming, cudaStream_t stream);
  std::string RehashIndex(int64_t capacity, cudaStream_t stream);
  // Copies the block pointers to the device tables the kernels read.
  std::string UploadBlockTables(cudaStream_t stream);
  // Removes the rows whose dead[row] != 0 (count of them: `count`): moves the
  // live rows above the new size into the holes, rebuilds the index without
  // the dead keys, and frees the blocks above the new size.
  std::string DropRows(const uint8_t* dead, int64_t count, cudaStream_t stream);
  // Every key (ascending) and its row id into `keys` / `rows`, Size() of each.
  std::string SortedKeysAndRows(int64_t* keys, uint32_t* rows, cudaStream_t stream) const;
  // Keys of the rows Evict's policy selects, unordered, into `doomed`.
  std::string SelectEvictions(EvictionPolicy policy, int64_t threshold, int64_t* doomed,
                              int64_t* count, cudaStream_t stream);
  // Sets the device row counter and size_ to `size`.
  std::string SetSize(int64_t size, cudaStream_t stream);
  // Claims or finds keys (optionally only where mask[i] != 0; the count is
  // read from n_device when given): refs[i] as in gpu_table.cu.
  std::string ClaimKeys(const int64_t* keys, int64_t n, const int64_t* n_device,
                        const uint8_t* mask, uint64_t* refs, cudaStream_t stream);
  // Reads the row counter back (one sync) and updates size_.
  std::string SyncSize(cudaStream_t stream, int64_t* extra_out = nullptr,
                       const unsigned long long* extra_device = nullptr);

  const TableConfig config_;
  const int row_floats_;
  DeviceAllocator* const allocator_;
  int64_t size_ = 0;
  int64_t capacity_ = 0;  // index slots, a power of two (one more slot is kept for INT64_MIN)
  int64_t current_step_ = 0;
  DeviceArray<IndexSlot> index_;
  std::vector<DeviceArray<float>> blocks_;
  std::vector<DeviceArray<RowMeta>> meta_blocks_;
  DeviceArray<float*> block_table_;       // device copy of the block pointers
  DeviceArray<RowMeta*> meta_block_table_;
  DeviceArray<float> quantiles_;          // the truncated-normal table, on the device
  // [0] rows in use (== size: rows are kept dense), [1] a per-call result
  DeviceArray<unsigned long long> row_counter_;
  unsigned long long* host_readback_ = nullptr;  // pinned: row counter + one extra value
};

}  // namespace gpu
}  // namespace des

#endif  // DES_TF_OPS_CUDA_GPU_TABLE_H_
