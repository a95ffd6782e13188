// The GPU table's bulk row traffic besides training (see gpu_table.h): Export
// (every row, ordered by key), Import (rows in, the last of duplicate keys
// wins), Remove (keys out) and Evict (the CPU table's three policies, then
// Remove). Removal keeps the arena dense: DropRows moves the live rows above
// the new size into the holes the dead rows leave below it, rebuilds the index
// without the dead keys and frees the blocks above the new size.
#include <algorithm>
#include <limits>

#include "cuda_status.h"
#include "device_algorithms.cuh"
#include "gpu_table.h"
#include "gpu_table_index.cuh"
#include "row_groups.cuh"

namespace des {
namespace gpu {
namespace {

// Every occupied slot's key and row, in slot order (slot `capacity` is INT64_MIN's).
__global__ void CompactKernel(const IndexSlot* slots, int64_t capacity, int64_t* keys,
                              uint32_t* rows, unsigned long long* counter) {
  const int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s > capacity) return;
  const IndexSlot slot = slots[s];
  if (!Occupied(slot, s, capacity)) return;
  const unsigned long long at = atomicAdd(counter, 1ULL);
  keys[at] = static_cast<int64_t>(slot.key);
  rows[at] = slot.row;
}

template <int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    ExportGatherKernel(const uint32_t* rows, int64_t n, ArenaView arena, int dim, int num_slots,
                       int lanes, float* __restrict__ values, float* __restrict__ slots,
                       int64_t* __restrict__ metadata) {
  const GroupThread gt = ThisGroupThread(lanes);
  if (gt.group >= n) return;
  const float* row = arena.Row(rows[gt.group]);
  for (int column = gt.lane * V; column < dim; column += lanes * V) {
    StoreFloats<V>(values + gt.group * dim + column, LoadFloats<V>(row + column));
    for (int s = 0; s < num_slots; ++s) {
      StoreFloats<V>(slots + (gt.group * num_slots + s) * dim + column,
                     LoadFloats<V>(row + dim * (1 + s) + column));
    }
  }
  if (gt.lane == 0) {
    const RowMeta meta = *arena.Meta(rows[gt.group]);
    metadata[gt.group * 3 + 0] = meta.frequency;
    metadata[gt.group * 3 + 1] = meta.update_count;
    metadata[gt.group * 3 + 2] = meta.last_step;
  }
}

__global__ void FillKernel(int32_t* out, int64_t n, int32_t value) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = value;
}

__global__ void SetKernel(unsigned long long* out, unsigned long long value) { *out = value; }

// last[row] = the last input position that names the row.
__global__ void LastWriterKernel(const uint64_t* refs, int64_t n, IndexView index,
                                 int32_t* last) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) atomicMax(&last[ResolveRow(refs[i], index)], static_cast<int32_t>(i));
}

// Writes input row i into its arena row when i is the row's last writer, and
// raises *newest_step to its last_step.
template <int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    ImportRowsKernel(const uint64_t* refs, int64_t n, IndexView index, ArenaView arena,
                     const int32_t* last, const float* __restrict__ values,
                     const float* __restrict__ slots, const RowMeta* __restrict__ metadata,
                     int dim, int num_slots, int lanes, long long* newest_step) {
  const GroupThread gt = ThisGroupThread(lanes);
  if (gt.group >= n) return;
  const uint32_t row = ResolveRow(refs[gt.group], index);
  if (last[row] != gt.group) return;
  float* dest = arena.Row(row);
  for (int column = gt.lane * V; column < dim; column += lanes * V) {
    StoreFloats<V>(dest + column, LoadFloats<V>(values + gt.group * dim + column));
    for (int s = 0; s < num_slots; ++s) {
      StoreFloats<V>(dest + dim * (1 + s) + column,
                     LoadFloats<V>(slots + (gt.group * num_slots + s) * dim + column));
    }
  }
  if (gt.lane == 0) {
    *arena.Meta(row) = metadata[gt.group];
    atomicMax(newest_step, static_cast<long long>(metadata[gt.group].last_step));
  }
}

