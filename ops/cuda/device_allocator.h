// Where the CUDA cores get device memory: an allocator interface (the TF
// wrappers adapt TF's GPU allocator to it, the standalone driver uses
// cudaMallocAsync) and a move-only owning array on top of it.
// Host-only, TF-independent.
#ifndef DES_TF_OPS_CUDA_DEVICE_ALLOCATOR_H_
#define DES_TF_OPS_CUDA_DEVICE_ALLOCATOR_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

namespace des {
namespace gpu {

// Stream-ordered device memory: memory freed on `stream` may be reused by work
// later on that stream. Implementations return nullptr when out of memory.
class DeviceAllocator {
 public:
  virtual ~DeviceAllocator() = default;
  virtual void* Allocate(size_t bytes, cudaStream_t stream) = 0;
  virtual void Free(void* ptr, cudaStream_t stream) = 0;
};

// cudaMallocAsync / cudaFreeAsync on the device's default memory pool, which
// keeps freed memory for reuse instead of returning it at every sync.
class CudaAsyncAllocator : public DeviceAllocator {
 public:
  void* Allocate(size_t bytes, cudaStream_t stream) override {
    if (!pool_configured_) {
      int device = 0;
      cudaMemPool_t pool;
      if (cudaGetDevice(&device) == cudaSuccess &&
          cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess) {
        uint64_t keep = UINT64_MAX;
        cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
      }
      pool_configured_ = true;
    }
    void* ptr = nullptr;
    if (bytes == 0) bytes = 1;
    if (cudaMallocAsync(&ptr, bytes, stream) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free out-of-memory error
      return nullptr;
    }
    return ptr;
  }
  void Free(void* ptr, cudaStream_t stream) override {
    if (ptr != nullptr) cudaFreeAsync(ptr, stream);
  }

 private:
  bool pool_configured_ = false;
};

// `count` elements of T in device memory, freed (stream-ordered) on destruction.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& other) noexcept { *this = std::move(other); }
  DeviceArray& operator=(DeviceArray&& other) noexcept {
    std::swap(allocator_, other.allocator_);
    std::swap(stream_, other.stream_);
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    return *this;
  }
  ~DeviceArray() { Reset(); }

  // Replaces the contents with `count` uninitialised elements; returns an
  // error message naming `what` when the device is out of memory.
  std::string Allocate(DeviceAllocator* allocator, size_t count, cudaStream_t stream,
                       const char* what) {
    Reset();
    allocator_ = allocator;
    stream_ = stream;
    data_ = static_cast<T*>(allocator->Allocate(count * sizeof(T), stream));
    if (data_ == nullptr) {
      return std::string("out of GPU memory allocating ") + what + " (" +
             std::to_string(count * sizeof(T)) + " bytes)";
    }
    count_ = count;
    return "";
  }

  void Reset() {
    if (data_ != nullptr) allocator_->Free(data_, stream_);
    data_ = nullptr;
    count_ = 0;
  }

  T* data() const { return data_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

 private:
  DeviceAllocator* allocator_ = nullptr;
  cudaStream_t stream_ = nullptr;
  T* data_ = nullptr;
  size_t count_ = 0;
};

}  // namespace gpu
}  // namespace des

#endif  // DES_TF_OPS_CUDA_DEVICE_ALLOCATOR_H_
