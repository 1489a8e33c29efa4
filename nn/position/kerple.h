// KERPLE. "KERPLE: Kernelized Relative Positional Embedding for Length Extrapolation",
// Chi, Fan, Ramadge & Rudnicky 2022, arXiv:2205.09921 (NeurIPS 2022), §4.
//
// Shapes: N layers, H heads, T query positions, S key positions, M = T + S - 1 distances.
// No position vector is added anywhere; layer n, head h biases its scores by a shifted
// conditionally positive definite kernel of the distance d = |i - j|:
//   log   (default):  score_ij += -r1 · log(1 + r2 · d)
//   power:            score_ij += -r1 · d^r2            0 < r2 <= 2
// r1, r2 > 0 learned per layer and head. The power kernel with r2 = 1 and r1 = m_h is ALiBi's
// -m_h |i - j| (alibi.h), so KERPLE contains ALiBi with learned slopes.
// Positivity by parametrisation, not by clamping (the reference code clamps r1, r2 at a
// small eps, where their gradient then stops):
//   r1 = softplus(ρ1);  log: r2 = softplus(ρ2);  power: r2 = 2 σ(ρ2) ∈ (0, 2)
// Deviation: the power kernel's bound r2 = 2 is approached, never reached.
// Initial values: log, r1 and r2 drawn uniformly per layer and head in [0.5, 2] and [0.25, 1]
// (the paper's code draws them uniformly too, from 0); power, r1 = ALiBi's slopes m_h and
// r2 = 1, so that it starts as ALiBi. Neither kernel learns the suite's copy task in 400
// steps (reading a token 9 back needs the penalty unlearnt in some head): the log kernel
// needs 12000 (registration's learn_steps).
// d^r2 is exp(r2 log d) for d >= 1 and 0 at d = 0 (so the gradient in r2 is d^r2 log d, 0 at 0).
// As data: a relative-bias table [H, M] (column S - 1 + i - j holds the bias of distance
// q_offset + i - j), made by autograd ops from ρ1, ρ2 of the running layer (ctx->layer):
// the attention core applies it per tile without a [T, S] bias, and gradients reach ρ.
#pragma once

#include <string>

#include "core/random.h"
#include "nn/mixer.h"

namespace tz::nn {

struct KerpleOptions {
  int64_t heads = 0;            // H
  int64_t layers = 1;           // N: one (r1, r2) per layer and head
  std::string variant = "log";  // "log" or "power"
};

class KerplePositions : public PositionScheme {
 public:
  KerplePositions(const KerpleOptions& options, Generator& gen);
  // The table [H, T + S - 1] of layer ctx->layer (0 without a context) for queries at key
  // positions q_offset.. over keys 0..S-1.
  Tensor score_bias(int64_t heads, int64_t q_offset, int64_t T, int64_t S, DType dtype,
                    const MixerContext* ctx = nullptr) const override;
  bool biases_scores() const override { return true; }
  std::string describe() const override;
  // The same table for an explicit layer.
  Tensor table(int64_t layer, int64_t q_offset, int64_t T, int64_t S) const;
  // r1, r2 [N, H] from the raw parameters.
  Tensor r1() const;
  Tensor r2() const;
  // Sets ρ1, ρ2 of one layer so that r1, r2 take the given values (tests, and ALiBi's slopes).
  void set(int64_t layer, const std::vector<double>& r1, const std::vector<double>& r2);

  KerpleOptions options;
  bool power = false;
  Tensor rho1, rho2;  // [N, H]
};

}  // namespace tz::nn
