// Registration and shape function of DesShardOwner (computation lives in
// cc/kernels/).
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace des {

using ::tensorflow::DataType;
using ::tensorflow::DataTypeString;
using ::tensorflow::DT_INT64;
using ::tensorflow::errors::InvalidArgument;
using ::tensorflow::shape_inference::InferenceContext;

REGISTER_OP("DesShardOwner")
    .Input("keys: T")
    .Output("owners: int32")
    // Any dtype is accepted here so that a wrong one gets an InvalidArgument
    // that names it, instead of a generic type-mismatch error.
    .Attr("T: type")
    .Attr("num_shards: int")
    .Attr("seed: int = 0")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      DataType dtype;
      TF_RETURN_IF_ERROR(c->GetAttr("T", &dtype));
      if (dtype != DT_INT64) {
        return InvalidArgument("DesShardOwner: keys must be int64, got ",
                               DataTypeString(dtype));
      }
      int64_t num_shards;
      TF_RETURN_IF_ERROR(c->GetAttr("num_shards", &num_shards));
      if (num_shards <= 0 || num_shards > INT32_MAX) {
        return InvalidArgument(
            "DesShardOwner: num_shards must be in [1, 2^31), got ", num_shards);
      }
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Rank owning each int64 key: owners = Mix64(keys ^ seed) mod num_shards.

keys: int64 feature ids, any shape.
owners: int32 owner rank of each key, same shape as keys.
num_shards: number of ranks sharing the keys (> 0).
seed: sharding seed; every rank of a job must use the same one.
)doc");

}  // namespace des
