// CPU kernels of the DesMesh* ops over the TF-independent core (peer_mesh.h): the
// process's one listener and mesh, and the exchange as an AsyncOpKernel, so that an
// exchange waiting for its peers holds no TensorFlow thread.
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "peer_mesh.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace des {
namespace {

// The process's listener and mesh. The mesh lives until the process exits: its
// receiver threads are still waiting for messages then.
struct MeshState {
  std::mutex mutex;
  std::unique_ptr<MeshListener> listener;
  PeerMesh* mesh = nullptr;
};

MeshState& State() {
  static MeshState* state = new MeshState;
  return *state;
}

class MeshListenOp : public tensorflow::OpKernel {
 public:
  explicit MeshListenOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(tensorflow::OpKernelContext* ctx) override {
    MeshState& state = State();
    std::lock_guard<std::mutex> lock(state.mutex);
    OP_REQUIRES(ctx, state.listener == nullptr && state.mesh == nullptr,
                tensorflow::errors::FailedPrecondition("DesMeshListen: called twice"));
    auto listener = std::make_unique<MeshListener>();
    const std::string error = listener->Open(ctx->input(0).scalar<tensorflow::tstring>()());
    OP_REQUIRES(ctx, error.empty(),
                tensorflow::errors::Unavailable("DesMeshListen: ", error));
    tensorflow::Tensor* address = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, {}, &address));
    address->scalar<tensorflow::tstring>()() = listener->address();
    state.listener = std::move(listener);
  }
};

class MeshConnectOp : public tensorflow::OpKernel {
 public:
  explicit MeshConnectOp(tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("rank", &rank_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("connect_s", &connect_s_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("dead_after_s", &dead_after_s_));
  }

  void Compute(tensorflow::OpKernelContext* ctx) override {
    MeshState& state = State();
    std::lock_guard<std::mutex> lock(state.mutex);
    OP_REQUIRES(ctx, state.listener != nullptr && state.mesh == nullptr,
                tensorflow::errors::FailedPrecondition(
                    "DesMeshConnect: needs one DesMeshListen before it, once per process"));
    const auto flat = ctx->input(0).flat<tensorflow::tstring>();
    const std::vector<std::string> addresses(flat.data(), flat.data() + flat.size());
    OP_REQUIRES(ctx, rank_ >= 0 && rank_ < static_cast<int>(addresses.size()),
                tensorflow::errors::InvalidArgument("DesMeshConnect: rank ", rank_,
                                                    " is not one of ", addresses.size()));
    std::string error;
    state.mesh = PeerMesh::Connect(rank_, addresses, state.listener.get(), connect_s_,
                                   dead_after_s_, &error)
                     .release();
    OP_REQUIRES(ctx, state.mesh != nullptr,
                tensorflow::errors::Unavailable("DesMeshConnect: ", error));
    state.listener.reset();
  }

 private:
  int rank_ = 0;
  float connect_s_ = 60, dead_after_s_ = 30;
};

class MeshAlltoallOp : public tensorflow::AsyncOpKernel {
 public:
  explicit MeshAlltoallOp(tensorflow::OpKernelConstruction* ctx)
      : AsyncOpKernel(ctx), tag_(MeshTag(name())) {}

  void ComputeAsync(tensorflow::OpKernelContext* ctx, DoneCallback done) override {
    PeerMesh* mesh;
    {
      std::lock_guard<std::mutex> lock(State().mutex);
      mesh = State().mesh;
    }
    OP_REQUIRES_ASYNC(ctx, mesh != nullptr,
                      tensorflow::errors::FailedPrecondition(
                          "DesMeshAlltoall: the mesh is not connected (des_tf.comm.mesh)"),
                      done);
    const tensorflow::Tensor& x = ctx->input(0);
    const auto splits = ctx->input(1).flat<int32_t>();
    tensorflow::TensorShape row_shape = x.shape();
    row_shape.RemoveDim(0);
    const int64_t row_bytes =
        row_shape.num_elements() * tensorflow::DataTypeSize(x.dtype());
    OP_REQUIRES_ASYNC(ctx, splits.size() == mesh->size() && row_bytes > 0,
                      tensorflow::errors::InvalidArgument(
                          "DesMeshAlltoall: needs one split per rank (", mesh->size(),
                          ") and rows of at least one byte"),
                      done);
    std::vector<std::string_view> blocks;
    int64_t offset = 0;
    const auto data = x.tensor_data();
    for (int peer = 0; peer < mesh->size(); ++peer) {
      OP_REQUIRES_ASYNC(ctx, splits(peer) >= 0 && offset + splits(peer) <= x.dim_size(0),
                        tensorflow::errors::InvalidArgument(
                            "DesMeshAlltoall: splits do not cut the ", x.dim_size(0),
                            " rows of x"),
                        done);
      blocks.push_back(data.substr(offset * row_bytes, splits(peer) * row_bytes));
      offset += splits(peer);
    }
    OP_REQUIRES_ASYNC(ctx, offset == x.dim_size(0),
                      tensorflow::errors::InvalidArgument(
                          "DesMeshAlltoall: splits sum to ", offset, ", x has ",
                          x.dim_size(0), " rows"),
                      done);
    mesh->Exchange(tag_, blocks, [ctx, done, row_bytes, row_shape](
                                     const std::string& error, std::vector<std::string>* got) {
      Finish(ctx, row_bytes, row_shape, error, got);
      done();
    });
  }

 private:
  // Writes the received blocks, in rank order, and their row counts.
  static void Finish(tensorflow::OpKernelContext* ctx, int64_t row_bytes,
                     const tensorflow::TensorShape& row_shape, const std::string& error,
                     std::vector<std::string>* blocks) {
    if (!error.empty()) {
      ctx->SetStatus(tensorflow::errors::Unavailable(error));
      return;
    }
    int64_t rows = 0;
    tensorflow::Tensor* counts = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            1, {static_cast<int64_t>(blocks->size())}, &counts));
    for (size_t peer = 0; peer < blocks->size(); ++peer) {
      const int64_t block_rows = (*blocks)[peer].size() / row_bytes;
      OP_REQUIRES(ctx, block_rows * row_bytes == static_cast<int64_t>((*blocks)[peer].size()),
                  tensorflow::errors::InvalidArgument(
                      "DesMeshAlltoall: rank ", peer, " sent rows of another size"));
      counts->flat<int32_t>()(peer) = static_cast<int32_t>(block_rows);
      rows += block_rows;
    }
    tensorflow::TensorShape shape = row_shape;
    shape.InsertDim(0, rows);
    tensorflow::Tensor* received = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, shape, &received));
    char* at = const_cast<char*>(received->tensor_data().data());
    for (const std::string& block : *blocks) {
      std::memcpy(at, block.data(), block.size());
      at += block.size();
    }
  }

  const uint64_t tag_;
};

}  // namespace

REGISTER_KERNEL_BUILDER(Name("DesMeshListen").Device(tensorflow::DEVICE_CPU), MeshListenOp);
REGISTER_KERNEL_BUILDER(Name("DesMeshConnect").Device(tensorflow::DEVICE_CPU), MeshConnectOp);
REGISTER_KERNEL_BUILDER(Name("DesMeshAlltoall").Device(tensorflow::DEVICE_CPU)
                            .HostMemory("splits")
                            .HostMemory("received_splits"),
                        MeshAlltoallOp);

}  // namespace des
