// Mega, the moving-average equipped gated attention. "Mega: Moving Average Equipped Gated
// Attention", Ma, Zhou, Kong, He, Gui, Neubig, May and Zettlemoyer 2023, arXiv:2209.10655.
// The same layer with a complex EMA is MEGALODON's (nn/ssm/megalodon.h), which derives from it.
//
// Shape letters: B batch, T time (L for the kernel length), C model width, N EMA dimensions per
// channel, Z the shared query/key width, V the value width.
// Multi-dimensional damped EMA, per channel c and EMA dimension j (α, δ = sigmoid of parameters):
//   u_{t,j} = β_j x_t,  h_{t,j} = α_j u_{t,j} + (1 - α_j δ_j) h_{t-1,j},  EMA(x)_t = Σ_j η_j h_{t,j}
//   kernel (a long convolution over the whole L):  K_ℓ = Σ_j η_j α_j β_j q_j^ℓ,  q_j = 1 - α_j δ_j
//   q_j^ℓ = exp(ℓ log q_j), with log q = log(e^{-a} + e^{-d} + e^{-a-d}) - softplus(-a) - softplus(-d)
//   for α = σ(a), δ = σ(d): the damping stays in log space and never rounds to 1 - 1 = 0.
//   convolution form: EMA(x) + ω x = K * x + ω x  (core/long_conv.h, by FFT)
//   recurrent form:   the scan h_t = q h_{t-1} + α β x_t (core/scan.h); the decoding state is h
// The gated attention on the EMA output (eq. 6-16 of the paper, single head):
//   X' = SiLU(EMA(X) + ω X)               [B, T, C]
//   Z = SiLU(X' W_z + b_z),  Q = κ_q ⊙ Z + μ_q,  K = κ_k ⊙ Z + μ_k       [B, T, Z]
//   V = SiLU(X W_v + b_v)                                                [B, T, V]
//   O = softmax(Q K^T / sqrt(Z) + b_rel) V, causal (Mega-chunk: within chunks of mega_chunk)
//   γ = SiLU(X' W_γ + b_γ),  φ = σ(X' W_φ + b_φ),  H = SiLU(X' W_h + (γ ⊙ O) U_h + b_h)
//   Y = φ ⊙ H + (1 - φ) ⊙ X
// b_rel is the paper's simple relative bias: one learned scalar per distance 0..context-1.
// Initialisation as the paper's code: a, d, η ~ N(0, 1) · (0.2, 0.2, 1), β ~ N(±1, 0.02)
// (alternating signs over j), ω ~ N(0, 1), and η scaled by 1/sqrt(N).
// Deviations: the layer's own pre-norm is left to the host model's norm; no dropout.
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"

namespace tz::nn {

inline const Key<int64_t> kMegaEmaDim{"mega_ema_dim", 16, "N: EMA dimensions per channel (Mega's ndim)"};
inline const Key<int64_t> kMegaZDim{"mega_z_dim", 0, "Z: the shared query/key width; 0 = C"};
inline const Key<int64_t> kMegaVDim{"mega_v_dim", 0, "V: the value width; 0 = 2 C"};
inline const Key<int64_t> kMegaChunk{"mega_chunk", 0,
                                     "Mega-chunk: attention within chunks of this many positions; 0 = all"};

struct MegaOptions {
  int64_t dim = 0;       // C
  int64_t ema_dim = 16;  // N
  int64_t z_dim = 0;     // Z
  int64_t v_dim = 0;     // V
  int64_t chunk = 0;     // 0 = full causal attention
  int64_t context = 0;   // distances of b_rel
  bool complex = false;  // MEGALODON's CEMA: q_j e^{iθ_j}, complex η
  bool norm_z = false;   // MEGALODON's normalised attention: Z rms-normalised before Q, K
  int64_t groups = 0;    // MEGALODON's timestep norm groups (0 = no timestep norm)
};
MegaOptions mega_options(const ModelDims& dims, const Config& config);

struct MegaState : MixerState {
  Tensor h;            // EMA state [B, C N] (complex: [B, C N, 2])
  Tensor k, v;         // cached keys [B, 1, capacity, Z] and values [B, 1, capacity, V]
  Tensor sum, sum_sq;  // timestep norm: Σ x, Σ x² so far per group [B, G] (megalodon)
  void visit(StateVisitor& vis) override {
    MixerState::visit(vis);
    vis.tensor("h", h);
    vis.tensor("k", k);
    vis.tensor("v", v);
    vis.tensor("sum", sum);
    vis.tensor("sum_sq", sum_sq);
  }
};

class Mega : public Mixer {
 public:
  Mega(const MegaOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  // The EMA alone, EMA(x) + ω x, for tests. x [B, T, C].
  Tensor kernel(int64_t L) const;                            // K [C, L]
  Tensor convolve(const Tensor& x) const;                    // by the kernel and the long convolution
  Tensor recur(const Tensor& x, Tensor* h = nullptr) const;  // by the scan; *h: initial, then final state

  MegaOptions options;
  Tensor ema_a, ema_d, ema_beta, ema_eta, ema_omega;  // [C, N] x 3, [C, N] (complex [C, N, 2]), [C]
  Tensor ema_theta;                                   // CEMA phase [C] (complex only)
  Tensor kappa, mu;                                   // [2, Z]: rows q, k
  Tensor rel_bias;                                    // [context]
  std::shared_ptr<Linear> mx_proj, v_proj, h_proj;    // X' -> [Z | V | C | C], X -> V, V -> C

 protected:
  // The input the layer works on: X itself (Mega) or its timestep norm (MEGALODON).
  virtual Tensor prepare(const Tensor& x, MegaState* state) const { return x; }

 private:
  struct Decay {
    Tensor log_q, theta, gain_re, gain_im;  // [C, N] each: log q, phase, η α β (real, imag)
  };
  Decay decay() const;
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, int64_t start) const;
};

}  // namespace tz::nn
