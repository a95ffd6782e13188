// Stable grouping by id: radix sort of (id, entry index) pairs, then group
// offsets found at the boundaries of the sorted ids.
#include "grouping.h"

#include "cuda_status.h"
#include "device_algorithms.cuh"
#include "row_groups.cuh"

namespace des {
namespace gpu {
namespace {

// Thread p in [0, n] writes the starts of the groups in (ids[p-1], ids[p]].
__global__ void GroupStartsKernel(const int64_t* sorted_ids, int64_t n, int64_t num_groups,
                                  int64_t* starts) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p > n) return;
  const int64_t previous = p == 0 ? -1 : sorted_ids[p - 1];
  const int64_t current = p == n ? num_groups : sorted_ids[p];
  for (int64_t g = previous + 1; g <= current; ++g) starts[g] = p;
}

int BitsFor(int64_t num_groups) {
  int bits = 1;
  while (bits < 63 && (int64_t{1} << bits) < num_groups) ++bits;
  return bits;
}

}  // namespace

std::string GroupStarts(const int64_t* sorted_ids, int64_t n, int64_t num_groups,
                        int64_t* starts, cudaStream_t stream) {
  GroupStartsKernel<<<ThreadBlocks(n + 1), kThreadsPerBlock, 0, stream>>>(sorted_ids, n,
                                                                           num_groups, starts);
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

std::string GroupByIds(const int64_t* ids, int64_t n, int64_t num_groups, bool ids_sorted,
                       DeviceAllocator* allocator, cudaStream_t stream, DeviceGrouping* out) {
  if (n >= (int64_t{1} << 31)) {
    return "GPU grouping supports fewer than 2^31 entries per call, got " + std::to_string(n);
  }
  DES_RETURN_IF_ERROR(out->starts.Allocate(allocator, num_groups + 1, stream, "group starts"));
  out->order.Reset();
  if (ids_sorted || n == 0) return GroupStarts(ids, n, num_groups, out->starts.data(), stream);

  DeviceArray<int32_t> iota;
  DeviceArray<int64_t> sorted_ids;
  DES_RETURN_IF_ERROR(iota.Allocate(allocator, n, stream, "grouping indices"));
  DES_RETURN_IF_ERROR(out->order.Allocate(allocator, n, stream, "grouping order"));
  DES_RETURN_IF_ERROR(sorted_ids.Allocate(allocator, n, stream, "sorted ids"));
  DES_RETURN_IF_ERROR(Iota(iota.data(), n, stream));
  DES_RETURN_IF_ERROR(SortPairs(ids, sorted_ids.data(), iota.data(), out->order.data(), n,
                                allocator, stream, BitsFor(num_groups)));
  return GroupStarts(sorted_ids.data(), n, num_groups, out->starts.data(), stream);
}

}  // namespace gpu
}  // namespace des
