// A growable, thread-safe int64 key -> embedding row table with in-table sparse
// optimizer state: the storage each rank keeps for the rows it owns.
//
// TF-independent. Layout: the key space is split into kNumStripes stripes by
// hash; each stripe has its own lock, an open-addressing index (linear probing,
// parallel arrays of keys and row ids, backward-shift deletion, no tombstones)
// and an arena of fixed-size blocks holding rows contiguously as
// [values(dim) | slots(num_slots * dim)] plus per-row metadata. Rows never move:
// growth rehashes only the index, so no row is lost or duplicated, and a removed
// row's storage is reused by the next insert. Bulk operations bucket their keys
// by stripe, then process stripes in parallel, so threads never contend on a
// lock within one call, and per-stripe order is the input order, which makes
// every result (gradient sums included) independent of the thread count.
#ifndef DES_TF_OPS_CC_KERNELS_EMBEDDING_TABLE_H_
#define DES_TF_OPS_CC_KERNELS_EMBEDDING_TABLE_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "hash.h"
#include "initializer.h"
#include "parallel_for.h"
#include "sparse_optimizer.h"
#include "table_config.h"

namespace des {

// A snapshot of rows, ordered by key.
struct TableRows {
  std::vector<int64_t> keys;
  std::vector<float> values;  // keys.size() * dim
  std::vector<float> slots;   // keys.size() * num_slots * dim
  std::vector<RowMeta> meta;
};

class EmbeddingTable {
 public:
  static constexpr int kStripeBits = 5;
  static constexpr int kNumStripes = 1 << kStripeBits;

  explicit EmbeddingTable(const TableConfig& config)
      : config_(config),
        row_floats_(config.dim * (1 + config.optimizer.NumSlots())),
        stripes_(kNumStripes) {
    const int64_t per_stripe = config.capacity_hint / kNumStripes + 1;
    for (auto& stripe : stripes_) stripe.Reserve(per_stripe);
  }

  const TableConfig& config() const { return config_; }
  int dim() const { return config_.dim; }
  int num_slots() const { return config_.optimizer.NumSlots(); }

  int64_t Size() const {
    int64_t total = 0;
    for (const auto& stripe : stripes_) total += stripe.size.load();
    return total;
  }

  // Step of the latest update (or imported row): the clock of kMaxAge.
  int64_t CurrentStep() const { return current_step_.load(); }

  // Bytes held by indexes, arenas and metadata (capacity, not just rows in use).
  int64_t MemoryBytes() const {
    int64_t total = sizeof(*this);
    for (const auto& stripe : stripes_) total += stripe.MemoryBytes(row_floats_);
    return total;
  }

  // values[i*dim..] = row of keys[i]; inserts missing keys with their initial
  // values; counts each occurrence in the row's frequency.
  void LookupOrInsert(const int64_t* keys, int64_t n, float* values,
                      const ParallelFor& parallel_for) {
    ForEachStripe(keys, n, parallel_for, [&](Stripe& stripe, const int64_t* idx,
                                             int64_t count, const uint64_t* hashes) {
      std::vector<uint32_t> rows(count);
      std::unique_lock<std::shared_mutex> lock(stripe.mu);
      for (int64_t t = 0; t < count; ++t) {
        if (t + kPrefetchDistance < count) stripe.PrefetchHome(hashes[idx[t + kPrefetchDistance]]);
        rows[t] = FindOrInsert(stripe, keys[idx[t]], hashes[idx[t]]);
      }
      for (int64_t t = 0; t < count; ++t) {
        if (t + kPrefetchDistance < count) {
          stripe.PrefetchRow(rows[t + kPrefetchDistance], row_floats_);
          __builtin_prefetch(values + idx[t + kPrefetchDistance] * dim(), 1);
        }
        RowMeta& meta = stripe.Meta(rows[t]);
        if (meta.frequency != UINT32_MAX) ++meta.frequency;
        std::memcpy(values + idx[t] * dim(), stripe.Row(rows[t], row_floats_),
                    sizeof(float) * dim());
      }
    });
  }

