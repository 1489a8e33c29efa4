// Feature maps for kernelised attention: φ such that φ(q) . φ(k) stands for a kernel κ(q, k),
// so that attention sum_j κ(q_i, k_j) v_j / sum_j κ(q_i, k_j) runs as linear attention on
// φ(q), φ(k) (the chunked kernel, core/kernels/linear_attention.h). Each map with its paper:
//
// Shapes: x [..., d] (one head's query or key), m random features, φ(x) [..., F].
//
// FAVOR+ positive orthogonal random features. "Rethinking Attention with Performers",
// Choromanski et al. 2020, arXiv:2009.14794 (ICLR 2021), lemma 1 and sec. 2.4:
//   φ(x) = exp(W x - |x|^2 / 2) / √m,   W [m, d]
//   E[φ(q) . φ(k)] = exp(q . k)   (softmax kernel; q, k scaled by d^(-1/4) give exp(q.k/√d))
//   rows of W: blocks of d orthogonal directions, each row of length ~ chi_d (the norm of a
//   Gaussian d-vector), so each row is marginally N(0, I_d); redrawn on a schedule.
// Trigonometric random features. "Random Feature Attention", Peng et al. 2021,
// arXiv:2103.02143 (ICLR 2021), eq. 2-3:
//   φ(x) = [sin(W x), cos(W x)] / √m,   rows of W ~ N(0, σ^-2 I_d)
//   E[φ(x) . φ(y)] = exp(-|x - y|^2 / (2 σ^2))   (Gaussian kernel; = softmax kernel up to
//   per-token factors when |x| = |y| = 1)
// Taylor maps. "Linear Transformers with Learnable Kernel Functions are Better In-Context
// Models" (ReBased), Aksenov et al. 2024, arXiv:2402.10644, and Based (arXiv:2402.18668):
//   Based   φ(x) = [1, x, vec(x x^T) / √2]      φ(q) . φ(k) = 1 + q.k + (q.k)^2 / 2
//   ReBased φ(x) = vec(y y^T), y = γ ⊙ (x - mean x) / std x + β
//           φ(q) . φ(k) = (y_q . y_k)^2 >= 0
// Hedgehog. "The Hedgehog & the Porcupine: Expressive Linear Attentions with Softmax
// Mimicry", Zhang et al. 2024, arXiv:2402.04347 (ICLR 2024), eq. 5:
//   φ(x) = [softmax(W x + b), softmax(-W x - b)],   W [d, n] and b [n] learned per head
//   (exp(±(W x + b)) normalised over the n features of each token, as the paper's code does:
//   bounded values, and the per-token factor exp(|x|^2 / 2) that a sum of exps carries is
//   divided out); trained to mimic softmax: the distillation loss below.
// Polynomial sketches. "PolySketchFormer: Fast Transformers via Sketching Polynomial
// Kernels", Kacham, Mirrokni, Zhong 2023, arXiv:2310.01655, sec. 2-3:
//   κ(q, k) = (q . k)^p, p even;  φ(x) = vec(s s^T), s = S x^(⊗ p/2) (S [r, d^(p/2)])
//   φ(q) . φ(k) = (s_q . s_k)^2 >= 0;  exact when S^T S = I (r >= d^(p/2), orthonormal
//   columns), unbiased for (q.k)^(p/2) with a Gaussian S / √r when r is smaller.
// Frequency-domain kernelisation. "DiJiang: Efficient Large Language Models through Compact
// Kernelization", Chen et al. 2024, arXiv:2403.19928 (ICML 2024), sec. 3-4:
//   φ(x) = D ⊙ exp(T C x - |x|^2 / 2) / √m: frequencies from the DCT instead of Gaussian
//   draws, their lengths T by weighted quasi-Monte-Carlo, weights D learned
//   here: rows of W = T C: blocks of d orthonormal rows C~ S3 C~ S2 C~ S1 (C~ the orthonormal
//   DCT-II, S random ±1 diagonals), row lengths t_i = F_chi_d^-1((π(i) + u) / m), one
//   stratum of the chi_d distribution per feature (π a random permutation, u ~ U(0, 1):
//   randomised QMC), D = 1 at start. Deviation: the paper's single DCT with a diagonal T
//   keeps the same d directions for every feature, whose estimate cannot tend to exp(q . k)
//   for all q, k as m grows; three sign-flipped DCT rounds (the structured orthogonal
//   features of SORF, with the DCT for the Hadamard) mix the directions.
// Position-aware permutation. "PermuteFormer: Efficient Relative Position Encoding for
// Long Sequences", Chen 2021, arXiv:2109.02377 (EMNLP 2021), sec. 3:
//   φ'(q_i) = P^i φ(q_i),  φ'(k_j) = P^j φ(k_j)  with a fixed random permutation P per head
//   φ'(q_i) . φ'(k_j) = φ(q_i) . P^(j-i) φ(k_j): a function of i - j only
//   (the paper's decay r^(i-j) is the kernel's log-decay, log r per step).
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/ops.h"
#include "core/random.h"

