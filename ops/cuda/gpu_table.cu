// GPU table kernels and their host orchestration (see gpu_table.h).
//
// LookupOrInsert runs two kernels: ClaimKernel (one thread per key) finds or
// claims each key's slot; a thread that claims a slot takes a row id from the
// row counter and publishes it in the slot. Its result per key is a "ref": the
// row id, tagged kNewBit for the claiming thread, or kPendingBit + slot when
// another thread claimed the key in this same kernel and its row id was not
// visible yet. LookupGatherKernel (one thread group per key) resolves pending
// refs (the row ids are all published by then), writes the initial row of
// every claimed key into the arena, and copies rows out. Rows inserted by this
// call (row id >= size before the call) are output from the initializer
// itself, never read back from the arena, so no thread reads a row another
// thread of the same kernel is writing.
#include "gpu_table.h"

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_run_length_encode.cuh>
#include <cub/device/device_scan.cuh>

#include <algorithm>
#include <cmath>

#include "cuda_status.h"
#include "device_algorithms.cuh"
#include "gpu_table_index.cuh"
#include "row_groups.cuh"

namespace des {
namespace gpu {
namespace {

__device__ __forceinline__ void CountLookup(RowMeta* meta) {
  if (atomicAdd(&meta->frequency, 1u) == 0xffffffffu) atomicExch(&meta->frequency, 0xffffffffu);
}

// Lanes of the calling thread's group, for __syncwarp.
__device__ __forceinline__ unsigned GroupMask(int lanes) {
  const unsigned base = (threadIdx.x % 32) / lanes * lanes;
  return (lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1)) << base;
}

__global__ void FillIndexKernel(IndexSlot* slots, int64_t count) {
  const int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s < count) slots[s] = IndexSlot{kEmptyKey, kNoRow, 0};
}

// Inserts the keys of the old index into the new one, leaving out those of
// dead rows and renumbering rows >= new_size by moved_to (when dead is given);
// INT64_MIN's slot (the last) keeps its place.
__global__ void RehashKernel(const IndexSlot* old_slots, int64_t old_capacity,
                             const uint8_t* dead, int64_t new_size, const uint32_t* moved_to,
                             IndexView index) {
  const int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s > old_capacity) return;
  const IndexSlot slot = old_slots[s];
  if (!Occupied(slot, s, old_capacity) || (dead != nullptr && dead[slot.row])) return;
  const uint32_t row =
      dead != nullptr && slot.row >= new_size ? moved_to[slot.row - new_size] : slot.row;
  if (s == old_capacity) {
    index.slots[index.mask + 1] = IndexSlot{slot.key, row, 0};
  } else {
    index.slots[FindOrClaim(index, static_cast<int64_t>(slot.key)).slot].row = row;
  }
}

__global__ void ClaimKernel(const int64_t* keys, int64_t n, const int64_t* n_device,
                            const uint8_t* mask, IndexView index, ArenaView arena,
                            unsigned long long* row_counter, int64_t current_step,
                            uint64_t* refs) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t count = n_device != nullptr ? *n_device : n;
  if (i >= count) return;
  if (mask != nullptr && mask[i] == 0) {
    refs[i] = kSkipRef;
    return;
  }
  const Claim claim = FindOrClaim(index, keys[i]);
  if (claim.claimed) {
    const uint32_t row = static_cast<uint32_t>(atomicAdd(row_counter, 1ULL));
    *arena.Meta(row) = RowMeta{0, 0, current_step};
    *reinterpret_cast<volatile uint32_t*>(&index.slots[claim.slot].row) = row;
    refs[i] = kNewBit | row;
  } else {
    const uint32_t row = LoadRow(&index.slots[claim.slot]);
    refs[i] = row >= kClaimedRow ? (kPendingBit | claim.slot) : row;
  }
}

