// The entries of a DES partial sum, shared by the CPU core (partial_sums.h) and
// the CUDA core (ops/cuda/gpu_partial_sums.h): entry e is one owned id
// occurrence, row_ids[e] into the looked-up rows, segment_ids[e] the output row
// it pools into, weights[e] its value x_e. The pointers are host pointers for
// the CPU core and device pointers for the CUDA core. TF-independent.
#ifndef DES_TF_OPS_CC_KERNELS_PARTIAL_ENTRIES_H_
#define DES_TF_OPS_CC_KERNELS_PARTIAL_ENTRIES_H_

#include <cstdint>

namespace des {

struct PartialEntries {
  const int64_t* row_ids;
  const int64_t* segment_ids;
  const float* weights;
  int64_t size;
};

// What validation learnt about the entries: ids already in order let the
// CUDA core skip its grouping sort (the CPU core groups by counting anyway).
struct EntryOrder {
  bool segments_sorted = false;
  bool rows_sorted = false;
};

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_PARTIAL_ENTRIES_H_
