// Device-wide algorithms from cub with their scratch memory taken from a
// DeviceAllocator: stable sorts, an order-keeping select, and the index
// sequence that turns a sort into a permutation. Host launch helpers over
// device pointers; TF-independent.
#ifndef DES_TF_OPS_CUDA_DEVICE_ALGORITHMS_CUH_
#define DES_TF_OPS_CUDA_DEVICE_ALGORITHMS_CUH_

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_select.cuh>

#include <cstdint>
#include <string>

#include "cuda_status.h"
#include "device_allocator.h"
#include "row_groups.cuh"

namespace des {
namespace gpu {

// out[i] = i for i < n (a template, so every file may include it).
template <typename T>
__global__ void IotaKernel(T* out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = static_cast<T>(i);
}

template <typename T>
std::string Iota(T* out, int64_t n, cudaStream_t stream) {
  if (n > 0) IotaKernel<T><<<ThreadBlocks(n), kThreadsPerBlock, 0, stream>>>(out, n);
  DES_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return "";
}

// Sorts n (key, value) pairs by key, stably (equal keys keep their order);
// signed keys sort as numbers. n < 2^31. Keys known to be non-negative and
// below 2^end_bit sort faster with that end_bit.
template <typename K, typename V>
std::string SortPairs(const K* keys_in, K* keys_out, const V* values_in, V* values_out, int64_t n,
                      DeviceAllocator* allocator, cudaStream_t stream,
                      int end_bit = 8 * sizeof(K)) {
  if (n == 0) return "";
  const int items = static_cast<int>(n);
  size_t bytes = 0;
  DES_CUDA_RETURN_IF_ERROR(cub::DeviceRadixSort::SortPairs(
      nullptr, bytes, keys_in, keys_out, values_in, values_out, items, 0, end_bit, stream));
  DeviceArray<char> scratch;
  DES_RETURN_IF_ERROR(scratch.Allocate(allocator, bytes, stream, "sort scratch"));
  DES_CUDA_RETURN_IF_ERROR(cub::DeviceRadixSort::SortPairs(scratch.data(), bytes, keys_in,
                                                           keys_out, values_in, values_out,
                                                           items, 0, end_bit, stream));
  return "";
}

// Sorts n keys ascending. n < 2^31.
template <typename K>
std::string SortKeys(const K* keys_in, K* keys_out, int64_t n, DeviceAllocator* allocator,
                     cudaStream_t stream) {
  if (n == 0) return "";
  const int items = static_cast<int>(n);
  size_t bytes = 0;
  DES_CUDA_RETURN_IF_ERROR(cub::DeviceRadixSort::SortKeys(nullptr, bytes, keys_in, keys_out,
                                                          items, 0, 8 * sizeof(K), stream));
  DeviceArray<char> scratch;
  DES_RETURN_IF_ERROR(scratch.Allocate(allocator, bytes, stream, "sort scratch"));
  DES_CUDA_RETURN_IF_ERROR(cub::DeviceRadixSort::SortKeys(scratch.data(), bytes, keys_in,
                                                          keys_out, items, 0, 8 * sizeof(K),
                                                          stream));
  return "";
}

// out[0..*count) = the in[i] with flags[i] != 0, in input order; *count is
// written on the device. n < 2^31.
template <typename T>
std::string SelectFlagged(const T* in, const uint8_t* flags, T* out, int64_t* count, int64_t n,
                          DeviceAllocator* allocator, cudaStream_t stream) {
  const int items = static_cast<int>(n);
  size_t bytes = 0;
  DES_CUDA_RETURN_IF_ERROR(
      cub::DeviceSelect::Flagged(nullptr, bytes, in, flags, out, count, items, stream));
  DeviceArray<char> scratch;
  DES_RETURN_IF_ERROR(scratch.Allocate(allocator, bytes, stream, "select scratch"));
  DES_CUDA_RETURN_IF_ERROR(
      cub::DeviceSelect::Flagged(scratch.data(), bytes, in, flags, out, count, items, stream));
  return "";
}

}  // namespace gpu
}  // namespace des

#endif  // DES_TF_OPS_CUDA_DEVICE_ALGORITHMS_CUH_
