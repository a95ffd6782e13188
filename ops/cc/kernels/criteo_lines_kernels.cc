// CPU kernel of DesParseCriteoLines over the TF-independent core (criteo_lines.h),
// with TensorFlow's Fingerprint64 as the id hash: keys equal those of
// tf.strings.to_hash_bucket_fast. There is no GPU kernel: it reads strings.
#include <cstdint>
#include <string_view>
#include <vector>

#include "criteo_lines.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tf_parallel_for.h"
#include "tsl/platform/fingerprint.h"

namespace des {

class ParseCriteoLinesOp : public tensorflow::OpKernel {
 public:
  explicit ParseCriteoLinesOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {
    int64_t num_buckets = 0;
    std::vector<int64_t> salts;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_integer", &format_.num_integer));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_trailing", &format_.num_trailing));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_buckets", &num_buckets));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("salts", &salts));
    OP_REQUIRES(ctx, format_.num_integer >= 0 && format_.num_trailing >= 0 && num_buckets >= 1,
                tensorflow::errors::InvalidArgument(
                    "DesParseCriteoLines: num_integer and num_trailing must be >= 0 and "
                    "num_buckets >= 1, got ", format_.num_integer, ", ", format_.num_trailing,
                    " and ", num_buckets));
    format_.num_categorical = static_cast<int64_t>(salts.size());
    format_.buckets = static_cast<uint64_t>(num_buckets);
    format_.salts.assign(salts.begin(), salts.end());
  }

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& lines = ctx->input(0);
    OP_REQUIRES(ctx, lines.dims() == 1,
                tensorflow::errors::InvalidArgument("DesParseCriteoLines: lines must be 1-D, got ",
                                                    lines.shape().DebugString()));
    const auto text = lines.flat<tensorflow::tstring>();
    const int64_t n = text.size();
    auto line = [&text](int64_t i) { return std::string_view(text(i).data(), text(i).size()); };
    auto fingerprint = [](const char* data, size_t size) {
      return tsl::Fingerprint64(absl::string_view(data, size));
    };
    tensorflow::Tensor *labels, *integers, *present, *keys, *trailing, *reasons;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, {n}, &labels));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, {n, format_.num_integer}, &integers));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, {n, format_.num_integer}, &present));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, {n, format_.num_categorical}, &keys));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(4, {n, format_.num_trailing}, &trailing));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(5, {n}, &reasons));
    std::vector<std::string_view> cells(n * format_.num_trailing);
    const int64_t cycles_per_line = 1 + lines.TotalBytes() / (n > 0 ? n : 1) * 8;  // ~8/byte
    ParseCriteoLines(line, n, format_, fingerprint, TfParallelFor(ctx, cycles_per_line),
                     labels->flat<float>().data(), integers->flat<int64_t>().data(),
                     present->flat<bool>().data(), keys->flat<int64_t>().data(), cells.data(),
                     reasons->flat<int32_t>().data());
    auto out = trailing->flat<tensorflow::tstring>();
    for (size_t i = 0; i < cells.size(); ++i) out(i).assign(cells[i].data(), cells[i].size());
  }

 private:
  CriteoLineFormat format_;
};

REGISTER_KERNEL_BUILDER(Name("DesParseCriteoLines").Device(tensorflow::DEVICE_CPU),
                        ParseCriteoLinesOp);

}  // namespace des
