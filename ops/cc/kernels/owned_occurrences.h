// The id occurrences one rank owns, from every rank's id message: the
// ownership filter of DES's id exchange (docs/design.md section 2) in two
// passes over the occurrences, instead of a dozen whole-batch gathers.
//
// Each rank r sent the id lists of its `segments[r]` segments (an output row:
// a (sample, field) pair, or a sample) as `ids_sent[r]` int64 ids: either the
// occurrences themselves, in order, or -- when it sent fewer ids than it has
// occurrences -- its distinct ids plus one int32 index into them per
// occurrence. `row_lengths` holds every segment's id count, rank-major, so
// segment s of the concatenation is global segment s. TF-independent.
#ifndef DES_TF_OPS_CC_KERNELS_OWNED_OCCURRENCES_H_
#define DES_TF_OPS_CC_KERNELS_OWNED_OCCURRENCES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "parallel_for.h"
#include "shard_owner.h"
#include "unique.h"

namespace des {

// Every rank's id message, concatenated in rank order (see the file comment).
struct GatheredIds {
  const int64_t* ids;          // [num_ids]
  int64_t num_ids;
  const int32_t* inverse;      // [num_inverse], of the ranks that sent distinct ids
  int64_t num_inverse;
  const int32_t* ids_sent;     // [ranks]
  const int32_t* segments;     // [ranks]
  int64_t ranks;
  const int32_t* row_lengths;  // [rows]
  int64_t rows;
};

// Occurrences of one rank's message, or -1 with *error set.
inline int64_t RankOccurrences(const GatheredIds& in, int64_t rank, int64_t first_row,
                               std::string* error) {
  int64_t total = 0;
  for (int64_t s = first_row; s < first_row + in.segments[rank]; ++s) {
    if (in.row_lengths[s] < 0) {
      *error = "segment " + std::to_string(s) + " has negative length";
      return -1;
    }
    total += in.row_lengths[s];
  }
  return total;
}

// Checks that the message sizes agree; fills occurrences[r] per rank and returns
// the total number of occurrences, or -1 with *error set. Index values are
// checked while the occurrences are walked (OwnedOccurrences).
inline int64_t CheckGatheredIds(const GatheredIds& in, std::vector<int64_t>* occurrences,
                                std::string* error) {
  occurrences->assign(in.ranks, 0);
  int64_t rows = 0, ids = 0, inverse = 0, total = 0;
  for (int64_t r = 0; r < in.ranks; ++r) {
    if (in.segments[r] < 0 || in.ids_sent[r] < 0) {
      *error = "rank " + std::to_string(r) + " has a negative segment or id count";
      return -1;
    }
    if (rows + in.segments[r] > in.rows) {
      *error = "the ranks' segment counts exceed the " + std::to_string(in.rows) +
               " row lengths";
      return -1;
    }
    const int64_t count = RankOccurrences(in, r, rows, error);
    if (count < 0) return -1;
    if (in.ids_sent[r] > count) {
      *error = "rank " + std::to_string(r) + " sent " + std::to_string(in.ids_sent[r]) +
               " ids for " + std::to_string(count) + " occurrences";
      return -1;
    }
    (*occurrences)[r] = count;
    rows += in.segments[r];
    ids += in.ids_sent[r];
    inverse += in.ids_sent[r] < count ? count : 0;
    total += count;
  }
  if (rows != in.rows || ids != in.num_ids || inverse != in.num_inverse) {
    *error = "the messages do not add up: " + std::to_string(in.rows) + " row lengths, " +
             std::to_string(in.num_ids) + " ids and " + std::to_string(in.num_inverse) +
             " indices, where the ranks' counts give " + std::to_string(rows) + ", " +
             std::to_string(ids) + " and " + std::to_string(inverse);
    return -1;
  }
  return total;
}

// Calls visit(id, global segment, occurrence position, sent id index) for every
// occurrence whose id `mine` marks (one flag per sent id), in order; false with *error
// set if an index points outside its rank's ids. `occurrences` is CheckGatheredIds'.
template <typename Visit>
bool VisitOwnedOccurrences(const GatheredIds& in, const std::vector<int64_t>& occurrences,
                           const std::vector<uint8_t>& mine, Visit visit, std::string* error) {
  int64_t row = 0, id_offset = 0, inverse_offset = 0, position = 0;
  for (int64_t r = 0; r < in.ranks; ++r) {
    const bool indexed = in.ids_sent[r] < occurrences[r];
    int64_t k = 0;  // occurrence within this rank's message
    for (const int64_t end = row + in.segments[r]; row < end; ++row) {
      for (int32_t j = 0; j < in.row_lengths[row]; ++j, ++k, ++position) {
        int64_t local = k;
        if (indexed) {
          local = in.inverse[inverse_offset + k];
          if (local < 0 || local >= in.ids_sent[r]) {
            *error = "rank " + std::to_string(r) + "'s index " + std::to_string(local) +
                     " is outside its " + std::to_string(in.ids_sent[r]) + " ids";
            return false;
          }
        }
        const int64_t sent = id_offset + local;
        if (mine[sent]) visit(in.ids[sent], row, position, sent);
      }
    }
    id_offset += in.ids_sent[r];
    if (indexed) inverse_offset += occurrences[r];
  }
  return true;
}

// One flag per sent id: whether `rank` of `num_shards` owns it (ShardOwner).
inline std::vector<uint8_t> OwnedIdFlags(const GatheredIds& in, uint64_t seed,
                                         int32_t num_shards, int32_t rank) {
  std::vector<uint8_t> mine(in.num_ids);
  for (int64_t i = 0; i < in.num_ids; ++i) {
    mine[i] = ShardOwner(in.ids[i], seed, num_shards) == rank;
  }
  return mine;
}

// The owned ids made distinct from the sent ids rather than from the occurrences, which
// repeat them: the sent ids `mine` marks, rank-major, deduplicated (UniqueKeys) into
// *unique; (*number)[i] = sent id i's index in *unique (-1 where not mine), so an
// occurrence's index is number[its sent id]. A rank sends its distinct ids in
// first-occurrence order (DesUnique) or its raw occurrences, so this is the order of
// first owned occurrence: DesUnique of the owned ids. Any order keeps
// unique[number[i]] == ids[i].
inline void NumberOwnedIds(const GatheredIds& in, const std::vector<uint8_t>& mine,
                           const ParallelFor& parallel_for, std::vector<int64_t>* unique,
                           std::vector<int64_t>* number) {
  std::vector<int64_t> owned, sent_at;
  for (int64_t i = 0; i < in.num_ids; ++i) {
    if (!mine[i]) continue;
    owned.push_back(in.ids[i]);
    sent_at.push_back(i);
  }
  const int64_t n = static_cast<int64_t>(owned.size());
  std::vector<int64_t> index(n);
  unique->resize(n);
  int64_t count = 0;
  UniqueScratch scratch;
  UniqueKeys(owned.data(), n, parallel_for, &scratch, unique->data(), index.data(), &count);
  unique->resize(count);
  number->assign(in.num_ids, -1);
  for (int64_t k = 0; k < n; ++k) (*number)[sent_at[k]] = index[k];
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_OWNED_OCCURRENCES_H_
