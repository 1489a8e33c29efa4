// The inner model of TTT (test-time training) layers and one mini-batch of its training, in
// the dual form and the primal form. "Learning to (Learn at Test Time): RNNs with Expressive
// Hidden States", Sun et al. 2024, arXiv:2407.04620 (sec. 2.1-2.7, appendix A).
//
// Shapes: B batch, H heads, L tokens of one mini-batch segment, D per-head dim, F = 4 D the
// MLP's hidden width. q, k, v [B, H, L, D] (the outer projections θ_Q x, θ_K x, θ_V x), η [B, H, L, 1].
// The hidden state is the weights of f(x) = x + LN(f_res(x)), LN with a learnt γ, β [1, H, 1, D]:
//   linear  f_res(x) = x W + b                          W [., H, D, D], b [., H, 1, D]
//   mlp     f_res(x) = GELU(x W1 + b1) W2 + b2          W1 [., H, D, F], W2 [., H, F, D]
//           (GELU's tanh form, whose derivative is written out below)
// Inner loss of token s: ℓ(W; s) = |f(k_s; W) - v_s|^2. Mini-batch gradient descent: every
// gradient of a mini-batch is taken at the weights W0 of its start, and token t's output reads
//   W_t = W0 - sum_{s <= t in the mini-batch} η_s ∇ℓ(W0; s),    z_t = f(q_t; W_t).
// With Z = k W0 + b0 (linear) the gradient is ∇_W ℓ = k_s^T g_s, ∇_b ℓ = g_s, where g_s =
// LN^T(2 (LN(Z_s) + k_s - v_s)) (the LN backward: g = (γ e - mean(γ e) - ẑ mean(γ e ẑ)) / σ).
//   primal  forms each W_t (one D x D matrix per token) and applies it: the reference.
//   dual    never forms them: with G = η ⊙ g,
//             Z_q = q Wc + bc - tril(q k^T) G - cumsum(G),   Wc' = Wc - k^T G,  bc' = bc - sum(G)
//           (tril keeps the diagonal: token t reads its own update). For the MLP the same per
//           layer: layer 1 with k and g1 = (g2 W2_0^T) ⊙ GELU'(k W1_0 + b1_0), layer 2 with the
//           hidden activations A = GELU(k W1_0 + b1_0) as keys and A_q = GELU(Z1_q) as queries.
// Wc are the current weights (W0 plus the updates of the segment's earlier tokens in the same
// mini-batch: a decode step or a continuation starts mid mini-batch). Both forms are built from
// the autograd ops, so the outer gradient flows through every inner update. TTT-Linear's
// layer runs whole mini-batches from a boundary through the fused op instead (ttt_linear in
// autograd/ops.h, kernel core/kernels/ttt.h), which the tests compare with this dual form.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace tz::nn {

enum class TttKind { linear, mlp };
enum class TttForm { dual, primal };

// linear: {W, b}; mlp: {W1, b1, W2, b2}. Leading dim 1 (the learnt initial weights) or B.
struct TttWeights {
  std::vector<Tensor> w;
};

struct TttSegment {
  Tensor z;         // f(q_t; W_t) [B, H, L, D]
  TttWeights next;  // Wc after the segment's updates
  Tensor loss;      // ℓ(W0; t) per token [B, H, L]: the inner loss before the mini-batch's step
};

// One segment of L tokens inside one mini-batch (W0 its start weights, wc the current ones).
TttSegment ttt_segment(TttKind kind, TttForm form, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& eta,
                       const TttWeights& w0, const TttWeights& wc, const Tensor& ln_weight, const Tensor& ln_bias);

// The inner loss ℓ(W; t) = |f(k_t; W) - v_t|^2 per token [B, H, L] (for tests).
Tensor ttt_inner_loss(TttKind kind, const Tensor& k, const Tensor& v, const TttWeights& w, const Tensor& ln_weight,
                      const Tensor& ln_bias);

}  // namespace tz::nn
