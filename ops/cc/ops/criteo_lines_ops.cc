// Registration and shape function of DesParseCriteoLines (computation lives in
// cc/kernels/criteo_lines.h).
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace des {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("DesParseCriteoLines")
    .Input("lines: string")
    .Output("labels: float")
    .Output("integers: int64")
    .Output("integer_present: bool")
    .Output("keys: int64")
    .Output("trailing: string")
    .Output("reasons: int32")
    .Attr("num_integer: int")
    .Attr("num_trailing: int")
    .Attr("num_buckets: int")
    .Attr("salts: list(int)")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      ShapeHandle lines;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 1, &lines));
      int64_t num_integer = 0, num_trailing = 0;
      std::vector<int64_t> salts;
      TF_RETURN_IF_ERROR(c->GetAttr("num_integer", &num_integer));
      TF_RETURN_IF_ERROR(c->GetAttr("num_trailing", &num_trailing));
      TF_RETURN_IF_ERROR(c->GetAttr("salts", &salts));
      const auto n = c->Dim(lines, 0);
      c->set_output(0, lines);
      c->set_output(1, c->Matrix(n, num_integer));
      c->set_output(2, c->Matrix(n, num_integer));
      c->set_output(3, c->Matrix(n, static_cast<int64_t>(salts.size())));
      c->set_output(4, c->Matrix(n, num_trailing));
      c->set_output(5, lines);
      return absl::OkStatus();
    })
    .Doc(R"doc(
Checks and converts tab-separated Criteo-format lines, one pass per line: a label
(0 or 1), num_integer integer cells (empty or -?[0-9]{1,18}), one categorical cell
per salt (empty or 1-16 hex digits), then num_trailing cells passed on as text.

lines: string [n].
labels: float [n].
integers: int64 [n, num_integer], 0 where a cell is empty.
integer_present: bool [n, num_integer], false where a cell is empty.
keys: int64 [n, len(salts)]: (Fingerprint64(cell) % num_buckets) ^ salts[j], the keys
  of tf.strings.to_hash_bucket_fast XORed with the column's salt.
trailing: string [n, num_trailing], the cells after the categoricals ("" past a
  line's end).
reasons: int32 [n], -1 for a well-formed line, else the first failing check: 0 the
  column count, 1 the label, 2 an integer cell, 3 a categorical cell. Values of a
  malformed line are partial.
)doc");

}  // namespace des
