// Checks shared by ops that take feature ids: they declare keys with a free
// dtype attr `Tkeys`, so that a wrong dtype gets an InvalidArgument that names
// it (at graph construction and at kernel construction) instead of a generic
// type-mismatch error.
#ifndef DES_TF_OPS_CC_OPS_KEY_CHECKS_H_
#define DES_TF_OPS_CC_OPS_KEY_CHECKS_H_

#include <string>

#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace des {

// `Context` is an InferenceContext or an OpKernelConstruction.
template <typename Context>
absl::Status CheckKeysAreInt64(Context* c, const std::string& op_name) {
  tensorflow::DataType dtype;
  TF_RETURN_IF_ERROR(c->GetAttr("Tkeys", &dtype));
  if (dtype != tensorflow::DT_INT64) {
    return tensorflow::errors::InvalidArgument(
        op_name, ": keys must be int64, got ", tensorflow::DataTypeString(dtype));
  }
  return absl::OkStatus();
}

}  // namespace des

#endif  // DES_TF_OPS_CC_OPS_KEY_CHECKS_H_
