// Core tests of SplitTextLines, without TensorFlow: the lines TextLineDataset
// reads from the same bytes (checked against it in tests/test_data.py).
#include "../kernels/text_lines.h"

#include <cstdio>
#include <string>
#include <vector>

#include "check.h"

namespace {

struct Split {
  std::vector<std::string> lines;
  int64_t consumed;
};

// The lines of `text`; with `every_other`, only every other one counts toward
// max_lines (a reader keeping half the lines).
Split SplitAll(const std::string& text, bool at_eof, int64_t max_lines = 100,
               bool every_other = false) {
  Split split;
  std::string scratch;
  split.consumed = des::SplitTextLines(
      text.data(), static_cast<int64_t>(text.size()), at_eof, max_lines, &scratch,
      [&](const char* begin, int64_t length) {
        split.lines.emplace_back(begin, length);
        return !every_other || split.lines.size() % 2 == 1;
      });
  return split;
}

void TestLinesAsTextLineDatasetReadsThem() {
  const Split split = SplitAll("a\r\n\nb\r\n\r\nc\rd\n  x", true);
  const std::vector<std::string> expected = {"a", "", "b", "", "cd", "  x"};
  DES_CHECK(split.lines == expected);
  DES_CHECK_EQ(split.consumed, 16);
  DES_CHECK(SplitAll("", true).lines.empty());
  DES_CHECK(SplitAll("\n", true).lines == std::vector<std::string>({""}));
  DES_CHECK(SplitAll("a\n\r", true).lines == std::vector<std::string>({"a"}));
  DES_CHECK(SplitAll("a\n\r\rb", true).lines == std::vector<std::string>({"a", "b"}));
}

void TestStopsAtMaxLinesAndAtAnUnfinishedLine() {
  const Split first = SplitAll("ab\ncd\nef\n", true, 2);
  DES_CHECK(first.lines == std::vector<std::string>({"ab", "cd"}));
  DES_CHECK_EQ(first.consumed, 6);
  const Split unfinished = SplitAll("ab\ncd", false);  // more of "cd" may follow
  DES_CHECK(unfinished.lines == std::vector<std::string>({"ab"}));
  DES_CHECK_EQ(unfinished.consumed, 3);
  const Split kept = SplitAll("a\nb\nc\nd\ne\n", true, 2, true);  // a, c count; b does not
  DES_CHECK(kept.lines == std::vector<std::string>({"a", "b", "c"}));
  DES_CHECK_EQ(kept.consumed, 6);
}

}  // namespace

int main() {
  TestLinesAsTextLineDatasetReadsThem();
  TestStopsAtMaxLinesAndAtAnUnfinishedLine();
  std::printf("text_lines_test: all passed\n");
  return 0;
}
