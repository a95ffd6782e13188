// Registration and shape functions of the DesMesh* ops (the connections and exchange
// live in cc/kernels/peer_mesh.h).
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace des {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

// The row types the alltoall and allgather exchanges carry (bytes, whatever they hold).
constexpr char kRowTypes[] =
    "T: {bool, int8, uint8, int16, uint16, int32, int64, bfloat16, half, float, double}";

// Exchanges whose output 0 holds rows of x's shape received from every rank, and output
// 1 their count per rank (as many as the splits of input 1, where there is one).
absl::Status RowsFromEveryRank(InferenceContext* c) {
  ShapeHandle x, rest;
  TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 1, &x));
  TF_RETURN_IF_ERROR(c->Subshape(x, 1, &rest));
  TF_RETURN_IF_ERROR(c->Concatenate(c->Vector(InferenceContext::kUnknownDim), rest, &x));
  c->set_output(0, x);
  c->set_output(1, c->num_inputs() > 1 ? c->input(1)
                                       : c->Vector(InferenceContext::kUnknownDim));
  return absl::OkStatus();
}

REGISTER_OP("DesMeshListen")
    .Input("host: string")
    .Output("address: string")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      c->set_output(0, c->Scalar());
      return absl::OkStatus();
    })
    .Doc(R"doc(
Opens this process's mesh listener on IPv4 `host` at a free port; returns "host:port".
)doc");

REGISTER_OP("DesMeshConnect")
    .Input("addresses: string")
    .Attr("rank: int")
    .Attr("connect_s: float = 60")
    .Attr("dead_after_s: float = 30")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      ShapeHandle addresses;
      return c->WithRank(c->input(0), 1, &addresses);
    })
    .Doc(R"doc(
Connects this process, rank `rank`, to every other rank's listener (addresses[r] is rank
r's DesMeshListen address) within `connect_s`; once per process, after DesMeshListen.
A peer whose host stops answering fails the exchanges after about `dead_after_s`.
)doc");

REGISTER_OP("DesMeshAlltoall")
    .Input("x: T")
    .Input("splits: int32")
    .Output("received: T")
    .Output("received_splits: int32")
    .Attr(kRowTypes)
    .SetIsStateful()
    .SetShapeFn(RowsFromEveryRank)
    .Doc(R"doc(
Sends rows splits[r] of `x` (in order) to rank r over the mesh and returns the rows
received, ordered by sending rank, with their per-sender counts. Exchanges are matched
across ranks by the op's name, so every rank must run the same graph.

x: [rows, ...].
splits: int32 [ranks], summing to rows.
)doc");

REGISTER_OP("DesMeshAllgather")
    .Input("x: T")
    .Output("received: T")
    .Output("received_splits: int32")
    .Attr(kRowTypes)
    .SetIsStateful()
    .SetShapeFn(RowsFromEveryRank)
    .Doc(R"doc(
Sends all rows of `x` to every rank over the mesh and returns every rank's rows, in rank
order, with their counts (DesMeshAlltoall with x sent whole to each rank, without a
copy of it per rank). Matched across ranks by the op's name.
)doc");

REGISTER_OP("DesMeshAllreduce")
    .Input("x: T")
    .Output("sum: T")
    .Attr("T: {int32, int64, float, double}")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    })
    .Doc(R"doc(
The elementwise sum of every rank's `x` (same shape on every rank) in one round: each
rank sends `x` to every other and adds all of them in rank order, so every rank holds the
same bits. It moves (ranks - 1) x its bytes each way: a ring's bytes for 2 ranks, more
for more. Matched across ranks by the op's name.
)doc");

}  // namespace des
