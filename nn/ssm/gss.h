// The Gated State Space layer. "Long Range Language Modeling via Gated State Spaces", Mehta,
// Gupta, Cutkosky and Neyshabur 2023, arXiv:2206.13947 (ICLR 2023; fig. 1's pseudo code).
//
// Shape letters: B batch, T time (L the kernel's length), C model width (the paper's E), R
// the reduced width of the SSM (the paper's H, C / 4 there), F the gated width (4 C there),
// N the SSM's state size.
//   v = GELU(x W_v)                 [B, T, F]   the gate branch
//   u = GELU(x W_u)                 [B, T, R]   down to the reduced width
//   y = DSS(u)                      [B, T, R]   one diagonal SSM per channel (single head), its
//                                               kernel applied by the FFT long convolution
//   out = ((y W_up) ⊙ v) W_o        [B, T, C]
// DSS-style SSM: K_ℓ = Re Σ_n w_n λ̄_n^ℓ with w_n = C_n (λ̄_n - 1) / λ_n (ZOH), here the
// diagonal SSM of nn/ssm/diagonal_ssm.h (the same kernel written with conjugate pairs, S4D-Lin
// init); deviations: S4D-Lin instead of DSS's diagonalised HiPPO-LegS initialisation, and the
// SSM's D skip term is kept. Decoding: the SSM's complex scan (state [B, R P, 2]).
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"
#include "nn/ssm/diagonal_ssm.h"

namespace tz::nn {

inline const Key<int64_t> kGssReduced{"gss_reduced", 0, "R: the SSM's reduced width; 0 = dim / 4"};
inline const Key<int64_t> kGssExpand{"gss_expand", 4, "F / C: width of the gated branch per model channel"};

struct GssOptions {
  int64_t dim = 0;      // C
  int64_t reduced = 0;  // R
  int64_t gated = 0;    // F
  int64_t state = 16;   // N
  double dt_min = 0.001, dt_max = 0.1;
  bool recurrent = false;  // a whole-sequence forward by the recurrent form (tests)
};
GssOptions gss_options(const ModelDims& dims, const Config& config);

struct GssState : MixerState {
  Tensor h;  // [B, R P, 2]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("h", h);
  }
};

class Gss : public Mixer {
 public:
  Gss(const GssOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  GssOptions options;
  std::shared_ptr<Linear> v_proj, u_proj, up_proj, out_proj;
  std::shared_ptr<DiagonalSsm> ssm;
};

}  // namespace tz::nn
