// Parses the multi-hot id lists of a text batch ("3f,a0,17b" per cell) into int64
// keys in one pass per cell, checking each list as it goes. TF-independent: the
// string hash is the caller's (the TF kernel passes TensorFlow's Fingerprint64, so
// keys equal tf.strings.to_hash_bucket_fast's).
//
// It replaces, per multi-hot column of the Criteo reader, a regex match of the
// whole cell, a string split into one string per id, the hash op and the ragged
// cut to max_length: on lists of hundreds of ids those allocate a string per id
// and read every byte four times.
#ifndef DES_TF_OPS_CC_KERNELS_ID_LISTS_H_
#define DES_TF_OPS_CC_KERNELS_ID_LISTS_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "parallel_for.h"

namespace des {

// How the ids of a cell are read and turned into keys.
struct IdListFormat {
  char separator = ',';
  int64_t max_length = 1;  // ids kept per cell (the first ones); >= 1
  uint64_t buckets = 1;    // key = (hash(id) % buckets) ^ salt
  uint64_t salt = 0;
};

// What the first pass learns of one cell.
struct IdListShape {
  int64_t kept = 0;       // ids the cell contributes (0 when empty or malformed)
  bool well_formed = true;
  bool too_long = false;  // more ids than max_length (an empty cell counts as one id)
};

namespace internal {

inline bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Calls id(begin, length) for each separator-delimited part of `cell` (an empty
// cell is one empty part, as a string split gives) while id returns true.
template <typename IdFn>
void ForEachPart(std::string_view cell, char separator, IdFn&& id) {
  size_t begin = 0;
  while (true) {
    size_t end = cell.find(separator, begin);
    if (end == std::string_view::npos) end = cell.size();
    if (!id(begin, end - begin) || end == cell.size()) return;
    begin = end + 1;
  }
}

}  // namespace internal

// The shape of one cell: well formed when empty or 1-16 hex digits per id, ids
// separated by single separators (the reader's regex, ([0-9a-fA-F]{1,16}(,...)*)?).
inline IdListShape ShapeOf(std::string_view cell, const IdListFormat& format) {
  IdListShape shape;
  int64_t parts = 0;
  internal::ForEachPart(cell, format.separator, [&](size_t begin, size_t length) {
    ++parts;
    bool hex = length >= 1 && length <= 16;
    for (size_t i = begin; hex && i < begin + length; ++i) hex = internal::IsHexDigit(cell[i]);
    shape.well_formed &= hex || cell.empty();
    return true;  // count every part: too_long counts them all
  });
  shape.too_long = parts > format.max_length;
  shape.kept = (shape.well_formed && !cell.empty())
                   ? (parts < format.max_length ? parts : format.max_length)
                   : 0;
  return shape;
}

// Keys of cells[0..n) into keys, the cells' kept ids back to back, and each cell's
// shape into shapes[0..n); returns the number of keys. Hash(const char*, size_t)
// -> uint64_t is the id hash. Cells are read in parallel, twice (shape, then keys
// at their offsets), so `keys` can be sized exactly between the two passes:
// `allocate(total)` returns storage for the keys, or null to stop there (-1 is
// returned and no key is written).
template <typename Cells, typename Hash, typename Allocate>
int64_t ParseIdLists(const Cells& cells, int64_t n, const IdListFormat& format,
                     const Hash& hash, const ParallelFor& parallel_for,
                     std::vector<IdListShape>* shapes, Allocate&& allocate) {
  shapes->resize(n);
  parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) (*shapes)[i] = ShapeOf(cells(i), format);
  });
  std::vector<int64_t> offsets(n + 1, 0);
  for (int64_t i = 0; i < n; ++i) offsets[i + 1] = offsets[i] + (*shapes)[i].kept;
  int64_t* keys = allocate(offsets[n]);
  if (keys == nullptr) return -1;
  parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const std::string_view cell = cells(i);
      int64_t* out = keys + offsets[i];
      int64_t left = (*shapes)[i].kept;
      internal::ForEachPart(cell, format.separator, [&](size_t start, size_t length) {
        if (left == 0) return false;
        const uint64_t bucket = hash(cell.data() + start, length) % format.buckets;
        *out++ = static_cast<int64_t>(bucket ^ format.salt);
        return --left > 0;
      });
    }
  });
  return offsets[n];
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_ID_LISTS_H_
