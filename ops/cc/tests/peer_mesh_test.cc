// Core tests of PeerMesh, without TensorFlow: three ranks as threads of this process,
// connected over loopback.
#include "../kernels/peer_mesh.h"

#include <cstring>
#include <future>
#include <string>
#include <vector>

#include "check.h"

namespace {

using des::PeerMesh;

std::vector<std::unique_ptr<PeerMesh>> ConnectRanks(int size) {
  std::vector<des::MeshListener> listeners(size);
  std::vector<std::string> addresses;
  for (auto& listener : listeners) {
    DES_CHECK(listener.Open("127.0.0.1").empty());
    addresses.push_back(listener.address());
  }
  std::vector<std::future<std::unique_ptr<PeerMesh>>> connecting;
  for (int rank = 0; rank < size; ++rank) {
    connecting.push_back(std::async(std::launch::async, [&, rank] {
      std::string error;
      auto mesh = PeerMesh::Connect(rank, addresses, &listeners[rank], 10.0, 30.0, &error);
      DES_CHECK(error.empty());
      return mesh;
    }));
  }
  std::vector<std::unique_ptr<PeerMesh>> meshes;
  for (auto& mesh : connecting) meshes.push_back(mesh.get());
  return meshes;
}

// Starts an exchange; the future holds (error, blocks received from ranks 0..size-1,
// this rank's own block as it was given: the mesh leaves its entry empty).
std::future<std::pair<std::string, std::vector<std::string>>> Start(
    PeerMesh* mesh, uint64_t tag, const std::vector<std::string>& blocks) {
  auto result = std::make_shared<std::promise<std::pair<std::string, std::vector<std::string>>>>();
  std::vector<std::string_view> views(blocks.begin(), blocks.end());
  mesh->Exchange(tag, views, [result, own = blocks[mesh->rank()], rank = mesh->rank()](
                                 const std::string& error, std::vector<des::MeshBlock>* got) {
    std::vector<std::string> texts;
    for (size_t peer = 0; got != nullptr && peer < got->size(); ++peer) {
      DES_CHECK(static_cast<int>(peer) != rank || (*got)[peer].size == 0);
      texts.emplace_back(static_cast<int>(peer) == rank ? own : std::string((*got)[peer].view()));
    }
    result->set_value({error, texts});
  });
  return result->get_future();
}

// Rank r sends "r>p:<what>" to each rank p.
std::vector<std::string> Blocks(int rank, int size, const std::string& what) {
  std::vector<std::string> blocks;
  for (int peer = 0; peer < size; ++peer) {
    blocks.push_back(std::to_string(rank) + ">" + std::to_string(peer) + ":" + what);
  }
  return blocks;
}

void TestExchangesMatchByTagInAnyOrder() {
  auto meshes = ConnectRanks(3);
  // Ranks start tags 1 and 2 in different orders, and tag 1 twice: same-tag exchanges
  // match in program order, different tags independently.
  std::vector<std::future<std::pair<std::string, std::vector<std::string>>>> first, second, other;
  for (int rank = 0; rank < 3; ++rank) {
    if (rank == 1) other.push_back(Start(meshes[rank].get(), 2, Blocks(rank, 3, "b")));
    first.push_back(Start(meshes[rank].get(), 1, Blocks(rank, 3, "a1")));
    second.push_back(Start(meshes[rank].get(), 1, Blocks(rank, 3, "a2")));
    if (rank != 1) other.push_back(Start(meshes[rank].get(), 2, Blocks(rank, 3, "b")));
  }
  for (int rank = 0; rank < 3; ++rank) {
    auto a1 = first[rank].get(), a2 = second[rank].get(), b = other[rank].get();
    DES_CHECK(a1.first.empty() && a2.first.empty() && b.first.empty());
    for (int from = 0; from < 3; ++from) {
      const std::string prefix = std::to_string(from) + ">" + std::to_string(rank) + ":";
      DES_CHECK_EQ(a1.second[from], prefix + "a1");
      DES_CHECK_EQ(a2.second[from], prefix + "a2");
      DES_CHECK_EQ(b.second[from], prefix + "b");
    }
  }
}

void TestEmptyAndLargeBlocks() {
  auto meshes = ConnectRanks(2);
  const std::string large(8 << 20, 'x');  // larger than the socket buffers both ways
  for (int round = 0; round < 2; ++round) {
    // Both send 8 MiB at once, then rank 0 sends nothing and rank 1 8 MiB.
    auto zero = Start(meshes[0].get(), 7, {"", large});
    auto one = Start(meshes[1].get(), 7, {large, ""});
    auto got0 = zero.get(), got1 = one.get();
    DES_CHECK(got0.first.empty() && got1.first.empty());
    DES_CHECK(got0.second[1] == large && got1.second[0] == large);
    DES_CHECK(got0.second[0].empty() && got1.second[1].empty());
    auto empty0 = Start(meshes[0].get(), 8, {"own", ""});
    auto empty1 = Start(meshes[1].get(), 8, {large, "own"});
    auto got_empty0 = empty0.get(), got_empty1 = empty1.get();
    DES_CHECK(got_empty0.second[1] == large && got_empty1.second[0].empty());
    DES_CHECK(got_empty0.second[0] == "own" && got_empty1.second[1] == "own");
  }
}

void TestLostPeerFailsPendingAndLaterExchanges() {
  auto meshes = ConnectRanks(3);
  auto waiting = Start(meshes[0].get(), 3, Blocks(0, 3, "x"));
  meshes[2].reset();  // rank 2 goes away before answering
  auto failed = waiting.get();
  DES_CHECK(failed.first.find("lost its connection to rank") != std::string::npos);
  auto later = Start(meshes[0].get(), 4, Blocks(0, 3, "y")).get();
  DES_CHECK(!later.first.empty());
}

void TestSilentPeerFailsWithinDeadAfter() {
  des::MeshListener listener;
  DES_CHECK(listener.Open("127.0.0.1").empty());
  auto connecting = std::async(std::launch::async, [&] {
    std::string error;
    auto mesh = PeerMesh::Connect(0, {listener.address(), "127.0.0.1:9"}, &listener, 10.0,
                                  1.0, &error);
    DES_CHECK(error.empty());
    return mesh;
  });
  // "Rank 1" connects and introduces itself, then says nothing more (a frozen process).
  sockaddr_in address{};
  std::string error;
  DES_CHECK(des::mesh_internal::ParseAddress(listener.address(), &address, &error));
  const int silent = socket(AF_INET, SOCK_STREAM, 0);
  DES_CHECK(connect(silent, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  const int32_t rank = 1;
  DES_CHECK(des::mesh_internal::WriteAll(silent, &rank, sizeof(rank)));
  auto mesh = connecting.get();
  const auto start = std::chrono::steady_clock::now();
  auto failed = Start(mesh.get(), 5, {"a", "b"}).get();
  const double waited_s = std::chrono::duration<double>(
      std::chrono::steady_clock::now() - start).count();
  DES_CHECK(failed.first.find("rank 1 (127.0.0.1:9): nothing received for 1 s") !=
            std::string::npos);
  DES_CHECK(waited_s < 3.0);
  close(silent);
}

// Blocks holding `values`, as received (the own rank's entry left empty).
std::vector<des::MeshBlock> Received(const std::vector<std::vector<float>>& values, int rank) {
  std::vector<des::MeshBlock> blocks(values.size());
  for (size_t peer = 0; peer < values.size(); ++peer) {
    if (static_cast<int>(peer) == rank) continue;
    blocks[peer].size = values[peer].size() * sizeof(float);
    blocks[peer].data.reset(new char[blocks[peer].size]);
    std::memcpy(blocks[peer].data.get(), values[peer].data(), blocks[peer].size);
  }
  return blocks;
}

void TestSumInRankOrderAddsEveryRankInOrder() {
  // 1e8 + 1 - 1e8 in float: 0 in rank order 0, 1, 2 (1 is lost in 1e8 + 1), and the
  // own rank's values come from `own`, not from its (empty) block.
  const std::vector<std::vector<float>> values = {{1e8f, 2}, {1, 3}, {-1e8f, 4}};
  for (int rank = 0; rank < 3; ++rank) {
    std::vector<float> out(2);
    std::string error;
    DES_CHECK(des::SumInRankOrder(Received(values, rank), rank, values[rank].data(), 2,
                                  out.data(), &error));
    DES_CHECK(out[0] == 0.0f && out[1] == 9.0f);
  }
  std::vector<float> out(3);
  std::string error;
  DES_CHECK(!des::SumInRankOrder(Received(values, 0), 0, values[0].data(), 3, out.data(),
                                 &error));
  DES_CHECK(error == "rank 1 sent 8 bytes to sum with this rank's 12");
}

}  // namespace

int main() {
  TestSumInRankOrderAddsEveryRankInOrder();
  TestExchangesMatchByTagInAnyOrder();
  TestEmptyAndLargeBlocks();
  TestLostPeerFailsPendingAndLaterExchanges();
  TestSilentPeerFailsWithinDeadAfter();
  std::printf("peer_mesh_test: OK\n");
  return 0;
}
