// cosFormer. "cosFormer: Rethinking Softmax in Attention", Qin, Sun, Deng, Li, Wei, Lv, Yan,
// Kong, Zhong 2022, arXiv:2202.08791 (ICLR 2022).
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head; positions i, j from
// ctx.start; M = the model's context (M >= every position, so the weights stay >= 0).
// Per head (sec. 3.3-3.4, eq. 10-12), with ReLU features and a cos re-weighting of distance:
//   s_ij = relu(q_i) . relu(k_j) cos(π (i - j) / (2M)),   o_i = sum_{j<=i} s_ij v_j / sum_{j<=i} s_ij
// cos(a - b) = cos a cos b + sin a sin b splits s_ij into two linear attentions; with
//   φ(q_i) = [relu(q_i) cos(π i / 2M), relu(q_i) sin(π i / 2M)]  (2D features; k alike)
//   o_i = φ(q_i) S_i / (φ(q_i) z_i),  S_i = sum_{j<=i} φ(k_j)^T v_j,  z_i = sum_{j<=i} φ(k_j)
// which is the kernel with no decay and its normaliser (state [B, H, 2D, D + 1]); out = o W_o.
// linear_form picks the form of a whole-sequence forward; decoding is the recurrent form.
// Deviations: the denominator adds eps = 1e-6; the projections have biases.
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"

namespace tz::nn {

struct CosFormerOptions {
  int64_t dim = 0;      // C
  int64_t heads = 0;    // H (divides C)
  int64_t context = 0;  // M: positions must stay below it
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
  bool bias = true;
};

class CosFormer : public Mixer {
 public:
  CosFormer(const CosFormerOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // [relu(x) cos(π i / 2M), relu(x) sin(π i / 2M)] of x [B, H, T, D] at positions start..
  Tensor features(const Tensor& x, int64_t start) const;

  CosFormerOptions options;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, o_proj;
};

}  // namespace tz::nn
