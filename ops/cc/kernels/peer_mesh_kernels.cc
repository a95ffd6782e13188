// CPU kernels of the DesMesh* ops over the TF-independent core (peer_mesh.h): the
// process's one listener and mesh, and the exchanges (alltoall, allgather, one-round
// allreduce) as AsyncOpKernels, so that an exchange waiting for its peers holds no
// TensorFlow thread.
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

// The connected mesh, or an error set on ctx (nullptr).
PeerMesh* ConnectedMesh(tensorflow::OpKernelContext* ctx) {
  PeerMesh* mesh;
  {
    std::lock_guard<std::mutex> lock(State().mutex);
    mesh = State().mesh;
  }
  if (mesh == nullptr) {
    ctx->SetStatus(tensorflow::errors::FailedPrecondition(
        ctx->op_kernel().type_string(), ": the mesh is not connected (des_tf.comm.mesh)"));
  }
  return mesh;
}

// DesMeshAlltoall, and DesMeshAllgather (`gather`: all of x to every rank, no splits).
class MeshAlltoallOp : public tensorflow::AsyncOpKernel {
 public:
  explicit MeshAlltoallOp(tensorflow::OpKernelConstruction* ctx, bool gather = false)
      : AsyncOpKernel(ctx), tag_(MeshTag(name())), gather_(gather) {}

  void ComputeAsync(tensorflow::OpKernelContext* ctx, DoneCallback done) override {
    PeerMesh* mesh = ConnectedMesh(ctx);
    if (mesh == nullptr) return done();
    const tensorflow::Tensor& x = ctx->input(0);
    tensorflow::TensorShape row_shape = x.shape();
    OP_REQUIRES_ASYNC(ctx, x.dims() >= 1,
                      tensorflow::errors::InvalidArgument(
                          type_string(), ": x must have rows, got shape ",
                          x.shape().DebugString()),
                      done);
    row_shape.RemoveDim(0);
    const int64_t row_bytes =
        row_shape.num_elements() * tensorflow::DataTypeSize(x.dtype());
    OP_REQUIRES_ASYNC(ctx, row_bytes > 0,
                      tensorflow::errors::InvalidArgument(type_string(),
                                                          ": rows of at least one byte"),
                      done);
    const auto data = x.tensor_data();
    std::vector<std::string_view> blocks(mesh->size(), data);
    if (!gather_) {
      OP_REQUIRES_OK_ASYNC(ctx, Split(data, row_bytes, mesh->size(), ctx, &blocks), done);
    }
    const std::string_view own = blocks[mesh->rank()];
    mesh->Exchange(tag_, blocks, [ctx, done, own, row_bytes, row_shape, rank = mesh->rank()](
                                     const std::string& error, std::vector<MeshBlock>* got) {
      Finish(ctx, own, rank, row_bytes, row_shape, error, got);
      done();
    });
  }

 private:
  // blocks[r] = rows splits[r] of `data`, in order.
  static absl::Status Split(std::string_view data, int64_t row_bytes, int size,
                            tensorflow::OpKernelContext* ctx,
                            std::vector<std::string_view>* blocks) {
    const auto splits = ctx->input(1).flat<int32_t>();
    const int64_t rows = static_cast<int64_t>(data.size()) / row_bytes;
    if (splits.size() != size) {
      return tensorflow::errors::InvalidArgument("DesMeshAlltoall: needs one split per rank (",
                                                 size, "), got ", splits.size());
    }
    int64_t offset = 0;
    for (int peer = 0; peer < size; ++peer) {
      if (splits(peer) < 0 || offset + splits(peer) > rows) {
        return tensorflow::errors::InvalidArgument("DesMeshAlltoall: splits do not cut the ",
                                                   rows, " rows of x");
      }
      (*blocks)[peer] = data.substr(offset * row_bytes, splits(peer) * row_bytes);
      offset += splits(peer);
    }
    if (offset != rows) {
      return tensorflow::errors::InvalidArgument("DesMeshAlltoall: splits sum to ", offset,
                                                 ", x has ", rows, " rows");
    }
    return absl::OkStatus();
  }

