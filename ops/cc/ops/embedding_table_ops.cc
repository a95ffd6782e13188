// Registrations and shape functions of the embedding-table resource ops
// (kernels in cc/kernels/embedding_table_kernels.cc). Every op on a table is
// stateful: a table changes between calls, so TF must neither merge, cache nor
// prune these ops (an update with no consumer must still run).
#include "key_checks.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace des {

using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

namespace {

// Output shape keys.shape + [dim] for ops whose rows follow their keys.
absl::Status RowsFollowKeys(InferenceContext* c, const std::string& op_name) {
  TF_RETURN_IF_ERROR(CheckKeysAreInt64(c, op_name));
  int64_t dim;
  TF_RETURN_IF_ERROR(c->GetAttr("dim", &dim));
  ShapeHandle rows;
  TF_RETURN_IF_ERROR(c->Concatenate(c->input(1), c->Vector(dim), &rows));
  c->set_output(0, rows);
  return absl::OkStatus();
}

}  // namespace

REGISTER_OP("DesEmbeddingTable")
    .Output("table: resource")
    .Attr("container: string = ''")
    .Attr("shared_name: string = ''")
    .Attr("dim: int")
    .Attr("initializer: string = 'uniform'")
    .Attr("initializer_scale: float = 0.05")
    .Attr("seed: int = 0")
    .Attr("optimizer: string = 'sgd'")
    .Attr("hyperparameter_names: list(string) = []")
    .Attr("hyperparameter_values: list(float) = []")
    .Attr("nonfinite_gradients: string = 'error'")
    .Attr("capacity_hint: int = 0")
    .SetIsStateful()
    .SetShapeFn(tensorflow::shape_inference::ScalarShape)
    .Doc(R"doc(
A dynamic int64 key -> float32[dim] embedding table with an in-table optimizer.
Rows are created on first lookup with values that are a pure function of
(key, seed, initializer). nonfinite_gradients: 'error' rejects an update with a
NaN/Inf gradient before changing anything; 'skip' leaves such keys untouched.
)doc");

REGISTER_OP("DesEmbeddingTableLookup")
    .SetIsStateful()
    .Input("table: resource")
    .Input("keys: Tkeys")
    .Output("values: float")
    .Attr("Tkeys: type")
    .Attr("dim: int")
    .SetShapeFn([](InferenceContext* c) {
      return RowsFollowKeys(c, "DesEmbeddingTableLookup");
    })
    .Doc("Rows of keys, inserting missing keys (and counting each lookup).");

REGISTER_OP("DesEmbeddingTableFind")
    .SetIsStateful()
    .Input("table: resource")
    .Input("keys: Tkeys")
    .Input("default_value: float")
    .Output("values: float")
    .Output("found: bool")
    .Attr("Tkeys: type")
    .Attr("dim: int")
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(RowsFollowKeys(c, "DesEmbeddingTableFind"));
      c->set_output(1, c->input(1));
      return absl::OkStatus();
    })
    .Doc("Rows of keys without inserting; absent keys get default_value ([dim] or scalar).");

REGISTER_OP("DesEmbeddingTableApplyGradients")
    .SetIsStateful()
    .Input("table: resource")
    .Input("keys: Tkeys")
    .Input("gradients: float")
    .Input("step: int64")
    .Input("learning_rate: float")
    .Output("updated_rows: int64")
    .Attr("Tkeys: type")
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(CheckKeysAreInt64(c, "DesEmbeddingTableApplyGradients"));
      c->set_output(0, c->Scalar());
      return absl::OkStatus();
    })
    .Doc(R"doc(
Sums the gradient rows of duplicate keys, then applies the table's optimizer to
each distinct key's row (inserting missing keys first). gradients: [len(keys), dim].
updated_rows: how many distinct rows were updated (skipped non-finite ones excluded);
an output, so graphs can depend on the update by data rather than control edges.
)doc");

REGISTER_OP("DesEmbeddingTableSize")
    .SetIsStateful()
    .Input("table: resource")
    .Output("size: int64")
    .SetShapeFn(tensorflow::shape_inference::ScalarShape)
    .Doc("Number of rows in the table.");

REGISTER_OP("DesEmbeddingTableMemoryBytes")
    .SetIsStateful()
    .Input("table: resource")
    .Output("bytes: int64")
    .SetShapeFn(tensorflow::shape_inference::ScalarShape)
    .Doc("Bytes the table holds for its index, rows, optimizer slots and metadata.");

REGISTER_OP("DesEmbeddingTableExport")
    .SetIsStateful()
    .Input("table: resource")
    .Output("keys: int64")
    .Output("values: float")
    .Output("slots: float")
    .Output("metadata: int64")
    .Attr("dim: int")
    .SetShapeFn([](InferenceContext* c) {
      int64_t dim;
      TF_RETURN_IF_ERROR(c->GetAttr("dim", &dim));
      const DimensionHandle rows = c->UnknownDim();
      c->set_output(0, c->Vector(rows));
      c->set_output(1, c->Matrix(rows, dim));
      c->set_output(2, c->MakeShape({rows, c->UnknownDim(), c->MakeDim(dim)}));
      c->set_output(3, c->Matrix(rows, 3));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Every row, ordered by key: values [n, dim], optimizer slots [n, num_slots, dim],
metadata [n, 3] = (lookup frequency, update count, last update step).
)doc");

REGISTER_OP("DesEmbeddingTableImport")
    .SetIsStateful()
    .Input("table: resource")
    .Input("keys: int64")
    .Input("values: float")
    .Input("slots: float")
    .Input("metadata: int64")
    .Attr("clear_first: bool = true")
    .SetShapeFn(tensorflow::shape_inference::NoOutputs)
    .Doc("Inserts or overwrites rows in the layout Export produces.");

REGISTER_OP("DesEmbeddingTableRemove")
    .SetIsStateful()
    .Input("table: resource")
    .Input("keys: Tkeys")
    .Output("removed: int64")
    .Attr("Tkeys: type")
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(CheckKeysAreInt64(c, "DesEmbeddingTableRemove"));
      c->set_output(0, c->Vector(c->UnknownDim()));
      return absl::OkStatus();
    })
    .Doc("Removes keys; returns those that were present.");

REGISTER_OP("DesEmbeddingTableEvict")
    .SetIsStateful()
    .Input("table: resource")
    .Input("threshold: int64")
    .Output("removed: int64")
    .Attr("policy: {'min_frequency', 'max_age', 'row_budget'}")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->Vector(c->UnknownDim()));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Evicts rows and returns their keys (ascending). min_frequency: rows looked up
fewer than threshold times; max_age: rows not updated in the last threshold
steps; row_budget: least frequent rows (then least recently updated, then
smallest key) until at most threshold rows remain.
)doc");

}  // namespace des