// rows[i] = the row of keys[i] or kNoRow; first[row] = its first position.
__global__ void FindRowsKernel(const int64_t* keys, int64_t n, IndexView index, uint32_t* rows,
                               int32_t* first) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t slot = FindSlot(index, keys[i]);
  rows[i] = slot < 0 ? kNoRow : index.slots[slot].row;
  if (slot >= 0) atomicMin(&first[rows[i]], static_cast<int32_t>(i));
}

// flags[i] = keys[i] is present and this is its first occurrence; marks its row dead.
__global__ void MarkRemovedKernel(const uint32_t* rows, const int32_t* first, int64_t n,
                                  uint8_t* flags, uint8_t* dead) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  flags[i] = rows[i] != kNoRow && first[rows[i]] == i;
  if (flags[i]) dead[rows[i]] = 1;
}

// holes: dead rows below new_size; movers: live rows from new_size up.
__global__ void HolesAndMoversKernel(const uint8_t* dead, int64_t size, int64_t new_size,
                                     uint32_t* holes, uint32_t* movers,
                                     unsigned long long* counts) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= size) return;
  if (r < new_size && dead[r]) holes[atomicAdd(&counts[0], 1ULL)] = static_cast<uint32_t>(r);
  if (r >= new_size && !dead[r]) movers[atomicAdd(&counts[1], 1ULL)] = static_cast<uint32_t>(r);
}

// Moves row movers[i] (values, slots, metadata) into holes[i] and records
// where it went: moved_to[mover - new_size] = hole.
template <int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    MoveRowsKernel(const uint32_t* holes, const uint32_t* movers,
                   const unsigned long long* counts, int64_t new_size, ArenaView arena,
                   int row_floats, int lanes, uint32_t* moved_to) {
  const GroupThread gt = ThisGroupThread(lanes);
  if (gt.group >= static_cast<int64_t>(counts[1])) return;
  const uint32_t from = movers[gt.group], to = holes[gt.group];
  const float* source = arena.Row(from);
  float* dest = arena.Row(to);
  for (int column = gt.lane * V; column < row_floats; column += lanes * V) {
    StoreFloats<V>(dest + column, LoadFloats<V>(source + column));
  }
  if (gt.lane == 0) {
    *arena.Meta(to) = *arena.Meta(from);
    moved_to[from - new_size] = to;
  }
}

// Keys of the rows a frequency or age threshold selects.
__global__ void SelectByThresholdKernel(const IndexSlot* slots, int64_t capacity,
                                        ArenaView arena, bool by_frequency, int64_t threshold,
                                        int64_t oldest_kept, int64_t* doomed,
                                        unsigned long long* count) {
  const int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s > capacity) return;
  const IndexSlot slot = slots[s];
  if (!Occupied(slot, s, capacity)) return;
  const RowMeta meta = *arena.Meta(slot.row);
  const bool evict = by_frequency ? meta.frequency < threshold : meta.last_step < oldest_kept;
  if (evict) doomed[atomicAdd(count, 1ULL)] = static_cast<int64_t>(slot.key);
}

// Gathers one metadata field of rows[order[i]] (order may be null: identity).
template <typename T, bool kFrequency>
__global__ void GatherMetaKernel(const uint32_t* rows, const int32_t* order, int64_t n,
                                 ArenaView arena, T* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const RowMeta& meta = *arena.Meta(rows[order != nullptr ? order[i] : i]);
  out[i] = kFrequency ? static_cast<T>(meta.frequency) : static_cast<T>(meta.last_step);
}

__global__ void GatherKeysKernel(const int64_t* keys, const int32_t* order, int64_t n,
                                 int64_t* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = keys[order[i]];
}

}  // namespace

std::string GpuEmbeddingTable::SortedKeysAndRows(int64_t* keys, uint32_t* rows,
                                                 cudaStream_t stream) const {
  const int64_t n = size_;
  DeviceArray<int64_t> unsorted_keys;
  DeviceArray<uint32_t> unsorted_rows;
  DeviceArray<unsigned long long> counter;
  DES_RETURN_IF_ERROR(unsorted_keys.Allocate(allocator_, n, stream, "unsorted keys"));
  DES_RETURN_IF_ERROR(unsorted_rows.Allocate(allocator_, n, stream, "unsorted rows"));
  DES_RETURN_IF_ERROR(counter.Allocate(allocator_, 1, stream, "key counter"));
  DES_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(counter.data(), 0, counter.bytes(), stream));
  CompactKernel<<<ThreadBlocks(capacity_ + 1), kThreadsPerBlock, 0, stream>>>(
      index_.data(), capacity_, unsorted_keys.data(), unsorted_rows.data(), counter.data());
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return SortPairs(unsorted_keys.data(), keys, unsorted_rows.data(), rows, n, allocator_, stream);
}

