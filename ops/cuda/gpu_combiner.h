// The combiner step g of pooled embeddings (docs/design.md section 1) on the GPU:
// after the partial sums of a sample's field are summed over ranks, "mean"
// divides them by sum_e x_e and "sqrtn" by sqrt(sum_e x_e^2), over ALL ids of
// that (sample, field), which every rank knows; an empty id list divides by 1
// so it pools to zeros. Same rule as ShardedEmbedding._normalizer in Python.
// Host API, TF-independent; all pointers are device pointers.
#ifndef DES_TF_OPS_CUDA_GPU_COMBINER_H_
#define DES_TF_OPS_CUDA_GPU_COMBINER_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "device_allocator.h"

namespace des {
namespace gpu {

enum class Combiner { kSum, kMean, kSqrtn };

// sums: [num_segments, dim], divided in place. segment_ids / weights: every
// entry of every segment (n of them, ids in [0, num_segments)); weights may be
// nullptr for one-hot ids (x = 1). Deterministic: each segment's divisor is
// summed in entry order.
std::string ApplyCombiner(Combiner combiner, float* sums, int dim, int64_t num_segments,
                          const int64_t* segment_ids, const float* weights, int64_t n,
                          bool segments_sorted, DeviceAllocator* allocator,
                          cudaStream_t stream);

}  // namespace gpu
}  // namespace des

#endif  // DES_TF_OPS_CUDA_GPU_COMBINER_H_
