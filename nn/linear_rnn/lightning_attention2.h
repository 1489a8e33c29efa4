// Lightning Attention-2. "Lightning Attention-2: A Free Lunch for Handling Unlimited Sequence
// Lengths in Large Language Models", Qin, Sun, Li, Shen, Sun, Zhong 2024, arXiv:2401.04658;
// the layer around it as in TransNormerLLM (Qin et al. 2023, arXiv:2307.14995).
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head; layer l of L (depth).
// Per head h, with the fixed decay λ_h = exp(-(8h / H)(1 - l / L)) (TransNormerLLM sec. 3.1):
//   Q = SiLU(X W_q),  K = SiLU(X W_k),  V = X W_v,  U = X W_u
//   O = [(Q K^T) ⊙ M] V,  M_ts = λ^(t-s) for t >= s, else 0              (no softmax, no φ-normaliser)
//   tiled (Algorithm 1): per block b of B tokens
//     O_b = [(Q_b K_b^T) ⊙ M] V_b + Λ Q_b KV_{b-1}   (intra + inter),  Λ = diag(λ, .., λ^B)
//     KV_b = λ^B KV_{b-1} + (λ^B Λ^{-1} K_b)^T V_b
//   out = (SRMSNorm(O) ⊙ U) W_o,  SRMSNorm(x) = x / ||x|| sqrt(C)
// The tiling is the kernel's chunked form with log-decay log λ_h per step (linear_chunk = B);
// its factors λ^(t-s), λ^t and λ^(B-s) are formed from log-space differences only. linear_form
// picks the form of a whole-sequence forward; decoding is the recurrent form.
// Deviations: the SRMSNorm has an eps (1e-6) under the root; no biases; q, k and v use one
// head size D.
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"

namespace tz::nn {

struct LightningAttentionOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H (divides C)
  int64_t layer = 0;  // l: sets the decays
  int64_t depth = 1;  // L
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
  // TransNormerLLM's LRPE-d (nn/linear_rnn/transnormer_llm.h): q, k -> [x cos(θ n), x sin(θ n)],
  // θ_d = lrpe_base^(-d / D), so that q_t . k_s gains cos(θ (t - s)) per channel.
  bool lrpe = false;
  double lrpe_base = 10000;
};

class LightningAttention : public Mixer {
 public:
  LightningAttention(const LightningAttentionOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  std::vector<double> log_lambdas() const;  // log λ_h for the H heads
  // LRPE-d features of x [B, H, T, D] at positions start..: [B, H, T, 2D] (x itself without lrpe).
  Tensor positions(const Tensor& x, int64_t start) const;

  LightningAttentionOptions options;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, u_proj, o_proj;
};

}  // namespace tz::nn
