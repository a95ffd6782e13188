// Core tests of ParseIdLists, without TensorFlow (a stand-in hash: the id's
// length and first byte, enough to see which id a key came from).
#include "../kernels/id_lists.h"

#include <cstdio>
#include <string>
#include <vector>

#include "check.h"

namespace {

uint64_t StandInHash(const char* data, size_t size) {
  return (static_cast<uint64_t>(size) << 8) | static_cast<unsigned char>(data[0]);
}

struct Parsed {
  std::vector<int64_t> keys;
  std::vector<des::IdListShape> shapes;
};

Parsed Parse(const std::vector<std::string>& cells, const des::IdListFormat& format) {
  Parsed parsed;
  auto cell = [&cells](int64_t i) { return std::string_view(cells[i]); };
  const int64_t total = des::ParseIdLists(
      cell, static_cast<int64_t>(cells.size()), format, StandInHash, des::SerialFor,
      &parsed.shapes, [&parsed](int64_t n) {
        parsed.keys.resize(n);
        return parsed.keys.data();
      });
  DES_CHECK_EQ(total, static_cast<int64_t>(parsed.keys.size()));
  return parsed;
}

int64_t Key(const std::string& id, const des::IdListFormat& format) {
  return static_cast<int64_t>((StandInHash(id.data(), id.size()) % format.buckets) ^ format.salt);
}

void TestKeysLengthsAndCuts() {
  des::IdListFormat format{',', 2, uint64_t{1} << 40, 5};
  const Parsed parsed = Parse({"a1,b22,c333", "", "ff", "0123456789abcdef"}, format);
  const std::vector<int64_t> expected = {Key("a1", format), Key("b22", format), Key("ff", format),
                                         Key("0123456789abcdef", format)};
  DES_CHECK(parsed.keys == expected);
  const std::vector<int64_t> kept = {2, 0, 1, 1};
  const std::vector<bool> too_long = {true, false, false, false};
  for (size_t i = 0; i < kept.size(); ++i) {
    DES_CHECK_EQ(parsed.shapes[i].kept, kept[i]);
    DES_CHECK(parsed.shapes[i].well_formed);
    DES_CHECK_EQ(parsed.shapes[i].too_long, too_long[i]);
  }
}

void TestMalformedCellsContributeNothing() {
  des::IdListFormat format{'|', 8, 1000, 0};
  // Empty ids, a 17-digit id, a non-hex digit, another separator, a trailing one.
  const Parsed parsed =
      Parse({"a||b", "0123456789abcdef0", "ag", "a,b", "a|", "|", "A|bC"}, format);
  for (int i = 0; i < 6; ++i) {
    DES_CHECK(!parsed.shapes[i].well_formed);
    DES_CHECK_EQ(parsed.shapes[i].kept, 0);
  }
  DES_CHECK(parsed.shapes[6].well_formed);  // upper-case hex is hex
  DES_CHECK_EQ(parsed.keys.size(), 2u);
}

void TestTooLongCountsEveryPart() {
  des::IdListFormat format{',', 1, 1000, 0};
  const Parsed parsed = Parse({"", "1", "1,2", "1,,2"}, format);
  const std::vector<bool> too_long = {false, false, true, true};  // "" is one part
  for (size_t i = 0; i < too_long.size(); ++i) {
    DES_CHECK_EQ(parsed.shapes[i].too_long, too_long[i]);
  }
}

void TestAFailedAllocationWritesNoKey() {
  std::vector<des::IdListShape> shapes;
  const std::vector<std::string> cells = {"1,2"};
  auto cell = [&cells](int64_t i) { return std::string_view(cells[i]); };
  const int64_t total = des::ParseIdLists(cell, 1, des::IdListFormat{}, StandInHash,
                                          des::SerialFor, &shapes,
                                          [](int64_t) -> int64_t* { return nullptr; });
  DES_CHECK_EQ(total, -1);
}

}  // namespace

int main() {
  TestKeysLengthsAndCuts();
  TestMalformedCellsContributeNothing();
  TestTooLongCountsEveryPart();
  TestAFailedAllocationWritesNoKey();
  std::printf("id_lists_test: all passed\n");
  return 0;
}