  // Writes the blocks (this rank's own from x), in rank order, and their row counts.
  static void Finish(tensorflow::OpKernelContext* ctx, std::string_view own, int rank,
                     int64_t row_bytes, const tensorflow::TensorShape& row_shape,
                     const std::string& error, std::vector<MeshBlock>* blocks) {
    if (!error.empty()) {
      ctx->SetStatus(tensorflow::errors::Unavailable(error));
      return;
    }
    const auto block = [&](size_t peer) {
      return static_cast<int>(peer) == rank ? own : (*blocks)[peer].view();
    };
    int64_t rows = 0;
    tensorflow::Tensor* counts = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            1, {static_cast<int64_t>(blocks->size())}, &counts));
    for (size_t peer = 0; peer < blocks->size(); ++peer) {
      const int64_t block_rows = block(peer).size() / row_bytes;
      OP_REQUIRES(ctx, block_rows * row_bytes == static_cast<int64_t>(block(peer).size()),
                  tensorflow::errors::InvalidArgument(ctx->op_kernel().type_string(),
                                                      ": rank ", peer,
                                                      " sent rows of another size"));
      counts->flat<int32_t>()(peer) = static_cast<int32_t>(block_rows);
      rows += block_rows;
    }
    tensorflow::TensorShape shape = row_shape;
    shape.InsertDim(0, rows);
    tensorflow::Tensor* received = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, shape, &received));
    char* at = const_cast<char*>(received->tensor_data().data());
    for (size_t peer = 0; peer < blocks->size(); ++peer) {
      if (block(peer).empty()) continue;
      std::memcpy(at, block(peer).data(), block(peer).size());
      at += block(peer).size();
    }
  }

  const uint64_t tag_;
  const bool gather_;
};

class MeshAllgatherOp : public MeshAlltoallOp {
 public:
  explicit MeshAllgatherOp(tensorflow::OpKernelConstruction* ctx)
      : MeshAlltoallOp(ctx, /*gather=*/true) {}
};

// DesMeshAllreduce: x to every rank in one round; each sums all in rank order.
template <typename T>
class MeshAllreduceOp : public tensorflow::AsyncOpKernel {
 public:
  explicit MeshAllreduceOp(tensorflow::OpKernelConstruction* ctx)
      : AsyncOpKernel(ctx), tag_(MeshTag(name())) {}

  void ComputeAsync(tensorflow::OpKernelContext* ctx, DoneCallback done) override {
    PeerMesh* mesh = ConnectedMesh(ctx);
    if (mesh == nullptr) return done();
    const tensorflow::Tensor& x = ctx->input(0);
    std::vector<std::string_view> blocks(mesh->size(), x.tensor_data());
    mesh->Exchange(tag_, blocks, [ctx, done, rank = mesh->rank()](
                                     const std::string& error, std::vector<MeshBlock>* got) {
      Sum(ctx, rank, error, got);
      done();
    });
  }

 private:
  static void Sum(tensorflow::OpKernelContext* ctx, int rank, const std::string& error,
                  std::vector<MeshBlock>* blocks) {
    const tensorflow::Tensor& x = ctx->input(0);  // held until done()
    if (!error.empty()) {
      ctx->SetStatus(tensorflow::errors::Unavailable(error));
      return;
    }
    tensorflow::Tensor* sum = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &sum));
    std::string why;
    OP_REQUIRES(ctx, SumInRankOrder(*blocks, rank, x.flat<T>().data(), x.NumElements(),
                                    sum->flat<T>().data(), &why),
                tensorflow::errors::InvalidArgument("DesMeshAllreduce: ", why));
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
REGISTER_KERNEL_BUILDER(Name("DesMeshAllgather").Device(tensorflow::DEVICE_CPU)
                            .HostMemory("received_splits"),
                        MeshAllgatherOp);
#define DES_REGISTER_MESH_ALLREDUCE(T)                                                   \
  REGISTER_KERNEL_BUILDER(                                                                \
      Name("DesMeshAllreduce").Device(tensorflow::DEVICE_CPU).TypeConstraint<T>("T"),     \
      MeshAllreduceOp<T>);
DES_REGISTER_MESH_ALLREDUCE(float)
DES_REGISTER_MESH_ALLREDUCE(double)
DES_REGISTER_MESH_ALLREDUCE(int32_t)
DES_REGISTER_MESH_ALLREDUCE(int64_t)
#undef DES_REGISTER_MESH_ALLREDUCE

}  // namespace des
