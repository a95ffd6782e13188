// Core tests of GroupByOwner against ShardOwner and a plain first-occurrence
// reference, without TensorFlow.
#include "../kernels/group_by_owner.h"

#include <cstdio>
#include <vector>

#include "check.h"

namespace {

void TestGroupsDistinctKeysAndOccurrencesByOwner() {
  const int32_t shards = 3;
  const uint64_t seed = 7;
  std::vector<int64_t> keys;
  for (int64_t i = 0; i < 5000; ++i) keys.push_back((i * i * 7919) % 613 - 300);
  const int64_t n = static_cast<int64_t>(keys.size());
  std::vector<int64_t> distinct(n), index(n);
  std::vector<int32_t> distinct_counts(shards), order(n), counts(shards);
  des::GroupByOwnerScratch scratch;
  const des::OwnerGroups<int64_t> out{distinct.data(), distinct_counts.data(), index.data(),
                                      order.data(), counts.data()};
  const int64_t num_distinct =
      des::GroupByOwner(keys.data(), n, seed, shards, des::SerialFor, &scratch, out);
  // Reference: for each owner in turn, its keys in order of first occurrence.
  std::vector<int64_t> expected;
  std::vector<int32_t> expected_order;
  for (int32_t r = 0; r < shards; ++r) {
    int64_t owned = 0;
    for (int64_t p = 0; p < n; ++p) {
      if (des::ShardOwner(keys[p], seed, shards) != r) continue;
      expected_order.push_back(static_cast<int32_t>(p));
      ++owned;
      bool seen = false;
      for (int64_t q = 0; q < p; ++q) seen = seen || keys[q] == keys[p];
      if (!seen) expected.push_back(keys[p]);
    }
    DES_CHECK_EQ(counts[r], owned);
  }
  DES_CHECK_EQ(num_distinct, static_cast<int64_t>(expected.size()));
  distinct.resize(num_distinct);
  DES_CHECK(distinct == expected);
  DES_CHECK(order == expected_order);
  int64_t start = 0;
  for (int32_t r = 0; r < shards; ++r) {
    for (int64_t u = start; u < start + distinct_counts[r]; ++u) {
      DES_CHECK_EQ(des::ShardOwner(distinct[u], seed, shards), r);
    }
    start += distinct_counts[r];
  }
  DES_CHECK_EQ(start, num_distinct);
  for (int64_t p = 0; p < n; ++p) DES_CHECK_EQ(distinct[index[p]], keys[p]);
}

void TestNoKeys() {
  des::GroupByOwnerScratch scratch;
  std::vector<int32_t> distinct_counts(2, -1), counts(2, -1);
  const des::OwnerGroups<int32_t> out{nullptr, distinct_counts.data(), nullptr, nullptr,
                                      counts.data()};
  DES_CHECK_EQ(des::GroupByOwner(nullptr, 0, 0, 2, des::SerialFor, &scratch, out), 0);
  DES_CHECK(distinct_counts == std::vector<int32_t>({0, 0}));
  DES_CHECK(counts == std::vector<int32_t>({0, 0}));
}

}  // namespace

int main() {
  TestGroupsDistinctKeysAndOccurrencesByOwner();
  TestNoKeys();
  std::printf("group_by_owner_test: all passed\n");
  return 0;
}