std::string GpuEmbeddingTable::Export(int64_t* keys, float* values, float* slots,
                                      int64_t* metadata, cudaStream_t stream) const {
  const int64_t n = size_;
  if (n == 0) return "";
  DeviceArray<uint32_t> rows;
  DES_RETURN_IF_ERROR(rows.Allocate(allocator_, n, stream, "export rows"));
  DES_RETURN_IF_ERROR(SortedKeysAndRows(keys, rows.data(), stream));
  const RowGroups groups = ChooseRowGroups(dim());
  DES_LAUNCH_BY_VEC(ExportGatherKernel, groups, n, stream, rows.data(), n, Arena(), dim(),
                    num_slots(), groups.lanes, values, slots, metadata);
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

std::string GpuEmbeddingTable::SetSize(int64_t size, cudaStream_t stream) {
  SetKernel<<<1, 1, 0, stream>>>(row_counter_.data(), static_cast<unsigned long long>(size));
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  size_ = size;
  return "";
}

std::string GpuEmbeddingTable::Import(const int64_t* keys, int64_t n, const float* values,
                                      const float* slots, const RowMeta* metadata,
                                      bool clear_first, cudaStream_t stream) {
  if (clear_first) {
    LaunchFillIndex(index_.data(), capacity_ + 1, stream);
    DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
    DES_RETURN_IF_ERROR(SetSize(0, stream));
  }
  if (n == 0) return SyncSize(stream);
  if (n >= (int64_t{1} << 31)) return "GPU table: at most 2^31 - 1 keys per call";
  DES_RETURN_IF_ERROR(Reserve(n, stream));
  DeviceArray<uint64_t> refs;
  DeviceArray<int32_t> last;
  DES_RETURN_IF_ERROR(refs.Allocate(allocator_, n, stream, "import refs"));
  DES_RETURN_IF_ERROR(last.Allocate(allocator_, size_ + n, stream, "import writers"));
  DES_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(last.data(), 0xff, last.bytes(), stream));  // -1
  DES_RETURN_IF_ERROR(ClaimKeys(keys, n, nullptr, nullptr, refs.data(), stream));
  LastWriterKernel<<<ThreadBlocks(n), kThreadsPerBlock, 0, stream>>>(refs.data(), n, Index(),
                                                                     last.data());
  unsigned long long* newest = row_counter_.data() + 1;
  SetKernel<<<1, 1, 0, stream>>>(newest, static_cast<unsigned long long>(current_step_));
  const RowGroups groups = ChooseRowGroups(dim());
  DES_LAUNCH_BY_VEC(ImportRowsKernel, groups, n, stream, refs.data(), n, Index(), Arena(),
                    last.data(), values, slots, metadata, dim(), num_slots(), groups.lanes,
                    reinterpret_cast<long long*>(newest));
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  int64_t newest_step = 0;
  DES_RETURN_IF_ERROR(SyncSize(stream, &newest_step, newest));
  current_step_ = std::max(current_step_, newest_step);
  return "";
}

