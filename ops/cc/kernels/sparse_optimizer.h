// In-table sparse optimizers: the update one row receives from its summed
// gradient. TF-independent. The formulas follow Keras 3's dense optimizers so a
// table row trains like the same row of a dense Keras embedding would:
//   SGD      w -= lr * g
//   Adagrad  a += g^2;  w -= lr * g / sqrt(a + epsilon)
//   Adam     per-row step t (the row's own update count, so bias correction
//            reflects how often this row was updated, not the global step);
//            m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2);
//            w -= m * lr * sqrt(1 - b2^t) / (1 - b1^t) / (sqrt(v) + epsilon)
//   FTRL     FTRL-Proximal with learning-rate power -1/2:
//            n' = n + g^2;  z += g - (sqrt(n') - sqrt(n)) / lr * w;
//            w = (clip(z, -l1, l1) - z) / (sqrt(n') / lr + 2 * l2 + beta / lr)
#ifndef DES_TF_OPS_CC_KERNELS_SPARSE_OPTIMIZER_H_
#define DES_TF_OPS_CC_KERNELS_SPARSE_OPTIMIZER_H_

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host_device.h"

namespace des {

enum class OptimizerKind { kSgd, kAdagrad, kAdam, kFtrl };

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kSgd;
  float initial_accumulator = 0.1f;  // Adagrad a, FTRL n
  float epsilon = 1e-7f;             // Adagrad, Adam
  float beta1 = 0.9f;                // Adam
  float beta2 = 0.999f;              // Adam
  float l1 = 0.0f;                   // FTRL
  float l2 = 0.0f;                   // FTRL
  float beta = 0.0f;                 // FTRL

  // Slot vectors (each `dim` floats) stored beside every row.
  DES_HOST_DEVICE int NumSlots() const {
    switch (kind) {
      case OptimizerKind::kSgd:
        return 0;
      case OptimizerKind::kAdagrad:
        return 1;  // a
      case OptimizerKind::kAdam:
        return 2;  // m, v
      case OptimizerKind::kFtrl:
        return 2;  // z, n
    }
    return 0;
  }

  DES_HOST_DEVICE float SlotInitialValue(int slot) const {
    if (kind == OptimizerKind::kAdagrad) return initial_accumulator;
    if (kind == OptimizerKind::kFtrl && slot == 1) return initial_accumulator;
    return 0.0f;
  }
};

// Fills `out` from an optimizer name and named hyper-parameters (learning rate
// excluded: it is given with every update). Returns an error message ("" if ok)
// for an unknown optimizer, an unknown or repeated hyper-parameter, or a value
// out of range.
inline std::string ParseOptimizer(const std::string& name,
                                  const std::vector<std::string>& names,
                                  const std::vector<float>& values,
                                  OptimizerConfig* out) {
  static const std::map<std::string, std::vector<std::string>> kAllowed = {
      {"sgd", {}},
      {"adagrad", {"initial_accumulator", "epsilon"}},
      {"adam", {"beta1", "beta2", "epsilon"}},
      {"ftrl", {"initial_accumulator", "l1", "l2", "beta"}},
  };
  const auto allowed = kAllowed.find(name);
  if (allowed == kAllowed.end()) {
    return "unknown optimizer '" + name + "' (expected sgd, adagrad, adam or ftrl)";
  }
  if (names.size() != values.size()) {
    return "got " + std::to_string(names.size()) + " hyper-parameter names but " +
           std::to_string(values.size()) + " values";
  }
  OptimizerConfig config;
  config.kind = name == "sgd"       ? OptimizerKind::kSgd
                : name == "adagrad" ? OptimizerKind::kAdagrad
                : name == "adam"    ? OptimizerKind::kAdam
                                    : OptimizerKind::kFtrl;
  const std::map<std::string, float*> fields = {
      {"initial_accumulator", &config.initial_accumulator},
      {"epsilon", &config.epsilon},
      {"beta1", &config.beta1},
      {"beta2", &config.beta2},
      {"l1", &config.l1},
      {"l2", &config.l2},
      {"beta", &config.beta},
  };
  std::vector<std::string> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    bool known = false;
    for (const auto& a : allowed->second) known = known || a == names[i];
    if (!known) {
      std::string expected;
      for (const auto& a : allowed->second) expected += (expected.empty() ? "" : ", ") + a;
      return "unknown hyper-parameter '" + names[i] + "' for optimizer " + name +
             " (expected: " + (expected.empty() ? "none" : expected) + ")";
    }
    for (const auto& s : seen) {
      if (s == names[i]) return "hyper-parameter '" + names[i] + "' given twice";
    }
    seen.push_back(names[i]);
    if (!std::isfinite(values[i]) || values[i] < 0.0f) {
      return "hyper-parameter " + names[i] + " must be finite and >= 0, got " +
             std::to_string(values[i]);
    }
    *fields.at(names[i]) = values[i];
  }
  if (config.beta1 >= 1.0f || config.beta2 >= 1.0f) {
    return "Adam's beta1 and beta2 must be < 1";
  }
  if (config.kind == OptimizerKind::kAdagrad &&
      config.initial_accumulator + config.epsilon <= 0.0f) {
    return "Adagrad needs initial_accumulator + epsilon > 0 (a row with a zero "
           "gradient would divide by zero)";
  }
  *out = config;
  return "";
}

