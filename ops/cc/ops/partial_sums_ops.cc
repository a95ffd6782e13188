// Registrations and shape functions of the DES partial-sum ops (kernels in
// cc/kernels/partial_sums_kernels.cc).
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace des {

using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("DesPartialSums")
    .Input("rows: float")
    .Input("row_ids: int64")
    .Input("segment_ids: int64")
    .Input("weights: float")
    .Input("num_segments: int64")
    .Output("sums: float")
    .Output("square_norms: float")
    .Attr("with_square_norms: bool = false")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle rows;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &rows));
      DimensionHandle segments;
      TF_RETURN_IF_ERROR(c->MakeDimForScalarInput(4, &segments));
      bool with_norms;
      TF_RETURN_IF_ERROR(c->GetAttr("with_square_norms", &with_norms));
      c->set_output(0, c->Matrix(segments, c->Dim(rows, 1)));
      c->set_output(1, c->Vector(with_norms ? segments : c->MakeDim(0)));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Weighted segment sums of looked-up rows: the partial results a rank computes from
the ids it owns. sums[s] = sum over entries e with segment_ids[e] = s of
weights[e] * rows[row_ids[e]]; square_norms[s] = sum of weights[e]^2 *
||rows[row_ids[e]]||^2 when with_square_norms (the FM term), else empty.
)doc");

REGISTER_OP("DesPartialSumsGrad")
    .Input("sums_grad: float")
    .Input("square_norms_grad: float")
    .Input("rows: float")
    .Input("row_ids: int64")
    .Input("segment_ids: int64")
    .Input("weights: float")
    .Output("rows_grad: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(2));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Gradient of DesPartialSums with respect to rows: one summed gradient row per
looked-up row (so duplicate ids are already reduced). square_norms_grad is empty
when the forward had no square norms.
)doc");

}  // namespace des
