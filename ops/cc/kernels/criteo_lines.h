// Checks and converts the fixed columns of Criteo-format text lines (label, integer
// columns, one-hot hex id columns, then any multi-hot columns, tab-separated) in one
// pass per line. TF-independent: the string hash is the caller's (the TF kernel passes
// TensorFlow's Fingerprint64, so keys equal tf.strings.to_hash_bucket_fast's).
//
// It replaces, in the Criteo reader, a string split into one string per cell, its
// padding into a dense [lines, columns] matrix, a regex match per cell, the integer
// conversion and one hash op per categorical column: those allocate a string per
// cell and read every byte several times.
#ifndef DES_TF_OPS_CC_KERNELS_CRITEO_LINES_H_
#define DES_TF_OPS_CC_KERNELS_CRITEO_LINES_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "id_lists.h"  // internal::IsHexDigit, shared with the multi-hot cells
#include "parallel_for.h"

namespace des {

// The column layout and the keys of the categorical columns.
struct CriteoLineFormat {
  int64_t num_integer = 13;
  int64_t num_categorical = 26;
  int64_t num_trailing = 0;    // multi-hot columns after the categoricals, passed on as text
  uint64_t buckets = 1;        // key = (hash(id) % buckets) ^ salts[column]
  std::vector<uint64_t> salts;  // one per categorical column

  int64_t num_columns() const { return 1 + num_integer + num_categorical + num_trailing; }
};

// Why a line is malformed: the first failing check, in the reader's REASONS order
// (des_tf/data/malformed.py); the multi-hot check comes after these.
enum LineReason : int32_t {
  kWellFormed = -1,
  kColumnCount = 0,
  kLabel = 1,
  kInteger = 2,
  kHexId = 3,
};

// Where one line's values go; every array has room for its line's values.
struct CriteoLineOutput {
  float* label;
  int64_t* integers;        // [num_integer]; 0 where the cell is empty
  bool* integer_present;    // [num_integer]; false where the cell is empty
  int64_t* keys;            // [num_categorical]
  std::string_view* trailing;  // [num_trailing]: the cells, "" past the line's end
  int32_t* reason;
};

namespace internal {

// An integer cell: empty, or -?[0-9]{1,18} (always within int64).
inline bool ParseInteger(std::string_view cell, int64_t* value, bool* present) {
  *value = 0;
  *present = !cell.empty();
  if (cell.empty()) return true;
  const bool negative = cell[0] == '-';
  const std::string_view digits = cell.substr(negative ? 1 : 0);
  if (digits.empty() || digits.size() > 18) return false;
  int64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *value = negative ? -v : v;
  return true;
}

// A categorical cell: empty, or 1-16 hex digits.
inline bool IsHexId(std::string_view cell) {
  if (cell.size() > 16) return false;
  for (char c : cell) {
    if (!IsHexDigit(c)) return false;
  }
  return true;
}

}  // namespace internal

// Converts one line into `out`: all values of a well-formed line; of a malformed one
// (reason >= 0) whatever it got to, the rest zero (the reader drops the line).
template <typename Hash>
void ParseCriteoLine(std::string_view line, const CriteoLineFormat& format, const Hash& hash,
                     const CriteoLineOutput& out) {
  int32_t reason = kWellFormed;
  auto fail = [&reason](int32_t why) {
    if (reason == kWellFormed || why < reason) reason = why;
  };
  const int64_t int_end = 1 + format.num_integer;
  const int64_t cat_end = int_end + format.num_categorical;
  *out.label = 0.0f;
  for (int64_t i = 0; i < format.num_integer; ++i) {
    out.integers[i] = 0;
    out.integer_present[i] = false;
  }
  for (int64_t i = 0; i < format.num_categorical; ++i) out.keys[i] = 0;
  for (int64_t i = 0; i < format.num_trailing; ++i) out.trailing[i] = std::string_view();
  int64_t column = 0;
  size_t begin = 0;
  while (true) {  // each tab-separated cell; cells past the layout only count
    size_t end = line.find('\t', begin);
    if (end == std::string_view::npos) end = line.size();
    const std::string_view cell = line.substr(begin, end - begin);
    if (column == 0) {
      if (cell == "0" || cell == "1") {
        *out.label = cell[0] == '1' ? 1.0f : 0.0f;
      } else {
        fail(kLabel);
      }
    } else if (column < int_end) {
      const int64_t i = column - 1;
      if (!internal::ParseInteger(cell, &out.integers[i], &out.integer_present[i])) {
        fail(kInteger);
      }
    } else if (column < cat_end) {
      const int64_t i = column - int_end;
      if (internal::IsHexId(cell)) {
        out.keys[i] = static_cast<int64_t>(
            (hash(cell.data(), cell.size()) % format.buckets) ^ format.salts[i]);
      } else {
        fail(kHexId);
      }
    } else if (column < format.num_columns()) {
      out.trailing[column - cat_end] = cell;
    }
    ++column;
    if (end == line.size()) break;
    begin = end + 1;
  }
  // A line with missing or extra cells is malformed whatever they hold.
  if (column != format.num_columns()) fail(kColumnCount);
  *out.reason = reason;
}

// Parses lines[0..n) (Lines: int64_t -> std::string_view) into the row-major outputs,
// `parallel_for` splitting the lines.
template <typename Lines, typename Hash>
void ParseCriteoLines(const Lines& lines, int64_t n, const CriteoLineFormat& format,
                      const Hash& hash, const ParallelFor& parallel_for, float* labels,
                      int64_t* integers, bool* integer_present, int64_t* keys,
                      std::string_view* trailing, int32_t* reasons) {
  parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      ParseCriteoLine(lines(i), format, hash,
                      CriteoLineOutput{labels + i, integers + i * format.num_integer,
                                       integer_present + i * format.num_integer,
                                       keys + i * format.num_categorical,
                                       trailing + i * format.num_trailing, reasons + i});
    }
  });
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_CRITEO_LINES_H_
