// Splitting a block of text into lines exactly as TensorFlow's TextLineDataset
// reads them, so a reader can take many lines per call instead of one tf.data
// element per line (whose bookkeeping costs more than parsing the line). Each
// line ends at '\n', which is dropped; every '\r' in a line is dropped too; at
// the end of the file a last line without '\n' counts if anything but '\r'
// remains of it. TF-independent.
#ifndef DES_TF_OPS_CC_KERNELS_TEXT_LINES_H_
#define DES_TF_OPS_CC_KERNELS_TEXT_LINES_H_

#include <cstdint>
#include <cstring>
#include <string>

namespace des {

// Calls emit(begin, length) for each line of data[0, size), which starts at a
// line's start, until `max_lines` of those calls returned true (a reader
// counting only the lines it keeps); `at_eof`: the data ends the file, so a
// last line without '\n' is emitted too. A line holding '\r' is emitted from
// `scratch` without them. Returns the bytes consumed: through the last emitted
// line's '\n' (all of the data when the file's last line was emitted).
template <typename Emit>
int64_t SplitTextLines(const char* data, int64_t size, bool at_eof, int64_t max_lines,
                       std::string* scratch, Emit&& emit) {
  const char* p = data;
  const char* end = data + size;
  for (int64_t counted = 0; counted < max_lines && p < end;) {
    const char* newline = static_cast<const char*>(std::memchr(p, '\n', end - p));
    if (newline == nullptr && !at_eof) break;
    const char* line_end = newline == nullptr ? end : newline;
    if (std::memchr(p, '\r', line_end - p) == nullptr) {
      if (newline != nullptr || line_end > p) counted += emit(p, line_end - p);
    } else {
      scratch->clear();
      for (const char* c = p; c < line_end; ++c) {
        if (*c != '\r') scratch->push_back(*c);
      }
      if (newline != nullptr || !scratch->empty()) {
        counted += emit(scratch->data(), static_cast<int64_t>(scratch->size()));
      }
    }
    p = newline == nullptr ? end : newline + 1;
  }
  return p - data;
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_TEXT_LINES_H_