// Initial values of columns [column, column + V) of a row, and writes of its
// optimizer slots' initial values when `write_slots`.
struct RowInit {
  Initializer initializer;
  OptimizerConfig optimizer;
  const float* quantiles;
  int dim;
};

template <int V>
__device__ __forceinline__ Floats<V> InitialFloats(const RowInit& init, uint64_t row_hash,
                                                   int column) {
  Floats<V> f;
#pragma unroll
  for (int k = 0; k < V; ++k) {
    f.v[k] = InitialValue(init.initializer, row_hash, column + k, init.quantiles);
  }
  return f;
}

template <int V>
__device__ __forceinline__ void WriteInitialSlots(const RowInit& init, float* row, int column) {
  const int num_slots = init.optimizer.NumSlots();
  for (int s = 0; s < num_slots; ++s) {
    Floats<V> f;
#pragma unroll
    for (int k = 0; k < V; ++k) f.v[k] = init.optimizer.SlotInitialValue(s);
    StoreFloats<V>(row + init.dim * (1 + s) + column, f);
  }
}

template <int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    LookupGatherKernel(const int64_t* __restrict__ keys, int64_t n, const uint64_t* refs,
                       IndexView index, ArenaView arena, RowInit init, uint64_t seed,
                       int64_t size_before, int lanes, float* __restrict__ values) {
  const GroupThread gt = ThisGroupThread(lanes);
  if (gt.group >= n) return;
  const uint64_t ref = refs[gt.group];
  const uint32_t row = ResolveRow(ref, index);
  const bool claimed = (ref & (kPendingBit | kNewBit)) == kNewBit;
  const bool fresh = static_cast<int64_t>(row) >= size_before;
  const uint64_t row_hash = fresh ? InitialRowHash(seed, keys[gt.group]) : 0;
  float* arena_row = arena.Row(row);
  float* out = values + gt.group * init.dim;
  for (int column = gt.lane * V; column < init.dim; column += lanes * V) {
    if (fresh) {
      const Floats<V> f = InitialFloats<V>(init, row_hash, column);
      if (claimed) {
        StoreFloats<V>(arena_row + column, f);
        WriteInitialSlots<V>(init, arena_row, column);
      }
      StoreFloats<V>(out + column, f);
    } else {
      StoreFloats<V>(out + column, LoadFloats<V>(arena_row + column));
    }
  }
  if (gt.lane == 0) CountLookup(arena.Meta(row));
}

template <int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    FindKernel(const int64_t* __restrict__ keys, int64_t n, IndexView index, ArenaView arena,
               int dim, const float* __restrict__ default_values, int default_size, int lanes,
               float* __restrict__ values, bool* __restrict__ found) {
  const GroupThread gt = ThisGroupThread(lanes);
  if (gt.group >= n) return;
  const int64_t slot = FindSlot(index, keys[gt.group]);
  const float* row = slot >= 0 ? arena.Row(index.slots[slot].row) : nullptr;
  float* out = values + gt.group * dim;
  for (int column = gt.lane * V; column < dim; column += lanes * V) {
    Floats<V> f;
    if (row != nullptr) {
      f = LoadFloats<V>(row + column);
    } else {
#pragma unroll
      for (int k = 0; k < V; ++k) f.v[k] = default_values[default_size == 1 ? 0 : column + k];
    }
    StoreFloats<V>(out + column, f);
  }
  if (gt.lane == 0) found[gt.group] = row != nullptr;
}

__global__ void FirstNonFiniteKernel(const float* values, int64_t count,
                                     unsigned long long* first) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count && !isfinite(values[i])) atomicMin(first, static_cast<unsigned long long>(i));
}

