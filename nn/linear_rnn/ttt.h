// TTT-Linear and TTT-MLP mixers: a recurrent layer whose hidden state is the weights of a small
// model trained on the sequence by gradient descent as it is read. "Learning to (Learn at Test
// Time): RNNs with Expressive Hidden States", Sun et al. 2024, arXiv:2407.04620.
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head, b the mini-batch size.
//   q_t = x_t θ_Q,  k_t = x_t θ_K,  v_t = x_t θ_V                    (per head, [B, H, T, D])
//   η_t = (η / D) σ(x_t θ_lr + b_lr)                                 one per head and token
//   mini-batch TTT on the inner model f (ttt_inner.h): z_t = f(q_t; W_t)
//   out = LN(z) W_o   (LN over C, learnt weight and bias)
// The inner model's initial weights (W0: W, b or W1, b1, W2, b2, per head) and its LN's γ, β are
// learnt by the outer loop through every inner step. Mini-batches are aligned to absolute
// positions 0, b, 2b, ...: a continuation or decode step that starts inside one keeps its start
// weights and the current ones in the state, so decoding gives the whole forward's outputs.
// ttt_form picks the dual form (the fast one) or the primal one (the reference).
// Deviations: no token-index scaling of η inside a mini-batch, no causal conv before θ_K, θ_Q,
// no output gate and no Mamba backbone (the block around the mixer is the model's).
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/linear_rnn/ttt_inner.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kTttMinibatch{"ttt_minibatch", 16, "b: tokens per mini-batch of inner gradient descent"};
inline const Key<std::string> kTttForm{"ttt_form", "dual",
                                       "dual (the fast form) or primal (the per-token weights, the reference)"};
inline const Key<double> kTttLr{"ttt_lr", 1.0, "η: the inner learning rate's scale (η_t = η / D sigmoid(.))"};

struct TttOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H
  TttKind kind = TttKind::linear;
  TttForm form = TttForm::dual;
  int64_t minibatch = 16;  // b
  double lr = 1.0;         // η
};

// The start weights of the current mini-batch and the current weights, each [B, H, ...].
struct TttState : MixerState {
  TttWeights start, current;
  void visit(StateVisitor& v) override;
};

class Ttt : public Mixer {
 public:
  Ttt(const TttOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  // The inner outputs z [B, H, T, D] of x from position `start` (the state's mini-batch phase),
  // and the per-token inner loss before each mini-batch's step [B, H, T]. The state advances.
  struct Inner {
    Tensor z, loss;
  };
  Inner inner(const Tensor& x, int64_t start, TttState* state) const;
  // q, k, v [B, H, T, D] and η [B, H, T, 1] of x.
  std::vector<Tensor> inner_inputs(const Tensor& x) const;
  TttWeights initial() const;  // the learnt W0 (leading dim 1)

  TttOptions options;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, lr_proj, o_proj;
  std::vector<Tensor> w0;  // the inner model's initial weights
  Tensor ln_weight, ln_bias, out_norm_weight, out_norm_bias;
};

}  // namespace tz::nn
