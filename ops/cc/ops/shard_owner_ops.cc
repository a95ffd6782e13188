// Registration and shape function of DesShardOwner (computation lives in
// cc/kernels/).
#include "key_checks.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace des {

using ::tensorflow::shape_inference::InferenceContext;

REGISTER_OP("DesShardOwner")
    .Input("keys: Tkeys")
    .Output("owners: int32")
    .Attr("Tkeys: type")
    .Attr("num_shards: int")
    .Attr("seed: int = 0")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      TF_RETURN_IF_ERROR(CheckKeysAreInt64(c, "DesShardOwner"));
      int32_t num_shards;
      TF_RETURN_IF_ERROR(GetNumShards(c, "DesShardOwner", &num_shards));
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
