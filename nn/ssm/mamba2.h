// Mamba-2, the state-space dual (SSD) mixer. "Transformers are SSMs: Generalized Models and
// Efficient Algorithms Through Structured State Space Duality", Dao and Gu 2024,
// arXiv:2405.21060 (ICML 2024): the SSD layer and the Mamba-2 block.
//
// Shape letters: B batch, T time, C model width, E = expand C inner channels, P the head dim,
// M = E / P heads, G groups of heads sharing B and C (G divides M), N the state size, K the
// conv width, X = E + 2 G N the conv's channels.
//   (z, xBC, dt) = in_proj(x)                     [B, T, E], [B, T, X], [B, T, M]  (one projection)
//   (x, Bm, Cm) = silu(causal depthwise conv1d_K(xBC))  [B, T, M, P], [B, T, G, N] twice
//   Δ = softplus(dt + dt_bias),  A = -exp(A_log)   [B, T, M], [M]  (a scalar A per head)
//   h_t = exp(Δ_t A) h_{t-1} + Δ_t Bm_t^T x_t      (per head, state [N, P])
//   y_t = Cm_t h_t + D x_t
//   out = out_proj(RMSNorm_G(y ⊙ silu(z)))        (gated RMSNorm within each of the G groups)
// SSD is linear attention with a per-head decay: q = Cm, k = Bm, v = Δ x, log-decay Δ A, so
// the kernel (core/kernels/linear_attention.h) runs it: its chunked form is the paper's chunked
// SSD algorithm (log-space cumulative decays within a chunk, the state passed between chunks),
// its parallel form the quadratic dual Y = (L ∘ Cm Bm^T) (Δ x) with L_ij = prod_{j<k<=i} a_k,
// its recurrent form the sequential recurrence and the decode step.
// Initialisation as the reference code: Δ at init log-uniform in [ssm_dt_min, ssm_dt_max]
// (dt_bias its softplus inverse), A uniform in [1, 16] (A_log = log A), D = 1, the conv
// U(-K^-1/2, K^-1/2), the projections PyTorch's default scale (std 1/sqrt(3 in)).
// Decoding: the state holds the conv's last K - 1 inputs and h [B, M, N, P].
// Deviations: no bias in in_proj / out_proj (as the reference default); the norm is applied
// after the gate (the reference's default norm_before_gate = False).
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"
#include "nn/ssm/mamba.h"

namespace tz::nn {

inline const Key<int64_t> kSsmHeadDim{"ssm_head_dim", 64, "P: Mamba-2's head dim (heads = inner channels / P)"};
inline const Key<int64_t> kSsmGroups{"ssm_groups", 1, "G: Mamba-2's groups of heads sharing B and C (ngroups)"};

struct Mamba2Options {
  int64_t dim = 0;        // C
  int64_t state = 16;     // N
  int64_t expand = 2;     // E = expand C
  int64_t head_dim = 64;  // P
  int64_t groups = 1;     // G
  int64_t conv = 4;       // K
  double dt_min = 0.001, dt_max = 0.1;
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
};
Mamba2Options mamba2_options(const ModelDims& dims, const Config& config);

struct Mamba2State : LinearRnnState {  // S: h [B, M, N, P]
  Tensor conv;                         // [B, K - 1, X]
  void visit(StateVisitor& v) override {
    LinearRnnState::visit(v);
    v.tensor("conv", conv);
  }
};

class Mamba2 : public Mixer {
 public:
  Mamba2(const Mamba2Options& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // SSD's inputs for x (after in_proj and the conv from `conv_state`): q = Cm, k = Bm
  // [B, M, T, N], x [B, M, T, P], v = Δ x, log_a = Δ A [B, M, T], and the gate z [B, T, E].
  struct Ssd {
    Tensor q, k, x, v, log_a, z;
  };
  Ssd ssd_inputs(const Tensor& x, Tensor* conv_state) const;
  // out [B, T, C] of the SSD output o [B, M, T, P] (adds D x, the gated norm, out_proj).
  Tensor finish(const Tensor& o, const Ssd& in) const;

  Mamba2Options options;
  std::shared_ptr<Linear> in_proj, out_proj;
  Tensor conv_weight, conv_bias, dt_bias, A_log, D, norm_weight;
};

}  // namespace tz::nn
