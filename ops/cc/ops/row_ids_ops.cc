// Registration and shape function of DesRowIds (computation lives in
// cc/kernels/row_ids.h).
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace des {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("DesRowIds")
    .Input("lengths: int64")
    .Output("row_ids: out_type")
    .Attr("out_type: {int32, int64} = DT_INT64")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      ShapeHandle lengths;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 1, &lengths));
      c->set_output(0, c->Vector(InferenceContext::kUnknownDim));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Row id of every value of a ragged batch: i repeated lengths[i] times, in row order
(tf.repeat(tf.range(rows), lengths) in one pass).

lengths: int64 [rows], each >= 0.
row_ids: [sum(lengths)].
)doc");

}  // namespace des
