// Core tests of shard ownership, without TensorFlow.
#include "../kernels/shard_owner.h"

#include <cmath>
#include <cstdio>
#include <vector>

#include "check.h"

namespace {

// Known-answer values pin the mixer: changing it would silently move rows.
void TestMix64KnownAnswers() {
  DES_CHECK_EQ(des::Mix64(0), 0ULL);
  DES_CHECK_EQ(des::Mix64(1), 0x5692161d100b05e5ULL);
  DES_CHECK_EQ(des::Mix64(0x0123456789abcdefULL), 0xb2c058e4ebb5112cULL);
}

void TestOwnersInRangeAndDeterministic() {
  std::vector<int64_t> keys = {0, 1, -1, INT64_MAX, INT64_MIN, 42};
  for (int32_t n : {1, 2, 3, 7, 64}) {
    std::vector<int32_t> a(keys.size()), b(keys.size());
    des::ShardOwners(keys.data(), keys.size(), 17, n, a.data());
    des::ShardOwners(keys.data(), keys.size(), 17, n, b.data());
    for (size_t i = 0; i < keys.size(); ++i) {
      DES_CHECK(a[i] >= 0 && a[i] < n);
      DES_CHECK_EQ(a[i], b[i]);
    }
  }
}

// Sequential ids (the worst case for `key mod N`) land uniformly: a chi-square
// statistic far above its N-1 degrees of freedom would mean clustering.
void TestSequentialKeysUniform() {
  constexpr int32_t kShards = 7;
  constexpr int64_t kKeys = 700000;
  std::vector<int64_t> counts(kShards, 0);
  for (int64_t k = 0; k < kKeys; ++k) ++counts[des::ShardOwner(k, 0, kShards)];
  const double expected = static_cast<double>(kKeys) / kShards;
  double chi2 = 0;
  for (int64_t c : counts) chi2 += (c - expected) * (c - expected) / expected;
  // df = 6: P(chi2 > 30) < 1e-4.
  DES_CHECK(chi2 < 30.0);
}

void TestSeedChangesOwnership() {
  int moved = 0;
  for (int64_t k = 0; k < 1000; ++k) {
    moved += des::ShardOwner(k, 1, 4) != des::ShardOwner(k, 2, 4);
  }
  DES_CHECK(moved > 600 && moved < 900);  // ~3/4 move for 4 shards
}

}  // namespace

int main() {
  TestMix64KnownAnswers();
  TestOwnersInRangeAndDeterministic();
  TestSequentialKeysUniform();
  TestSeedChangesOwnership();
  std::printf("shard_owner_test: all passed\n");
  return 0;
}
