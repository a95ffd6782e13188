// Core tests of the embedding table, without TensorFlow: growth, deletion,
// deterministic initialisation, gradient application, eviction and a
// multi-threaded stress test.
#include "../kernels/embedding_table.h"

#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "check.h"

namespace {

using des::EmbeddingTable;
using des::TableConfig;

TableConfig Config(int dim, const char* initializer = "uniform",
                   const char* optimizer = "sgd") {
  TableConfig config;
  config.dim = dim;
  DES_CHECK(des::ParseInitializer(initializer, 0.5f, &config.initializer).empty());
  DES_CHECK(des::ParseOptimizer(optimizer, {}, {}, &config.optimizer).empty());
  config.seed = 7;
  return config;
}

// Splits [0, n) over `threads` std::threads.
des::ParallelFor ThreadedFor(int threads) {
  return [threads](int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      const int64_t begin = n * t / threads, end = n * (t + 1) / threads;
      if (begin < end) pool.emplace_back(fn, begin, end);
    }
    for (auto& thread : pool) thread.join();
  };
}

std::vector<float> Initial(const TableConfig& config, int64_t key) {
  std::vector<float> row(config.dim);
  des::InitializeRow(config.initializer, config.seed, key, config.dim, row.data());
  return row;
}

// Finds every key; checks presence matches `expect_present(key)` and values
// of present keys equal their initial values.
template <typename Pred>
void CheckFind(const EmbeddingTable& table, const std::vector<int64_t>& keys,
               Pred expect_present) {
  const int dim = table.dim();
  std::vector<float> values(keys.size() * dim);
  std::unique_ptr<bool[]> found(new bool[keys.size()]);
  const std::vector<float> fallback(dim, -99.0f);
  table.Find(keys.data(), keys.size(), fallback.data(), values.data(), found.get(),
             ThreadedFor(3));
  for (size_t i = 0; i < keys.size(); ++i) {
    DES_CHECK_EQ(found[i], expect_present(keys[i]));
    const std::vector<float> want =
        found[i] ? Initial(table.config(), keys[i]) : fallback;
    for (int j = 0; j < dim; ++j) DES_CHECK_EQ(values[i * dim + j], want[j]);
  }
}

void TestGrowthFromTinyCapacityKeepsEveryRow() {
  TableConfig config = Config(4);
  config.capacity_hint = 1;
  EmbeddingTable table(config);
  constexpr int64_t kKeys = 1 << 20, kBatch = 1 << 16;
  std::vector<int64_t> keys(kKeys);
  for (int64_t i = 0; i < kKeys; ++i) keys[i] = i * 7919 - 123456789;
  std::vector<float> values(kBatch * 4);
  for (int64_t start = 0; start < kKeys; start += kBatch) {
    table.LookupOrInsert(keys.data() + start, kBatch, values.data(), ThreadedFor(2));
    for (int j = 0; j < 4; ++j) {
      DES_CHECK_EQ(values[(kBatch - 1) * 4 + j], Initial(config, keys[start + kBatch - 1])[j]);
    }
  }
  DES_CHECK_EQ(table.Size(), kKeys);
  CheckFind(table, keys, [](int64_t) { return true; });
  const des::TableRows rows = table.Export();
  DES_CHECK_EQ(static_cast<int64_t>(rows.keys.size()), kKeys);
  for (size_t i = 1; i < rows.keys.size(); ++i) DES_CHECK(rows.keys[i - 1] < rows.keys[i]);
}

void TestRemoveKeepsOtherKeysFindable() {
  EmbeddingTable table(Config(3));
  std::vector<int64_t> keys(20000);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = static_cast<int64_t>(i) * 31;
  std::vector<float> values(keys.size() * 3);
  table.LookupOrInsert(keys.data(), keys.size(), values.data(), des::SerialFor);
  std::vector<int64_t> doomed;
  for (int64_t k : keys) {
    if (k % 3 == 0) doomed.push_back(k);
  }
  doomed.push_back(-5);  // absent: not reported
  const std::vector<int64_t> removed = table.Remove(doomed.data(), doomed.size());
  DES_CHECK_EQ(removed.size(), doomed.size() - 1);
  DES_CHECK_EQ(table.Size(), static_cast<int64_t>(keys.size() - removed.size()));
  CheckFind(table, keys, [](int64_t k) { return k % 3 != 0; });
  // Reinserting reuses freed rows and restores the deterministic initial values.
  table.LookupOrInsert(keys.data(), keys.size(), values.data(), des::SerialFor);
  DES_CHECK_EQ(table.Size(), static_cast<int64_t>(keys.size()));
  CheckFind(table, keys, [](int64_t) { return true; });
}

