// Registration and shape function of DesOwnedOccurrences (computation lives in
// cc/kernels/owned_occurrences.h).
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace des {

using ::tensorflow::errors::InvalidArgument;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("DesOwnedOccurrences")
    .Input("ids: int64")
    .Input("inverse: int32")
    .Input("ids_sent: int32")
    .Input("segments: int32")
    .Input("row_lengths: int32")
    .Output("owned_ids: int64")
    .Output("segment_ids: int64")
    .Output("positions: int64")
    .Output("unique_ids: int64")
    .Output("unique_index: int64")
    .Attr("num_shards: int")
    .Attr("rank: int")
    .Attr("seed: int = 0")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      int64_t num_shards, rank;
      TF_RETURN_IF_ERROR(c->GetAttr("num_shards", &num_shards));
      TF_RETURN_IF_ERROR(c->GetAttr("rank", &rank));
      if (num_shards <= 0 || num_shards > INT32_MAX || rank < 0 || rank >= num_shards) {
        return InvalidArgument("DesOwnedOccurrences: need 0 <= rank < num_shards < 2^31, got rank ",
                               rank, " of ", num_shards);
      }
      ShapeHandle unused;
      for (int i = 0; i < 5; ++i) TF_RETURN_IF_ERROR(c->WithRank(c->input(i), 1, &unused));
      for (int i = 0; i < 5; ++i) c->set_output(i, c->Vector(InferenceContext::kUnknownDim));
      return absl::OkStatus();
    })
    .Doc(R"doc(
The id occurrences rank `rank` owns (DesShardOwner) out of every rank's id message,
in order (see cc/kernels/owned_occurrences.h for the message layout).

ids: every rank's sent ids, rank-major.
inverse: per occurrence, an index into its rank's ids, for the ranks that sent
  fewer ids than occurrences (their distinct ids), rank-major.
ids_sent: [ranks] ids each rank sent.
segments: [ranks] segments each rank holds.
row_lengths: every segment's id count, rank-major.
owned_ids: the owned occurrences' ids.
segment_ids: their global segment indices (non-decreasing).
positions: their indices among all occurrences (rank-major), e.g. to gather weights.
unique_ids: the distinct owned ids, numbered from the sent ids rather than from the
  occurrences; in first-occurrence order (what DesUnique of owned_ids gives) when each
  rank sent its distinct ids in that order (DesUnique's) or its raw ids.
unique_index: per owned occurrence, its id's index in unique_ids.
)doc");

}  // namespace des
