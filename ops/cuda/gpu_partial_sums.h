// DES partial sums on the GPU: the same semantics as ops/cc/kernels/partial_sums.h
//   sums[s]         = sum_{e: seg_e = s} x_e * rows[row_e]
//   square_norms[s] = sum_{e: seg_e = s} x_e^2 * ||rows[row_e]||^2        (optional)
//   row_grads[u]    = sum_{e: row_e = u} x_e * dsums[seg_e]
//                     + 2 x_e^2 * dsquare_norms[seg_e] * rows[u]          (optional term)
// Determinism: entries are grouped by output row with a stable sort and each
// output row is summed by one thread group in entry order, so results are
// bitwise reproducible run to run (they differ from the CPU only by FMA
// contraction and the order of the per-row square-norm reduction).
// Host API, TF-independent; all pointers are device pointers.
#ifndef DES_TF_OPS_CUDA_GPU_PARTIAL_SUMS_H_
#define DES_TF_OPS_CUDA_GPU_PARTIAL_SUMS_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "../cc/kernels/partial_entries.h"
#include "device_allocator.h"

namespace des {
namespace gpu {

// Entries (partial_entries.h) hold device pointers here.
using ::des::EntryOrder;
using ::des::PartialEntries;

// The CPU's ValidateEntries on the device (one kernel, one stream sync): ""
// or the same message the CPU core gives for the first bad entry.
std::string ValidateEntries(const PartialEntries& entries, int64_t num_rows,
                            int64_t num_segments, cudaStream_t stream, EntryOrder* order);

// sums: [num_segments, dim]; square_norms: [num_segments] or nullptr. Entries
// must be valid; `segments_sorted` may be true only if segment_ids never decrease.
std::string PartialSums(const float* rows, int dim, const PartialEntries& entries,
                        int64_t num_segments, bool segments_sorted, float* sums,
                        float* square_norms, DeviceAllocator* allocator, cudaStream_t stream);

// row_grads: [num_rows, dim]; dsquare_norms may be nullptr. Entries must be
// valid; `rows_sorted` may be true only if row_ids never decrease.
std::string PartialSumsGrad(const float* dsums, const float* dsquare_norms, const float* rows,
                            int dim, int64_t num_rows, const PartialEntries& entries,
                            bool rows_sorted, float* row_grads, DeviceAllocator* allocator,
                            cudaStream_t stream);

}  // namespace gpu
}  // namespace des

#endif  // DES_TF_OPS_CUDA_GPU_PARTIAL_SUMS_H_