std::string GpuEmbeddingTable::Remove(const int64_t* keys, int64_t n, int64_t* removed,
                                      int64_t* removed_count, cudaStream_t stream) {
  *removed_count = 0;
  if (n == 0 || size_ == 0) return "";
  if (n >= (int64_t{1} << 31)) return "GPU table: at most 2^31 - 1 keys per call";
  DeviceArray<uint32_t> rows;
  DeviceArray<int32_t> first;
  DeviceArray<uint8_t> dead, flags;
  DeviceArray<int64_t> found_count;
  DES_RETURN_IF_ERROR(rows.Allocate(allocator_, n, stream, "removal rows"));
  DES_RETURN_IF_ERROR(first.Allocate(allocator_, size_, stream, "removal first positions"));
  DES_RETURN_IF_ERROR(dead.Allocate(allocator_, size_, stream, "removal marks"));
  DES_RETURN_IF_ERROR(flags.Allocate(allocator_, n, stream, "removal flags"));
  DES_RETURN_IF_ERROR(found_count.Allocate(allocator_, 1, stream, "removal count"));
  FillKernel<<<ThreadBlocks(size_), kThreadsPerBlock, 0, stream>>>(
      first.data(), size_, std::numeric_limits<int32_t>::max());
  DES_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(dead.data(), 0, dead.bytes(), stream));
  FindRowsKernel<<<ThreadBlocks(n), kThreadsPerBlock, 0, stream>>>(keys, n, Index(), rows.data(),
                                                                   first.data());
  MarkRemovedKernel<<<ThreadBlocks(n), kThreadsPerBlock, 0, stream>>>(
      rows.data(), first.data(), n, flags.data(), dead.data());
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  DES_RETURN_IF_ERROR(SelectFlagged(keys, flags.data(), removed, found_count.data(), n,
                                    allocator_, stream));
  int64_t found = 0;
  DES_RETURN_IF_ERROR(SyncSize(
      stream, &found, reinterpret_cast<const unsigned long long*>(found_count.data())));
  *removed_count = found;
  return DropRows(dead.data(), found, stream);
}

std::string GpuEmbeddingTable::DropRows(const uint8_t* dead, int64_t count,
                                        cudaStream_t stream) {
  if (count == 0) return "";
  const int64_t new_size = size_ - count;
  DeviceArray<uint32_t> holes, movers, moved_to;
  DeviceArray<unsigned long long> counts;
  DeviceArray<IndexSlot> index;
  DES_RETURN_IF_ERROR(holes.Allocate(allocator_, count, stream, "row holes"));
  DES_RETURN_IF_ERROR(movers.Allocate(allocator_, count, stream, "moving rows"));
  DES_RETURN_IF_ERROR(moved_to.Allocate(allocator_, count, stream, "row moves"));
  DES_RETURN_IF_ERROR(counts.Allocate(allocator_, 2, stream, "row move counts"));
  DES_RETURN_IF_ERROR(index.Allocate(allocator_, capacity_ + 1, stream, "GPU table index"));
  DES_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(counts.data(), 0, counts.bytes(), stream));
  HolesAndMoversKernel<<<ThreadBlocks(size_), kThreadsPerBlock, 0, stream>>>(
      dead, size_, new_size, holes.data(), movers.data(), counts.data());
  const RowGroups groups = ChooseRowGroups(row_floats_);
  DES_LAUNCH_BY_VEC(MoveRowsKernel, groups, count, stream, holes.data(), movers.data(),
                    counts.data(), new_size, Arena(), row_floats_, groups.lanes,
                    moved_to.data());
  LaunchFillIndex(index.data(), capacity_ + 1, stream);
  LaunchRehash(index_.data(), capacity_, dead, new_size, moved_to.data(),
               IndexView{index.data(), static_cast<uint64_t>(capacity_ - 1)}, stream);
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  index_ = std::move(index);
  DES_RETURN_IF_ERROR(SetSize(new_size, stream));
  // Free whole blocks above the new size (the kernels above ran first: frees
  // are stream-ordered).
  const int64_t block_rows = int64_t{1} << kBlockRowsLog2;
  const size_t blocks_needed = static_cast<size_t>((new_size + block_rows - 1) / block_rows);
  if (blocks_needed < blocks_.size()) {
    blocks_.resize(blocks_needed);
    meta_blocks_.resize(blocks_needed);
    DES_RETURN_IF_ERROR(UploadBlockTables(stream));
  }
  return SyncSize(stream);
}

