// Registration and shape function of DesUnique (computation lives in
// cc/kernels/unique.h).
#include "key_checks.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace des {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("DesUnique")
    .Input("keys: Tkeys")
    .Output("unique: int64")
    .Output("index: out_idx")
    .Attr("Tkeys: type")
    .Attr("out_idx: {int32, int64} = DT_INT32")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      TF_RETURN_IF_ERROR(CheckKeysAreInt64(c, "DesUnique"));
      ShapeHandle keys;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 1, &keys));
      c->set_output(0, c->Vector(InferenceContext::kUnknownDim));
      c->set_output(1, keys);
      return absl::OkStatus();
    })
    .Doc(R"doc(
tf.unique for int64 keys, in cache-sized hash groups (see cc/kernels/unique.h).

keys: int64 [n].
unique: the distinct keys in order of first occurrence.
index: [n], the position of each key in `unique`.
)doc");

}  // namespace des
