// TTT-Linear's inner loop in the dual form, fused: every mini-batch of one (batch, head) in
// one task, forward and backward written out. "Learning to (Learn at Test Time): RNNs with
// Expressive Hidden States", Sun et al. 2024, arXiv:2407.04620, sec. 2.7 and appendix A.
//
// Letters: B batch, H heads, T tokens, D head size, b the mini-batch size (the last
// mini-batch may be shorter). Per head, with the LayerNorm LN(z) = γ ẑ + β, ẑ = (z - mean z) ρ,
// ρ = (mean (z - mean z)^2 + 1e-6)^(-1/2), and the mini-batch's rows K, V, Q, η:
//   Z  = K W + b                        (W, b: the weights at the mini-batch's start)
//   e  = LN(Z) + K - V,  loss_t = |e_t|^2
//   g  = ρ (γ' - mean γ' - ẑ mean(γ' ẑ)),  γ' = 2 e γ       (∂loss / ∂Z, the LN backward)
//   G  = η g
//   Zq = Q W + b - tril(Q K^T) G - cumsum(G)                  (tril keeps the diagonal)
//   z  = Q + LN(Zq)
//   W' = W - K^T G,  b' = b - sum_t G_t                       (the next mini-batch's start)
// nn/linear_rnn/ttt_inner.h builds the same from autograd ops (the reference); the tests
// compare the two, values and gradients, in f64.
//
// The forward keeps, for the backward, the weights at every mini-batch's start and per token
// ẑ, g and LN(Zq)'s ẑ_q with ρ and ρ_q ("saved", ttt_linear_saved_size); the backward walks
// the mini-batches in reverse from them, carrying dW and db back through W' = W - K^T G.
#pragma once

#include <cstdint>

namespace tz::kernels {

struct TttSizes {
  int64_t B = 0, H = 0, T = 0, D = 0, minibatch = 16;
  bool w_batched = false;  // W0, b0 have a leading dim of B (else 1: shared by the batch)
};

template <class Real>
struct TttInputs {
  const Real *q, *k, *v;    // [B, H, T, D]
  const Real* eta;          // [B, H, T]
  const Real *W0, *b0;      // [1 or B, H, D, D], [1 or B, H, D]
  const Real *ln_w, *ln_b;  // [H, D]
};
template <class Real>
struct TttOutputs {
  Real* z;      // [B, H, T, D]
  Real *W, *b;  // the weights after the last token: [B, H, D, D], [B, H, D]
  Real* loss;   // [B, H, T]
  Real* saved;  // ttt_linear_saved_size elements, or null (no backward)
};
template <class Real>
struct TttGrads {
  Real *dq, *dk, *dv, *deta, *dW0, *db0, *dln_w, *dln_b;  // shaped as the inputs; all written
};

int64_t ttt_linear_saved_size(const TttSizes& n);

template <class Real>
void ttt_linear_forward(const TttOutputs<Real>& out, const TttInputs<Real>& in, const TttSizes& n);

// dz [B, H, T, D]; dW [B, H, D, D], db [B, H, D], dloss [B, H, T]: each may be null (zero).
template <class Real>
void ttt_linear_backward(const TttGrads<Real>& d, const Real* dz, const Real* dW, const Real* db, const Real* dloss,
                         const Real* saved, const TttInputs<Real>& in, const TttSizes& n);

}  // namespace tz::kernels
