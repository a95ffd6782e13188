// Core tests of the DES partial sums against a direct loop, without TensorFlow.
#include "../kernels/partial_sums.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "check.h"

namespace {

des::ParallelFor TwoThreads() {
  return [](int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
    std::thread other(fn, n / 2, n);
    if (n / 2 > 0) fn(0, n / 2);
    other.join();
  };
}

bool Close(float a, float b) { return std::fabs(a - b) <= 1e-5f * (1.0f + std::fabs(b)); }

void TestForwardAndBackwardMatchDirectLoops() {
  constexpr int kDim = 5;
  constexpr int64_t kRows = 40, kSegments = 30, kEntries = 500;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> value(-1, 1);
  std::vector<float> rows(kRows * kDim), dsums(kSegments * kDim), dnorms(kSegments);
  for (float& v : rows) v = value(rng);
  for (float& v : dsums) v = value(rng);
  for (float& v : dnorms) v = value(rng);
  std::vector<int64_t> row_ids(kEntries), segment_ids(kEntries);
  std::vector<float> weights(kEntries);
  for (int64_t e = 0; e < kEntries; ++e) {
    row_ids[e] = rng() % kRows;
    segment_ids[e] = rng() % (kSegments - 3);  // the last segments stay empty
    weights[e] = value(rng);
  }
  const des::PartialEntries entries{row_ids.data(), segment_ids.data(), weights.data(), kEntries};
  DES_CHECK(des::ValidateEntries(entries, kRows, kSegments).empty());

  std::vector<float> sums(kSegments * kDim), norms(kSegments);
  des::PartialSums(rows.data(), kDim, entries, kSegments, sums.data(), norms.data(), TwoThreads());
  std::vector<float> want_sums(kSegments * kDim, 0), want_norms(kSegments, 0);
  std::vector<float> want_grads(kRows * kDim, 0);
  for (int64_t e = 0; e < kEntries; ++e) {
    float norm = 0;
    for (int j = 0; j < kDim; ++j) {
      const float v = rows[row_ids[e] * kDim + j];
      want_sums[segment_ids[e] * kDim + j] += weights[e] * v;
      norm += v * v;
    }
    want_norms[segment_ids[e]] += weights[e] * weights[e] * norm;
    for (int j = 0; j < kDim; ++j) {
      want_grads[row_ids[e] * kDim + j] +=
          weights[e] * dsums[segment_ids[e] * kDim + j] +
          2 * weights[e] * weights[e] * dnorms[segment_ids[e]] * rows[row_ids[e] * kDim + j];
    }
  }
  for (size_t i = 0; i < sums.size(); ++i) DES_CHECK(Close(sums[i], want_sums[i]));
  for (int64_t s = 0; s < kSegments; ++s) DES_CHECK(Close(norms[s], want_norms[s]));

  std::vector<float> grads(kRows * kDim);
  des::PartialSumsGrad(dsums.data(), dnorms.data(), rows.data(), kDim, kRows, entries,
                       grads.data(), TwoThreads());
  for (size_t i = 0; i < grads.size(); ++i) DES_CHECK(Close(grads[i], want_grads[i]));

  // Without the FM term, and identical bits whatever the thread count.
  std::vector<float> serial(kRows * kDim), threaded(kRows * kDim);
  des::PartialSumsGrad(dsums.data(), nullptr, rows.data(), kDim, kRows, entries, serial.data(),
                       des::SerialFor);
  des::PartialSumsGrad(dsums.data(), nullptr, rows.data(), kDim, kRows, entries,
                       threaded.data(), TwoThreads());
  DES_CHECK(serial == threaded);
}

void TestValidationNamesTheBadEntry() {
  const std::vector<int64_t> rows = {0, 7}, segments = {0, 0};
  const std::vector<float> weights = {1, 1};
  const des::PartialEntries entries{rows.data(), segments.data(), weights.data(), 2};
  const std::string error = des::ValidateEntries(entries, 5, 1);
  DES_CHECK(error == "row_ids[1] = 7 is outside [0, 5)");
}

}  // namespace

int main() {
  TestForwardAndBackwardMatchDirectLoops();
  TestValidationNamesTheBadEntry();
  std::printf("partial_sums_test: all passed\n");
  return 0;
}
