// Partial-sum kernels: one thread group per output row (row_groups.cuh), entries
// visited in their stable group order, rows read with vectorised loads.
#include "gpu_partial_sums.h"

#include <string>

#include "cuda_status.h"
#include "grouping.h"
#include "row_groups.cuh"

namespace des {
namespace gpu {
namespace {

struct ValidationResult {
  unsigned long long first_bad;  // smallest bad entry index, or ULLONG_MAX
  int segments_unsorted;
  int rows_unsorted;
};

__global__ void ValidateKernel(PartialEntries entries, int64_t num_rows, int64_t num_segments,
                               ValidationResult* result) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= entries.size) return;
  const int64_t row = entries.row_ids[e], segment = entries.segment_ids[e];
  if (row < 0 || row >= num_rows || segment < 0 || segment >= num_segments) {
    atomicMin(&result->first_bad, static_cast<unsigned long long>(e));
  }
  if (e + 1 < entries.size) {
    if (entries.segment_ids[e + 1] < segment) result->segments_unsorted = 1;
    if (entries.row_ids[e + 1] < row) result->rows_unsorted = 1;
  }
}

template <int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    PartialSumsKernel(const float* __restrict__ rows, int dim, const int64_t* __restrict__ row_ids,
                      const float* __restrict__ weights, const int32_t* __restrict__ order,
                      const int64_t* __restrict__ starts, int64_t num_segments, int lanes,
                      float* __restrict__ sums, float* __restrict__ square_norms) {
  const GroupThread gt = ThisGroupThread(lanes);
  const bool active = gt.group < num_segments;
  const int64_t begin = active ? starts[gt.group] : 0;
  const int64_t end = active ? starts[gt.group + 1] : 0;
  float norm = 0.0f;
  for (int tile = 0; tile < dim; tile += lanes * V) {
    const int column = tile + gt.lane * V;
    const bool has_column = active && column < dim;
    Floats<V> acc;
#pragma unroll
    for (int k = 0; k < V; ++k) acc.v[k] = 0.0f;
#pragma unroll 4
    for (int64_t t = begin; t < end; ++t) {
      const int64_t e = order != nullptr ? order[t] : t;
      const float x = weights[e];
      if (has_column) {
        const Floats<V> v = LoadFloatsReadOnly<V>(rows + row_ids[e] * dim + column);
        float squares = 0.0f;
#pragma unroll
        for (int k = 0; k < V; ++k) {
          acc.v[k] += x * v.v[k];
          squares += v.v[k] * v.v[k];
        }
        norm += x * x * squares;
      }
    }
    if (has_column) StoreFloats<V>(sums + gt.group * dim + column, acc);
  }
  if (square_norms != nullptr) {
    const float total = GroupSum(norm, lanes);
    if (active && gt.lane == 0) square_norms[gt.group] = total;
  }
}

template <int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    PartialSumsGradKernel(const float* __restrict__ dsums, const float* __restrict__ dsquare_norms,
                          const float* __restrict__ rows, int dim, int64_t num_rows,
                          const int64_t* __restrict__ segment_ids,
                          const float* __restrict__ weights, const int32_t* __restrict__ order,
                          const int64_t* __restrict__ starts, int lanes,
                          float* __restrict__ row_grads) {
  const GroupThread gt = ThisGroupThread(lanes);
  if (gt.group >= num_rows) return;  // no group-wide shuffles below
  const int64_t begin = starts[gt.group], end = starts[gt.group + 1];
  for (int tile = 0; tile < dim; tile += lanes * V) {
    const int column = tile + gt.lane * V;
    if (column >= dim) break;
    Floats<V> acc;
#pragma unroll
    for (int k = 0; k < V; ++k) acc.v[k] = 0.0f;
    float norm_scale = 0.0f;
#pragma unroll 4
    for (int64_t t = begin; t < end; ++t) {
      const int64_t e = order != nullptr ? order[t] : t;
      const float x = weights[e];
      const int64_t segment = segment_ids[e];
      const Floats<V> upstream = LoadFloatsReadOnly<V>(dsums + segment * dim + column);
#pragma unroll
      for (int k = 0; k < V; ++k) acc.v[k] += x * upstream.v[k];
      if (dsquare_norms != nullptr) norm_scale += 2.0f * x * x * dsquare_norms[segment];
    }
    if (dsquare_norms != nullptr) {
      const Floats<V> row = LoadFloatsReadOnly<V>(rows + gt.group * dim + column);
#pragma unroll
      for (int k = 0; k < V; ++k) acc.v[k] += norm_scale * row.v[k];
    }
    StoreFloats<V>(row_grads + gt.group * dim + column, acc);
  }
}

}  // namespace

