// Registration and shape function of DesReadLines (computation lives in
// cc/kernels/text_lines.h).
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace des {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("DesReadLines")
    .Input("path: string")
    .Input("offset: int64")
    .Input("line: int64")
    .Output("lines: string")
    .Output("numbers: int64")
    .Output("next_offset: int64")
    .Output("next_line: int64")
    .Attr("max_lines: int >= 1")
    .Attr("file_index: int >= 0 = 0")
    .Attr("part: {'all', 'train', 'eval'} = 'all'")
    .Attr("split_buckets: int >= 0 = 0")
    .Attr("eval_buckets: int >= 0 = 0")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      ShapeHandle scalar;
      for (int i = 0; i < 3; ++i) TF_RETURN_IF_ERROR(c->WithRank(c->input(i), 0, &scalar));
      c->set_output(0, c->Vector(InferenceContext::kUnknownDim));
      c->set_output(1, c->Vector(InferenceContext::kUnknownDim));
      c->set_output(2, c->Scalar());
      c->set_output(3, c->Scalar());
      return absl::OkStatus();
    })
    .Doc(R"doc(
The next lines of an uncompressed text file in `part` of a train / eval split, up to
max_lines of them, from a byte offset at a line's start, as tf.data.TextLineDataset
reads them ('\n' and every '\r' dropped; a last line without '\n' kept unless empty).
One call reads many lines: TextLineDataset's per-line elements cost more than parsing a
Criteo line, and masking the other part's lines out afterwards copies them; chunks of
exactly max_lines lines let tf.data cut batches out of them without copying.

path: the file, through TensorFlow's file systems.
offset: where to start: 0, or a previous call's next_offset.
line: the number of the line at `offset`: 1, or a previous call's next_line.
lines: the lines read that are in `part`: max_lines of them, fewer only at the end of
  the file.
numbers: each one's line number.
next_offset: the offset after the last line read.
next_line: the number of the line after the last one read (`line` past the end).
part: "all", or "eval" / "train": the lines whose "<file_index>:<line number>"
  fingerprint (tf.strings.to_hash_bucket_fast's) modulo split_buckets is below
  eval_buckets / is not.
)doc");

}  // namespace des
