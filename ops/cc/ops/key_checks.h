// Checks shared by ops that take feature ids: they declare keys with a free
// dtype attr `Tkeys`, so that a wrong dtype gets an InvalidArgument that names
// it (at graph construction and at kernel construction) instead of a generic
// type-mismatch error; ops placing keys on owners check their `num_shards`.
#ifndef DES_TF_OPS_CC_OPS_KEY_CHECKS_H_
#define DES_TF_OPS_CC_OPS_KEY_CHECKS_H_

#include <cstdint>
#include <limits>
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

// The `num_shards` attr of an op placing keys on their owners (DesShardOwner's
// hash divides by it), in [1, 2^31). Checked by the shape function and again by
// the kernel, as a GraphDef run without shape inference skips the former.
template <typename Context>
absl::Status GetNumShards(Context* c, const std::string& op_name, int32_t* num_shards) {
  int64_t value;
  TF_RETURN_IF_ERROR(c->GetAttr("num_shards", &value));
  if (value <= 0 || value > std::numeric_limits<int32_t>::max()) {
    return tensorflow::errors::InvalidArgument(
        op_name, ": num_shards must be in [1, 2^31), got ", value);
  }
  *num_shards = static_cast<int32_t>(value);
  return absl::OkStatus();
}

// A kernel's `num_shards` (GetNumShards) and `seed`, the attrs of DesShardOwner's hash.
inline absl::Status GetShardingAttrs(tensorflow::OpKernelConstruction* ctx,
                                     const std::string& op_name, int32_t* num_shards,
                                     uint64_t* seed) {
  TF_RETURN_IF_ERROR(GetNumShards(ctx, op_name, num_shards));
  int64_t value;
  TF_RETURN_IF_ERROR(ctx->GetAttr("seed", &value));
  *seed = static_cast<uint64_t>(value);
  return absl::OkStatus();
}

}  // namespace des

#endif  // DES_TF_OPS_CC_OPS_KEY_CHECKS_H_
