// Combiner divisors per segment (one thread each, entries in stable order),
// then a grid-wide scaling of the pooled rows.
#include "gpu_combiner.h"

#include "cuda_status.h"
#include "grouping.h"
#include "row_groups.cuh"

namespace des {
namespace gpu {
namespace {

__global__ void DivisorKernel(Combiner combiner, const float* weights, const int32_t* order,
                              const int64_t* starts, int64_t num_segments, float* divisors) {
  const int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s >= num_segments) return;
  float total = 0.0f;
  for (int64_t t = starts[s]; t < starts[s + 1]; ++t) {
    const float x = weights == nullptr ? 1.0f : weights[order != nullptr ? order[t] : t];
    total += combiner == Combiner::kMean ? x : x * x;
  }
  if (combiner == Combiner::kSqrtn) total = sqrtf(total);
  divisors[s] = total == 0.0f ? 1.0f : total;
}

__global__ void ScaleKernel(float* sums, int dim, int64_t count, const float* divisors) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) sums[i] /= divisors[i / dim];
}

}  // namespace

std::string ApplyCombiner(Combiner combiner, float* sums, int dim, int64_t num_segments,
                          const int64_t* segment_ids, const float* weights, int64_t n,
                          bool segments_sorted, DeviceAllocator* allocator,
                          cudaStream_t stream) {
  if (combiner == Combiner::kSum || num_segments == 0) return "";
  DeviceGrouping by_segment;
  DES_RETURN_IF_ERROR(GroupByIds(segment_ids, n, num_segments, segments_sorted, allocator,
                                 stream, &by_segment));
  DeviceArray<float> divisors;
  DES_RETURN_IF_ERROR(divisors.Allocate(allocator, num_segments, stream, "combiner divisors"));
  DivisorKernel<<<ThreadBlocks(num_segments), kThreadsPerBlock, 0, stream>>>(
      combiner, weights, by_segment.order_or_null(), by_segment.starts.data(), num_segments,
      divisors.data());
  const int64_t count = num_segments * dim;
  ScaleKernel<<<ThreadBlocks(count), kThreadsPerBlock, 0, stream>>>(sums, dim, count,
                                                                     divisors.data());
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

}  // namespace gpu
}  // namespace des
