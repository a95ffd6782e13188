// Standalone test driver of the CUDA cores: runs every GPU kernel and the CPU
// core (ops/cc/kernels/) on the same random inputs with many duplicate keys,
// compares values to 1e-5 (initial rows bit for bit) and table contents as
// sets (Export ordered by key), prints PASS/FAIL per kernel and exits non-zero
// on any failure. Needs a CUDA GPU; built by `make -C ops/cuda test`.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../../cc/kernels/embedding_table.h"
#include "../../cc/kernels/partial_sums.h"
#include "../../cc/kernels/shard_owner.h"
#include "../gpu_combiner.h"
#include "../gpu_partial_sums.h"
#include "../gpu_shard_owner.h"
#include "../gpu_table.h"

namespace {

using des::gpu::CudaAsyncAllocator;
using des::gpu::DeviceArray;

CudaAsyncAllocator g_allocator;
cudaStream_t g_stream;
int g_failures = 0;

// Failure reporting inside one named check, with the largest relative
// difference its float comparisons saw (printed, so a passing run still says
// how close the GPU came to the CPU).
struct Check {
  std::string name;
  std::string first_error;
  double max_error = 0.0;
  void Fail(const std::string& what) {
    if (first_error.empty()) first_error = what;
  }
  void Ok(const std::string& status, const char* what) {
    if (!status.empty()) Fail(std::string(what) + ": " + status);
  }
  ~Check() {
    char error[48] = "";
    if (max_error > 0.0) std::snprintf(error, sizeof(error), " (max rel diff %.2g)", max_error);
    std::printf("%s %s%s%s%s\n", first_error.empty() ? "PASS" : "FAIL", name.c_str(), error,
                first_error.empty() ? "" : ": ", first_error.c_str());
    if (!first_error.empty()) ++g_failures;
  }
};

// |a - b| relative to max(1, |a|, |b|): relative for large values, absolute
// below 1 (where rounding of sums of mixed signs is absolute, not relative).
double Difference(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0.0 : INFINITY;
  if (a == b) return 0.0;  // equal infinities too
  return std::fabs(static_cast<double>(a) - b) / std::max({1.0, std::fabs(1.0 * a), std::fabs(1.0 * b)});
}

// Tolerances of issue 21: optimizer results 1e-6, partial sums 1e-5, initial rows exact.
constexpr float kOptimizerTolerance = 1e-6f;
constexpr float kPartialSumTolerance = 1e-5f;

void CompareFloats(Check& check, const char* what, const std::vector<float>& gpu,
                   const std::vector<float>& cpu, float tolerance) {
  if (gpu.size() != cpu.size()) {
    return check.Fail(std::string(what) + ": size " + std::to_string(gpu.size()) + " vs " +
                      std::to_string(cpu.size()));
  }
  for (size_t i = 0; i < gpu.size(); ++i) {
    const bool bitwise = std::memcmp(&gpu[i], &cpu[i], sizeof(float)) == 0;
    const double difference = bitwise ? 0.0 : Difference(gpu[i], cpu[i]);
    check.max_error = std::max(check.max_error, difference);
    if (tolerance == 0.0f ? !bitwise : difference > tolerance) {
      char buffer[160];
      std::snprintf(buffer, sizeof(buffer), "%s[%zu]: gpu %.9g vs cpu %.9g", what, i, gpu[i],
                    cpu[i]);
      check.Fail(buffer);
    }
  }
}

template <typename T>
DeviceArray<T> ToDevice(const std::vector<T>& host) {
  DeviceArray<T> device;
  if (!device.Allocate(&g_allocator, std::max<size_t>(1, host.size()), g_stream, "test input").empty()) {
    std::fprintf(stderr, "out of GPU memory in the test driver\n");
    std::exit(2);
  }
  if (!host.empty()) {
    cudaMemcpyAsync(device.data(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice,
                    g_stream);
  }
  return device;
}

template <typename T>
DeviceArray<T> DeviceZeros(size_t n) {
  return ToDevice(std::vector<T>(n, T{}));
}

template <typename T>
std::vector<T> ToHost(const DeviceArray<T>& device, size_t n) {
  std::vector<T> host(n);
  if (n > 0) {
    cudaMemcpyAsync(host.data(), device.data(), n * sizeof(T), cudaMemcpyDeviceToHost, g_stream);
  }
  cudaStreamSynchronize(g_stream);
  return host;
}

// Keys with many duplicates: `distinct` values drawn with a skew, plus
// negative keys and the extremes of int64.
std::vector<int64_t> RandomKeys(std::mt19937_64& rng, int64_t n, int64_t distinct) {
  std::vector<int64_t> pool(distinct);
  for (auto& key : pool) key = static_cast<int64_t>(rng());
  pool[0] = std::numeric_limits<int64_t>::min();
  if (distinct > 1) pool[1] = std::numeric_limits<int64_t>::max();
  if (distinct > 2) pool[2] = 0;
  if (distinct > 3) pool[3] = -1;
  std::vector<int64_t> keys(n);
  for (auto& key : keys) {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    key = pool[static_cast<int64_t>(u * u * distinct) % distinct];  // skewed: hot keys repeat
  }
  return keys;
}

std::vector<float> RandomFloats(std::mt19937_64& rng, size_t n, float scale = 1.0f) {
  std::vector<float> values(n);
  std::uniform_real_distribution<float> dist(-scale, scale);
  for (auto& v : values) v = dist(rng);
  return values;
}

void TestShardOwner(std::mt19937_64& rng) {
  Check check{"shard_owner"};
  const auto keys = RandomKeys(rng, 100000, 5000);
  for (int32_t shards : {1, 3, 8}) {
    std::vector<int32_t> cpu(keys.size());
    des::ShardOwners(keys.data(), keys.size(), 42, shards, cpu.data());
    auto d_keys = ToDevice(keys);
    auto d_owners = DeviceZeros<int32_t>(keys.size());
    check.Ok(des::gpu::ShardOwners(d_keys.data(), keys.size(), 42, shards, d_owners.data(),
                                   g_stream), "ShardOwners");
    if (ToHost(d_owners, keys.size()) != cpu) check.Fail("owners differ");
  }
}

struct EntrySet {
  std::vector<int64_t> row_ids, segment_ids;
  std::vector<float> weights;
};

EntrySet RandomEntries(std::mt19937_64& rng, int64_t n, int64_t num_rows, int64_t num_segments,
                       bool sorted_segments) {
  EntrySet e;
  for (int64_t i = 0; i < n; ++i) {
    e.row_ids.push_back(static_cast<int64_t>(rng() % (num_rows / 4 + 1)));  // many duplicates
    e.segment_ids.push_back(static_cast<int64_t>(rng() % num_segments));
    e.weights.push_back(std::uniform_real_distribution<float>(-2, 2)(rng));
  }
  if (sorted_segments) std::sort(e.segment_ids.begin(), e.segment_ids.end());
  return e;
}

void TestPartialSums(std::mt19937_64& rng) {
  for (int dim : {1, 3, 16, 64, 130}) {
    for (bool sorted : {false, true}) {
      Check check{"partial_sums_forward dim=" + std::to_string(dim) +
                  (sorted ? " sorted" : " unsorted")};
      Check grad_check{"partial_sums_backward dim=" + std::to_string(dim) +
                       (sorted ? " sorted" : " unsorted")};
      const int64_t num_rows = 997, num_segments = 613, n = 5000;
      const EntrySet e = RandomEntries(rng, n, num_rows, num_segments, sorted);
      const auto rows = RandomFloats(rng, num_rows * dim);
      const des::PartialEntries cpu_entries{e.row_ids.data(), e.segment_ids.data(),
                                            e.weights.data(), n};
      std::vector<float> sums(num_segments * dim), norms(num_segments);
      des::PartialSums(rows.data(), dim, cpu_entries, num_segments, sums.data(), norms.data(),
                       des::SerialFor);
      auto d_rows = ToDevice(rows);
      auto d_row_ids = ToDevice(e.row_ids);
      auto d_segments = ToDevice(e.segment_ids);
      auto d_weights = ToDevice(e.weights);
      const des::PartialEntries entries{d_row_ids.data(), d_segments.data(),
                                                d_weights.data(), n};
      des::EntryOrder order;
      check.Ok(des::gpu::ValidateEntries(entries, num_rows, num_segments, g_stream, &order),
               "ValidateEntries");
      if (order.segments_sorted != sorted) check.Fail("sortedness not detected");
      auto d_sums = DeviceZeros<float>(num_segments * dim);
      auto d_norms = DeviceZeros<float>(num_segments);
      check.Ok(des::gpu::PartialSums(d_rows.data(), dim, entries, num_segments,
                                     order.segments_sorted, d_sums.data(), d_norms.data(),
                                     &g_allocator, g_stream), "PartialSums");
      CompareFloats(check, "sums", ToHost(d_sums, sums.size()), sums, kPartialSumTolerance);
      CompareFloats(check, "square_norms", ToHost(d_norms, norms.size()), norms,
                    kPartialSumTolerance);

      const auto dsums = RandomFloats(rng, num_segments * dim);
      const auto dnorms = RandomFloats(rng, num_segments);
      for (bool with_norms : {false, true}) {
        std::vector<float> grads(num_rows * dim);
        des::PartialSumsGrad(dsums.data(), with_norms ? dnorms.data() : nullptr, rows.data(),
                             dim, num_rows, cpu_entries, grads.data(), des::SerialFor);
        auto d_dsums = ToDevice(dsums);
        auto d_dnorms = ToDevice(dnorms);
        auto d_grads = DeviceZeros<float>(num_rows * dim);
        grad_check.Ok(des::gpu::PartialSumsGrad(d_dsums.data(),
                                                with_norms ? d_dnorms.data() : nullptr,
                                                d_rows.data(), dim, num_rows, entries,
                                                order.rows_sorted, d_grads.data(),
                                                &g_allocator, g_stream), "PartialSumsGrad");
        CompareFloats(grad_check, "row_grads", ToHost(d_grads, grads.size()), grads,
                      kPartialSumTolerance);
      }
    }
  }
  Check bad{"partial_sums_validation"};
  const std::vector<int64_t> rows_ids{0, 7}, segments{0, 0};
  const std::vector<float> weights{1, 1};
  auto d_r = ToDevice(rows_ids);
  auto d_s = ToDevice(segments);
  auto d_w = ToDevice(weights);
  des::EntryOrder order;
  const std::string gpu_error = des::gpu::ValidateEntries({d_r.data(), d_s.data(), d_w.data(), 2},
                                                          5, 1, g_stream, &order);
  const std::string cpu_error = des::ValidateEntries(
      {rows_ids.data(), segments.data(), weights.data(), 2}, 5, 1);
  if (gpu_error.empty() || gpu_error != cpu_error) bad.Fail("'" + gpu_error + "' vs '" + cpu_error + "'");
}

void TestCombiner(std::mt19937_64& rng) {
  for (auto combiner : {des::gpu::Combiner::kMean, des::gpu::Combiner::kSqrtn}) {
    Check check{combiner == des::gpu::Combiner::kMean ? "combiner_mean" : "combiner_sqrtn"};
    const int dim = 8;
    const int64_t num_segments = 300, n = 2000;
    const EntrySet e = RandomEntries(rng, n, 100, num_segments - 10, false);  // some empty
    const auto sums = RandomFloats(rng, num_segments * dim);
    std::vector<float> divisor(num_segments, 0.0f), expected(sums);
    for (int64_t i = 0; i < n; ++i) {
      const float x = e.weights[i];
      divisor[e.segment_ids[i]] += combiner == des::gpu::Combiner::kMean ? x : x * x;
    }
    for (int64_t s = 0; s < num_segments; ++s) {
      float d = combiner == des::gpu::Combiner::kMean ? divisor[s] : std::sqrt(divisor[s]);
      if (d == 0.0f) d = 1.0f;
      for (int j = 0; j < dim; ++j) expected[s * dim + j] /= d;
    }
    auto d_sums = ToDevice(sums);
    auto d_segments = ToDevice(e.segment_ids);
    auto d_weights = ToDevice(e.weights);
    check.Ok(des::gpu::ApplyCombiner(combiner, d_sums.data(), dim, num_segments,
                                     d_segments.data(), d_weights.data(), n, false, &g_allocator,
                                     g_stream), "ApplyCombiner");
    CompareFloats(check, "combined", ToHost(d_sums, sums.size()), expected,
                  kPartialSumTolerance);
  }
}

// Compares the whole contents of both tables through Export (ordered by key).
void CompareTables(Check& check, const des::EmbeddingTable& cpu,
                   const des::gpu::GpuEmbeddingTable& gpu) {
  const des::TableRows rows = cpu.Export();
  const int64_t size = gpu.Size();
  if (size != static_cast<int64_t>(rows.keys.size())) {
    return check.Fail("size " + std::to_string(size) + " vs " + std::to_string(rows.keys.size()));
  }
  const int dim = gpu.dim();
  const int slot_floats = gpu.num_slots() * dim;
  auto d_keys = DeviceZeros<int64_t>(size);
  auto d_values = DeviceZeros<float>(size * dim);
  auto d_slots = DeviceZeros<float>(std::max<int64_t>(1, size * slot_floats));
  auto d_meta = DeviceZeros<int64_t>(size * 3);
  check.Ok(gpu.Export(d_keys.data(), d_values.data(), d_slots.data(), d_meta.data(), g_stream),
           "Export");
  if (ToHost(d_keys, size) != rows.keys) check.Fail("exported key sets differ");
  CompareFloats(check, "values", ToHost(d_values, size * dim), rows.values, kOptimizerTolerance);
  CompareFloats(check, "slots", ToHost(d_slots, size * slot_floats), rows.slots,
                kOptimizerTolerance);
  const auto meta = ToHost(d_meta, size * 3);
  for (int64_t i = 0; i < size; ++i) {
    if (meta[i * 3] != rows.meta[i].frequency || meta[i * 3 + 1] != rows.meta[i].update_count ||
        meta[i * 3 + 2] != rows.meta[i].last_step) {
      return check.Fail("metadata of key " + std::to_string(rows.keys[i]) + " differs");
    }
  }
  if (gpu.CurrentStep() != cpu.CurrentStep()) {
    check.Fail("step clock " + std::to_string(gpu.CurrentStep()) + " vs " +
               std::to_string(cpu.CurrentStep()));
  }
}

// One training round on both tables (lookups, then gradients of the same keys
// and some new ones): checks the index and rows still work after a removal.
void TrainBoth(Check& check, std::mt19937_64& rng, des::EmbeddingTable& cpu,
               des::gpu::GpuEmbeddingTable& gpu, int64_t step) {
  const int dim = gpu.dim();
  const int64_t n = 4000;
  const auto keys = RandomKeys(rng, n, 1500);
  std::vector<float> expected(n * dim);
  cpu.LookupOrInsert(keys.data(), n, expected.data(), des::SerialFor);
  auto d_keys = ToDevice(keys);
  auto d_values = DeviceZeros<float>(n * dim);
  check.Ok(gpu.LookupOrInsert(d_keys.data(), n, d_values.data(), g_stream), "LookupOrInsert");
  CompareFloats(check, "looked-up rows", ToHost(d_values, n * dim), expected, kOptimizerTolerance);
  const auto grads = RandomFloats(rng, n * dim, 0.5f);
  auto d_grads = ToDevice(grads);
  int64_t cpu_updated = 0, gpu_updated = 0;
  check.Ok(cpu.ApplyGradients(keys.data(), n, grads.data(), step, 0.05f, des::SerialFor,
                              &cpu_updated), "CPU ApplyGradients");
  check.Ok(gpu.ApplyGradients(d_keys.data(), n, d_grads.data(), step, 0.05f, g_stream,
                              &gpu_updated), "ApplyGradients");
  if (cpu_updated != gpu_updated) check.Fail("updated rows differ after removal");
}

// The removed / evicted keys the GPU table reports, copied to the host.
std::vector<int64_t> KeysOut(const DeviceArray<int64_t>& keys, int64_t count) {
  return ToHost(keys, static_cast<size_t>(count));
}

// Remove, Evict (each policy) and Import on both tables from the same state,
// each followed by a full comparison and a training round.
void TestRowMaintenance(std::mt19937_64& rng, const std::string& label, des::EmbeddingTable& cpu,
                        des::gpu::GpuEmbeddingTable& gpu) {
  int64_t step = 200;
  {
    Check check{"remove " + label};
    const des::TableRows rows = cpu.Export();
    std::vector<int64_t> keys;
    for (int i = 0; i < 700; ++i) keys.push_back(rows.keys[rng() % rows.keys.size()]);  // dups
    for (int i = 0; i < 200; ++i) keys.push_back(static_cast<int64_t>(rng()));          // absent
    keys.push_back(std::numeric_limits<int64_t>::min());
    std::shuffle(keys.begin(), keys.end(), rng);
    const std::vector<int64_t> cpu_removed = cpu.Remove(keys.data(), keys.size());
    auto d_keys = ToDevice(keys);
    auto d_removed = DeviceZeros<int64_t>(keys.size());
    int64_t count = 0;
    check.Ok(gpu.Remove(d_keys.data(), keys.size(), d_removed.data(), &count, g_stream), "Remove");
    if (KeysOut(d_removed, count) != cpu_removed) check.Fail("removed keys differ");
    CompareTables(check, cpu, gpu);
    TrainBoth(check, rng, cpu, gpu, ++step);
    CompareTables(check, cpu, gpu);
  }
  const struct {
    des::EvictionPolicy policy;
    const char* name;
    int64_t threshold;  // row_budget: half the rows at that point
  } evictions[] = {{des::EvictionPolicy::kMinFrequency, "min_frequency", 2},
                   {des::EvictionPolicy::kMaxAge, "max_age", 1},
                   {des::EvictionPolicy::kRowBudget, "row_budget", -1}};
  for (const auto& e : evictions) {
    Check check{std::string("evict ") + e.name + " " + label};
    const int64_t threshold = e.threshold >= 0 ? e.threshold : cpu.Size() / 2;
    const std::vector<int64_t> cpu_evicted = cpu.Evict(e.policy, threshold);
    auto d_evicted = DeviceZeros<int64_t>(std::max<int64_t>(1, gpu.Size()));
    int64_t count = 0;
    check.Ok(gpu.Evict(e.policy, threshold, d_evicted.data(), &count, g_stream), "Evict");
    if (cpu_evicted.empty()) check.Fail("the CPU evicted nothing: the check is vacuous");
    if (KeysOut(d_evicted, count) != cpu_evicted) {
      check.Fail("evicted keys differ (" + std::to_string(count) + " vs " +
                 std::to_string(cpu_evicted.size()) + ")");
    }
    CompareTables(check, cpu, gpu);
    TrainBoth(check, rng, cpu, gpu, ++step);
    CompareTables(check, cpu, gpu);
  }
  for (bool clear_first : {false, true}) {
    Check check{std::string("import") + (clear_first ? " clear_first " : " ") + label};
    // Half of the rows changed, new keys, and one key twice (the last wins).
    des::TableRows rows = cpu.Export();
    des::TableRows in;
    const int dim = gpu.dim(), slot_floats = gpu.num_slots() * dim;
    for (size_t i = 0; i < rows.keys.size(); i += 2) {
      in.keys.push_back(rows.keys[i]);
      for (int j = 0; j < dim; ++j) in.values.push_back(rows.values[i * dim + j] + 1.0f);
      for (int j = 0; j < slot_floats; ++j) in.slots.push_back(rows.slots[i * slot_floats + j] * 2);
      in.meta.push_back(des::RowMeta{rows.meta[i].frequency + 1, rows.meta[i].update_count,
                                     rows.meta[i].last_step});
    }
    for (int i = 0; i < 300; ++i) {
      in.keys.push_back(i == 299 ? in.keys.front() : static_cast<int64_t>(rng()));
      for (int j = 0; j < dim; ++j) in.values.push_back(0.25f * i + j);
      for (int j = 0; j < slot_floats; ++j) in.slots.push_back(0.5f + j);
      in.meta.push_back(des::RowMeta{static_cast<uint32_t>(i), 3, 1000 + i});
    }
    cpu.Import(in, clear_first);
    auto d_keys = ToDevice(in.keys);
    auto d_values = ToDevice(in.values);
    auto d_slots = ToDevice(in.slots);
    auto d_meta = ToDevice(in.meta);
    check.Ok(gpu.Import(d_keys.data(), in.keys.size(), d_values.data(), d_slots.data(),
                        d_meta.data(), clear_first, g_stream), "Import");
    CompareTables(check, cpu, gpu);
    TrainBoth(check, rng, cpu, gpu, ++step);
    CompareTables(check, cpu, gpu);
  }
}

// Runs the same sequence of table calls on the CPU and the GPU table.
void TestTable(std::mt19937_64& rng, const char* initializer, const char* optimizer, int dim,
               des::NonFinitePolicy nonfinite) {
  const std::string label = std::string(initializer) + "/" + optimizer + " dim=" +
                            std::to_string(dim) +
                            (nonfinite == des::NonFinitePolicy::kSkip ? " skip" : "");
  des::TableConfig config;
  config.dim = dim;
  config.seed = 7;
  config.nonfinite = nonfinite;
  des::ParseInitializer(initializer, 0.5f, &config.initializer);
  std::vector<std::string> names;
  std::vector<float> values;
  if (std::string(optimizer) == "ftrl") names = {"l1", "l2", "beta"}, values = {0.01f, 0.1f, 0.5f};
  if (!des::ParseOptimizer(optimizer, names, values, &config.optimizer).empty()) std::exit(3);
  des::EmbeddingTable cpu(config);
  std::unique_ptr<des::gpu::GpuEmbeddingTable> gpu;
  {
    Check check{"table_create " + label};
    check.Ok(des::gpu::GpuEmbeddingTable::Create(config, &g_allocator, g_stream, &gpu), "Create");
    if (!gpu) return;
  }
  const int64_t n = 20000, distinct = 3000;
  {  // First lookups insert: initial rows must match bit for bit.
    Check check{"lookup_or_insert " + label};
    const auto keys = RandomKeys(rng, n, distinct);
    std::vector<float> expected(n * dim);
    cpu.LookupOrInsert(keys.data(), n, expected.data(), des::SerialFor);
    auto d_keys = ToDevice(keys);
    auto d_values = DeviceZeros<float>(n * dim);
    check.Ok(gpu->LookupOrInsert(d_keys.data(), n, d_values.data(), g_stream), "LookupOrInsert");
    CompareFloats(check, "initial rows", ToHost(d_values, expected.size()), expected, 0.0f);
    if (gpu->Size() != cpu.Size()) check.Fail("size " + std::to_string(gpu->Size()) + " vs " + std::to_string(cpu.Size()));
  }
  {
    Check check{"apply_gradients " + label};
    for (int step = 1; step <= 4; ++step) {
      const auto keys = RandomKeys(rng, n, distinct + 500 * step);  // new keys too
      auto grads = RandomFloats(rng, n * dim, 0.5f);
      if (nonfinite == des::NonFinitePolicy::kSkip && step == 2) {
        grads[5 * dim] = std::numeric_limits<float>::quiet_NaN();
        grads[77 * dim + dim - 1] = std::numeric_limits<float>::infinity();
      }
      int64_t cpu_updated = 0, gpu_updated = 0;
      const std::string cpu_error = cpu.ApplyGradients(keys.data(), n, grads.data(), step * 10,
                                                       0.05f, des::SerialFor, &cpu_updated);
      auto d_keys = ToDevice(keys);
      auto d_grads = ToDevice(grads);
      const std::string gpu_error = gpu->ApplyGradients(d_keys.data(), n, d_grads.data(),
                                                        step * 10, 0.05f, g_stream, &gpu_updated);
      if (cpu_error != gpu_error) check.Fail("error '" + gpu_error + "' vs '" + cpu_error + "'");
      if (cpu_updated != gpu_updated) {
        check.Fail("updated rows " + std::to_string(gpu_updated) + " vs " + std::to_string(cpu_updated));
      }
      if (gpu->Size() != cpu.Size()) check.Fail("size after update");
    }
    if (nonfinite == des::NonFinitePolicy::kError) {  // a NaN rejects the call, changes nothing
      auto keys = RandomKeys(rng, 100, 50);
      auto grads = RandomFloats(rng, 100 * dim);
      grads[42 * dim] = std::numeric_limits<float>::quiet_NaN();
      int64_t cpu_updated = 0, gpu_updated = 0;
      const std::string cpu_error = cpu.ApplyGradients(keys.data(), 100, grads.data(), 99, 0.05f,
                                                       des::SerialFor, &cpu_updated);
      auto d_keys = ToDevice(keys);
      auto d_grads = ToDevice(grads);
      const std::string gpu_error = gpu->ApplyGradients(d_keys.data(), 100, d_grads.data(), 99,
                                                        0.05f, g_stream, &gpu_updated);
      if (cpu_error.empty() || cpu_error != gpu_error) {
        check.Fail("NaN error '" + gpu_error + "' vs '" + cpu_error + "'");
      }
    }
  }
  {
    Check check{"find " + label};
    auto keys = RandomKeys(rng, n, distinct * 3);  // many never inserted
    std::vector<float> default_row(dim);
    for (int j = 0; j < dim; ++j) default_row[j] = -1.0f - j;
    std::vector<float> expected(n * dim);
    std::unique_ptr<bool[]> cpu_found(new bool[n]);
    cpu.Find(keys.data(), n, default_row.data(), expected.data(), cpu_found.get(), des::SerialFor);
    auto d_keys = ToDevice(keys);
    auto d_default = ToDevice(default_row);
    auto d_values = DeviceZeros<float>(n * dim);
    DeviceArray<bool> d_found;
    d_found.Allocate(&g_allocator, n, g_stream, "found");
    check.Ok(gpu->Find(d_keys.data(), n, d_default.data(), dim, d_values.data(), d_found.data(),
                       g_stream), "Find");
    CompareFloats(check, "found rows", ToHost(d_values, expected.size()), expected,
                  kOptimizerTolerance);
    std::unique_ptr<bool[]> found(new bool[n]);
    cudaMemcpyAsync(found.get(), d_found.data(), n, cudaMemcpyDeviceToHost, g_stream);
    cudaStreamSynchronize(g_stream);
    for (int64_t i = 0; i < n; ++i) {
      if (found[i] != cpu_found[i]) {
        check.Fail("found[" + std::to_string(i) + "] differs");
        break;
      }
    }
  }
  {
    Check check{"export " + label};
    CompareTables(check, cpu, *gpu);
  }
  TestRowMaintenance(rng, label, cpu, *gpu);
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "gpu_cores_test: no CUDA device visible; run it on a GPU machine\n");
    return 2;
  }
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  std::printf("device: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  cudaStreamCreate(&g_stream);
  std::mt19937_64 rng(12345);
  TestShardOwner(rng);
  TestPartialSums(rng);
  TestCombiner(rng);
  for (const char* init : {"zeros", "constant", "uniform", "truncated_normal"}) {
    TestTable(rng, init, "sgd", 16, des::NonFinitePolicy::kError);
  }
  for (const char* opt : {"sgd", "adagrad", "adam", "ftrl"}) {
    for (int dim : {1, 7, 16, 128}) {
      TestTable(rng, "truncated_normal", opt, dim, des::NonFinitePolicy::kError);
    }
    TestTable(rng, "uniform", opt, 12, des::NonFinitePolicy::kSkip);
  }
  std::printf("%d failed\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}
