// PeerMesh: a TCP connection between every pair of ranks, and a tagged exchange over
// it (TF-independent core of the DesMesh* ops).
//
// Why not Horovod for the step's collectives: Horovod's background thread starts a
// collective only at its next cycle, after a negotiation round among the ranks, and
// cycles (with network messages and system calls) even when idle. A DES step has up
// to five dependent rounds; measured on 2 ranks on 2 cores a round cost 1.4-4 ms
// (0.045 ms here: bench/collective_rounds.py) and the idle cycling about a fifth of
// each rank's core. Here an exchange starts when its op runs and ends when the last
// peer's block arrives: a receiver thread per peer sleeps in recv() between messages.
//
// Matching without negotiation: every message carries a tag (the op's name, equal on
// all ranks as the ranks run the same graph), and blocks with the same tag from one
// peer are matched in the order they were sent, so independent exchanges may run
// concurrently and in any order on each rank.
//
// Wire frame: tag (uint64), payload bytes (uint64), payload. Every rank also sends each
// peer an empty heartbeat frame a few times per `dead_after_s`, from its own thread. A
// peer whose process ended (its connection closes) or that sent nothing at all for
// `dead_after_s` (its host or link is down, or its process is frozen) fails every
// pending and later exchange with a message naming it. A peer that is alive but slow
// to reach an exchange is waited for, as Horovod waits for it.
#ifndef DES_TF_OPS_CC_KERNELS_PEER_MESH_H_
#define DES_TF_OPS_CC_KERNELS_PEER_MESH_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace des {

namespace mesh_internal {

inline std::string Errno(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// Splits "host:port" (IPv4) into a socket address.
inline bool ParseAddress(const std::string& text, sockaddr_in* address, std::string* error) {
  const size_t colon = text.rfind(':');
  std::memset(address, 0, sizeof(*address));
  address->sin_family = AF_INET;
  if (colon == std::string::npos ||
      inet_pton(AF_INET, text.substr(0, colon).c_str(), &address->sin_addr) != 1) {
    *error = "not an IPv4 host:port address: '" + text + "'";
    return false;
  }
  address->sin_port = htons(static_cast<uint16_t>(std::stoi(text.substr(colon + 1))));
  return true;
}

inline bool WriteAll(int fd, const void* data, size_t bytes) {
  const char* at = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = send(fd, at, bytes, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    at += n;
    bytes -= static_cast<size_t>(n);
  }
  return true;
}

// False at end of stream or on error (errno 0 at a clean end).
inline bool ReadAll(int fd, void* data, size_t bytes) {
  char* at = static_cast<char*>(data);
  while (bytes > 0) {
    const ssize_t n = recv(fd, at, bytes, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = 0;
    if (n <= 0) return false;
    at += n;
    bytes -= static_cast<size_t>(n);
  }
  return true;
}

// No Nagle delay; a send whose data stays unacknowledged for `dead_after_s` fails.
inline void TuneSocket(int fd, double dead_after_s) {
  const int one = 1;
  const unsigned unacked_ms = static_cast<unsigned>(std::max(1.0, dead_after_s) * 1000);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &unacked_ms, sizeof(unacked_ms));
}

}  // namespace mesh_internal

// A listening socket on an IPv4 address, port chosen by the system.
class MeshListener {
 public:
  // Binds `host` (IPv4 dotted quad); "" on success, else why not.
  std::string Open(const std::string& host) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return mesh_internal::Errno("socket");
    sockaddr_in address{};
    std::string error;
    if (!mesh_internal::ParseAddress(host + ":0", &address, &error)) return error;
    socklen_t length = sizeof(address);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        listen(fd_, 64) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      return mesh_internal::Errno("listening on " + host);
    }
    address_ = host + ":" + std::to_string(ntohs(address.sin_port));
    return "";
  }
  ~MeshListener() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }
  const std::string& address() const { return address_; }  // "host:port"

 private:
  int fd_ = -1;
  std::string address_;
};

// A received block: bytes as they arrived, in a buffer no one zero-filled first.
struct MeshBlock {
  std::unique_ptr<char[]> data;
  size_t size = 0;