// sums[u] = gradient rows of run u (sorted order = input order) added in order;
// mask[u] = the sum is finite; counts the finite runs.
template <int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    SumRunsKernel(const float* __restrict__ grads, int dim, const int32_t* __restrict__ order,
                  const int32_t* __restrict__ run_starts, const int32_t* __restrict__ run_counts,
                  const int64_t* num_runs, int lanes, float* __restrict__ sums,
                  uint8_t* __restrict__ mask, unsigned long long* finite_runs) {
  const GroupThread gt = ThisGroupThread(lanes);
  const bool active = gt.group < *num_runs;
  const int64_t begin = active ? run_starts[gt.group] : 0;
  const int64_t end = active ? begin + run_counts[gt.group] : 0;
  bool finite = true;
  for (int tile = 0; tile < dim; tile += lanes * V) {
    const int column = tile + gt.lane * V;
    if (!active || column >= dim) continue;
    Floats<V> acc = LoadFloatsReadOnly<V>(grads + static_cast<int64_t>(order[begin]) * dim + column);
    for (int64_t t = begin + 1; t < end; ++t) {
      const Floats<V> g = LoadFloatsReadOnly<V>(grads + static_cast<int64_t>(order[t]) * dim + column);
#pragma unroll
      for (int k = 0; k < V; ++k) acc.v[k] += g.v[k];
    }
#pragma unroll
    for (int k = 0; k < V; ++k) finite = finite && isfinite(acc.v[k]);
    StoreFloats<V>(sums + gt.group * dim + column, acc);
  }
  const bool all_finite = !GroupAny(!finite, lanes);
  if (active && gt.lane == 0) {
    mask[gt.group] = all_finite ? 1 : 0;
    if (all_finite) atomicAdd(finite_runs, 1ULL);
  }
}

template <int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    UpdateKernel(const int64_t* __restrict__ keys, const int64_t* num_keys, const uint64_t* refs,
                 const float* __restrict__ sums, ArenaView arena, RowInit init, uint64_t seed,
                 float learning_rate, int64_t step, int lanes) {
  const GroupThread gt = ThisGroupThread(lanes);
  if (gt.group >= *num_keys) return;
  const uint64_t ref = refs[gt.group];
  if (ref == kSkipRef) return;  // non-finite sum: row untouched
  const uint32_t row = static_cast<uint32_t>(ref);
  const bool fresh = (ref & kNewBit) != 0;
  RowMeta* meta = arena.Meta(row);
  const uint32_t count = meta->update_count;
  const uint32_t new_count = count == 0xffffffffu ? count : count + 1;
  __syncwarp(GroupMask(lanes));  // every lane has read the count before lane 0 writes it
  const RowUpdate update = PrepareRowUpdate(init.optimizer, learning_rate, new_count);
  const uint64_t row_hash = fresh ? InitialRowHash(seed, keys[gt.group]) : 0;
  const int num_slots = init.optimizer.NumSlots();
  const int dim = init.dim;
  float* values = arena.Row(row);
  for (int column = gt.lane * V; column < dim; column += lanes * V) {
    Floats<V> v, s0, s1;
    if (fresh) {
      v = InitialFloats<V>(init, row_hash, column);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        s0.v[k] = init.optimizer.SlotInitialValue(0);
        s1.v[k] = init.optimizer.SlotInitialValue(1);
      }
    } else {
      v = LoadFloats<V>(values + column);
      if (num_slots > 0) s0 = LoadFloats<V>(values + dim + column);
      if (num_slots > 1) s1 = LoadFloats<V>(values + 2 * dim + column);
    }
    const Floats<V> g = LoadFloatsReadOnly<V>(sums + gt.group * dim + column);
#pragma unroll
    for (int k = 0; k < V; ++k) UpdateColumn(init.optimizer, update, g.v[k], &v.v[k], &s0.v[k], &s1.v[k]);
    StoreFloats<V>(values + column, v);
    if (num_slots > 0) StoreFloats<V>(values + dim + column, s0);
    if (num_slots > 1) StoreFloats<V>(values + 2 * dim + column, s1);
  }
  if (gt.lane == 0) {
    meta->update_count = new_count;
    meta->last_step = step;
  }
}

}  // namespace