std::string ValidateEntries(const PartialEntries& entries, int64_t num_rows,
                            int64_t num_segments, cudaStream_t stream, EntryOrder* order) {
  ValidationResult init{~0ULL, 0, 0}, result;
  ValidationResult* device = nullptr;
  DES_CUDA_RETURN_IF_ERROR(cudaMallocAsync(&device, sizeof(ValidationResult), stream));
  cudaMemcpyAsync(device, &init, sizeof(init), cudaMemcpyHostToDevice, stream);
  if (entries.size > 0) {
    ValidateKernel<<<ThreadBlocks(entries.size), kThreadsPerBlock, 0, stream>>>(
        entries, num_rows, num_segments, device);
  }
  cudaMemcpyAsync(&result, device, sizeof(result), cudaMemcpyDeviceToHost, stream);
  cudaFreeAsync(device, stream);
  DES_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  order->segments_sorted = result.segments_unsorted == 0;
  order->rows_sorted = result.rows_unsorted == 0;
  if (result.first_bad == ~0ULL) return "";
  const int64_t i = static_cast<int64_t>(result.first_bad);
  int64_t row = 0, segment = 0;
  cudaMemcpy(&row, entries.row_ids + i, sizeof(row), cudaMemcpyDeviceToHost);
  cudaMemcpy(&segment, entries.segment_ids + i, sizeof(segment), cudaMemcpyDeviceToHost);
  if (row < 0 || row >= num_rows) {
    return "row_ids[" + std::to_string(i) + "] = " + std::to_string(row) + " is outside [0, " +
           std::to_string(num_rows) + ")";
  }
  return "segment_ids[" + std::to_string(i) + "] = " + std::to_string(segment) +
         " is outside [0, " + std::to_string(num_segments) + ")";
}

std::string PartialSums(const float* rows, int dim, const PartialEntries& entries,
                        int64_t num_segments, bool segments_sorted, float* sums,
                        float* square_norms, DeviceAllocator* allocator, cudaStream_t stream) {
  if (num_segments == 0) return "";
  DeviceGrouping by_segment;
  DES_RETURN_IF_ERROR(GroupByIds(entries.segment_ids, entries.size, num_segments,
                                 segments_sorted, allocator, stream, &by_segment));
  const RowGroups groups = ChooseRowGroups(dim);
  const unsigned blocks = GroupBlocks(num_segments, groups.lanes);
  if (groups.vec == 4) {
    PartialSumsKernel<4><<<blocks, kThreadsPerBlock, 0, stream>>>(
        rows, dim, entries.row_ids, entries.weights, by_segment.order_or_null(),
        by_segment.starts.data(), num_segments, groups.lanes, sums, square_norms);
  } else {
    PartialSumsKernel<1><<<blocks, kThreadsPerBlock, 0, stream>>>(
        rows, dim, entries.row_ids, entries.weights, by_segment.order_or_null(),
        by_segment.starts.data(), num_segments, groups.lanes, sums, square_norms);
  }
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

std::string PartialSumsGrad(const float* dsums, const float* dsquare_norms, const float* rows,
                            int dim, int64_t num_rows, const PartialEntries& entries,
                            bool rows_sorted, float* row_grads, DeviceAllocator* allocator,
                            cudaStream_t stream) {
  if (num_rows == 0) return "";
  DeviceGrouping by_row;
  DES_RETURN_IF_ERROR(GroupByIds(entries.row_ids, entries.size, num_rows, rows_sorted,
                                 allocator, stream, &by_row));
  const RowGroups groups = ChooseRowGroups(dim);
  const unsigned blocks = GroupBlocks(num_rows, groups.lanes);
  if (groups.vec == 4) {
    PartialSumsGradKernel<4><<<blocks, kThreadsPerBlock, 0, stream>>>(
        dsums, dsquare_norms, rows, dim, num_rows, entries.segment_ids, entries.weights,
        by_row.order_or_null(), by_row.starts.data(), groups.lanes, row_grads);
  } else {
    PartialSumsGradKernel<1><<<blocks, kThreadsPerBlock, 0, stream>>>(
        dsums, dsquare_norms, rows, dim, num_rows, entries.segment_ids, entries.weights,
        by_row.order_or_null(), by_row.starts.data(), groups.lanes, row_grads);
  }
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

}  // namespace gpu
}  // namespace des
