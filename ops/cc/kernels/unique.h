// Distinct keys of a batch in first-occurrence order, and each key's index among
// them: what tf.unique returns, computed cache-consciously. TF-independent.
//
// tf.unique inserts every key into one hash map as large as the batch; for the
// id lists of a DES step (~10^6 occurrences) that map outgrows the caches and
// each insert waits for memory. Here the positions are first partitioned by key
// hash into groups small enough that each group's open-addressing table stays
// in cache; groups are independent (run in parallel). Each group records, per
// position, the position of its key's first occurrence; a prefix count over
// "is a first occurrence" then numbers the distinct keys in input order.
#ifndef DES_TF_OPS_CC_KERNELS_UNIQUE_H_
#define DES_TF_OPS_CC_KERNELS_UNIQUE_H_

#include <cstdint>
#include <vector>

#include "hash.h"
#include "parallel_for.h"

namespace des {

namespace internal {

// Positions per hash group: its table (2 slots per position, 16 bytes each) is
// 256 KiB, about one core's L2 cache.
constexpr int64_t kUniqueGroupPositions = 8192;

struct KeyAt {
  int64_t key;
  int64_t position;
};

// first[entries[t].position] = position of the first occurrence of entries[t].key,
// for the entries of one group (positions increasing), read in order through an
// open-addressing table of (key, first position) that stays in cache; `slots` is
// the table's storage, reused from group to group.
inline void FirstOccurrences(const KeyAt* entries, int64_t count, std::vector<KeyAt>* slots,
                             int64_t* first) {
  uint64_t capacity = 16;
  while (capacity < static_cast<uint64_t>(2 * count)) capacity <<= 1;
  const uint64_t mask = capacity - 1;
  slots->assign(capacity, KeyAt{0, -1});
  KeyAt* table = slots->data();
  for (int64_t t = 0; t < count; ++t) {
    const KeyAt& entry = entries[t];
    // The low hash bits; groups were told apart by the high ones.
    uint64_t slot = Mix64(static_cast<uint64_t>(entry.key)) & mask;
    while (table[slot].position >= 0 && table[slot].key != entry.key) slot = (slot + 1) & mask;
    if (table[slot].position < 0) table[slot] = entry;
    first[entry.position] = table[slot].position;
  }
}

}  // namespace internal

// Working memory of UniqueKeys, kept by the caller between calls (one per thread):
// fresh buffers of this size would cost more in page faults than the work itself.
struct UniqueScratch {
  std::vector<uint32_t> group;
  std::vector<internal::KeyAt> entries;
  std::vector<int64_t> first;
};

// unique[0..*num_unique) = the distinct keys of keys[0..n) in first-occurrence
// order; index[p] = position of keys[p] in unique. `unique` and `index` hold n
// entries (the caller trims unique to *num_unique); `scratch` is reused memory.
template <typename Index>
void UniqueKeys(const int64_t* keys, int64_t n, const ParallelFor& parallel_for,
                UniqueScratch* scratch, int64_t* unique, Index* index, int64_t* num_unique) {
  int bits = 0;
  while ((int64_t{1} << bits) * internal::kUniqueGroupPositions < n && bits < 16) ++bits;
  const int64_t groups = int64_t{1} << bits;
  std::vector<uint32_t>& group = scratch->group;
  std::vector<internal::KeyAt>& entries = scratch->entries;
  std::vector<int64_t>& first = scratch->first;
  group.resize(n);
  entries.resize(n);
  first.resize(n);
  parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const uint64_t hash = Mix64(static_cast<uint64_t>(keys[p]));
      group[p] = bits == 0 ? 0 : static_cast<uint32_t>(hash >> (64 - bits));
    }
  });
  // (key, position) entries bucketed by group, positions increasing within each
  // group (a counting sort), so each group is then read sequentially.
  std::vector<int64_t> starts(groups + 1, 0);
  for (int64_t p = 0; p < n; ++p) ++starts[group[p] + 1];
  for (int64_t g = 0; g < groups; ++g) starts[g + 1] += starts[g];
  std::vector<int64_t> next(starts.begin(), starts.end() - 1);
  for (int64_t p = 0; p < n; ++p) entries[next[group[p]]++] = {keys[p], p};
  // Work units are keys here too (kUniqueGroupPositions per group), so one cost per
  // unit fits both parallel loops: a range of units runs the groups starting in it.
  constexpr int64_t kGroupUnits = internal::kUniqueGroupPositions;
  parallel_for(groups * kGroupUnits, [&](int64_t begin, int64_t end) {
    std::vector<internal::KeyAt> slots;
    for (int64_t g = (begin + kGroupUnits - 1) / kGroupUnits; g * kGroupUnits < end; ++g) {
      internal::FirstOccurrences(entries.data() + starts[g], starts[g + 1] - starts[g], &slots,
                                 first.data());
    }
  });
  // Distinct keys numbered in order of first occurrence: number[p] for each first
  // occurrence p (`first` is overwritten with them, as every later occurrence
  // reads its first occurrence's number after it was written).
  int64_t count = 0;
  for (int64_t p = 0; p < n; ++p) {
    const int64_t f = first[p];
    if (f == p) {
      unique[count] = keys[p];
      first[p] = count++;
      index[p] = static_cast<Index>(first[p]);
    } else {
      index[p] = static_cast<Index>(first[f]);
    }
  }
  *num_unique = count;
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_UNIQUE_H_
