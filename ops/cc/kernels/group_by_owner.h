// A rank's ids grouped by the rank owning them (DesShardOwner), ready for the
// alltoall messages of the id exchange (docs/design.md section 2) and of the
// "rows" plan: the distinct ids, owner by owner, and the occurrences in the
// order they are sent, each pointing at its distinct id. TF-independent.
//
// In core TensorFlow ops this is a unique, an owner per distinct id, two stable
// argsorts (distinct ids and occurrences by owner), two bincounts, an inverted
// permutation and half a dozen gathers: the argsorts alone are O(E log E) on
// ~10^5-10^6 occurrences. Owners are few, so counting sorts do it in O(E).
#ifndef DES_TF_OPS_CC_KERNELS_GROUP_BY_OWNER_H_
#define DES_TF_OPS_CC_KERNELS_GROUP_BY_OWNER_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "parallel_for.h"
#include "shard_owner.h"
#include "unique.h"

namespace des {

// Working memory of GroupByOwner, kept by the caller between calls (see
// UniqueScratch: fresh buffers of this size cost more in page faults).
struct GroupByOwnerScratch {
  UniqueScratch unique;
  std::vector<int64_t> keys;       // distinct keys, first-occurrence order
  std::vector<int32_t> inverse;    // per occurrence, its key's index in `keys`
  std::vector<int32_t> owner;      // per distinct key
  std::vector<int64_t> grouped;    // per distinct key, its index in `distinct`
};

// Where GroupByOwner writes (caller-allocated): `distinct` and `index` hold n
// entries (the caller trims distinct to the sum of distinct_counts), `order` n,
// the counts num_shards.
template <typename Index>
struct OwnerGroups {
  int64_t* distinct;         // distinct keys, by owner, first-occurrence order within one
  int32_t* distinct_counts;  // distinct keys per owner
  Index* index;              // per occurrence (input order), its key's index in `distinct`
  int32_t* order;            // occurrence positions, by owner, input order within one
  int32_t* counts;           // occurrences per owner
};

// Groups keys[0..n) by owner (ShardOwner(key, seed, num_shards)) and returns the
// number of distinct keys; n < 2^31 (the int32 positions of `order`),
// num_shards > 0 (callers validate).
template <typename Index>
int64_t GroupByOwner(const int64_t* keys, int64_t n, uint64_t seed, int32_t num_shards,
                  const ParallelFor& parallel_for, GroupByOwnerScratch* scratch,
                  const OwnerGroups<Index>& out) {
  scratch->keys.resize(n);
  scratch->inverse.resize(n);
  int64_t num_distinct = 0;
  UniqueKeys(keys, n, parallel_for, &scratch->unique, scratch->keys.data(),
             scratch->inverse.data(), &num_distinct);
  const int64_t* distinct_keys = scratch->keys.data();
  const int32_t* inverse = scratch->inverse.data();
  std::vector<int32_t>& owner = scratch->owner;
  owner.resize(num_distinct);
  parallel_for(num_distinct, [&](int64_t begin, int64_t end) {
    ShardOwners(distinct_keys + begin, end - begin, seed, num_shards, owner.data() + begin);
  });
  // Counting sorts by owner, first of the distinct keys, then of the occurrences.
  std::vector<int64_t> next(num_shards);
  std::fill_n(out.distinct_counts, num_shards, 0);
  for (int64_t u = 0; u < num_distinct; ++u) ++out.distinct_counts[owner[u]];
  for (int32_t r = 0, start = 0; r < num_shards; start += out.distinct_counts[r++]) {
    next[r] = start;
  }
  std::vector<int64_t>& grouped = scratch->grouped;
  grouped.resize(num_distinct);
  for (int64_t u = 0; u < num_distinct; ++u) {
    grouped[u] = next[owner[u]]++;
    out.distinct[grouped[u]] = distinct_keys[u];
  }
  std::fill_n(out.counts, num_shards, 0);
  for (int64_t p = 0; p < n; ++p) {
    const int32_t u = inverse[p];
    out.index[p] = static_cast<Index>(grouped[u]);
    ++out.counts[owner[u]];
  }
  for (int32_t r = 0, start = 0; r < num_shards; start += out.counts[r++]) next[r] = start;
  for (int64_t p = 0; p < n; ++p) out.order[next[owner[inverse[p]]]++] = static_cast<int32_t>(p);
  return num_distinct;
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_GROUP_BY_OWNER_H_
