// Benchmark of the CUDA cores: prints a markdown table of insert,
// lookup-or-insert, find and apply-gradients (Adagrad) throughput in keys/s
// with 10M and 100M keys resident at dim 8, 16 and 64 (plus a dim-8 table at
// index load 0.49), and partial-sum forward bandwidth in GB/s and as a
// fraction of the card's peak memory bandwidth (from the memory clock and bus
// width the device reports), beside a plain random read of the same rows.
// Needs a CUDA GPU; built by `make -C ops/cuda bench` (`--quick`: 1M keys).
// The definitions are printed under the table.
#include <cuda_runtime.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../../cc/kernels/hash.h"
#include "../gpu_partial_sums.h"
#include "../gpu_table.h"
#include "../row_groups.cuh"

namespace {

using des::gpu::DeviceArray;

des::gpu::CudaAsyncAllocator g_allocator;
cudaStream_t g_stream;

void Require(const std::string& status, const char* what) {
  if (!status.empty()) {
    std::fprintf(stderr, "gpu_bench: %s: %s\n", what, status.c_str());
    std::exit(1);
  }
}

template <typename T>
DeviceArray<T> Alloc(size_t n) {
  DeviceArray<T> a;
  Require(a.Allocate(&g_allocator, n, g_stream, "bench buffer"), "allocate");
  return a;
}

// keys[i] = key number (first + i * stride) mod modulus, spread by Mix64.
__global__ void KeysKernel(int64_t* keys, int64_t n, uint64_t first, uint64_t stride,
                           uint64_t modulus, bool random_pick) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  uint64_t number = first + static_cast<uint64_t>(i) * stride;
  if (random_pick) number = des::Mix64(number) % modulus;
  keys[i] = static_cast<int64_t>(des::Mix64(number ^ 0xabcdefULL));
}

__global__ void FillKernel(float* values, int64_t n, float value) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) values[i] = value * static_cast<float>((i % 7) + 1);
}

__global__ void EntriesKernel(int64_t* row_ids, int64_t* segment_ids, float* weights, int64_t n,
                              int64_t num_rows, int per_segment) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  row_ids[i] = static_cast<int64_t>(des::Mix64(i) % static_cast<uint64_t>(num_rows));
  segment_ids[i] = i / per_segment;
  weights[i] = 1.0f;
}

// Least DRAM traffic of one Find: the key (8), one 32-byte index sector, the
// row's sectors, the output row and the found flag; peak / this bounds keys/s.
double FindBytesPerKey(int dim) {
  const double row = 4.0 * dim;
  return 8 + 32 + std::ceil(row / 32) * 32 + row + 1;
}

// reduced[e] = sum of row row_ids[e], each row read by one thread group as the
// partial-sum kernels read it (row_groups.cuh): random row reads and nothing else.
template <int V>
__global__ void GatherRowsKernel(const float* rows, int dim, const int64_t* row_ids, int64_t n,
                                 int lanes, float* reduced) {
  const des::gpu::GroupThread gt = des::gpu::ThisGroupThread(lanes);
  float sum = 0.0f;
  if (gt.group < n) {
    const float* row = rows + row_ids[gt.group] * dim;
    for (int column = gt.lane * V; column < dim; column += lanes * V) {
      const des::gpu::Floats<V> f = des::gpu::LoadFloatsReadOnly<V>(row + column);
#pragma unroll
      for (int k = 0; k < V; ++k) sum += f.v[k];
    }
  }
  sum = des::gpu::GroupSum(sum, lanes);
  if (gt.group < n && gt.lane == 0) reduced[gt.group] = sum;
}

unsigned Blocks(int64_t n) { return static_cast<unsigned>((n + 255) / 256); }

