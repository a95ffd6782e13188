// Adapts TF's intra-op thread pool to the cores' ParallelFor hook.
#ifndef DES_TF_OPS_CC_KERNELS_TF_PARALLEL_FOR_H_
#define DES_TF_OPS_CC_KERNELS_TF_PARALLEL_FOR_H_

#include "parallel_for.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/util/work_sharder.h"

namespace des {

// Runs the core's work units on the kernel's CPU worker threads; `cost_per_unit`
// (in cycles) decides how finely TF splits them.
inline ParallelFor TfParallelFor(tensorflow::OpKernelContext* ctx, int64_t cost_per_unit) {
  const auto* workers = ctx->device()->tensorflow_cpu_worker_threads();
  return [workers, cost_per_unit](int64_t n,
                                  const std::function<void(int64_t, int64_t)>& fn) {
    tensorflow::Shard(workers->num_threads, workers->workers, n, cost_per_unit, fn);
  };
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_TF_PARALLEL_FOR_H_