namespace tz::nn {

// W [m, d] (FAVOR+): blocks of d orthonormal rows (Gram-Schmidt of Gaussian rows), each row
// scaled to the length of an independent Gaussian d-vector. Drawn from `gen`.
Tensor orthogonal_random_features(int64_t m, int64_t d, Generator& gen, DType dtype);
// Writes a fresh draw into w [m, d] in place (a buffer keeps its handle).
void redraw_orthogonal_features(const Tensor& w, Generator& gen);

// exp(x W^T - |x|^2 / 2) / √m; `stabilise` subtracts each row's max of the exponent (a
// per-token factor: exact for queries under the normaliser, not for keys).
Tensor favor_features(const Tensor& x, const Tensor& w, bool stabilise = false);
// W [m, d] (DiJiang): structured DCT directions with quasi-Monte-Carlo lengths. From `gen`.
Tensor dct_qmc_features(int64_t m, int64_t d, Generator& gen, DType dtype);
// The p-quantile of the chi distribution with d degrees of freedom (bisection on the
// regularised incomplete gamma function; 0 < p < 1).
double chi_quantile(int64_t d, double p);
// [sin(x W^T), cos(x W^T)] / √m.
Tensor trig_features(const Tensor& x, const Tensor& w);
// vec(x x^T): [..., d] -> [..., d^2].
Tensor outer_square(const Tensor& x);
// x^(⊗ n) flattened: [..., d] -> [..., d^n].
Tensor tensor_power(const Tensor& x, int64_t n);
// Based's second-order Taylor map [1, x, vec(x x^T) / √2].
Tensor taylor_features(const Tensor& x);
// ReBased: vec(y y^T), y = γ ⊙ norm(x) + β; γ, β [H, d] for x [B, H, T, d].
Tensor rebased_features(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-5);
// Hedgehog: [softmax(x W + b), softmax(-x W - b)]; W [H, d, n], b [H, n] for x [B, H, T, d].
Tensor hedgehog_features(const Tensor& x, const Tensor& w, const Tensor& b);
// S [r, n] with n = d^(p/2): orthonormal columns when r >= n (the exact sketch), else
// Gaussian / √r.
Tensor polynomial_sketch(int64_t r, int64_t n, Generator& gen, DType dtype);
// vec(s s^T), s = x^(⊗ half) S^T.
Tensor polysketch_features(const Tensor& x, const Tensor& sketch, int64_t half);

// A random permutation of 0..m-1 per head: [H, m] i64.
Tensor random_permutations(int64_t H, int64_t m, Generator& gen);
// P^(start + t) applied to φ [B, H, T, m] at position start + t: out[..., perm^n(f)] = φ[..., f].
Tensor permute_by_position(const Tensor& phi, const Tensor& perms, int64_t start);

// Hedgehog's distillation loss: the mean over query rows of KL(softmax row || feature row),
// softmax row a_ij = exp(q_i.k_j / √d) / sum (causal: j <= i), feature row
// â_ij = φ(q_i).φ(k_j) / sum_j' φ(q_i).φ(k_j'). q, k [B, H, T, d]; φq, φk [B, H, T, F].
Tensor softmax_mimicry_kl(const Tensor& q, const Tensor& k, const Tensor& phi_q, const Tensor& phi_k,
                          bool causal = true);

}  // namespace tz::nn