void LaunchFillIndex(IndexSlot* slots, int64_t count, cudaStream_t stream) {
  FillIndexKernel<<<ThreadBlocks(count), kThreadsPerBlock, 0, stream>>>(slots, count);
}

void LaunchRehash(const IndexSlot* old_slots, int64_t old_capacity, const uint8_t* dead,
                  int64_t new_size, const uint32_t* moved_to, IndexView index,
                  cudaStream_t stream) {
  RehashKernel<<<ThreadBlocks(old_capacity + 1), kThreadsPerBlock, 0, stream>>>(
      old_slots, old_capacity, dead, new_size, moved_to, index);
}

GpuEmbeddingTable::GpuEmbeddingTable(const TableConfig& config, DeviceAllocator* allocator)
    : config_(config),
      row_floats_(config.dim * (1 + config.optimizer.NumSlots())),
      allocator_(allocator) {}

GpuEmbeddingTable::~GpuEmbeddingTable() {
  if (host_readback_ != nullptr) cudaFreeHost(host_readback_);
}

std::string GpuEmbeddingTable::Create(const TableConfig& config, DeviceAllocator* allocator,
                                      cudaStream_t stream,
                                      std::unique_ptr<GpuEmbeddingTable>* out) {
  if (config.dim <= 0) return "GPU table: dim must be > 0, got " + std::to_string(config.dim);
  std::unique_ptr<GpuEmbeddingTable> table(new GpuEmbeddingTable(config, allocator));
  DES_CUDA_RETURN_IF_ERROR(cudaMallocHost(&table->host_readback_, 2 * sizeof(unsigned long long)));
  DES_RETURN_IF_ERROR(table->row_counter_.Allocate(allocator, 2, stream, "GPU table counters"));
  DES_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(table->row_counter_.data(), 0,
                                           table->row_counter_.bytes(), stream));
  const auto& q = internal::Quantiles().values;
  DES_RETURN_IF_ERROR(table->quantiles_.Allocate(allocator, q.size(), stream, "quantile table"));
  DES_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(table->quantiles_.data(), q.data(),
                                           q.size() * sizeof(float), cudaMemcpyHostToDevice,
                                           stream));
  int64_t capacity = 16;
  while (capacity * kMaxLoad < config.capacity_hint) capacity *= 2;
  DES_RETURN_IF_ERROR(table->RehashIndex(capacity, stream));
  DES_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));  // `q` and the table are ready
  *out = std::move(table);
  return "";
}

IndexView GpuEmbeddingTable::Index() const {
  return IndexView{index_.data(), static_cast<uint64_t>(capacity_ - 1)};
}

ArenaView GpuEmbeddingTable::Arena() const {
  return ArenaView{block_table_.data(), meta_block_table_.data(), kBlockRowsLog2,
                   (1u << kBlockRowsLog2) - 1, row_floats_};
}

int64_t GpuEmbeddingTable::MemoryBytes() const {
  const int64_t block_rows = int64_t{1} << kBlockRowsLog2;
  return static_cast<int64_t>(index_.bytes() + block_table_.bytes() +
                              meta_block_table_.bytes() + quantiles_.bytes()) +
         static_cast<int64_t>(blocks_.size()) * block_rows *
             (row_floats_ * static_cast<int64_t>(sizeof(float)) + sizeof(RowMeta));
}

std::string GpuEmbeddingTable::RehashIndex(int64_t capacity, cudaStream_t stream) {
  if (capacity > (int64_t{1} << 33)) {
    return "GPU table: index capacity " + std::to_string(capacity) + " exceeds 2^33 slots";
  }
  DeviceArray<IndexSlot> index;
  DES_RETURN_IF_ERROR(index.Allocate(allocator_, capacity + 1, stream, "GPU table index"));
  LaunchFillIndex(index.data(), capacity + 1, stream);
  if (index_.size() > 0) {
    LaunchRehash(index_.data(), capacity_, nullptr, 0, nullptr,
                 IndexView{index.data(), static_cast<uint64_t>(capacity - 1)}, stream);
  }
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  index_ = std::move(index);
  capacity_ = capacity;
  return "";
}

