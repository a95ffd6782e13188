// Device side of the GPU table's index and arena (gpu_table.h): slot layout,
// probing, claiming a slot with atomicCAS, and row addressing.
// Device code, TF-independent.
#ifndef DES_TF_OPS_CUDA_GPU_TABLE_INDEX_CUH_
#define DES_TF_OPS_CUDA_GPU_TABLE_INDEX_CUH_

#include <cuda_runtime.h>

#include <cstdint>

#include "../cc/kernels/hash.h"
#include "../cc/kernels/table_config.h"

namespace des {
namespace gpu {

constexpr unsigned long long kEmptyKey = 0x8000000000000000ULL;  // INT64_MIN
constexpr uint32_t kNoRow = 0xffffffffu;     // slot not (yet) given a row
constexpr uint32_t kClaimedRow = 0xfffffffeu;  // extra slot claimed, row coming

// One index slot: a key and its row id, 16-byte aligned so a probe reads both
// in one sector. Slot `capacity` (one past the power-of-two range) holds the
// key INT64_MIN, occupied when its row is not kNoRow.
struct alignas(16) IndexSlot {
  unsigned long long key;
  uint32_t row;
  uint32_t unused;
};

// Whether slot s of an index of `capacity` slots (+ INT64_MIN's slot at
// `capacity`) holds a key.
__device__ __forceinline__ bool Occupied(const IndexSlot& slot, int64_t s, int64_t capacity) {
  return s == capacity ? slot.row != kNoRow : slot.key != kEmptyKey;
}

struct IndexView {
  IndexSlot* slots;
  uint64_t mask;  // capacity - 1
};

// Empties `count` slots (defined in gpu_table.cu, as the next one).
void LaunchFillIndex(IndexSlot* slots, int64_t count, cudaStream_t stream);

// Inserts the keys of an old index into the empty `index`. With `dead` given,
// the keys of rows with dead[row] != 0 are left out and rows >= new_size are
// renumbered to moved_to[row - new_size] (DropRows' compaction).
void LaunchRehash(const IndexSlot* old_slots, int64_t old_capacity, const uint8_t* dead,
                  int64_t new_size, const uint32_t* moved_to, IndexView index,
                  cudaStream_t stream);

// Independent of the sharding hash Mix64(key ^ seed), like the CPU table's.
__device__ __forceinline__ uint64_t IndexHash(int64_t key) {
  return Mix64(Mix64(static_cast<uint64_t>(key)) ^ 0x243f6a8885a308d3ULL);
}

__device__ __forceinline__ unsigned long long LoadKey(const IndexSlot* slot) {
  return *reinterpret_cast<const volatile unsigned long long*>(&slot->key);
}
__device__ __forceinline__ uint32_t LoadRow(const IndexSlot* slot) {
  return *reinterpret_cast<const volatile uint32_t*>(&slot->row);
}

// Slot of `key`, or -1. Valid only while no kernel inserts concurrently.
__device__ __forceinline__ int64_t FindSlot(const IndexView& index, int64_t key) {
  const unsigned long long k = static_cast<unsigned long long>(key);
  if (k == kEmptyKey) {
    const int64_t extra = static_cast<int64_t>(index.mask + 1);
    return index.slots[extra].row == kNoRow ? -1 : extra;
  }
  for (uint64_t s = IndexHash(key) & index.mask;; s = (s + 1) & index.mask) {
    const unsigned long long found = index.slots[s].key;
    if (found == k) return static_cast<int64_t>(s);
    if (found == kEmptyKey) return -1;
  }
}

struct Claim {
  uint64_t slot;
  bool claimed;  // this thread inserted the key (it must give the slot a row)
};

// Finds `key`'s slot or claims an empty one for it. The index must have a free
// slot (the load policy guarantees it). Safe under concurrent claims.
__device__ __forceinline__ Claim FindOrClaim(const IndexView& index, int64_t key) {
  const unsigned long long k = static_cast<unsigned long long>(key);
  if (k == kEmptyKey) {
    const uint64_t extra = index.mask + 1;
    const uint32_t before = atomicCAS(&index.slots[extra].row, kNoRow, kClaimedRow);
    return Claim{extra, before == kNoRow};
  }
  for (uint64_t s = IndexHash(key) & index.mask;; s = (s + 1) & index.mask) {
    unsigned long long found = LoadKey(&index.slots[s]);
    if (found == kEmptyKey) {
      found = atomicCAS(&index.slots[s].key, kEmptyKey, k);
      if (found == kEmptyKey) return Claim{s, true};
    }
    if (found == k) return Claim{s, false};
  }
}

// What a claim tells the kernels after it about one key ("ref"): the row id,
// tagged kNewBit when this thread claimed the key, or kPendingBit + slot when
// another thread of the same kernel claimed it and its row id was not
// published yet (read it from the slot in a later kernel); kSkipRef for a key
// the call leaves alone.
constexpr uint64_t kPendingBit = 1ULL << 63;
constexpr uint64_t kNewBit = 1ULL << 62;
constexpr uint64_t kSkipRef = ~0ULL;

// The row id of a ref, valid in any kernel after the claiming one.
__device__ __forceinline__ uint32_t ResolveRow(uint64_t ref, const IndexView& index) {
  if (ref & kPendingBit) return index.slots[ref & ~kPendingBit].row;
  return static_cast<uint32_t>(ref);
}

// Rows and their metadata in fixed-size blocks.
struct ArenaView {
  float* const* blocks;
  RowMeta* const* meta_blocks;
  int block_shift;
  uint32_t block_mask;
  int row_floats;

  __device__ __forceinline__ float* Row(uint32_t row) const {
    return blocks[row >> block_shift] + static_cast<int64_t>(row & block_mask) * row_floats;
  }
  __device__ __forceinline__ RowMeta* Meta(uint32_t row) const {
    return meta_blocks[row >> block_shift] + (row & block_mask);
  }
};

}  // namespace gpu
}  // namespace des

#endif  // DES_TF_OPS_CUDA_GPU_TABLE_INDEX_CUH_
