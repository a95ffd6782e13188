// Deterministic per-key initial row values: a pure function of (key, seed,
// initializer, column), so a row's first value never depends on insertion order,
// thread timing or which rank owns the key.
//
// TF-independent. Only IEEE-exact operations (+, -, *, /, integer-to-float) run
// per value; the truncated-normal quantile table is built once with the same
// operations, so every platform that honours IEEE float rounding (no FMA
// contraction) produces the same bits.
#ifndef DES_TF_OPS_CC_KERNELS_INITIALIZER_H_
#define DES_TF_OPS_CC_KERNELS_INITIALIZER_H_

#include <array>
#include <cstdint>
#include <string>

#include "hash.h"

namespace des {

enum class InitKind { kZeros, kConstant, kUniform, kTruncatedNormal };

// `scale` is the constant's value, the uniform half-width (values in
// [-scale, scale)), or the truncated normal's stddev (cut at 2 stddev).
struct Initializer {
  InitKind kind = InitKind::kZeros;
  float scale = 0.0f;
};

// Fills `out` from an initializer name; returns an error message ("" if ok).
inline std::string ParseInitializer(const std::string& name, float scale,
                                    Initializer* out) {
  if (name == "zeros") {
    out->kind = InitKind::kZeros;
  } else if (name == "constant") {
    out->kind = InitKind::kConstant;
  } else if (name == "uniform") {
    out->kind = InitKind::kUniform;
  } else if (name == "truncated_normal") {
    out->kind = InitKind::kTruncatedNormal;
  } else {
    return "unknown initializer '" + name +
           "' (expected zeros, constant, uniform or truncated_normal)";
  }
  if (out->kind != InitKind::kConstant && out->kind != InitKind::kZeros &&
      !(scale >= 0.0f)) {
    return "initializer scale must be >= 0, got " + std::to_string(scale);
  }
  out->scale = scale;
  return "";
}

namespace internal {

constexpr int kQuantileIntervals = 1024;
constexpr double kTruncation = 2.0;  // in standard deviations

// erf(x) by its Taylor series: exact enough (< 1e-16) for |x| <= 2 and built
// from + - * / only, hence identical wherever IEEE doubles are.
inline double SeriesErf(double x) {
  double term = x, sum = x;
  const double x2 = x * x;
  for (int n = 1; n < 60; ++n) {
    term *= -x2 / n;
    sum += term / (2 * n + 1);
  }
  return sum * 1.1283791670955126;  // 2 / sqrt(pi)
}

inline double NormalCdf(double x) {
  return 0.5 * (1.0 + SeriesErf(x * 0.7071067811865476));
}

// Standard-normal quantiles at evenly spaced probabilities between
// Cdf(-2) and Cdf(2), found by bisection.
struct TruncatedNormalQuantiles {
  std::array<float, kQuantileIntervals + 1> values;
  TruncatedNormalQuantiles() {
    const double lo = NormalCdf(-kTruncation), hi = NormalCdf(kTruncation);
    for (int i = 0; i <= kQuantileIntervals; ++i) {
      const double p = lo + (hi - lo) * i / kQuantileIntervals;
      double a = -kTruncation, b = kTruncation;
      for (int iter = 0; iter < 64; ++iter) {
        const double mid = 0.5 * (a + b);
        (NormalCdf(mid) < p ? a : b) = mid;
      }
      values[i] = static_cast<float>(0.5 * (a + b));
    }
  }
};

inline const TruncatedNormalQuantiles& Quantiles() {
  static const TruncatedNormalQuantiles table;
  return table;
}

// Uniform in [0, 1) with 24 random bits, from a counter-based hash.
DES_HOST_DEVICE inline float UnitUniform(uint64_t row_hash, int64_t column) {
  const uint64_t bits = Mix64(row_hash + static_cast<uint64_t>(column + 1) *
                                             0x9e3779b97f4a7c15ULL);
  return static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);
}

}  // namespace internal

// The per-row part of the counter hash: one per (key, seed).
DES_HOST_DEVICE inline uint64_t InitialRowHash(uint64_t seed, int64_t key) {
  return Mix64(Mix64(static_cast<uint64_t>(key)) ^ Mix64(seed ^ 0x5eedULL));
}

// Initial value of column `column` of the row whose InitialRowHash is
// `row_hash`. `quantiles` is Quantiles().values (kQuantileIntervals + 1
// floats), or a device copy of it on the GPU; only truncated_normal reads it.
DES_HOST_DEVICE inline float InitialValue(const Initializer& init, uint64_t row_hash,
                                          int64_t column, const float* quantiles) {
  switch (init.kind) {
    case InitKind::kZeros:
      return 0.0f;
    case InitKind::kConstant:
      return init.scale;
    case InitKind::kUniform:
      return MulRounded(init.scale,
                        AddRounded(MulRounded(2.0f, internal::UnitUniform(row_hash, column)),
                                   -1.0f));
    case InitKind::kTruncatedNormal: {
      const float position = internal::UnitUniform(row_hash, column) *
                             static_cast<float>(internal::kQuantileIntervals);
      const int i = static_cast<int>(position);
      const float frac = position - static_cast<float>(i);
      const float step = AddRounded(quantiles[i + 1], -quantiles[i]);
      return MulRounded(init.scale, AddRounded(quantiles[i], MulRounded(frac, step)));
    }
  }
  return 0.0f;
}

// Writes the initial values of `key`'s row into row[0..dim).
inline void InitializeRow(const Initializer& init, uint64_t seed, int64_t key,
                          int dim, float* row) {
  const uint64_t row_hash = InitialRowHash(seed, key);
  const float* quantiles = internal::Quantiles().values.data();
  for (int j = 0; j < dim; ++j) row[j] = InitialValue(init, row_hash, j, quantiles);
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_INITIALIZER_H_