std::string GpuEmbeddingTable::Reserve(int64_t incoming, cudaStream_t stream) {
  const int64_t needed = size_ + incoming;
  if (needed >= (int64_t{1} << 31)) {
    return "GPU table: " + std::to_string(needed) + " rows would exceed the 2^31-row limit";
  }
  int64_t capacity = capacity_;
  while (capacity * kMaxLoad < needed) capacity *= 2;
  if (capacity != capacity_) DES_RETURN_IF_ERROR(RehashIndex(capacity, stream));
  const int64_t block_rows = int64_t{1} << kBlockRowsLog2;
  const size_t blocks_needed = static_cast<size_t>((needed + block_rows - 1) / block_rows);
  if (blocks_needed <= blocks_.size() && block_table_.size() > 0) return "";
  while (blocks_.size() < blocks_needed) {
    DeviceArray<float> block;
    DeviceArray<RowMeta> meta;
    DES_RETURN_IF_ERROR(block.Allocate(allocator_, block_rows * row_floats_, stream,
                                       "GPU table row block"));
    DES_RETURN_IF_ERROR(meta.Allocate(allocator_, block_rows, stream, "GPU table metadata block"));
    blocks_.push_back(std::move(block));
    meta_blocks_.push_back(std::move(meta));
  }
  return UploadBlockTables(stream);
}

std::string GpuEmbeddingTable::UploadBlockTables(cudaStream_t stream) {
  std::vector<float*> block_ptrs;
  std::vector<RowMeta*> meta_ptrs;
  for (size_t b = 0; b < blocks_.size(); ++b) {
    block_ptrs.push_back(blocks_[b].data());
    meta_ptrs.push_back(meta_blocks_[b].data());
  }
  const size_t table_size = std::max<size_t>(1, block_ptrs.size());
  DES_RETURN_IF_ERROR(block_table_.Allocate(allocator_, table_size, stream, "block table"));
  DES_RETURN_IF_ERROR(meta_block_table_.Allocate(allocator_, table_size, stream, "block table"));
  if (!block_ptrs.empty()) {
    DES_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(block_table_.data(), block_ptrs.data(),
                                             block_ptrs.size() * sizeof(float*),
                                             cudaMemcpyHostToDevice, stream));
    DES_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(meta_block_table_.data(), meta_ptrs.data(),
                                             meta_ptrs.size() * sizeof(RowMeta*),
                                             cudaMemcpyHostToDevice, stream));
    // The pointer vectors are pageable and die here: wait for the copies.
    DES_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  }
  return "";
}

std::string GpuEmbeddingTable::ClaimKeys(const int64_t* keys, int64_t n, const int64_t* n_device,
                                         const uint8_t* mask, uint64_t* refs,
                                         cudaStream_t stream) {
  ClaimKernel<<<ThreadBlocks(n), kThreadsPerBlock, 0, stream>>>(
      keys, n, n_device, mask, Index(), Arena(), row_counter_.data(), current_step_, refs);
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

std::string GpuEmbeddingTable::SyncSize(cudaStream_t stream, int64_t* extra_out,
                                        const unsigned long long* extra_device) {
  DES_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host_readback_, row_counter_.data(),
                                           sizeof(unsigned long long), cudaMemcpyDeviceToHost,
                                           stream));
  if (extra_device != nullptr) {
    DES_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host_readback_ + 1, extra_device,
                                             sizeof(unsigned long long), cudaMemcpyDeviceToHost,
                                             stream));
  }
  DES_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  size_ = static_cast<int64_t>(host_readback_[0]);
  if (extra_out != nullptr) *extra_out = static_cast<int64_t>(host_readback_[1]);
  return "";
}