  std::string_view view() const { return {data.get(), size}; }
};

class PeerMesh {
 public:
  // Called once per exchange with "" and every peer's block (this rank's own entry is
  // left empty: the caller holds it and it is not copied), or with the error that
  // ended it.
  using Done = std::function<void(const std::string& error, std::vector<MeshBlock>* blocks)>;

  // Connects rank `rank` to every other rank of `addresses` (each rank's listener
  // address, "host:port") within `connect_s`: it dials the lower ranks and accepts the
  // higher ones, each connection opened by the dialler's rank number. A peer silent
  // for `dead_after_s` is an error; one whose process ends, at once. Empty `*error` on
  // success.
  static std::unique_ptr<PeerMesh> Connect(int rank, const std::vector<std::string>& addresses,
                                           MeshListener* listener, double connect_s,
                                           double dead_after_s, std::string* error) {
    const int size = static_cast<int>(addresses.size());
    std::unique_ptr<PeerMesh> mesh(new PeerMesh(rank, size, addresses, dead_after_s));
    const auto deadline =
        Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(connect_s * 1000));
    for (int peer = 0; peer < rank && error->empty(); ++peer) {
      mesh->fds_[peer] = Dial(addresses[peer], rank, deadline, error);
      if (mesh->fds_[peer] >= 0) mesh_internal::TuneSocket(mesh->fds_[peer], dead_after_s);
    }
    for (int accepted = rank + 1; accepted < size && error->empty(); ++accepted) {
      pollfd incoming{listener->fd(), POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - Clock::now());
      if (poll(&incoming, 1, std::max<int64_t>(0, left.count())) != 1) {
        *error = "rank " + std::to_string(rank) + ": not every higher rank connected within " +
                 std::to_string(static_cast<int>(connect_s)) + " s";
        break;
      }
      const int fd = accept4(listener->fd(), nullptr, nullptr, SOCK_CLOEXEC);
      int32_t peer = -1;
      if (fd < 0 || !mesh_internal::ReadAll(fd, &peer, sizeof(peer)) || peer <= rank ||
          peer >= size || mesh->fds_[peer] >= 0) {
        *error = "rank " + std::to_string(rank) + ": a bad or failed connection from a peer";
        if (fd >= 0) close(fd);
        break;
      }
      mesh_internal::TuneSocket(fd, dead_after_s);
      mesh->fds_[peer] = fd;
    }
    if (!error->empty()) return nullptr;
    std::fill(mesh->last_heard_.begin(), mesh->last_heard_.end(), Clock::now());
    for (int peer = 0; peer < size; ++peer) {
      if (peer != rank) mesh->threads_.emplace_back([m = mesh.get(), peer] { m->Receive(peer); });
    }
    mesh->threads_.emplace_back([m = mesh.get()] { m->Heartbeat(); });
    mesh->threads_.emplace_back([m = mesh.get()] { m->Watch(); });
    return mesh;
  }

  ~PeerMesh() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    closed_.notify_all();
    for (int fd : fds_) {
      if (fd >= 0) shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& thread : threads_) thread.join();
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
  }

  int rank() const { return rank_; }
  int size() const { return size_; }

  // Sends blocks[p] to every peer p and calls `done` once the block tagged `tag` from
  // every peer has arrived (on this thread or a receiver thread). blocks[rank()] is
  // not sent; the same bytes may be given for several peers (an allgather).
  void Exchange(uint64_t tag, const std::vector<std::string_view>& blocks, Done done) {
    std::string error = failure();
    for (int peer = 0; peer < size_ && error.empty(); ++peer) {
      if (peer != rank_) error = Send(peer, tag, blocks[peer]);
    }
    if (!error.empty()) {
      done(error, nullptr);
      return;
    }
    Pending pending{std::move(done), std::vector<MeshBlock>(size_),
                    std::vector<bool>(size_, false), size_ - 1};
    pending.have[rank_] = true;
    std::unique_lock<std::mutex> lock(mutex_);
    for (int peer = 0; peer < size_; ++peer) {
      auto arrived = early_.find({peer, tag});
      if (peer == rank_ || arrived == early_.end()) continue;
      pending.blocks[peer] = std::move(arrived->second.front());
      pending.have[peer] = true;
      --pending.missing;
      arrived->second.pop_front();
      if (arrived->second.empty()) early_.erase(arrived);
    }
    if (!failure_.empty() && pending.missing > 0) {
      error = failure_;
    } else if (pending.missing > 0) {
      pending_[tag].push_back(std::move(pending));
      return;
    }
    lock.unlock();
    pending.done(error, error.empty() ? &pending.blocks : nullptr);
  }

 private:
  struct Pending {
    Done done;
    std::vector<MeshBlock> blocks;
    std::vector<bool> have;
    int missing;
  };

  using Clock = std::chrono::steady_clock;
  static constexpr uint64_t kHeartbeatTag = 0;  // MeshTag never returns 0 for a name

  PeerMesh(int rank, int size, std::vector<std::string> addresses, double dead_after_s)
      : rank_(rank), size_(size), addresses_(std::move(addresses)),
        dead_after_(std::chrono::milliseconds(static_cast<int64_t>(dead_after_s * 1000))),
        fds_(size, -1), send_mutexes_(size), last_heard_(size, Clock::now()) {}

  // Sends a heartbeat to every peer 4 times per dead_after_s (a send blocked by a
  // stopped peer ends when Watch fails the mesh and shuts its sockets).
  void Heartbeat() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!closed_.wait_for(lock, dead_after_ / 4, [this] { return closing_; })) {
      lock.unlock();
      for (int peer = 0; peer < size_; ++peer) {
        if (peer != rank_) Send(peer, kHeartbeatTag, {});
      }
      lock.lock();
    }
  }

  // Fails the mesh when a peer has sent nothing for dead_after_s.
  void Watch() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!closed_.wait_for(lock, dead_after_ / 4, [this] { return closing_; })) {
      const auto now = Clock::now();
      for (int peer = 0; peer < size_; ++peer) {
        if (peer == rank_ || now - last_heard_[peer] <= dead_after_) continue;
        lock.unlock();
        Fail(peer, "nothing received for " + std::to_string(dead_after_.count() / 1000) +
                       " s (its process, host or link stopped)");
        lock.lock();
      }
    }
  }

  static int Dial(const std::string& address, int32_t rank, Clock::time_point deadline,
                  std::string* error) {
    sockaddr_in target{};
    if (!mesh_internal::ParseAddress(address, &target, error)) return -1;
    while (true) {  // the peer may not listen yet
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof(target)) == 0 &&
          mesh_internal::WriteAll(fd, &rank, sizeof(rank))) {
        return fd;
      }
      const std::string why = mesh_internal::Errno("connecting to " + address);
      close(fd);
      if (Clock::now() > deadline) {
        *error = why;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  std::string failure() {
    std::lock_guard<std::mutex> lock(mutex_);
    return failure_;
  }

  std::string Send(int peer, uint64_t tag, std::string_view block) {
    const uint64_t header[2] = {tag, block.size()};
    std::lock_guard<std::mutex> lock(send_mutexes_[peer]);
    if (mesh_internal::WriteAll(fds_[peer], header, sizeof(header)) &&
        mesh_internal::WriteAll(fds_[peer], block.data(), block.size())) {
      return "";
    }
    return Fail(peer, errno ? std::strerror(errno) : "connection closed");
  }

  // The receiver thread of `peer`: hands each block to the oldest exchange with its tag
  // still missing this peer's block, or keeps it until that exchange starts.
  void Receive(int peer) {
    while (true) {
      uint64_t header[2];
      MeshBlock block;
      bool ok = mesh_internal::ReadAll(fds_[peer], header, sizeof(header));
      if (ok) {
        block.data.reset(new char[header[1]]);
        block.size = header[1];
        ok = mesh_internal::ReadAll(fds_[peer], block.data.get(), block.size);
      }
      if (!ok) {
        Fail(peer, errno ? std::strerror(errno) : "connection closed by peer");
        return;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      last_heard_[peer] = Clock::now();
      if (header[0] == kHeartbeatTag) continue;
      auto waiting = pending_.find(header[0]);
      Pending* target = nullptr;
      if (waiting != pending_.end()) {
        for (Pending& pending : waiting->second) {
          if (!pending.have[peer]) {
            target = &pending;
            break;
          }
        }
      }
      if (target == nullptr) {
        early_[{peer, header[0]}].push_back(std::move(block));
        continue;
      }
      target->blocks[peer] = std::move(block);
      target->have[peer] = true;
      if (--target->missing > 0) continue;
      // Exchanges with one tag complete in order: the finished one is the oldest.
      Pending finished = std::move(waiting->second.front());
      waiting->second.pop_front();
      if (waiting->second.empty()) pending_.erase(waiting);
      lock.unlock();
      finished.done("", &finished.blocks);
    }
  }

  // Records the first failure, fails every pending exchange with it, and shuts every
  // connection down (sends blocked on a stopped peer return; later ones fail at once).
  std::string Fail(int peer, const std::string& why) {
    std::vector<Pending> failed;
    std::string message;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closing_) return "des-tf mesh: closed";
      if (failure_.empty()) {
        failure_ = "des-tf mesh: rank " + std::to_string(rank_) + " lost its connection to rank " +
                   std::to_string(peer) + " (" + addresses_[peer] + "): " + why;
        for (int fd : fds_) {
          if (fd >= 0) shutdown(fd, SHUT_RDWR);
        }
      }
      message = failure_;
      for (auto& [tag, queue] : pending_) {
        for (Pending& pending : queue) failed.push_back(std::move(pending));
      }
      pending_.clear();
    }
    for (Pending& pending : failed) pending.done(message, nullptr);
    return message;
  }

  const int rank_, size_;
  const std::vector<std::string> addresses_;
  const std::chrono::milliseconds dead_after_;
  std::vector<int> fds_;
  std::vector<std::mutex> send_mutexes_;
  std::vector<std::thread> threads_;  // a receiver per peer, Heartbeat, Watch
  std::mutex mutex_;  // guards what follows
  std::condition_variable closed_;
  std::vector<Clock::time_point> last_heard_;
  std::map<uint64_t, std::deque<Pending>> pending_;
  std::map<std::pair<int, uint64_t>, std::deque<MeshBlock>> early_;
  std::string failure_;
  bool closing_ = false;
};

