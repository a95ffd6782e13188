// What the device-templated OpKernels share: the device types they are
// templated on (each op's kernel class is written once; CPU and GPU differ only
// in the functor or table underneath) and a core's error message as a Status.
#ifndef DES_TF_OPS_CC_KERNELS_KERNEL_SUPPORT_H_
#define DES_TF_OPS_CC_KERNELS_KERNEL_SUPPORT_H_

#include <string>

#include "tensorflow/core/framework/op_kernel.h"

namespace des {

using CPUDevice = Eigen::ThreadPoolDevice;
using GPUDevice = Eigen::GpuDevice;

// A core's error message ("" = success) as InvalidArgument: the cores report
// only bad input or exhausted memory, both about the call's arguments.
inline absl::Status CoreStatus(const std::string& error) {
  return error.empty() ? absl::OkStatus() : tensorflow::errors::InvalidArgument(error);
}

// `status` with the op's name in front of its message.
inline absl::Status Named(const char* op, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(op, ": ", status.message()));
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_KERNEL_SUPPORT_H_