std::string GpuEmbeddingTable::LookupOrInsert(const int64_t* keys, int64_t n, float* values,
                                              cudaStream_t stream) {
  if (n == 0) return "";
  if (n >= (int64_t{1} << 31)) return "GPU table: at most 2^31 - 1 keys per call";
  DES_RETURN_IF_ERROR(Reserve(n, stream));
  DeviceArray<uint64_t> refs;
  DES_RETURN_IF_ERROR(refs.Allocate(allocator_, n, stream, "lookup refs"));
  DES_RETURN_IF_ERROR(ClaimKeys(keys, n, nullptr, nullptr, refs.data(), stream));
  const RowGroups groups = ChooseRowGroups(dim());
  const RowInit init{config_.initializer, config_.optimizer, quantiles_.data(), dim()};
  const ArenaView arena = Arena();
  DES_LAUNCH_BY_VEC(LookupGatherKernel, groups, n, stream, keys, n, refs.data(),
                    Index(), arena,
                    init, config_.seed, size_, groups.lanes, values);
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return SyncSize(stream);
}

std::string GpuEmbeddingTable::Find(const int64_t* keys, int64_t n, const float* default_values,
                                    int default_size, float* values, bool* found,
                                    cudaStream_t stream) const {
  if (n == 0) return "";
  if (default_size != 1 && default_size != dim()) {
    return "GPU table Find: default_value must have 1 or dim=" + std::to_string(dim()) +
           " values, got " + std::to_string(default_size);
  }
  const RowGroups groups = ChooseRowGroups(dim());
  const ArenaView arena = Arena();
  DES_LAUNCH_BY_VEC(FindKernel, groups, n, stream, keys, n,
                    Index(), arena,
                    dim(), default_values, default_size, groups.lanes, values, found);
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

std::string GpuEmbeddingTable::ApplyGradients(const int64_t* keys, int64_t n, const float* grads,
                                              int64_t step, float learning_rate,
                                              cudaStream_t stream, int64_t* updated_rows) {
  *updated_rows = 0;
  if (!(learning_rate > 0.0f) || !std::isfinite(learning_rate)) {
    return "learning_rate must be finite and > 0, got " + std::to_string(learning_rate);
  }
  if (n == 0) {
    current_step_ = std::max(current_step_, step);
    return "";
  }
  if (n >= (int64_t{1} << 31)) return "GPU table: at most 2^31 - 1 keys per call";
  const int64_t count = n * dim();
  unsigned long long* scratch = row_counter_.data() + 1;
  if (config_.nonfinite == NonFinitePolicy::kError) {
    DES_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(scratch, 0xff, sizeof(*scratch), stream));
    FirstNonFiniteKernel<<<ThreadBlocks(count), kThreadsPerBlock, 0, stream>>>(grads, count,
                                                                               scratch);
    int64_t first_bad = 0;
    DES_RETURN_IF_ERROR(SyncSize(stream, &first_bad, scratch));
    if (first_bad != -1) {
      int64_t key = 0;
      DES_CUDA_RETURN_IF_ERROR(cudaMemcpy(&key, keys + first_bad / dim(), sizeof(key),
                                          cudaMemcpyDeviceToHost));
      return "gradient of key " + std::to_string(key) +
             " is not finite (NaN or Inf); no row was updated (use "
             "nonfinite_gradients='skip' to skip such keys instead)";
    }
  }
  DES_RETURN_IF_ERROR(Reserve(n, stream));
  current_step_ = std::max(current_step_, step);

  // Group duplicates: a stable radix sort by key keeps their input order.
  DeviceArray<int32_t> iota, order, run_counts, run_starts;
  DeviceArray<int64_t> sorted_keys, unique_keys, num_runs;
  DeviceArray<float> sums;
  DeviceArray<uint8_t> mask;
  DeviceArray<uint64_t> refs;
  DES_RETURN_IF_ERROR(iota.Allocate(allocator_, n, stream, "gradient order"));
  DES_RETURN_IF_ERROR(order.Allocate(allocator_, n, stream, "gradient order"));
  DES_RETURN_IF_ERROR(run_counts.Allocate(allocator_, n, stream, "duplicate counts"));
  DES_RETURN_IF_ERROR(run_starts.Allocate(allocator_, n, stream, "duplicate starts"));
  DES_RETURN_IF_ERROR(sorted_keys.Allocate(allocator_, n, stream, "sorted keys"));
  DES_RETURN_IF_ERROR(unique_keys.Allocate(allocator_, n, stream, "unique keys"));
  DES_RETURN_IF_ERROR(num_runs.Allocate(allocator_, 1, stream, "unique key count"));
  DES_RETURN_IF_ERROR(sums.Allocate(allocator_, count, stream, "summed gradients"));
  DES_RETURN_IF_ERROR(mask.Allocate(allocator_, n, stream, "finite mask"));
  DES_RETURN_IF_ERROR(refs.Allocate(allocator_, n, stream, "update refs"));
  DES_RETURN_IF_ERROR(Iota(iota.data(), n, stream));
  DES_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(run_counts.data(), 0, run_counts.bytes(), stream));
  const int items = static_cast<int>(n);
  size_t sort_bytes = 0, encode_bytes = 0, scan_bytes = 0;
  DES_CUDA_RETURN_IF_ERROR(cub::DeviceRadixSort::SortPairs(
      nullptr, sort_bytes, keys, sorted_keys.data(), iota.data(), order.data(), items, 0, 64,
      stream));
  DES_CUDA_RETURN_IF_ERROR(cub::DeviceRunLengthEncode::Encode(
      nullptr, encode_bytes, sorted_keys.data(), unique_keys.data(), run_counts.data(),
      num_runs.data(), items, stream));
  DES_CUDA_RETURN_IF_ERROR(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, run_counts.data(),
                                                         run_starts.data(), items, stream));
  DeviceArray<char> temp;
  const size_t temp_bytes = std::max({sort_bytes, encode_bytes, scan_bytes});
  DES_RETURN_IF_ERROR(temp.Allocate(allocator_, temp_bytes, stream, "sort scratch"));
  size_t bytes = temp_bytes;
  DES_CUDA_RETURN_IF_ERROR(cub::DeviceRadixSort::SortPairs(
      temp.data(), bytes, keys, sorted_keys.data(), iota.data(), order.data(), items, 0, 64,
      stream));
  bytes = temp_bytes;
  DES_CUDA_RETURN_IF_ERROR(cub::DeviceRunLengthEncode::Encode(
      temp.data(), bytes, sorted_keys.data(), unique_keys.data(), run_counts.data(),
      num_runs.data(), items, stream));
  bytes = temp_bytes;
  DES_CUDA_RETURN_IF_ERROR(cub::DeviceScan::ExclusiveSum(temp.data(), bytes, run_counts.data(),
                                                         run_starts.data(), items, stream));

  const RowGroups groups = ChooseRowGroups(dim());
  DES_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(scratch, 0, sizeof(*scratch), stream));
  DES_LAUNCH_BY_VEC(SumRunsKernel, groups, n, stream, grads, dim(), order.data(),
                    run_starts.data(), run_counts.data(), num_runs.data(), groups.lanes,
                    sums.data(), mask.data(), scratch);
  DES_RETURN_IF_ERROR(ClaimKeys(unique_keys.data(), n, num_runs.data(), mask.data(), refs.data(),
                                stream));
  const RowInit init{config_.initializer, config_.optimizer, quantiles_.data(), dim()};
  const ArenaView arena = Arena();
  DES_LAUNCH_BY_VEC(UpdateKernel, groups, n, stream, unique_keys.data(), num_runs.data(),
                    refs.data(), sums.data(), arena, init, config_.seed, learning_rate, step,
                    groups.lanes);
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return SyncSize(stream, updated_rows, scratch);
}

}  // namespace gpu
}  // namespace des