// FNV-1a: the tag of an exchange, from a name equal on every rank (never 0, the
// heartbeat's tag).
inline uint64_t MeshTag(std::string_view name) {
  uint64_t hash = 1469598103934665603ull;
  for (char c : name) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return hash == 0 ? 1 : hash;
}

// The one-round allreduce: `out` = the sum of every rank's `count` values, taken in
// rank order (this rank's own values `own` at index `rank`, the peers' from `blocks`),
// so every rank adds the same terms in the same order and holds the same bits. False,
// with *error naming it, when a peer's block holds another number of values.
template <typename T>
bool SumInRankOrder(const std::vector<MeshBlock>& blocks, int rank, const T* own,
                    int64_t count, T* out, std::string* error) {
  const size_t bytes = static_cast<size_t>(count) * sizeof(T);
  for (size_t peer = 0; peer < blocks.size(); ++peer) {
    if (static_cast<int>(peer) != rank && blocks[peer].size != bytes) {
      *error = "rank " + std::to_string(peer) + " sent " + std::to_string(blocks[peer].size) +
               " bytes to sum with this rank's " + std::to_string(bytes);
      return false;
    }
  }
  if (count == 0) return true;
  const auto values = [&](size_t peer) {
    return static_cast<int>(peer) == rank ? own
                                          : reinterpret_cast<const T*>(blocks[peer].data.get());
  };
  std::memcpy(out, values(0), bytes);
  for (size_t peer = 1; peer < blocks.size(); ++peer) {
    const T* term = values(peer);
    for (int64_t i = 0; i < count; ++i) out[i] += term[i];
  }
  return true;
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_PEER_MESH_H_