void TestInitialValuesIgnoreInsertionOrder() {
  const TableConfig config = Config(8, "truncated_normal");
  EmbeddingTable forward(config), backward(config);
  std::vector<int64_t> keys = {5, -1, 1LL << 62, 0, 77};
  std::vector<int64_t> reversed(keys.rbegin(), keys.rend());
  std::vector<float> a(keys.size() * 8), b(keys.size() * 8);
  forward.LookupOrInsert(keys.data(), keys.size(), a.data(), des::SerialFor);
  backward.LookupOrInsert(reversed.data(), reversed.size(), b.data(), ThreadedFor(2));
  for (size_t i = 0; i < keys.size(); ++i) {
    for (int j = 0; j < 8; ++j) DES_CHECK_EQ(a[i * 8 + j], b[(keys.size() - 1 - i) * 8 + j]);
  }
}

void TestTruncatedNormalMoments() {
  const TableConfig config = Config(1, "truncated_normal");  // stddev 0.5
  double sum = 0, sum_sq = 0;
  constexpr int kSamples = 200000;
  for (int k = 0; k < kSamples; ++k) {
    const float v = Initial(config, k)[0];
    DES_CHECK(std::fabs(v) <= 1.0f);  // cut at 2 stddev
    sum += v;
    sum_sq += v * v;
  }
  const double mean = sum / kSamples, sd = std::sqrt(sum_sq / kSamples - mean * mean);
  DES_CHECK(std::fabs(mean) < 0.005);
  DES_CHECK(std::fabs(sd - 0.5 * 0.8796) < 0.005);  // sd of N(0,1) cut at +-2
}

void TestApplySumsDuplicatesAndHonoursNonFinitePolicy() {
  TableConfig config = Config(2, "zeros");
  EmbeddingTable table(config);
  const std::vector<int64_t> keys = {4, 9, 4, 4};
  const std::vector<float> grads = {1, 2, 10, 20, 100, 200, 1000, 2000};
  int64_t updated = -1;
  DES_CHECK(table.ApplyGradients(keys.data(), 4, grads.data(), 3, 0.5f, ThreadedFor(2),
                                 &updated).empty());
  DES_CHECK_EQ(updated, 2);  // two distinct keys
  const des::TableRows rows = table.Export();
  DES_CHECK_EQ(rows.keys.size(), 2u);
  DES_CHECK_EQ(rows.values[0], -0.5f * 1101);  // key 4
  DES_CHECK_EQ(rows.values[1], -0.5f * 2202);
  DES_CHECK_EQ(rows.values[2], -0.5f * 10);    // key 9
  DES_CHECK_EQ(rows.meta[0].update_count, 1u);
  DES_CHECK_EQ(rows.meta[0].last_step, 3);
  DES_CHECK_EQ(table.CurrentStep(), 3);

  const std::vector<float> bad = {1, NAN, 5, 5};
  const std::vector<int64_t> two = {4, 9};
  DES_CHECK(!table.ApplyGradients(two.data(), 2, bad.data(), 4, 0.5f, des::SerialFor,
                                  &updated).empty());
  DES_CHECK_EQ(updated, 0);
  DES_CHECK(table.Export().values == rows.values);  // nothing changed

  config.nonfinite = des::NonFinitePolicy::kSkip;
  EmbeddingTable skipping(config);
  DES_CHECK(skipping.ApplyGradients(two.data(), 2, bad.data(), 4, 0.5f, des::SerialFor,
                                    &updated).empty());
  DES_CHECK_EQ(updated, 1);
  const des::TableRows kept = skipping.Export();
  DES_CHECK_EQ(kept.keys.size(), 1u);  // key 4 skipped entirely
  DES_CHECK_EQ(kept.keys[0], 9);
}

void TestEvictionPolicies() {
  EmbeddingTable table(Config(1));
  std::vector<float> out(8);
  // Frequencies: key k looked up k times, for k = 1..5.
  for (int64_t k = 1; k <= 5; ++k) {
    for (int64_t t = 0; t < k; ++t) table.LookupOrInsert(&k, 1, out.data(), des::SerialFor);
  }
  const std::vector<int64_t> below3 = table.Evict(des::EvictionPolicy::kMinFrequency, 3);
  DES_CHECK((below3 == std::vector<int64_t>{1, 2}));
  const std::vector<int64_t> budget = table.Evict(des::EvictionPolicy::kRowBudget, 1);
  DES_CHECK((budget == std::vector<int64_t>{3, 4}));
  DES_CHECK_EQ(table.Size(), 1);

  // Age: key 10 updated at step 1, key 11 at step 8; TTL 5 at step 8 drops 10.
  const float grad = 1.0f;
  const int64_t k10 = 10, k11 = 11;
  int64_t updated = 0;
  DES_CHECK(table.ApplyGradients(&k10, 1, &grad, 1, 0.1f, des::SerialFor, &updated).empty());
  DES_CHECK(table.ApplyGradients(&k11, 1, &grad, 8, 0.1f, des::SerialFor, &updated).empty());
  const std::vector<int64_t> old = table.Evict(des::EvictionPolicy::kMaxAge, 5);
  DES_CHECK((old == std::vector<int64_t>{5, 10}));  // key 5 was inserted at step 0
  DES_CHECK_EQ(table.Size(), 1);
}