// The per-row scalars of one update, computed once per row.
struct RowUpdate {
  float lr;         // learning rate (> 0)
  float adam_step;  // Adam: lr * sqrt(1 - b2^t) / (1 - b1^t) for the row's t
  float ftrl_l2;    // FTRL: l2 + beta / (2 lr)
};

// `row_step` = the row's 1-based update count (Adam's t).
DES_HOST_DEVICE inline RowUpdate PrepareRowUpdate(const OptimizerConfig& c, float lr,
                                                  int64_t row_step) {
  RowUpdate u{lr, 0.0f, 0.0f};
  if (c.kind == OptimizerKind::kAdam) {
    const double t = static_cast<double>(row_step);
    u.adam_step = static_cast<float>(
        lr * std::sqrt(1.0 - std::pow(static_cast<double>(c.beta2), t)) /
        (1.0 - std::pow(static_cast<double>(c.beta1), t)));
  } else if (c.kind == OptimizerKind::kFtrl) {
    u.ftrl_l2 = c.l2 + c.beta / (2.0f * lr);
  }
  return u;
}

// Updates one column: `value`, its first slot `s0` (Adagrad a, Adam m, FTRL z)
// and second slot `s1` (Adam v, FTRL n) from its summed gradient `g`. The
// slot pointers are not read by optimizers that lack those slots. Every
// product and sum is rounded on its own (host_device.h), and sqrt and division
// are correctly rounded on both, so the GPU computes the CPU's bits.
DES_HOST_DEVICE inline void UpdateColumn(const OptimizerConfig& c, const RowUpdate& u,
                                         float g, float* value, float* s0, float* s1) {
  switch (c.kind) {
    case OptimizerKind::kSgd:
      *value = SubRounded(*value, MulRounded(u.lr, g));
      break;
    case OptimizerKind::kAdagrad:
      *s0 = AddRounded(*s0, MulRounded(g, g));
      *value = SubRounded(*value, MulRounded(u.lr, g) / std::sqrt(AddRounded(*s0, c.epsilon)));
      break;
    case OptimizerKind::kAdam:
      *s0 = AddRounded(*s0, MulRounded(SubRounded(g, *s0), 1.0f - c.beta1));
      *s1 = AddRounded(*s1, MulRounded(SubRounded(MulRounded(g, g), *s1), 1.0f - c.beta2));
      *value = SubRounded(*value, MulRounded(*s0, u.adam_step) /
                                      AddRounded(std::sqrt(*s1), c.epsilon));
      break;
    case OptimizerKind::kFtrl: {
      const float n_new = AddRounded(*s1, MulRounded(g, g));
      const float sigma = SubRounded(std::sqrt(n_new), std::sqrt(*s1)) / u.lr;
      *s0 = AddRounded(*s0, SubRounded(g, MulRounded(sigma, *value)));
      const float quadratic = AddRounded(std::sqrt(n_new) / u.lr, MulRounded(2.0f, u.ftrl_l2));
      const float clipped = std::fmin(std::fmax(*s0, -c.l1), c.l1);
      *value = SubRounded(clipped, *s0) / quadratic;
      *s1 = n_new;
      break;
    }
  }
}

// Applies one update to a row: values[0..dim), slots[0..NumSlots()*dim)
// (slot k of column j at slots[k * dim + j]), `row_step` = the row's 1-based
// update count (Adam's t), `grad` = summed gradient. `lr` must be > 0.
inline void ApplyUpdate(const OptimizerConfig& c, int dim, float lr,
                        int64_t row_step, const float* grad, float* values,
                        float* slots) {
  const RowUpdate u = PrepareRowUpdate(c, lr, row_step);
  for (int j = 0; j < dim; ++j) {
    UpdateColumn(c, u, grad[j], values + j, slots + j, slots + dim + j);
  }
}

}  // namespace des

#endif  // DES_TF_OPS_CC_KERNELS_SPARSE_OPTIMIZER_H_