  // values[i*dim..] = row of keys[i], or default_row when absent (found[i] =
  // false). Changes nothing.
  void Find(const int64_t* keys, int64_t n, const float* default_row, float* values,
            bool* found, const ParallelFor& parallel_for) const {
    ForEachStripe(keys, n, parallel_for, [&](const Stripe& stripe, const int64_t* idx,
                                             int64_t count, const uint64_t* hashes) {
      std::vector<uint32_t> rows(count);
      std::shared_lock<std::shared_mutex> lock(stripe.mu);
      for (int64_t t = 0; t < count; ++t) {
        if (t + kPrefetchDistance < count) stripe.PrefetchHome(hashes[idx[t + kPrefetchDistance]]);
        const int64_t slot = stripe.FindSlot(keys[idx[t]], hashes[idx[t]]);
        rows[t] = slot < 0 ? kEmpty : stripe.slot_rows[slot];
      }
      for (int64_t t = 0; t < count; ++t) {
        if (t + kPrefetchDistance < count) {
          stripe.PrefetchRow(rows[t + kPrefetchDistance], row_floats_);
          __builtin_prefetch(values + idx[t + kPrefetchDistance] * dim(), 1);
        }
        const int64_t i = idx[t];
        found[i] = rows[t] != kEmpty;
        std::memcpy(values + i * dim(), found[i] ? stripe.Row(rows[t], row_floats_) : default_row,
                    sizeof(float) * dim());
      }
    });
  }

  // Sums the gradient rows of duplicate keys (in input order), then applies the
  // optimizer once per distinct key, inserting missing keys first. Returns an
  // error message ("" if ok; on error no row has changed) and sets
  // *updated_rows to the number of distinct rows updated.
  std::string ApplyGradients(const int64_t* keys, int64_t n, const float* grads,
                             int64_t step, float learning_rate,
                             const ParallelFor& parallel_for, int64_t* updated_rows) {
    *updated_rows = 0;
    if (!(learning_rate > 0.0f) || !std::isfinite(learning_rate)) {
      return "learning_rate must be finite and > 0, got " + std::to_string(learning_rate);
    }
    if (config_.nonfinite == NonFinitePolicy::kError) {
      for (int64_t i = 0; i < n * dim(); ++i) {
        if (!std::isfinite(grads[i])) {
          return "gradient of key " + std::to_string(keys[i / dim()]) +
                 " is not finite (NaN or Inf); no row was updated (use "
                 "nonfinite_gradients='skip' to skip such keys instead)";
        }
      }
    }
    AdvanceStep(step);
    std::atomic<int64_t> updated{0};
    ForEachStripe(keys, n, parallel_for, [&](Stripe& stripe, const int64_t* idx,
                                             int64_t count, const uint64_t* hashes) {
      // Group duplicates: sorting (key, input position) pairs keeps their input order.
      std::vector<std::pair<int64_t, int64_t>> by_key(count);
      for (int64_t t = 0; t < count; ++t) by_key[t] = {keys[idx[t]], idx[t]};
      std::sort(by_key.begin(), by_key.end());
      // Each distinct key's summed gradient, before the lock (no row is touched).
      std::vector<int64_t> first;  // input position of each distinct key's first occurrence
      std::vector<float> sums;
      std::vector<char> finite;
      first.reserve(count);
      sums.reserve(count * dim());
      for (int64_t begin = 0; begin < count;) {
        int64_t end = begin + 1;
        while (end < count && by_key[end].first == by_key[begin].first) ++end;
        const float* g = grads + by_key[begin].second * dim();
        sums.insert(sums.end(), g, g + dim());
        float* sum = sums.data() + first.size() * dim();
        for (int64_t t = begin + 1; t < end; ++t) {
          g = grads + by_key[t].second * dim();
          for (int j = 0; j < dim(); ++j) sum[j] += g[j];
        }
        finite.push_back(std::all_of(sum, sum + dim(), [](float v) { return std::isfinite(v); }));
        first.push_back(by_key[begin].second);
        begin = end;
      }
      const int64_t distinct = static_cast<int64_t>(first.size());
      std::vector<uint32_t> rows(distinct, kEmpty);
      std::unique_lock<std::shared_mutex> lock(stripe.mu);
      // Rows first (prefetching index homes ahead), then the updates (prefetching rows):
      // the cache misses of consecutive keys overlap instead of following one another.
      for (int64_t u = 0; u < distinct; ++u) {
        if (u + kPrefetchDistance < distinct) stripe.PrefetchHome(hashes[first[u + kPrefetchDistance]]);
        if (finite[u]) rows[u] = FindOrInsert(stripe, keys[first[u]], hashes[first[u]]);
      }
      for (int64_t u = 0; u < distinct; ++u) {
        if (u + kPrefetchDistance < distinct && rows[u + kPrefetchDistance] != kEmpty) {
          stripe.PrefetchRow(rows[u + kPrefetchDistance], row_floats_);
        }
        if (rows[u] == kEmpty) continue;
        RowMeta& meta = stripe.Meta(rows[u]);
        if (meta.update_count != UINT32_MAX) ++meta.update_count;
        meta.last_step = step;
        float* values = stripe.Row(rows[u], row_floats_);
        ApplyUpdate(config_.optimizer, dim(), learning_rate, meta.update_count,
                    sums.data() + u * dim(), values, values + dim());
        updated.fetch_add(1);
      }
    });
    *updated_rows = updated.load();
    return "";
  }

