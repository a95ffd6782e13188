// Row id of every value of a ragged batch from its row lengths: row i repeated
// lengths[i] times, what tf.repeat(tf.range(n), lengths) returns. tf.repeat
// materialises a [rows, longest row] mask to compute it; this is one pass over
// the output. TF-independent.
#ifndef DES_TF_OPS_CC_KERNELS_ROW_IDS_H_
#define DES_TF_OPS_CC_KERNELS_ROW_IDS_H_

#include <cstdint>
#include <string>

namespace des {

// Total of lengths[0..rows), or -1 with *error set if a length is negative.
inline int64_t TotalLength(const int64_t* lengths, int64_t rows, std::string* error) {
  int64_t total = 0;
  for (int64_t i = 0; i < rows; ++i) {
    if (lengths[i] < 0) {
      *error = "row " + std::to_string(i) + " has negative length " + std::to_string(lengths[i]);
      return -1;
    }
    total += lengths[i];
  }
  return total;
}

// ids[0..TotalLength) = i, lengths[i] times, for i in row order.
template <typename Id>
void RowIds(const int64_t* lengths, int64_t rows, Id* ids) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t k = 0; k < lengths[i]; ++k) *ids++ = static_cast<Id>(i);
  }
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_ROW_IDS_H_
