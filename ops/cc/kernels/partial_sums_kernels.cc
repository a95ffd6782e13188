// CPU side of DesPartialSums / DesPartialSumsGrad: PartialSumsFunctor<CPUDevice>
// over the TF-independent core (partial_sums.h) on TF's intra-op thread pool,
// and the CPU registrations of the kernels in partial_sums_kernels.h.
#include "partial_sums.h"

#include "partial_sums_kernels.h"
#include "tf_parallel_for.h"

namespace des {

template <>
struct PartialSumsFunctor<CPUDevice> {
  static absl::Status Validate(tensorflow::OpKernelContext*, const PartialEntries& entries,
                               int64_t num_rows, int64_t num_segments, EntryOrder*) {
    return CoreStatus(ValidateEntries(entries, num_rows, num_segments));
  }

  static absl::Status Forward(tensorflow::OpKernelContext* ctx, const float* rows, int dim,
                              const PartialEntries& entries, int64_t num_segments,
                              const EntryOrder&, float* sums, float* square_norms) {
    PartialSums(rows, dim, entries, num_segments, sums, square_norms,
                TfParallelFor(ctx, CostPerOutputRow(entries.size, num_segments, dim)));
    return absl::OkStatus();
  }

  static absl::Status Backward(tensorflow::OpKernelContext* ctx, const float* dsums,
                               const float* dsquare_norms, const float* rows, int dim,
                               int64_t num_rows, const PartialEntries& entries,
                               const EntryOrder&, float* row_grads) {
    PartialSumsGrad(dsums, dsquare_norms, rows, dim, num_rows, entries, row_grads,
                    TfParallelFor(ctx, CostPerOutputRow(entries.size, num_rows, dim)));
    return absl::OkStatus();
  }

 private:
  // Each output row costs about dim multiply-adds per entry it pools.
  static int64_t CostPerOutputRow(int64_t entries, int64_t outputs, int64_t dim) {
    return 4 * dim * (entries / (outputs + 1) + 1);
  }
};

REGISTER_KERNEL_BUILDER(Name("DesPartialSums").Device(tensorflow::DEVICE_CPU),
                        PartialSumsOp<CPUDevice>);
REGISTER_KERNEL_BUILDER(Name("DesPartialSumsGrad").Device(tensorflow::DEVICE_CPU),
                        PartialSumsGradOp<CPUDevice>);

}  // namespace des
