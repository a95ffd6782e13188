// Registration and shape function of DesGroupByOwner (computation lives in
// cc/kernels/group_by_owner.h).
#include "key_checks.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace des {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("DesGroupByOwner")
    .Input("keys: Tkeys")
    .Output("distinct: int64")
    .Output("distinct_counts: int32")
    .Output("index: out_idx")
    .Output("order: int32")
    .Output("counts: int32")
    .Attr("Tkeys: type")
    .Attr("num_shards: int")
    .Attr("seed: int = 0")
    .Attr("out_idx: {int32, int64} = DT_INT32")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      TF_RETURN_IF_ERROR(CheckKeysAreInt64(c, "DesGroupByOwner"));
      int32_t num_shards;
      TF_RETURN_IF_ERROR(GetNumShards(c, "DesGroupByOwner", &num_shards));
      ShapeHandle keys;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 1, &keys));
      c->set_output(0, c->Vector(InferenceContext::kUnknownDim));
      c->set_output(1, c->Vector(num_shards));
      c->set_output(2, keys);
      c->set_output(3, keys);
      c->set_output(4, c->Vector(num_shards));
      return absl::OkStatus();
    })
    .Doc(R"doc(
A rank's keys grouped by the shard owning each (DesShardOwner with `num_shards` and
`seed`), in O(n): see cc/kernels/group_by_owner.h.

keys: int64 [n], n < 2^31.
distinct: the distinct keys, owner by owner (shard 0 first), in order of first
  occurrence within one owner's.
distinct_counts: [num_shards] distinct keys of each owner.
index: [n], the position of each key in `distinct`.
order: [n] positions of the keys, owner by owner, in input order within one owner's.
counts: [num_shards] keys (occurrences) of each owner.
)doc");

}  // namespace des
