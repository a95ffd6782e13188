// What defines an embedding table and what it records per row: shared by the
// CPU table (embedding_table.h) and the GPU table (ops/cuda/gpu_table.h).
// TF-independent.
#ifndef DES_TF_OPS_CC_KERNELS_TABLE_CONFIG_H_
#define DES_TF_OPS_CC_KERNELS_TABLE_CONFIG_H_

#include <cstdint>

#include "initializer.h"
#include "sparse_optimizer.h"

namespace des {

// What apply_gradients does with a NaN or Inf (summed) gradient.
enum class NonFinitePolicy {
  kError,  // reject the whole call before changing any row
  kSkip,   // leave that key's row untouched, update the others
};

// Which rows Evict removes (both tables, same selection).
enum class EvictionPolicy {
  kMinFrequency,  // rows looked up fewer than `threshold` times
  kMaxAge,        // rows not updated in the last `threshold` steps
  kRowBudget,     // the least frequent rows (then least recently updated, then
                  // smallest key) until at most `threshold` remain
};

struct TableConfig {
  int dim = 1;
  Initializer initializer;
  uint64_t seed = 0;
  OptimizerConfig optimizer;
  NonFinitePolicy nonfinite = NonFinitePolicy::kError;
  int64_t capacity_hint = 0;  // expected rows: pre-sizes the index
};

// Per-row bookkeeping for eviction and Adam's per-row bias correction.
struct RowMeta {
  uint32_t frequency;     // lookups of this key (saturating)
  uint32_t update_count;  // optimizer updates applied (Adam's t)
  int64_t last_step;      // step of the last update (insert step if none)
};

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_TABLE_CONFIG_H_
