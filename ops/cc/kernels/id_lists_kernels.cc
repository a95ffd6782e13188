// CPU kernel of DesParseIdLists over the TF-independent core (id_lists.h), with
// TensorFlow's Fingerprint64 as the id hash: keys equal those of
// tf.strings.to_hash_bucket_fast. There is no GPU kernel: it reads strings.
#include <cstdint>
#include <string>
#include <vector>

#include "id_lists.h"
#include "kernel_support.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tf_parallel_for.h"
#include "tsl/platform/fingerprint.h"

namespace des {

class ParseIdListsOp : public tensorflow::OpKernel {
 public:
  explicit ParseIdListsOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {
    std::string separator;
    int64_t num_buckets = 0;
    int64_t salt = 0;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("separator", &separator));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("max_length", &format_.max_length));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_buckets", &num_buckets));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("salt", &salt));
    OP_REQUIRES(ctx, separator.size() == 1,
                tensorflow::errors::InvalidArgument(
                    "DesParseIdLists: separator must be one character, got '", separator, "'"));
    OP_REQUIRES(ctx, format_.max_length >= 1 && num_buckets >= 1,
                tensorflow::errors::InvalidArgument(
                    "DesParseIdLists: max_length and num_buckets must be >= 1, got ",
                    format_.max_length, " and ", num_buckets));
    format_.separator = separator[0];
    format_.buckets = static_cast<uint64_t>(num_buckets);
    format_.salt = static_cast<uint64_t>(salt);
  }

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& cells = ctx->input(0);
    OP_REQUIRES(ctx, cells.dims() == 1,
                tensorflow::errors::InvalidArgument("DesParseIdLists: cells must be 1-D, got ",
                                                    cells.shape().DebugString()));
    const auto text = cells.flat<tensorflow::tstring>();
    const int64_t n = text.size();
    auto cell = [&text](int64_t i) { return std::string_view(text(i).data(), text(i).size()); };
    auto fingerprint = [](const char* data, size_t size) {
      return tsl::Fingerprint64(absl::string_view(data, size));
    };
    tensorflow::Tensor* keys = nullptr;
    absl::Status allocated;
    auto allocate = [&](int64_t total) -> int64_t* {
      allocated = ctx->allocate_output(0, tensorflow::TensorShape({total}), &keys);
      return allocated.ok() ? keys->flat<int64_t>().data() : nullptr;
    };
    std::vector<IdListShape> shapes;
    const int64_t cycles_per_cell = 1 + cells.TotalBytes() / (n > 0 ? n : 1) * 8;  // ~8/byte
    ParseIdLists(cell, n, format_, fingerprint, TfParallelFor(ctx, cycles_per_cell), &shapes,
                 allocate);
    OP_REQUIRES_OK(ctx, allocated);
    tensorflow::Tensor *lengths = nullptr, *well_formed = nullptr, *too_long = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, tensorflow::TensorShape({n}), &lengths));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, tensorflow::TensorShape({n}), &well_formed));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, tensorflow::TensorShape({n}), &too_long));
    for (int64_t i = 0; i < n; ++i) {
      lengths->flat<int64_t>()(i) = shapes[i].kept;
      well_formed->flat<bool>()(i) = shapes[i].well_formed;
      too_long->flat<bool>()(i) = shapes[i].too_long;
    }
  }

 private:
  IdListFormat format_;
};

REGISTER_KERNEL_BUILDER(Name("DesParseIdLists").Device(tensorflow::DEVICE_CPU), ParseIdListsOp);

}  // namespace des
