// How the CUDA kernels spread rows over threads: a group of `lanes` threads
// (a power of two <= 32, inside one warp) owns one row, each lane moving
// `V` consecutive floats (float4 when dim % 4 == 0) per access, so a row is
// read and written with coalesced, vectorised transactions. Rows wider than
// lanes * V floats are covered in tiles of that width.
// Device code and its launch helper; TF-independent.
#ifndef DES_TF_OPS_CUDA_ROW_GROUPS_CUH_
#define DES_TF_OPS_CUDA_ROW_GROUPS_CUH_

#include <cuda_runtime.h>

#include <cstdint>

namespace des {
namespace gpu {

constexpr int kThreadsPerBlock = 256;

struct RowGroups {
  int vec;    // floats per lane access: 4 or 1
  int lanes;  // threads per row: 1, 2, 4, 8, 16 or 32
};

inline RowGroups ChooseRowGroups(int dim) {
  RowGroups g;
  g.vec = dim % 4 == 0 ? 4 : 1;
  const int chunks = dim / g.vec;
  g.lanes = 1;
  while (g.lanes < 32 && g.lanes < chunks) g.lanes *= 2;
  return g;
}

// Blocks of kThreadsPerBlock threads covering `items` groups of `lanes` threads.
inline unsigned GroupBlocks(int64_t items, int lanes) {
  const int64_t threads = items * lanes;
  const int64_t blocks = (threads + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return static_cast<unsigned>(blocks > 0 ? blocks : 1);
}

inline unsigned ThreadBlocks(int64_t items) { return GroupBlocks(items, 1); }

template <int V>
struct Floats {
  float v[V];
};

template <int V>
__device__ __forceinline__ Floats<V> LoadFloats(const float* p) {
  Floats<V> out;
  if constexpr (V == 4) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    out.v[0] = q.x, out.v[1] = q.y, out.v[2] = q.z, out.v[3] = q.w;
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) out.v[k] = p[k];
  }
  return out;
}

// Read-only through the non-coherent cache: for data no kernel writes meanwhile.
template <int V>
__device__ __forceinline__ Floats<V> LoadFloatsReadOnly(const float* p) {
  Floats<V> out;
  if constexpr (V == 4) {
    const float4 q = __ldg(reinterpret_cast<const float4*>(p));
    out.v[0] = q.x, out.v[1] = q.y, out.v[2] = q.z, out.v[3] = q.w;
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) out.v[k] = __ldg(p + k);
  }
  return out;
}

template <int V>
__device__ __forceinline__ void StoreFloats(float* p, const Floats<V>& f) {
  if constexpr (V == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(f.v[0], f.v[1], f.v[2], f.v[3]);
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) p[k] = f.v[k];
  }
}

// Sum over the `lanes` threads of a group; every thread of the warp must call it.
__device__ __forceinline__ float GroupSum(float value, int lanes) {
  for (int offset = lanes / 2; offset > 0; offset /= 2) {
    value += __shfl_xor_sync(0xffffffffu, value, offset, lanes);
  }
  return value;
}

// Whether any thread of the group has `flag`; every thread of the warp must call it.
__device__ __forceinline__ bool GroupAny(bool flag, int lanes) {
  int value = flag ? 1 : 0;
  for (int offset = lanes / 2; offset > 0; offset /= 2) {
    value |= __shfl_xor_sync(0xffffffffu, value, offset, lanes);
  }
  return value != 0;
}

// This thread's group (row item) and lane within it.
struct GroupThread {
  int64_t group;
  int lane;
};

__device__ __forceinline__ GroupThread ThisGroupThread(int lanes) {
  const int64_t thread = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  return GroupThread{thread / lanes, static_cast<int>(thread % lanes)};
}

}  // namespace gpu
}  // namespace des

// Launches kernel<4> or kernel<1> (the template argument V of the kernels
// above) over `items` row groups chosen by ChooseRowGroups.
#define DES_LAUNCH_BY_VEC(kernel, groups, items, stream, ...)                          \
  do {                                                                                 \
    const unsigned des_blocks_ = ::des::gpu::GroupBlocks((items), (groups).lanes);     \
    if ((groups).vec == 4) {                                                           \
      kernel<4><<<des_blocks_, ::des::gpu::kThreadsPerBlock, 0, (stream)>>>(__VA_ARGS__); \
    } else {                                                                           \
      kernel<1><<<des_blocks_, ::des::gpu::kThreadsPerBlock, 0, (stream)>>>(__VA_ARGS__); \
    }                                                                                  \
  } while (0)

#endif  // DES_TF_OPS_CUDA_ROW_GROUPS_CUH_
