// DES_HOST_DEVICE marks core functions that CUDA code calls on the device too
// (ops/cuda/): __host__ __device__ under nvcc, nothing for a plain C++ compiler.
#ifndef DES_TF_OPS_CC_KERNELS_HOST_DEVICE_H_
#define DES_TF_OPS_CC_KERNELS_HOST_DEVICE_H_

#if defined(__CUDACC__)
#define DES_HOST_DEVICE __host__ __device__
#else
#define DES_HOST_DEVICE
#endif

namespace des {

// Products and sums rounded on their own: nvcc would otherwise fuse a*b+c into
// one FMA on the device and change the bits (host builds do not contract), so
// formulas written with these give the CPU's bits on the GPU too.
DES_HOST_DEVICE inline float MulRounded(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
DES_HOST_DEVICE inline float AddRounded(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
DES_HOST_DEVICE inline float SubRounded(float a, float b) { return AddRounded(a, -b); }

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_HOST_DEVICE_H_
