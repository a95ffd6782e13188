// Core tests of RowIds, without TensorFlow.
#include "../kernels/row_ids.h"

#include <cstdio>
#include <string>
#include <vector>

#include "check.h"

namespace {

void TestRowIdsRepeatEachRow() {
  const std::vector<int64_t> lengths = {2, 0, 3, 0, 1};
  std::string error;
  DES_CHECK_EQ(des::TotalLength(lengths.data(), 5, &error), 6);
  DES_CHECK(error.empty());
  std::vector<int32_t> ids(6);
  des::RowIds(lengths.data(), 5, ids.data());
  const std::vector<int32_t> expected = {0, 0, 2, 2, 2, 4};
  DES_CHECK(ids == expected);
}

void TestNoRowsAndNegativeLengths() {
  std::string error;
  DES_CHECK_EQ(des::TotalLength(nullptr, 0, &error), 0);
  const std::vector<int64_t> lengths = {1, -2};
  DES_CHECK_EQ(des::TotalLength(lengths.data(), 2, &error), -1);
  DES_CHECK(error.find("row 1") != std::string::npos);
}

}  // namespace

int main() {
  TestRowIdsRepeatEachRow();
  TestNoRowsAndNegativeLengths();
  std::printf("row_ids_test: all passed\n");
  return 0;
}
