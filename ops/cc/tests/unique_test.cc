// Core tests of UniqueKeys against a plain first-occurrence reference, without
// TensorFlow.
#include "../kernels/unique.h"

#include <cstdio>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "check.h"

namespace {

// std::thread-backed ParallelFor: two halves, as a 2-core kernel would run.
void TwoThreads(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  std::thread other([&] { fn(0, n / 2); });
  if (n - n / 2 > 0) fn(n / 2, n);
  other.join();
}

void CheckAgainstReference(const std::vector<int64_t>& keys, const des::ParallelFor& pf) {
  const int64_t n = static_cast<int64_t>(keys.size());
  std::vector<int64_t> unique(n), index(n);
  int64_t num_unique = -1;
  des::UniqueScratch scratch;
  des::UniqueKeys(keys.data(), n, pf, &scratch, unique.data(), index.data(), &num_unique);
  std::unordered_map<int64_t, int64_t> seen;
  std::vector<int64_t> expected_unique;
  for (int64_t p = 0; p < n; ++p) {
    auto [it, inserted] = seen.emplace(keys[p], static_cast<int64_t>(expected_unique.size()));
    if (inserted) expected_unique.push_back(keys[p]);
    DES_CHECK_EQ(index[p], it->second);
  }
  DES_CHECK_EQ(num_unique, static_cast<int64_t>(expected_unique.size()));
  for (int64_t u = 0; u < num_unique; ++u) DES_CHECK_EQ(unique[u], expected_unique[u]);
}

void TestSmallAndEdgeCases() {
  CheckAgainstReference({}, des::SerialFor);
  CheckAgainstReference({7}, des::SerialFor);
  CheckAgainstReference({0, INT64_MIN, INT64_MAX, -1, 0, -1, INT64_MIN}, des::SerialFor);
  CheckAgainstReference(std::vector<int64_t>(1000, 42), des::SerialFor);
}

// Enough positions for many hash groups, Zipf-like repeats, both thread hooks.
void TestManyGroupsMatchReference() {
  std::mt19937_64 rng(3);
  for (int64_t n : {8191, 8193, 100000, 300000}) {
    std::vector<int64_t> keys(n);
    for (auto& k : keys) {
      const uint64_t r = rng();
      k = static_cast<int64_t>((r % 7 == 0) ? r : (r % 5000) * 0x9e3779b97f4a7c15ULL);
    }
    CheckAgainstReference(keys, des::SerialFor);
    CheckAgainstReference(keys, TwoThreads);
  }
}

// One scratch for calls of shrinking and growing sizes, as a kernel's thread reuses it.
void TestScratchReusedAcrossCalls() {
  std::mt19937_64 rng(5);
  des::UniqueScratch scratch;
  for (int64_t n : {50000, 10, 70000, 0, 9000}) {
    std::vector<int64_t> keys(n);
    for (auto& k : keys) k = static_cast<int64_t>(rng() % 3000);
    std::vector<int64_t> unique(n), index(n), fresh_unique(n), fresh_index(n);
    int64_t num_unique = 0, fresh_num_unique = 0;
    des::UniqueKeys(keys.data(), n, des::SerialFor, &scratch, unique.data(), index.data(),
                    &num_unique);
    des::UniqueScratch fresh;
    des::UniqueKeys(keys.data(), n, des::SerialFor, &fresh, fresh_unique.data(),
                    fresh_index.data(), &fresh_num_unique);
    DES_CHECK(num_unique == fresh_num_unique && unique == fresh_unique && index == fresh_index);
  }
}

void TestInt32Index() {
  std::vector<int64_t> keys = {5, 9, 5, 1, 9};
  std::vector<int64_t> unique(keys.size());
  std::vector<int32_t> index(keys.size());
  int64_t num_unique = 0;
  des::UniqueScratch scratch;
  des::UniqueKeys(keys.data(), 5, des::SerialFor, &scratch, unique.data(), index.data(),
                  &num_unique);
  DES_CHECK_EQ(num_unique, 3);
  const std::vector<int32_t> expected = {0, 1, 0, 2, 1};
  for (int i = 0; i < 5; ++i) DES_CHECK_EQ(index[i], expected[i]);
}

}  // namespace

int main() {
  TestSmallAndEdgeCases();
  TestManyGroupsMatchReference();
  TestScratchReusedAcrossCalls();
  TestInt32Index();
  std::printf("unique_test: all passed\n");
  return 0;
}
