// Linear attention. "Transformers are RNNs: Fast Autoregressive Transformers with Linear
// Attention", Katharopoulos, Vyas, Pappas, Fleuret 2020, arXiv:2006.16236 (ICML 2020).
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head.
// With the feature map φ(x) = elu(x) + 1 (sec. 3.2.1, positive) per head (eq. 9, 18-20):
//   S_t = S_{t-1} + φ(k_t)^T v_t,   z_t = z_{t-1} + φ(k_t)
//   y_t = φ(q_t) S_t / (φ(q_t) . z_t)
//   (masked parallel form: Y = (φ(Q) φ(K)^T ⊙ M) V / ((φ(Q) φ(K)^T ⊙ M) 1), M causal)
//   out = concat_h(y) W_o,  q, k, v = x W_q, x W_k, x W_v
// The kernel runs it with no decay and its normaliser (z is one more value column of the
// state, [B, H, D, D + 1]); linear_form picks the form of a whole-sequence forward,
// linear_chunk its chunk; decoding is the recurrent form (the paper's RNN view, eq. 18-20).
// Deviations: the denominator adds eps = 1e-6 (as the paper's code does); projections have
// biases.
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"

namespace tz::nn {

struct LinearTransformerOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H (divides C)
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
  bool bias = true;
};

// φ(x) = elu(x) + 1, written relu(x) + exp(-relu(-x)) so that no exp of a large x is formed.
Tensor elu_plus_one(const Tensor& x);

class LinearTransformer : public Mixer {
 public:
  LinearTransformer(const LinearTransformerOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  LinearTransformerOptions options;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, o_proj;
};

}  // namespace tz::nn
