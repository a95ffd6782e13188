// Error reporting of the CUDA cores: like the CPU cores, a function returns a
// std::string that is empty on success and names the failure otherwise.
// Host-only, TF-independent.
#ifndef DES_TF_OPS_CUDA_CUDA_STATUS_H_
#define DES_TF_OPS_CUDA_CUDA_STATUS_H_

#include <cuda_runtime_api.h>

#include <string>

namespace des {
namespace gpu {

// "" for cudaSuccess, else "<what>: <CUDA error name>: <description>".
inline std::string CudaStatus(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return "";
  return std::string(what) + ": " + cudaGetErrorName(error) + ": " + cudaGetErrorString(error);
}

}  // namespace gpu
}  // namespace des

// Returns the error message of a failing CUDA runtime call from the enclosing
// function (which returns std::string).
#define DES_CUDA_RETURN_IF_ERROR(call)                                   \
  do {                                                                   \
    const std::string des_cuda_status_ = ::des::gpu::CudaStatus(         \
        (call), __FILE__ ":" DES_CUDA_STRINGIFY(__LINE__) ": " #call);   \
    if (!des_cuda_status_.empty()) return des_cuda_status_;              \
  } while (0)

// Returns a non-empty message (a std::string expression) from the enclosing function.
#define DES_RETURN_IF_ERROR(expr)                   \
  do {                                              \
    const std::string des_status_ = (expr);         \
    if (!des_status_.empty()) return des_status_;   \
  } while (0)

#define DES_CUDA_STRINGIFY_(x) #x
#define DES_CUDA_STRINGIFY(x) DES_CUDA_STRINGIFY_(x)

#endif  // DES_TF_OPS_CUDA_CUDA_STATUS_H_