std::string GpuEmbeddingTable::SelectEvictions(EvictionPolicy policy, int64_t threshold,
                                               int64_t* doomed, int64_t* count,
                                               cudaStream_t stream) {
  *count = 0;
  if (policy != EvictionPolicy::kRowBudget) {
    unsigned long long* counter = row_counter_.data() + 1;
    DES_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(counter, 0, sizeof(*counter), stream));
    SelectByThresholdKernel<<<ThreadBlocks(capacity_ + 1), kThreadsPerBlock, 0, stream>>>(
        index_.data(), capacity_, Arena(), policy == EvictionPolicy::kMinFrequency, threshold,
        current_step_ - threshold, doomed, counter);
    DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
    return SyncSize(stream, count, counter);
  }
  // Row budget: rank rows by (frequency, last_step, key) with three stable
  // sorts, least significant first, and keep the first size - threshold.
  const int64_t n = size_;
  if (n <= threshold) return "";
  DeviceArray<int64_t> keys, steps, sorted_steps;
  DeviceArray<uint32_t> rows, frequencies, sorted_frequencies;
  DeviceArray<int32_t> iota, by_step, by_rank;
  DES_RETURN_IF_ERROR(keys.Allocate(allocator_, n, stream, "eviction keys"));
  DES_RETURN_IF_ERROR(steps.Allocate(allocator_, n, stream, "eviction steps"));
  DES_RETURN_IF_ERROR(sorted_steps.Allocate(allocator_, n, stream, "eviction steps"));
  DES_RETURN_IF_ERROR(rows.Allocate(allocator_, n, stream, "eviction rows"));
  DES_RETURN_IF_ERROR(frequencies.Allocate(allocator_, n, stream, "eviction frequencies"));
  DES_RETURN_IF_ERROR(sorted_frequencies.Allocate(allocator_, n, stream, "eviction frequencies"));
  DES_RETURN_IF_ERROR(iota.Allocate(allocator_, n, stream, "eviction order"));
  DES_RETURN_IF_ERROR(by_step.Allocate(allocator_, n, stream, "eviction order"));
  DES_RETURN_IF_ERROR(by_rank.Allocate(allocator_, n, stream, "eviction order"));
  DES_RETURN_IF_ERROR(SortedKeysAndRows(keys.data(), rows.data(), stream));
  DES_RETURN_IF_ERROR(Iota(iota.data(), n, stream));
  GatherMetaKernel<int64_t, false><<<ThreadBlocks(n), kThreadsPerBlock, 0, stream>>>(
      rows.data(), nullptr, n, Arena(), steps.data());
  DES_RETURN_IF_ERROR(SortPairs(steps.data(), sorted_steps.data(), iota.data(), by_step.data(), n,
                                allocator_, stream));
  GatherMetaKernel<uint32_t, true><<<ThreadBlocks(n), kThreadsPerBlock, 0, stream>>>(
      rows.data(), by_step.data(), n, Arena(), frequencies.data());
  DES_RETURN_IF_ERROR(SortPairs(frequencies.data(), sorted_frequencies.data(), by_step.data(),
                                by_rank.data(), n, allocator_, stream));
  *count = n - threshold;
  GatherKeysKernel<<<ThreadBlocks(*count), kThreadsPerBlock, 0, stream>>>(
      keys.data(), by_rank.data(), *count, doomed);
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

std::string GpuEmbeddingTable::Evict(EvictionPolicy policy, int64_t threshold, int64_t* evicted,
                                     int64_t* evicted_count, cudaStream_t stream) {
  *evicted_count = 0;
  if (threshold < 0) return "Evict: threshold must be >= 0, got " + std::to_string(threshold);
  if (size_ == 0) return "";
  DeviceArray<int64_t> doomed, removed;
  DES_RETURN_IF_ERROR(doomed.Allocate(allocator_, size_, stream, "eviction keys"));
  int64_t count = 0;
  DES_RETURN_IF_ERROR(SelectEvictions(policy, threshold, doomed.data(), &count, stream));
  if (count == 0) return "";
  DES_RETURN_IF_ERROR(SortKeys(doomed.data(), evicted, count, allocator_, stream));
  DES_RETURN_IF_ERROR(removed.Allocate(allocator_, count, stream, "evicted keys"));
  int64_t removed_count = 0;
  DES_RETURN_IF_ERROR(Remove(evicted, count, removed.data(), &removed_count, stream));
  if (removed_count != count) {
    return "GPU table Evict: removed " + std::to_string(removed_count) + " of the " +
           std::to_string(count) + " selected rows (internal error)";
  }
  *evicted_count = count;
  return "";
}

}  // namespace gpu
}  // namespace des