void TestExportImportRoundTrip() {
  TableConfig config = Config(3, "uniform", "adam");
  EmbeddingTable table(config);
  std::vector<int64_t> keys(500);
  std::vector<float> grads(500 * 3);
  int64_t updated = 0;
  for (int i = 0; i < 500; ++i) keys[i] = (i * 37) % 211;  // duplicates
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = std::sin(static_cast<float>(i));
  for (int step = 1; step <= 3; ++step) {
    DES_CHECK(table.ApplyGradients(keys.data(), 500, grads.data(), step, 0.01f,
                                   ThreadedFor(2), &updated).empty());
  }
  const des::TableRows rows = table.Export();
  EmbeddingTable copy(config);
  std::vector<float> scratch(3);
  const int64_t stale = 123456;
  copy.LookupOrInsert(&stale, 1, scratch.data(), des::SerialFor);
  copy.Import(rows, /*clear_first=*/true);
  const des::TableRows again = copy.Export();
  DES_CHECK(again.keys == rows.keys);
  DES_CHECK(again.values == rows.values);
  DES_CHECK(again.slots == rows.slots);
  for (size_t i = 0; i < rows.meta.size(); ++i) {
    DES_CHECK_EQ(again.meta[i].update_count, rows.meta[i].update_count);
    DES_CHECK_EQ(again.meta[i].last_step, rows.meta[i].last_step);
  }
  DES_CHECK_EQ(copy.CurrentStep(), 3);
}

// Many threads insert overlapping key ranges while others read: every key ends
// up exactly once and no lookup is lost from the frequency counts.
void TestConcurrentCallsLoseNothing() {
  EmbeddingTable table(Config(2));
  constexpr int kThreads = 8, kPerThread = 50000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&table, t] {
      std::vector<int64_t> keys(kPerThread);
      for (int i = 0; i < kPerThread; ++i) keys[i] = (t % 4) * 20000 + i;  // overlaps
      std::vector<float> out(kPerThread * 2);
      if (t % 2 == 0) {
        table.LookupOrInsert(keys.data(), kPerThread, out.data(), ThreadedFor(2));
      } else {
        for (int i = 0; i < kPerThread; i += 1000) {
          table.LookupOrInsert(keys.data() + i, 1000, out.data(), des::SerialFor);
          table.Export();
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const des::TableRows rows = table.Export();
  std::set<int64_t> distinct;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) distinct.insert((t % 4) * 20000 + i);
  }
  DES_CHECK_EQ(rows.keys.size(), distinct.size());
  DES_CHECK(std::set<int64_t>(rows.keys.begin(), rows.keys.end()) == distinct);
  int64_t lookups = 0;
  for (const auto& meta : rows.meta) lookups += meta.frequency;
  DES_CHECK_EQ(lookups, static_cast<int64_t>(kThreads) * kPerThread);
}

void TestParsersRejectBadInput() {
  des::Initializer init;
  DES_CHECK(!des::ParseInitializer("gaussian", 1.0f, &init).empty());
  DES_CHECK(!des::ParseInitializer("uniform", -1.0f, &init).empty());
  des::OptimizerConfig opt;
  DES_CHECK(!des::ParseOptimizer("rmsprop", {}, {}, &opt).empty());
  DES_CHECK(!des::ParseOptimizer("adam", {"momentum"}, {0.9f}, &opt).empty());
  DES_CHECK(!des::ParseOptimizer("adam", {"beta1"}, {1.0f}, &opt).empty());
  DES_CHECK(!des::ParseOptimizer("adagrad", {"epsilon", "epsilon"}, {1, 1}, &opt).empty());
  DES_CHECK(des::ParseOptimizer("ftrl", {"l1", "l2"}, {0.1f, 0.2f}, &opt).empty());
  DES_CHECK_EQ(opt.NumSlots(), 2);
  DES_CHECK_EQ(opt.l1, 0.1f);
}

}  // namespace

int main() {
  TestGrowthFromTinyCapacityKeepsEveryRow();
  TestRemoveKeepsOtherKeysFindable();
  TestInitialValuesIgnoreInsertionOrder();
  TestTruncatedNormalMoments();
  TestApplySumsDuplicatesAndHonoursNonFinitePolicy();
  TestEvictionPolicies();
  TestExportImportRoundTrip();
  TestConcurrentCallsLoseNothing();
  TestParsersRejectBadInput();
  std::printf("embedding_table_test: all passed\n");
  return 0;
}
