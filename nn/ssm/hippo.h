// HiPPO-LegS memory as a sequence mixer. "HiPPO: Recurrent Memory with Optimal Polynomial
// Projections", Gu, Dao, Ermon, Rudra and Ré 2020, arXiv:2008.07669.
//
// Shape letters: B batch, T time, C model width (one memory per channel), N memory size.
// Per channel, the coefficients c(t) of the whole history u(s), s ∈ [0, t], in the scaled
// Legendre basis √(2n+1) P_n(2s/t - 1) (uniform measure on [0, t]) follow
//   c'(t) = (1/t) (A c(t) + B u(t)),   A, B of HiPPO-LegS (core/kernels/ssm_kernels.h)
// discretised by the bilinear step at t = k (positions k = 1, 2, ...; the paper's GBT with α = 1/2):
//   c_k = (I - A/(2k))^{-1} [(I + A/(2k)) c_{k-1} + B u_k / k] = Ā_k c_{k-1} + B̄_k u_k
// and the history is read back as u(s) ≈ Σ_n c_n(t) √(2n+1) P_n(2s/t - 1).
// The layer reads the memory with a learned row per channel and a skip:
//   y_t = C c_t + D u_t,   out = out_proj(GELU(y))
// LegS is time-varying (Ā_k depends on k), so there is no convolution kernel and no FFT: the
// parallel form is the materialised transfer matrix G[t, s] = Ā_t ⋯ Ā_{s+1} B̄_s ([T, T, N], fixed,
// cached), y_t = Σ_{s<=t} C G[t, s] u_s + D u_t, O(T² N); the recurrence (decoding) is O(N²) per
// step, its state c [B, C, N] with the position held by the state's length. The forward uses
// the materialised form while T² (N + C) <= 2^24 and the recurrence beyond (the same numbers).
#pragma once

#include <vector>

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"

namespace tz::nn {

struct HippoOptions {
  int64_t dim = 0;     // C
  int64_t state = 16;  // N
};
HippoOptions hippo_options(const ModelDims& dims, const Config& config);

struct HippoState : MixerState {
  Tensor c;  // [B, C, N]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("c", c);
  }
};

class Hippo : public Mixer {
 public:
  Hippo(const HippoOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  // The memory read-out alone (before GELU and out_proj), for tests. u [B, T, C] from position 0.
  Tensor convolve(const Tensor& u) const;  // by the materialised transfer matrix
  // The recurrence from position `start` (c: initial, then final memory [B, C, N]).
  Tensor recur(const Tensor& u, Tensor* c = nullptr, int64_t start = 0) const;

  HippoOptions options;
  Tensor C, D;  // [C, N], [C]
  std::shared_ptr<Linear> out_proj;

 private:
  void steps(int64_t positions) const;   // fills Ā_k, B̄_k for k = 1..positions (at least)
  mutable std::vector<double> Ab_, Bb_;  // [K, N, N], [K, N]
  mutable int64_t cached_T_ = 0;
  mutable std::vector<double> G_;  // [T, T, N] for T = cached_T_
};

}  // namespace tz::nn
