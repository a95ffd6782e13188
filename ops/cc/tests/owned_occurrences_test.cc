// Core tests of the owned-occurrence filter, without TensorFlow.
#include "../kernels/owned_occurrences.h"

#include <cstdio>
#include <string>
#include <vector>

#include "check.h"

namespace {

struct Occurrence {
  int64_t id, segment, position;
  bool operator==(const Occurrence& o) const {
    return id == o.id && segment == o.segment && position == o.position;
  }
};

// Rank 0 sent its 2 distinct ids and 4 indices for segments {7, 8, 7} and {}; rank 1
// sent its 3 occurrences {9} and {7, 5} raw.
struct TwoRanks {
  std::vector<int64_t> ids = {7, 8, 9, 7, 5};
  std::vector<int32_t> inverse = {0, 1, 0, 0};
  std::vector<int32_t> ids_sent = {2, 3};
  std::vector<int32_t> segments = {2, 2};
  std::vector<int32_t> row_lengths = {4, 0, 1, 2};
  des::GatheredIds view() const {
    return {ids.data(),      static_cast<int64_t>(ids.size()),
            inverse.data(),  static_cast<int64_t>(inverse.size()),
            ids_sent.data(), segments.data(),
            2,               row_lengths.data(),
            static_cast<int64_t>(row_lengths.size())};
  }
};

std::vector<Occurrence> Owned(const des::GatheredIds& in, int32_t shards, int32_t rank,
                              std::string* error) {
  std::vector<int64_t> occurrences;
  std::vector<Occurrence> out;
  if (des::CheckGatheredIds(in, &occurrences, error) < 0) return out;
  des::VisitOwnedOccurrences(
      in, occurrences, des::OwnedIdFlags(in, 0, shards, rank),
      [&](int64_t id, int64_t segment, int64_t position, int64_t) {
        out.push_back({id, segment, position});
      },
      error);
  return out;
}

void TestOneShardRebuildsEveryOccurrence() {
  const TwoRanks messages;
  std::string error;
  const std::vector<Occurrence> expected = {
      {7, 0, 0}, {8, 0, 1}, {7, 0, 2}, {7, 0, 3}, {9, 2, 4}, {7, 3, 5}, {5, 3, 6}};
  DES_CHECK(Owned(messages.view(), 1, 0, &error) == expected);
  DES_CHECK(error.empty());
}

void TestShardsSplitTheOccurrencesByOwner() {
  const TwoRanks messages;
  std::string error;
  std::vector<Occurrence> merged;
  for (int32_t rank = 0; rank < 3; ++rank) {
    for (const Occurrence& o : Owned(messages.view(), 3, rank, &error)) {
      DES_CHECK_EQ(des::ShardOwner(o.id, 0, 3), rank);
      merged.push_back(o);
    }
  }
  DES_CHECK_EQ(merged.size(), 7u);
  DES_CHECK(error.empty());
}

void TestOwnedIdsAreNumberedInFirstOccurrenceOrder() {
  // Rank 0's distinct ids {7, 8} come in first-occurrence order; rank 1's raw {9, 7, 5}
  // repeat 7: one shard numbers them 7, 8, 9, 5, as DesUnique of the occurrences would.
  const TwoRanks messages;
  std::vector<int64_t> unique, number;
  des::NumberOwnedIds(messages.view(), std::vector<uint8_t>(5, 1), des::SerialFor, &unique,
                      &number);
  DES_CHECK(unique == std::vector<int64_t>({7, 8, 9, 5}));
  DES_CHECK(number == std::vector<int64_t>({0, 1, 2, 0, 3}));
  // Only the marked ids: 8 and 5.
  des::NumberOwnedIds(messages.view(), {0, 1, 0, 0, 1}, des::SerialFor, &unique, &number);
  DES_CHECK(unique == std::vector<int64_t>({8, 5}));
  DES_CHECK(number == std::vector<int64_t>({-1, 0, -1, -1, 1}));
}

void TestBadMessagesAreReported() {
  std::string error;
  TwoRanks bad_index;
  bad_index.inverse[2] = 2;  // rank 0 sent 2 ids
  Owned(bad_index.view(), 1, 0, &error);
  DES_CHECK(error.find("index 2 is outside its 2 ids") != std::string::npos);

  error.clear();
  TwoRanks short_inverse;
  short_inverse.inverse.pop_back();
  Owned(short_inverse.view(), 1, 0, &error);
  DES_CHECK(error.find("do not add up") != std::string::npos);

  error.clear();
  TwoRanks too_many_ids;
  too_many_ids.ids_sent = {5, 0};  // rank 0 has 4 occurrences
  Owned(too_many_ids.view(), 1, 0, &error);
  DES_CHECK(error.find("sent 5 ids for 4 occurrences") != std::string::npos);

  error.clear();
  TwoRanks too_many_segments;
  too_many_segments.segments = {2, 3};
  Owned(too_many_segments.view(), 1, 0, &error);
  DES_CHECK(error.find("exceed") != std::string::npos);
}

}  // namespace

int main() {
  TestOneShardRebuildsEveryOccurrence();
  TestShardsSplitTheOccurrencesByOwner();
  TestOwnedIdsAreNumberedInFirstOccurrenceOrder();
  TestBadMessagesAreReported();
  std::printf("owned_occurrences_test: all passed\n");
  return 0;
}
