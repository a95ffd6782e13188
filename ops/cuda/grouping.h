// Stable grouping of entries by a small integer id, the GPU counterpart of
// internal::Grouping in ops/cc/kernels/partial_sums.h: the entries of group g
// are order[starts[g] .. starts[g + 1]) in input order. A stable radix sort
// makes it deterministic, so every sum over a group is taken in input order.
// Host API, TF-independent; all pointers are device pointers.
#ifndef DES_TF_OPS_CUDA_GROUPING_H_
#define DES_TF_OPS_CUDA_GROUPING_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "device_allocator.h"

namespace des {
namespace gpu {

struct DeviceGrouping {
  DeviceArray<int32_t> order;   // empty when the ids were already sorted (identity)
  DeviceArray<int64_t> starts;  // num_groups + 1 offsets into order
  const int32_t* order_or_null() const { return order.size() ? order.data() : nullptr; }
};

// Groups ids[0..n) (each in [0, num_groups), n < 2^31). `ids_sorted` skips the
// sort when ids are known to be non-decreasing.
std::string GroupByIds(const int64_t* ids, int64_t n, int64_t num_groups, bool ids_sorted,
                       DeviceAllocator* allocator, cudaStream_t stream, DeviceGrouping* out);

// starts[g] = first position p in [0, n] with sorted_ids[p] >= g, for g in [0, num_groups].
std::string GroupStarts(const int64_t* sorted_ids, int64_t n, int64_t num_groups,
                        int64_t* starts, cudaStream_t stream);

}  // namespace gpu
}  // namespace des

#endif  // DES_TF_OPS_CUDA_GROUPING_H_