  // Removes the given keys; returns those that were present (first occurrence order).
  std::vector<int64_t> Remove(const int64_t* keys, int64_t n) {
    std::vector<int64_t> removed;
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t hash = IndexHash(keys[i]);
      Stripe& stripe = stripes_[StripeOf(hash)];
      std::unique_lock<std::shared_mutex> lock(stripe.mu);
      const int64_t slot = stripe.FindSlot(keys[i], hash);
      if (slot >= 0) {
        stripe.EraseSlot(slot, [this](int64_t key) { return IndexHash(key); });
        removed.push_back(keys[i]);
      }
    }
    return removed;
  }

  // Removes the rows the policy selects; returns their keys in ascending order.
  std::vector<int64_t> Evict(EvictionPolicy policy, int64_t threshold) {
    std::vector<int64_t> doomed;
    {
      std::vector<std::shared_lock<std::shared_mutex>> locks = LockAllShared();
      if (policy == EvictionPolicy::kRowBudget) {
        doomed = LeastFrequentKeys(std::max<int64_t>(0, Size() - threshold));
      } else {
        const int64_t oldest_kept = CurrentStep() - threshold;
        for (const auto& stripe : stripes_) {
          stripe.ForEachRow([&](int64_t key, uint32_t row) {
            const RowMeta& meta = stripe.Meta(row);
            const bool evict = policy == EvictionPolicy::kMinFrequency
                                   ? meta.frequency < threshold
                                   : meta.last_step < oldest_kept;
            if (evict) doomed.push_back(key);
          });
        }
      }
    }
    std::sort(doomed.begin(), doomed.end());
    Remove(doomed.data(), static_cast<int64_t>(doomed.size()));
    return doomed;
  }

