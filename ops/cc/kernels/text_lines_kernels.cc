// CPU kernel of DesReadLines over the TF-independent core (text_lines.h): the
// next max_lines lines of one part of a train / eval split of a file, from a
// byte offset, read through TF's file systems (local, gs://, ...) in blocks
// sized from the bytes per kept line so far.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernel_support.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow/core/platform/file_system.h"
#include "tsl/platform/fingerprint.h"
#include "text_lines.h"

namespace des {

namespace {

constexpr int64_t kMinBlockBytes = 64 << 10;
constexpr int64_t kMaxBlockBytes = 64 << 20;

}  // namespace

class ReadLinesOp : public tensorflow::OpKernel {
 public:
  explicit ReadLinesOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("max_lines", &max_lines_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("file_index", &file_index_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("split_buckets", &split_buckets_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("eval_buckets", &eval_buckets_));
    std::string part;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("part", &part));
    keep_eval_ = part == "eval";
    split_ = part != "all";
    OP_REQUIRES(ctx, !split_ || split_buckets_ > 0,
                tensorflow::errors::InvalidArgument("DesReadLines: a split needs "
                                                    "split_buckets > 0"));
  }

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& path = ctx->input(0);
    const tensorflow::Tensor& offset_tensor = ctx->input(1);
    const tensorflow::Tensor& line_tensor = ctx->input(2);
    OP_REQUIRES(ctx, path.dims() == 0 && offset_tensor.dims() == 0 && line_tensor.dims() == 0,
                tensorflow::errors::InvalidArgument("DesReadLines: path, offset and line must "
                                                    "be scalars"));
    const std::string file_name(path.scalar<tensorflow::tstring>()());
    const int64_t offset = offset_tensor.scalar<int64_t>()();
    const int64_t first_line = line_tensor.scalar<int64_t>()();
    OP_REQUIRES(ctx, offset >= 0 && first_line >= 1,
                tensorflow::errors::InvalidArgument("DesReadLines: offset ", offset,
                                                    " and line ", first_line,
                                                    " must be >= 0 and >= 1"));
    std::unique_ptr<tensorflow::RandomAccessFile> file;
    OP_REQUIRES_OK(ctx, ctx->env()->NewRandomAccessFile(file_name, &file));

    // Blocks are read and split until max_lines lines are kept or the file ends. A
    // kept line is a span of `text` (offset, length), or of stripped[-1 - offset] if it
    // held a '\r'; `text` may move as it grows.
    std::string text;
    std::vector<std::pair<int64_t, int64_t>> spans;
    std::vector<int64_t> numbers;
    std::deque<std::string> stripped;
    std::string scratch;
    int64_t line = first_line;
    int64_t split_up_to = 0;
    bool at_eof = false;
    auto keep = [&](const char* begin, int64_t length) {
      const bool kept = Kept(line++);
      if (!kept) return false;
      if (begin == scratch.data()) {
        stripped.emplace_back(begin, length);
        spans.emplace_back(-static_cast<int64_t>(stripped.size()), length);
      } else {
        spans.emplace_back(begin - text.data(), length);
      }
      numbers.push_back(line - 1);
      return true;
    };
    while (true) {
      split_up_to += SplitTextLines(text.data() + split_up_to,
                                    static_cast<int64_t>(text.size()) - split_up_to, at_eof,
                                    max_lines_ - static_cast<int64_t>(spans.size()), &scratch,
                                    keep);
      const int64_t missing = max_lines_ - static_cast<int64_t>(spans.size());
      if (missing == 0 || at_eof) break;
      // The bytes per kept line so far, for the lines still missing.
      const int64_t want = std::clamp<int64_t>(
          spans.empty() ? kMinBlockBytes : missing * (split_up_to / spans.size() + 1),
          kMinBlockBytes, kMaxBlockBytes);
      const size_t had = text.size();
      text.resize(had + want);
      absl::string_view got;
      const absl::Status status = file->Read(offset + had, want, &got, &text[had]);
      OP_REQUIRES(ctx, status.ok() || absl::IsOutOfRange(status),
                  Named("DesReadLines", status));
      if (got.data() != &text[had]) std::memmove(&text[had], got.data(), got.size());
      text.resize(had + got.size());
      at_eof = static_cast<int64_t>(got.size()) < want;
    }

    const int64_t kept = static_cast<int64_t>(spans.size());
    tensorflow::Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, tensorflow::TensorShape({kept}), &out));
    auto out_lines = out->flat<tensorflow::tstring>();
    for (int64_t i = 0; i < kept; ++i) {
      const auto [start, length] = spans[i];
      out_lines(i).assign(start >= 0 ? text.data() + start : stripped[-1 - start].data(), length);
    }
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, tensorflow::TensorShape({kept}), &out));
    std::copy(numbers.begin(), numbers.end(), out->flat<int64_t>().data());
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, tensorflow::TensorShape({}), &out));
    out->scalar<int64_t>()() = offset + split_up_to;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, tensorflow::TensorShape({}), &out));
    out->scalar<int64_t>()() = line;
  }

 private:
  // Whether line `line` of the file is in the part asked for: a line is in the eval
  // part when the fingerprint of "<file index>:<line>" falls in the first
  // eval_buckets of split_buckets (what tf.strings.to_hash_bucket_fast computes).
  bool Kept(int64_t line) const {
    if (!split_) return true;
    const uint64_t bucket =
        tsl::Fingerprint64(absl::StrCat(file_index_, ":", line)) %
        static_cast<uint64_t>(split_buckets_);
    return (bucket < static_cast<uint64_t>(eval_buckets_)) == keep_eval_;
  }

  int64_t max_lines_;
  int64_t file_index_;
  int64_t split_buckets_;
  int64_t eval_buckets_;
  bool keep_eval_ = false;
  bool split_ = false;
};

REGISTER_KERNEL_BUILDER(Name("DesReadLines").Device(tensorflow::DEVICE_CPU), ReadLinesOp);

}  // namespace des
