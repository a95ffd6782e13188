// DES_HOST_DEVICE marks core functions that CUDA code calls on the device too
// (ops/cuda/): __host__ __device__ under nvcc, nothing for a plain C++ compiler.
#ifndef DES_TF_OPS_CC_KERNELS_HOST_DEVICE_H_
#define DES_TF_OPS_CC_KERNELS_HOST_DEVICE_H_

#if defined(__CUDACC__)
#define DES_HOST_DEVICE __host__ __device__
#else
#define DES_HOST_DEVICE
#endif

#endif  // DES_TF_OPS_CC_KERNELS_HOST_DEVICE_H_
