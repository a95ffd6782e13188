// CPU kernel of DesOwnedOccurrences over the TF-independent core
// (owned_occurrences.h): one pass counts the owned occurrences, one writes them with
// their index among the distinct owned ids (numbered from the sent ids).
// There is no GPU kernel: TF places the op on the CPU.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "kernel_support.h"
#include "owned_occurrences.h"
#include "tf_parallel_for.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace des {

class OwnedOccurrencesOp : public tensorflow::OpKernel {
 public:
  explicit OwnedOccurrencesOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {
    int64_t num_shards, rank, seed;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_shards", &num_shards));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("rank", &rank));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("seed", &seed));
    // Also checked by the shape function, which a GraphDef run without shape
    // inference skips; the owner hash divides by num_shards.
    OP_REQUIRES(ctx, num_shards > 0 && num_shards <= INT32_MAX && rank >= 0 && rank < num_shards,
                tensorflow::errors::InvalidArgument(
                    "DesOwnedOccurrences: need 0 <= rank < num_shards < 2^31, got rank ", rank,
                    " of ", num_shards));
    num_shards_ = static_cast<int32_t>(num_shards);
    rank_ = static_cast<int32_t>(rank);
    seed_ = static_cast<uint64_t>(seed);
  }

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& ids = ctx->input(0);
    const tensorflow::Tensor& inverse = ctx->input(1);
    const tensorflow::Tensor& ids_sent = ctx->input(2);
    const tensorflow::Tensor& segments = ctx->input(3);
    const tensorflow::Tensor& row_lengths = ctx->input(4);
    for (int i = 0; i < 5; ++i) {
      OP_REQUIRES(ctx, ctx->input(i).dims() == 1,
                  tensorflow::errors::InvalidArgument(
                      "DesOwnedOccurrences: input ", i, " must be 1-D, got shape ",
                      ctx->input(i).shape().DebugString()));
    }
    OP_REQUIRES(ctx, ids_sent.NumElements() == segments.NumElements(),
                tensorflow::errors::InvalidArgument(
                    "DesOwnedOccurrences: ids_sent and segments have ", ids_sent.NumElements(),
                    " and ", segments.NumElements(), " ranks"));
    const GatheredIds in{ids.flat<int64_t>().data(),         ids.NumElements(),
                         inverse.flat<int32_t>().data(),     inverse.NumElements(),
                         ids_sent.flat<int32_t>().data(),    segments.flat<int32_t>().data(),
                         segments.NumElements(),             row_lengths.flat<int32_t>().data(),
                         row_lengths.NumElements()};
    std::string error;
    std::vector<int64_t> occurrences;
    CheckGatheredIds(in, &occurrences, &error);
    OP_REQUIRES_OK(ctx, Named("DesOwnedOccurrences", CoreStatus(error)));
    const std::vector<uint8_t> mine = OwnedIdFlags(in, seed_, num_shards_, rank_);
    int64_t owned = 0;
    VisitOwnedOccurrences(in, occurrences, mine,
                          [&](int64_t, int64_t, int64_t, int64_t) { ++owned; }, &error);
    OP_REQUIRES_OK(ctx, Named("DesOwnedOccurrences", CoreStatus(error)));
    std::vector<int64_t> unique, number;
    // Hashing and in-cache probing, as DesUnique: some tens of cycles per id.
    NumberOwnedIds(in, mine, TfParallelFor(ctx, /*cost_per_unit=*/40), &unique, &number);
    tensorflow::Tensor* unique_out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            3, tensorflow::TensorShape({static_cast<int64_t>(unique.size())}),
                            &unique_out));
    std::copy(unique.begin(), unique.end(), unique_out->flat<int64_t>().data());
    // One value per owned occurrence: owned_ids, segment_ids, positions, unique_index.
    constexpr int kPerOccurrence[] = {0, 1, 2, 4};
    int64_t* out[4];
    for (int k = 0; k < 4; ++k) {
      tensorflow::Tensor* tensor = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(kPerOccurrence[k],
                                               tensorflow::TensorShape({owned}), &tensor));
      out[k] = tensor->flat<int64_t>().data();
    }
    // The counting pass validated every index: this pass cannot fail.
    VisitOwnedOccurrences(
        in, occurrences, mine,
        [&](int64_t id, int64_t segment, int64_t position, int64_t sent) {
          *out[0]++ = id;
          *out[1]++ = segment;
          *out[2]++ = position;
          *out[3]++ = number[sent];
        },
        &error);
  }

 private:
  int32_t num_shards_ = 1;
  int32_t rank_ = 0;
  uint64_t seed_ = 0;
};

REGISTER_KERNEL_BUILDER(Name("DesOwnedOccurrences").Device(tensorflow::DEVICE_CPU),
                        OwnedOccurrencesOp);

}  // namespace des
