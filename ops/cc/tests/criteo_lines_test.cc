// Core tests of ParseCriteoLines, without TensorFlow (a stand-in hash: the id's length
// and first byte, enough to see which id a key came from).
#include "../kernels/criteo_lines.h"

#include <cstdio>
#include <string>
#include <vector>

#include "check.h"

namespace {

uint64_t StandInHash(const char* data, size_t size) {
  return (static_cast<uint64_t>(size) << 8) | (size ? static_cast<unsigned char>(data[0]) : 0);
}

// Two integer columns, two categorical columns (salts 1 and 2), one trailing column.
des::CriteoLineFormat Format() {
  des::CriteoLineFormat format;
  format.num_integer = 2;
  format.num_categorical = 2;
  format.num_trailing = 1;
  format.buckets = uint64_t{1} << 40;
  format.salts = {1, 2};
  return format;
}

struct Parsed {
  std::vector<float> labels;
  std::vector<int64_t> integers;
  std::vector<char> present;  // bool storage without vector<bool>'s packing
  std::vector<int64_t> keys;
  std::vector<std::string_view> trailing;
  std::vector<int32_t> reasons;
};

Parsed Parse(const std::vector<std::string>& lines) {
  const des::CriteoLineFormat format = Format();
  const int64_t n = static_cast<int64_t>(lines.size());
  Parsed p{std::vector<float>(n), std::vector<int64_t>(n * 2), std::vector<char>(n * 2),
           std::vector<int64_t>(n * 2), std::vector<std::string_view>(n),
           std::vector<int32_t>(n)};
  auto line = [&lines](int64_t i) { return std::string_view(lines[i]); };
  des::ParseCriteoLines(line, n, format, StandInHash, des::SerialFor, p.labels.data(),
                        p.integers.data(), reinterpret_cast<bool*>(p.present.data()),
                        p.keys.data(), p.trailing.data(), p.reasons.data());
  return p;
}

int64_t Key(const std::string& id, uint64_t salt) {
  return static_cast<int64_t>((StandInHash(id.data(), id.size()) % Format().buckets) ^ salt);
}

void TestAWellFormedLine() {
  const Parsed p = Parse({"1\t-12\t\ta0f\t\tx,y", "0\t7\t123456789012345678\tB\t0\t"});
  DES_CHECK(p.reasons == std::vector<int32_t>({-1, -1}));
  DES_CHECK(p.labels == std::vector<float>({1.0f, 0.0f}));
  DES_CHECK(p.integers == std::vector<int64_t>({-12, 0, 7, 123456789012345678}));
  DES_CHECK(p.present == std::vector<char>({1, 0, 1, 1}));
  DES_CHECK(p.keys == std::vector<int64_t>({Key("a0f", 1), Key("", 2), Key("B", 1), Key("0", 2)}));
  DES_CHECK(p.trailing[0] == "x,y" && p.trailing[1].empty());
}

void TestEachReasonAndTheFirstOneWins() {
  const Parsed p = Parse({
      "2\t1\t2\ta\tb\t",                    // label
      "1\t1x\t2\ta\tb\t",                   // integer
      "1\t-\t2\ta\tb\t",                    // a lone minus
      "1\t1\t1234567890123456789\ta\tb\t",  // 19 digits
      "1\t1\t2\tag\tb\t",                   // hex
      "1\t1\t2\ta\t0123456789abcdef0\t",    // 17 hex digits
      "1\t1\t2\ta\tb",                      // a column short
      "1\t1\t2\ta\tb\t\t",                  // a column too many
      "x\tx\t2\ta\tb",                      // short, bad label and integer: the count first
      "",                                   // empty
  });
  DES_CHECK(p.reasons == std::vector<int32_t>({1, 2, 2, 2, 3, 3, 0, 0, 0, 0}));
}

}  // namespace

int main() {
  TestAWellFormedLine();
  TestEachReasonAndTheFirstOneWins();
  std::printf("criteo_lines_test: all passed\n");
  return 0;
}