  // A consistent copy of every row, ordered by key.
  TableRows Export() const {
    std::vector<std::shared_lock<std::shared_mutex>> locks = LockAllShared();
    std::vector<std::pair<int64_t, const float*>> rows;
    std::vector<const RowMeta*> metas;
    for (const auto& stripe : stripes_) {
      stripe.ForEachRow([&](int64_t key, uint32_t row) {
        rows.emplace_back(key, stripe.Row(row, row_floats_));
        metas.push_back(&stripe.Meta(row));
      });
    }
    std::vector<size_t> order(rows.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return rows[a].first < rows[b].first; });
    TableRows out;
    const int slot_floats = num_slots() * dim();
    out.keys.reserve(rows.size());
    out.values.reserve(rows.size() * dim());
    out.slots.reserve(rows.size() * slot_floats);
    out.meta.reserve(rows.size());
    for (size_t i : order) {
      const float* row = rows[i].second;
      out.keys.push_back(rows[i].first);
      out.values.insert(out.values.end(), row, row + dim());
      out.slots.insert(out.slots.end(), row + dim(), row + dim() + slot_floats);
      out.meta.push_back(*metas[i]);
    }
    return out;
  }

  // Inserts or overwrites rows (values, slots and metadata), after removing
  // every row first when `clear_first`. Sizes must match dim and num_slots
  // (the caller validates). The step clock advances to the newest last_step.
  void Import(const TableRows& rows, bool clear_first) {
    if (clear_first) {
      for (auto& stripe : stripes_) {
        std::unique_lock<std::shared_mutex> lock(stripe.mu);
        stripe.Clear();
      }
    }
    const int slot_floats = num_slots() * dim();
    for (size_t i = 0; i < rows.keys.size(); ++i) {
      const uint64_t hash = IndexHash(rows.keys[i]);
      Stripe& stripe = stripes_[StripeOf(hash)];
      std::unique_lock<std::shared_mutex> lock(stripe.mu);
      const uint32_t row = FindOrInsert(stripe, rows.keys[i], hash);
      float* dest = stripe.Row(row, row_floats_);
      std::copy_n(rows.values.data() + i * dim(), dim(), dest);
      std::copy_n(rows.slots.data() + i * slot_floats, slot_floats, dest + dim());
      stripe.Meta(row) = rows.meta[i];
      AdvanceStep(rows.meta[i].last_step);
    }
  }

 private:
  static constexpr int64_t kRowsPerBlock = 128;
  static constexpr uint32_t kEmpty = UINT32_MAX;
  // Bulk calls touch index slots and rows this many keys ahead, so their cache
  // misses overlap instead of queueing behind each other.
  static constexpr int64_t kPrefetchDistance = 8;

  // One lock's worth of the table: index + arena + free list.
  struct Stripe {
    mutable std::shared_mutex mu;
    std::atomic<int64_t> size{0};
    // Index: slot_rows[s] == kEmpty marks a free slot; capacity is a power of 2.
    std::vector<int64_t> slot_keys;
    std::vector<uint32_t> slot_rows;
    // Arena: row r lives in blocks[r / kRowsPerBlock]; meta alike.
    std::vector<std::unique_ptr<float[]>> blocks;
    std::vector<std::unique_ptr<RowMeta[]>> meta_blocks;
    uint32_t rows_allocated = 0;
    std::vector<uint32_t> free_rows;

    void Reserve(int64_t rows) {
      int64_t capacity = 8;
      while (capacity * 3 < rows * 4) capacity <<= 1;  // load <= 0.75
      slot_keys.assign(capacity, 0);
      slot_rows.assign(capacity, kEmpty);
    }

    uint64_t mask() const { return slot_rows.size() - 1; }

    void PrefetchHome(uint64_t hash) const {
      __builtin_prefetch(&slot_rows[hash & mask()]);
      __builtin_prefetch(&slot_keys[hash & mask()]);
    }
    void PrefetchRow(uint32_t row, int row_floats) const {
      if (row == kEmpty) return;
      __builtin_prefetch(Row(row, row_floats));
      __builtin_prefetch(&Meta(row));
    }

    float* Row(uint32_t row, int row_floats) const {
      return blocks[row / kRowsPerBlock].get() + (row % kRowsPerBlock) * row_floats;
    }
    RowMeta& Meta(uint32_t row) const {
      return meta_blocks[row / kRowsPerBlock][row % kRowsPerBlock];
    }

    // Slot holding `key`, or -1.
    int64_t FindSlot(int64_t key, uint64_t hash) const {
      for (uint64_t s = hash & mask();; s = (s + 1) & mask()) {
        if (slot_rows[s] == kEmpty) return -1;
        if (slot_keys[s] == key) return static_cast<int64_t>(s);
      }
    }

    template <typename Fn>
    void ForEachRow(Fn&& fn) const {
      for (size_t s = 0; s < slot_rows.size(); ++s) {
        if (slot_rows[s] != kEmpty) fn(slot_keys[s], slot_rows[s]);
      }
    }

    uint32_t AllocateRow(int row_floats) {
      if (!free_rows.empty()) {
        const uint32_t row = free_rows.back();
        free_rows.pop_back();
        return row;
      }
      if (rows_allocated % kRowsPerBlock == 0) {
        blocks.emplace_back(new float[kRowsPerBlock * row_floats]);
        meta_blocks.emplace_back(new RowMeta[kRowsPerBlock]);
      }
      return rows_allocated++;
    }

    // Inserts (key -> row) into a free slot; the index must have room.
    void PlaceInIndex(int64_t key, uint64_t hash, uint32_t row) {
      uint64_t s = hash & mask();
      while (slot_rows[s] != kEmpty) s = (s + 1) & mask();
      slot_keys[s] = key;
      slot_rows[s] = row;
    }

    template <typename HashFn>
    void GrowIndex(HashFn&& hash_of) {
      std::vector<int64_t> old_keys(slot_keys.size() * 2, 0);
      std::vector<uint32_t> old_rows(slot_rows.size() * 2, kEmpty);
      old_keys.swap(slot_keys);
      old_rows.swap(slot_rows);
      for (size_t s = 0; s < old_rows.size(); ++s) {
        if (old_rows[s] != kEmpty) PlaceInIndex(old_keys[s], hash_of(old_keys[s]), old_rows[s]);
      }
    }

    // Backward-shift deletion: pulls later entries of the probe run into the
    // hole so lookups never need tombstones.
    template <typename HashFn>
    void EraseSlot(int64_t slot, HashFn&& hash_of) {
      free_rows.push_back(slot_rows[slot]);
      uint64_t hole = static_cast<uint64_t>(slot);
      for (uint64_t s = (hole + 1) & mask(); slot_rows[s] != kEmpty; s = (s + 1) & mask()) {
        const uint64_t home = hash_of(slot_keys[s]) & mask();
        // Entry s may move into the hole iff its home is not in (hole, s].
        const bool home_after_hole = ((s - home) & mask()) < ((s - hole) & mask());
        if (!home_after_hole) {
          slot_keys[hole] = slot_keys[s];
          slot_rows[hole] = slot_rows[s];
          hole = s;
        }
      }
      slot_rows[hole] = kEmpty;
      size.fetch_sub(1);
    }

    void Clear() {
      std::fill(slot_rows.begin(), slot_rows.end(), kEmpty);
      free_rows.clear();
      for (uint32_t r = rows_allocated; r-- > 0;) free_rows.push_back(r);
      size.store(0);
    }

    int64_t MemoryBytes(int row_floats) const {
      return static_cast<int64_t>(slot_keys.capacity() * sizeof(int64_t) +
                                  slot_rows.capacity() * sizeof(uint32_t) +
                                  blocks.size() * kRowsPerBlock *
                                      (row_floats * sizeof(float) + sizeof(RowMeta)) +
                                  (blocks.capacity() + meta_blocks.capacity()) *
                                      sizeof(void*) +
                                  free_rows.capacity() * sizeof(uint32_t));
    }
  };

  // Index hash, independent of the sharding hash Mix64(key ^ seed) so the keys a
  // rank owns still spread over all slots.
  static uint64_t IndexHash(int64_t key) {
    return Mix64(Mix64(static_cast<uint64_t>(key)) ^ 0x243f6a8885a308d3ULL);
  }
  static int StripeOf(uint64_t hash) { return static_cast<int>(hash >> (64 - kStripeBits)); }

  // Row of `key` (index hash `hash`) in `stripe` (locked exclusively), inserted
  // and initialised if absent.
  uint32_t FindOrInsert(Stripe& stripe, int64_t key, uint64_t hash) {
    const int64_t slot = stripe.FindSlot(key, hash);
    if (slot >= 0) return stripe.slot_rows[slot];
    if ((stripe.size.load() + 1) * 4 > static_cast<int64_t>(stripe.slot_rows.size()) * 3) {
      stripe.GrowIndex([](int64_t k) { return IndexHash(k); });
    }
    const uint32_t row = stripe.AllocateRow(row_floats_);
    float* values = stripe.Row(row, row_floats_);
    InitializeRow(config_.initializer, config_.seed, key, dim(), values);
    for (int s = 0; s < num_slots(); ++s) {
      std::fill_n(values + dim() * (1 + s), dim(), config_.optimizer.SlotInitialValue(s));
    }
    stripe.Meta(row) = RowMeta{0, 0, CurrentStep()};
    stripe.PlaceInIndex(key, hash, row);
    stripe.size.fetch_add(1);
    return row;
  }

  // Buckets keys[0..n) by stripe (stable), then runs fn(stripe, indices, count,
  // hashes) for every stripe that has keys, stripes spread over parallel_for;
  // hashes[i] is the index hash of keys[i].
  template <typename Stripes, typename Fn>
  static void ForEachStripeImpl(Stripes& stripes, const int64_t* keys,
                                int64_t n, const ParallelFor& parallel_for, Fn&& fn) {
    std::vector<uint64_t> hashes(n);
    parallel_for(n, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) hashes[i] = IndexHash(keys[i]);
    });
    std::vector<int64_t> starts(kNumStripes + 1, 0);
    for (int64_t i = 0; i < n; ++i) ++starts[StripeOf(hashes[i]) + 1];
    for (int s = 0; s < kNumStripes; ++s) starts[s + 1] += starts[s];
    std::vector<int64_t> order(n);
    std::vector<int64_t> next(starts.begin(), starts.end() - 1);
    for (int64_t i = 0; i < n; ++i) order[next[StripeOf(hashes[i])]++] = i;
    parallel_for(kNumStripes, [&](int64_t begin, int64_t end) {
      for (int64_t s = begin; s < end; ++s) {
        const int64_t count = starts[s + 1] - starts[s];
        if (count > 0) fn(stripes[s], order.data() + starts[s], count, hashes.data());
      }
    });
  }
  template <typename Fn>
  void ForEachStripe(const int64_t* keys, int64_t n, const ParallelFor& pf, Fn&& fn) {
    ForEachStripeImpl(stripes_, keys, n, pf, std::forward<Fn>(fn));
  }
  template <typename Fn>
  void ForEachStripe(const int64_t* keys, int64_t n, const ParallelFor& pf, Fn&& fn) const {
    ForEachStripeImpl(stripes_, keys, n, pf, std::forward<Fn>(fn));
  }

  std::vector<std::shared_lock<std::shared_mutex>> LockAllShared() const {
    std::vector<std::shared_lock<std::shared_mutex>> locks;
    for (const auto& stripe : stripes_) locks.emplace_back(stripe.mu);
    return locks;
  }

  // The `count` rows to evict first under a row budget: least frequent, then
  // least recently updated, then smallest key. Caller holds all stripe locks.
  std::vector<int64_t> LeastFrequentKeys(int64_t count) const {
    if (count <= 0) return {};
    std::vector<std::tuple<uint32_t, int64_t, int64_t>> rank;
    for (const auto& stripe : stripes_) {
      stripe.ForEachRow([&](int64_t key, uint32_t row) {
        const RowMeta& meta = stripe.Meta(row);
        rank.emplace_back(meta.frequency, meta.last_step, key);
      });
    }
    std::nth_element(rank.begin(), rank.begin() + (count - 1), rank.end());
    std::vector<int64_t> keys;
    keys.reserve(count);
    for (int64_t i = 0; i < count; ++i) keys.push_back(std::get<2>(rank[i]));
    return keys;
  }

  void AdvanceStep(int64_t step) {
    int64_t current = current_step_.load();
    while (step > current && !current_step_.compare_exchange_weak(current, step)) {
    }
  }

  const TableConfig config_;
  const int row_floats_;
  std::vector<Stripe> stripes_;
  std::atomic<int64_t> current_step_{0};
};

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_EMBEDDING_TABLE_H_