double Seconds(const std::chrono::steady_clock::time_point& start) {
  cudaStreamSynchronize(g_stream);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string Rate(double per_second) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.3g", per_second);
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "gpu_bench: no CUDA device visible; run it on a GPU machine\n");
    return 2;
  }
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  int memory_clock_khz = 0;
  cudaDeviceGetAttribute(&memory_clock_khz, cudaDevAttrMemoryClockRate, 0);
  const double peak_gbs = 2.0 * memory_clock_khz * 1e3 * (prop.memoryBusWidth / 8.0) / 1e9;
  cudaStreamCreate(&g_stream);
  std::printf("device: %s, %.1f GiB, peak memory bandwidth %.0f GB/s (2 x %d MHz x %d bit)\n\n",
              prop.name, prop.totalGlobalMem / 1073741824.0, peak_gbs, memory_clock_khz / 1000,
              prop.memoryBusWidth);
  std::printf("| keys resident | dim | index load | insert (keys/s) | lookup-or-insert (keys/s) | "
              "find (keys/s) | find bound (keys/s) | apply Adagrad (keys/s) | "
              "partial-sum fwd (GB/s) | fraction of peak | random row read (GB/s) | "
              "fraction of peak |\n");
  std::printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
              "---: |\n");
  const int64_t batch = 1 << 20;
  // (keys, dim): the issue's 10M and 100M keys at dim 8, 16 and 64, plus the
  // most keys a 2^27-slot index takes at dim 8 while a 1M-key call may still
  // insert (load -> 0.49, the 0.5 of published GPU hash-table figures).
  struct Config {
    int64_t num_keys;
    int dim;
  };
  const int64_t half_load_keys = (int64_t{1} << 26) - batch;
  const std::vector<Config> configs =
      quick ? std::vector<Config>{{1 << 20, 8}, {1 << 20, 64}}
            : std::vector<Config>{{10000000, 8},   {10000000, 16},  {10000000, 64},
                                  {half_load_keys, 8}, {100000000, 8}, {100000000, 16},
                                  {100000000, 64}};
  for (const Config& c : configs) {
    const int64_t num_keys = c.num_keys;
    const int dim = c.dim;
    // Adagrad rows: values + accumulator, metadata, index at load <= 0.5.
    const double table_bytes = num_keys * (8.0 * dim + 16) + 4.0 * num_keys * 16;
    const double partial_bytes = num_keys * 20.0 + num_keys / 8.0 * (8 + 4.0 * dim) +
                                 std::min<int64_t>(num_keys, 10000000) * 4.0 * dim;
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    if (std::max(table_bytes, partial_bytes) + 4.0 * batch * (dim * 4 + 64) >
        0.85 * free_bytes) {
      std::printf("| %lld | %d | skipped: needs more than the %.0f GiB free |  |  |  |  |  |  |  |  |  |\n",
                  static_cast<long long>(num_keys), dim, free_bytes / 1073741824.0);
      continue;
    }
    des::TableConfig config;
    config.dim = dim;
    des::ParseInitializer("uniform", 0.05f, &config.initializer);
    des::ParseOptimizer("adagrad", {}, {}, &config.optimizer);
    std::unique_ptr<des::gpu::GpuEmbeddingTable> table;
    Require(des::gpu::GpuEmbeddingTable::Create(config, &g_allocator, g_stream, &table),
            "create");
    auto keys = Alloc<int64_t>(batch);
    auto values = Alloc<float>(batch * dim);
    auto grads = Alloc<float>(batch * dim);
    DeviceArray<bool> found;
    Require(found.Allocate(&g_allocator, batch, g_stream, "found"), "allocate");
    FillKernel<<<Blocks(batch * dim), 256, 0, g_stream>>>(grads.data(), batch * dim, 1e-3f);

    auto start = std::chrono::steady_clock::now();
    for (int64_t first = 0; first < num_keys; first += batch) {
      const int64_t n = std::min(batch, num_keys - first);
      KeysKernel<<<Blocks(n), 256, 0, g_stream>>>(keys.data(), n, first, 1, 0, false);
      Require(table->LookupOrInsert(keys.data(), n, values.data(), g_stream), "insert");
    }
    const double insert_rate = num_keys / Seconds(start);

    const int iterations = quick ? 5 : 20;
    double lookup_time = 0, find_time = 0, update_time = 0;
    for (int it = 0; it < iterations + 1; ++it) {  // iteration 0 warms up
      KeysKernel<<<Blocks(batch), 256, 0, g_stream>>>(keys.data(), batch, it * batch, 1,
                                                      num_keys, true);
      cudaStreamSynchronize(g_stream);
      start = std::chrono::steady_clock::now();
      Require(table->LookupOrInsert(keys.data(), batch, values.data(), g_stream), "lookup");
      const double lookup = Seconds(start);
      start = std::chrono::steady_clock::now();
      Require(table->Find(keys.data(), batch, grads.data(), 1, values.data(), found.data(),
                          g_stream), "find");
      const double find = Seconds(start);
      int64_t updated = 0;
      start = std::chrono::steady_clock::now();
      Require(table->ApplyGradients(keys.data(), batch, grads.data(), it + 1, 0.01f, g_stream,
                                    &updated), "update");
      const double update = Seconds(start);
      if (it > 0) lookup_time += lookup, find_time += find, update_time += update;
    }
    const double load = static_cast<double>(table->Size()) / table->IndexCapacity();
    table.reset();
    keys.Reset(), values.Reset(), grads.Reset(), found.Reset();

    // Partial-sum forward.
    const int64_t n = num_keys, per_segment = 8, segments = n / per_segment;
    const int64_t num_rows = std::min<int64_t>(num_keys, 10000000);
    auto rows = Alloc<float>(num_rows * dim);
    auto row_ids = Alloc<int64_t>(n);
    auto segment_ids = Alloc<int64_t>(n);
    auto weights = Alloc<float>(n);
    auto sums = Alloc<float>(segments * dim);
    FillKernel<<<Blocks(num_rows * dim), 256, 0, g_stream>>>(rows.data(), num_rows * dim, 0.01f);
    EntriesKernel<<<Blocks(n), 256, 0, g_stream>>>(row_ids.data(), segment_ids.data(),
                                                   weights.data(), n, num_rows, per_segment);
    const des::PartialEntries entries{row_ids.data(), segment_ids.data(),
                                              weights.data(), n};
    double partial_time = 0;
    for (int it = 0; it < iterations + 1; ++it) {
      cudaStreamSynchronize(g_stream);
      start = std::chrono::steady_clock::now();
      Require(des::gpu::PartialSums(rows.data(), dim, entries, segments, true, sums.data(),
                                    nullptr, &g_allocator, g_stream), "partial sums");
      const double t = Seconds(start);
      if (it > 0) partial_time += t;
    }
    const double bytes = n * (8.0 + 4 + 8 + 4.0 * dim) + segments * (8.0 + 4.0 * dim);
    const double gbs = bytes * iterations / partial_time / 1e9;

    // The same random row reads with nothing else: what the memory system
    // gives this access pattern (rows of 4 dim bytes at random places).
    auto reduced = Alloc<float>(n);
    const des::gpu::RowGroups groups = des::gpu::ChooseRowGroups(dim);
    double gather_time = 0;
    for (int it = 0; it < iterations + 1; ++it) {
      cudaStreamSynchronize(g_stream);
      start = std::chrono::steady_clock::now();
      DES_LAUNCH_BY_VEC(GatherRowsKernel, groups, n, g_stream, rows.data(), dim, row_ids.data(),
                        n, groups.lanes, reduced.data());
      const double t = Seconds(start);
      if (it > 0) gather_time += t;
    }
    const double gather_gbs = n * (8.0 + 4.0 * dim + 4) * iterations / gather_time / 1e9;
    std::printf("| %lld | %d | %.2f | %s | %s | %s | %s | %s | %.0f | %.2f | %.0f | %.2f |\n",
                static_cast<long long>(num_keys), dim, load, Rate(insert_rate).c_str(),
                Rate(batch * iterations / lookup_time).c_str(),
                Rate(batch * iterations / find_time).c_str(),
                Rate(peak_gbs * 1e9 / FindBytesPerKey(dim)).c_str(),
                Rate(batch * iterations / update_time).c_str(), gbs, gbs / peak_gbs,
                gather_gbs, gather_gbs / peak_gbs);
    std::fflush(stdout);
  }
  std::printf("\nBatches of %lld keys; each table call includes its stream sync. insert: 1M "
              "new keys per call until the keys are resident; lookup-or-insert / find / apply: "
              "keys drawn uniformly from the resident ones; index load = keys / index slots; "
              "find bound = peak bandwidth / (8 + 32 + 4 dim rounded up to 32 + 4 dim + 1) "
              "bytes; partial-sum fwd: 8 entries per segment, sorted segment ids, rows "
              "uniform over min(keys, 10M), bytes = entries x (20 + 4 dim) + segments x "
              "(8 + 4 dim); random row read: the same row ids, each row read and summed by "
              "a thread group as in the partial sums, bytes = entries x (12 + 4 dim).\n",
              static_cast<long long>(batch));
  return 0;
}
