// Registration and shape function of DesParseIdLists (computation lives in
// cc/kernels/id_lists.h).
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace des {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("DesParseIdLists")
    .Input("cells: string")
    .Output("keys: int64")
    .Output("lengths: int64")
    .Output("well_formed: bool")
    .Output("too_long: bool")
    .Attr("separator: string")
    .Attr("max_length: int")
    .Attr("num_buckets: int")
    .Attr("salt: int")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      ShapeHandle cells;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 1, &cells));
      c->set_output(0, c->Vector(InferenceContext::kUnknownDim));
      for (int i = 1; i < 4; ++i) c->set_output(i, cells);
      return absl::OkStatus();
    })
    .Doc(R"doc(
Keys of the multi-hot id lists of a batch of text cells, one pass per cell.

A cell is well formed when empty or made of ids of 1-16 hex digits separated by
`separator`. Each id's key is (Fingerprint64(id) % num_buckets) ^ salt, the keys of
tf.strings.to_hash_bucket_fast XORed with the field's salt.

cells: string [n].
keys: int64, the first min(ids, max_length) keys of each well-formed non-empty
  cell, cell after cell.
lengths: int64 [n], the keys each cell contributed (0 when empty or malformed).
well_formed: bool [n].
too_long: bool [n], the cell holds more than max_length ids (split on the
  separator; an empty cell is one id).
)doc");

}  // namespace des
