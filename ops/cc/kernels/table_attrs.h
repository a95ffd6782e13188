// The DesEmbeddingTable creation attrs parsed into a TableConfig: shared by
// the CPU kernel (embedding_table_kernels.cc) and the GPU kernel
// (embedding_table_kernels.cu.cc), so both validate and name bad attrs alike.
#ifndef DES_TF_OPS_CC_KERNELS_TABLE_ATTRS_H_
#define DES_TF_OPS_CC_KERNELS_TABLE_ATTRS_H_

#include <string>
#include <vector>

#include "table_config.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace des {

// Parses the creation attrs into a TableConfig, failing with InvalidArgument.
inline absl::Status ParseTableConfig(tensorflow::OpKernelConstruction* ctx,
                                     TableConfig* config) {
  int64_t dim, seed, capacity_hint;
  std::string initializer, optimizer, nonfinite;
  float scale;
  std::vector<std::string> names;
  std::vector<float> values;
  TF_RETURN_IF_ERROR(ctx->GetAttr("dim", &dim));
  TF_RETURN_IF_ERROR(ctx->GetAttr("initializer", &initializer));
  TF_RETURN_IF_ERROR(ctx->GetAttr("initializer_scale", &scale));
  TF_RETURN_IF_ERROR(ctx->GetAttr("seed", &seed));
  TF_RETURN_IF_ERROR(ctx->GetAttr("optimizer", &optimizer));
  TF_RETURN_IF_ERROR(ctx->GetAttr("hyperparameter_names", &names));
  TF_RETURN_IF_ERROR(ctx->GetAttr("hyperparameter_values", &values));
  TF_RETURN_IF_ERROR(ctx->GetAttr("nonfinite_gradients", &nonfinite));
  TF_RETURN_IF_ERROR(ctx->GetAttr("capacity_hint", &capacity_hint));
  if (dim <= 0 || dim > (1 << 20)) {
    return tensorflow::errors::InvalidArgument("DesEmbeddingTable: dim must be in [1, 2^20], got ", dim);
  }
  if (capacity_hint < 0) {
    return tensorflow::errors::InvalidArgument("DesEmbeddingTable: capacity_hint must be >= 0, got ",
                           capacity_hint);
  }
  if (nonfinite != "error" && nonfinite != "skip") {
    return tensorflow::errors::InvalidArgument("DesEmbeddingTable: nonfinite_gradients must be 'error' or "
                           "'skip', got '", nonfinite, "'");
  }
  std::string error = ParseInitializer(initializer, scale, &config->initializer);
  if (error.empty()) error = ParseOptimizer(optimizer, names, values, &config->optimizer);
  if (!error.empty()) return tensorflow::errors::InvalidArgument("DesEmbeddingTable: ", error);
  config->dim = static_cast<int>(dim);
  config->seed = static_cast<uint64_t>(seed);
  config->capacity_hint = capacity_hint;
  config->nonfinite =
      nonfinite == "skip" ? NonFinitePolicy::kSkip : NonFinitePolicy::kError;
  return absl::OkStatus();
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_TABLE_ATTRS_H_
