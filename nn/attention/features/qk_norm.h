// Query-Key Normalization for Transformers (Henry et al. 2020, arXiv:2010.04245), and the
// fixed-scale cosine-similarity attention of lucidrains' flash-cosine-sim-attention.
//
// Per head, over the head size D:  q_hat = q / ||q||_2,  k_hat = k / ||k||_2,
//   score_ij = g q_hat_i . k_hat_j   (replaces q.k / sqrt(D)),  A = softmax(score + M).
// g is a learned scalar initialised to log2(L^2 - L) (L = the training context), or a fixed
// constant (10) in the cosine-sim variant. Since |q_hat . k_hat| <= 1, |score| <= g whatever
// the input scale. With a fixed g the softmax needs no running row maximum: exp(score - g) is
// in [e^{-2g}, 1], so a one-pass tiled kernel can sum exp(score - g) v and exp(score - g)
// directly (cosine_attention_fixed_scale), with the composite reference beside it. The
// layer itself runs the SIMD fused kernel (the one-pass kernel is scalar f64: it shows the
// bound, it does not beat the fused kernel).
// As an attention feature (qk_norm.cpp) it hooks the qk stage: q, k are normalised before
// the cache (and before any rotation, which keeps norms), and g is folded into q so the
// attention core runs with scale 1. Refused with pos tupe and txl_rel_pos, whose score terms
// assume the q.k / sqrt(D) that this replaces.
#pragma once

#include "core/tensor.h"

namespace tz::nn {

// x / sqrt(sum x^2 + eps) over the last dim (eps keeps a zero vector finite).
Tensor l2_normalize(const Tensor& x, double eps = 1e-12);
// The learned scale's initial value log2(L^2 - L) (L >= 2).
double qk_norm_init_scale(int64_t context);
// One-pass, max-free attention over unit-norm q_hat [B, H, T, D], k_hat, v [B, H, S, D] with a
// fixed scale g (no autograd). Query i sits at key q_offset + i when causal.
Tensor cosine_attention_fixed_scale(const Tensor& q_hat, const Tensor& k_hat, const Tensor& v, double g, bool causal,
                                    int64_t q_offset);
// Its reference: the composite softmax attention with scale g (max subtracted by softmax).
Tensor cosine_attention_fixed_scale_ref(const Tensor& q_hat, const Tensor& k_hat, const Tensor& v, double g,
                                        bool causal, int64_t q_offset);

}  // namespace tz::nn
