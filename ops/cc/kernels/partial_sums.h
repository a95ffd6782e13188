// DES partial results of pooled operators: the weighted segment sums a rank
// computes from the rows it owns, and their backward. TF-independent.
//
// An "entry" e is one owned id occurrence: (row_ids[e] into the looked-up rows,
// segment_ids[e] = the output row it pools into, weights[e] = its value x_e).
// Forward:  sums[s]         = sum_{e in s} x_e * rows[row_e]            (pooled / LR / FM a)
//           square_norms[s] = sum_{e in s} x_e^2 * ||rows[row_e]||^2    (FM b, optional)
// Backward: row_grads[u]    = sum_{e: row_e = u} x_e * dsums[seg_e]
//                             + 2 x_e^2 * dsquare_norms[seg_e] * rows[u]
// Work is grouped by output row (segments forward, rows backward) through a
// stable counting sort, so each output is owned by one thread and summed in
// entry order: results do not depend on the number of threads.
#ifndef DES_TF_OPS_CC_KERNELS_PARTIAL_SUMS_H_
#define DES_TF_OPS_CC_KERNELS_PARTIAL_SUMS_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "parallel_for.h"
#include "partial_entries.h"

namespace des {

// Returns an error message ("" if ok) if an entry points outside its ranges.
inline std::string ValidateEntries(const PartialEntries& e, int64_t num_rows,
                                   int64_t num_segments) {
  for (int64_t i = 0; i < e.size; ++i) {
    if (e.row_ids[i] < 0 || e.row_ids[i] >= num_rows) {
      return "row_ids[" + std::to_string(i) + "] = " + std::to_string(e.row_ids[i]) +
             " is outside [0, " + std::to_string(num_rows) + ")";
    }
    if (e.segment_ids[i] < 0 || e.segment_ids[i] >= num_segments) {
      return "segment_ids[" + std::to_string(i) + "] = " + std::to_string(e.segment_ids[i]) +
             " is outside [0, " + std::to_string(num_segments) + ")";
    }
  }
  return "";
}

namespace internal {

// Entry indices grouped by group[e] in [0, num_groups): entries of group g are
// order[starts[g] .. starts[g + 1]), in input order.
struct Grouping {
  std::vector<int64_t> starts, order;
  Grouping(const int64_t* group, int64_t n, int64_t num_groups)
      : starts(num_groups + 1, 0), order(n) {
    for (int64_t e = 0; e < n; ++e) ++starts[group[e] + 1];
    for (int64_t g = 0; g < num_groups; ++g) starts[g + 1] += starts[g];
    std::vector<int64_t> next(starts.begin(), starts.end() - 1);
    for (int64_t e = 0; e < n; ++e) order[next[group[e]]++] = e;
  }
};

}  // namespace internal

// sums: [num_segments, dim]; square_norms: [num_segments] or nullptr.
inline void PartialSums(const float* rows, int dim, const PartialEntries& entries,
                        int64_t num_segments, float* sums, float* square_norms,
                        const ParallelFor& parallel_for) {
  const internal::Grouping by_segment(entries.segment_ids, entries.size, num_segments);
  parallel_for(num_segments, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) {
      float* out = sums + s * dim;
      std::fill_n(out, dim, 0.0f);
      float norm_sum = 0.0f;
      for (int64_t t = by_segment.starts[s]; t < by_segment.starts[s + 1]; ++t) {
        const int64_t e = by_segment.order[t];
        const float x = entries.weights[e];
        const float* row = rows + entries.row_ids[e] * dim;
        float norm = 0.0f;
        for (int j = 0; j < dim; ++j) {
          out[j] += x * row[j];
          norm += row[j] * row[j];
        }
        norm_sum += x * x * norm;
      }
      if (square_norms != nullptr) square_norms[s] = norm_sum;
    }
  });
}

// row_grads: [num_rows, dim]; dsquare_norms may be nullptr.
inline void PartialSumsGrad(const float* dsums, const float* dsquare_norms,
                            const float* rows, int dim, int64_t num_rows,
                            const PartialEntries& entries, float* row_grads,
                            const ParallelFor& parallel_for) {
  const internal::Grouping by_row(entries.row_ids, entries.size, num_rows);
  parallel_for(num_rows, [&](int64_t begin, int64_t end) {
    for (int64_t u = begin; u < end; ++u) {
      float* out = row_grads + u * dim;
      std::fill_n(out, dim, 0.0f);
      float norm_scale = 0.0f;
      for (int64_t t = by_row.starts[u]; t < by_row.starts[u + 1]; ++t) {
        const int64_t e = by_row.order[t];
        const float x = entries.weights[e];
        const float* upstream = dsums + entries.segment_ids[e] * dim;
        for (int j = 0; j < dim; ++j) out[j] += x * upstream[j];
        if (dsquare_norms != nullptr) {
          norm_scale += 2.0f * x * x * dsquare_norms[entries.segment_ids[e]];
        }
      }
      if (dsquare_norms != nullptr) {
        const float* row = rows + u * dim;
        for (int j = 0; j < dim; ++j) out[j] += norm_scale * row[j];
      }
    }
  });
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_PARTIAL_SUMS_H_
