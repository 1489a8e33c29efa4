// Fused scaled dot-product attention, forward and backward, that never stores the T x S
// probability matrix (FlashAttention, Dao et al. 2022, arXiv:2205.14135, done on a CPU), with
// masks and score biases given as data (the counterpart of FlexAttention's mask_mod and
// score_mod, arXiv:2412.05496) and grouped key/value heads read in place.
//
// Shape letters (used in every comment of attention*.cpp):
//   B = batch, H = query heads, G = key/value heads (H % G == 0), T = queries per head,
//   S = keys per head (S >= T with a KV cache), D = head dim.
//   q [B, H, T, D]; k, v [B, G, S, D]; o [B, H, T, D]; lse [B, H, T].
// Query head h reads key/value head g = h / (H / G) (GQA, Ainslie et al. 2023,
// arXiv:2305.13245; G = 1 is multi-query attention, G = H plain multi-head).
// Query i sits at key position q_offset + i. With `causal`, query i sees key j iff
// j <= q_offset + i (as in a KV cache: the T new queries are the last T of the S keys).
// A mask (attention_mask.h, an AND of terms such as a sliding window, key padding or
// forgotten keys) hides more pairs; a relative bias adds b_h(q_offset + i - j) to the scores.
//
//   s_ij = scale * q_i . k_j + bias_h(q_offset + i - j)     (scale = 1/sqrt(D) by default)
//   p_ij = exp(s_ij - lse_i),  lse_i = log sum_j exp(s_ij)     (hidden s_ij = -inf)
//   o_i  = sum_j p_ij v_j
// Backward, with dO the gradient of o and D_i = sum_j p_ij (dO_i . v_j) = dO_i . o_i:
//   dv_j = sum_i p_ij dO_i,   dp_ij = dO_i . v_j,   ds_ij = p_ij (dp_ij - D_i),
//   dq_i = scale sum_j ds_ij k_j,   dk_j = scale sum_i ds_ij q_i,
//   dbias_h(d) = sum over b and the visible pairs (i, j) with q_offset + i - j = d of ds_ij,
// where dk and dv of a group g sum over the H / G query heads that read it.
// A query that sees no key at all (every key hidden) gets o_i = 0, lse_i = -inf and zero
// gradients: the limit of attending to nothing, where softmax over an all -inf row would
// give NaN.
//
// Fast kernels (attention_forward / attention_backward): tiles of Br queries x Bc keys; the
// forward keeps a running max m and sum l per query row (online softmax) and rescales its
// output accumulator when m grows; the backward recomputes p from the saved lse tile by
// tile. Causal tiles entirely above the diagonal are skipped, and tiles on the diagonal are
// computed in chunks of 8 rows/keys that stop where the mask starts. The mask is asked once
// per tile: hidden tiles are skipped (their keys are never read), partial tiles get one
// fill of a byte mask and -inf where it is 0, visible tiles nothing. With no mask terms
// and no bias, the kernels run exactly the plain causal code (no virtual call).
// Memory: O(Br * Bc) per thread instead of O(T * S) per head (+ B * H * (T + S - 1) for the
// bias gradient).
// Reference kernels (*_ref): materialise the whole T x S score matrix of one head in f64,
// plain loops, for tests.
//
// Memory layout: every [B, H or G, rows, D] operand is given as a base pointer and three
// strides (elements) for b, the head and the row; the D entries of one row are contiguous.
// So permuted views such as q = qkv[B, T, 3, H, D].select(2, 0).permute(0, 2, 1, 3) are read
// in place, without a copy. lse is contiguous [B, H, T].
// T = float or double. f32 uses the AVX-512 or AVX2 tile primitives (attention_avx512.cpp,
// attention_avx2.cpp) as tz::simd_level() allows.
#pragma once

#include <cstdint>

#include "core/kernels/attention_mask.h"

namespace tz::kernels {

// Rows of a [B, H, rows, D] operand: row (b, h, t) starts at p + b*sb + h*sh + t*st.
template <class T>
struct AttnRows {
  T* p;
  int64_t sb, sh, st;
  T* row(int64_t b, int64_t h, int64_t t) const { return p + b * sb + h * sh + t * st; }
};

struct AttnSizes {
  int64_t B, H, T, S, D;
  int64_t q_offset = 0;  // query i sits at key position q_offset + i
  bool causal = false;
  double scale = 0;                     // the caller resolves the default 1/sqrt(D)
  int64_t G = 0;                        // key/value heads (0 = H); H % G == 0
  const AttentionMask* mask = nullptr;  // more hidden pairs (null or no terms: none)
};

// A relative score bias, added to the scaled score: bias(h, i, j) = table[h*sh + zero + d]
// with d = q_offset + i - j (ALiBi's -slope_h |d| and T5's bucketed emb[bucket(d), h] are
// such tables). The caller builds each head's row for the distances present,
// d = q_offset - (S - 1) .. q_offset + T - 1: R = T + S - 1 entries with zero = S - 1 -
// q_offset; the kernels check that range once per call. sh = 0 shares one row across heads.
// The backward accumulates (+=) d table[h*sh + zero + d] into grad (may be null: no
// gradient), summed over b.
template <class T>
struct RelativeBias {
  const T* table;
  int64_t sh;    // row stride per head (elements)
  int64_t R;     // entries per row
  int64_t zero;  // index of distance 0 in a row
  T* grad = nullptr;
};

// o = attention(q, k, v), lse = the per-row log-sum-exp of the scores (saved for the
// backward; -inf for a query that sees no key). Writes o and lse (does not read them).
// Throws tz::Error (before any work) for G not dividing H, a mask built for other sizes, or
// a bias table too short for the distances present.
template <class T>
void attention_forward(AttnRows<T> o, T* lse, AttnRows<const T> q, AttnRows<const T> k, AttnRows<const T> v,
                       const AttnSizes& n, const RelativeBias<T>* bias = nullptr);
template <class T>
void attention_forward_ref(AttnRows<T> o, T* lse, AttnRows<const T> q, AttnRows<const T> k, AttnRows<const T> v,
                           const AttnSizes& n, const RelativeBias<T>* bias = nullptr);

// Accumulates (+=) the gradients of q, k, v (and of the bias table into bias->grad), given
// o and lse from the forward and dout, the gradient of o. dk and dv are [B, G, S, D]. The
// reference recomputes everything from q, k, v (it ignores o and lse).
template <class T>
void attention_backward(AttnRows<T> dq, AttnRows<T> dk, AttnRows<T> dv, AttnRows<const T> o, const T* lse,
                        AttnRows<const T> dout, AttnRows<const T> q, AttnRows<const T> k, AttnRows<const T> v,
                        const AttnSizes& n, const RelativeBias<T>* bias = nullptr);
template <class T>
void attention_backward_ref(AttnRows<T> dq, AttnRows<T> dk, AttnRows<T> dv, AttnRows<const T> o, const T* lse,
                            AttnRows<const T> dout, AttnRows<const T> q, AttnRows<const T> k, AttnRows<const T> v,
                            const AttnSizes& n, const RelativeBias<T>* bias = nullptr);

// Tile primitives of the AVX2 path (attention_avx2.cpp; call only when tz::simd_enabled()).
namespace avx2 {
// S[m][n] = scale * (A_m . B_n) for m < M, n < N; A, B rows of D floats, strides lda, ldb.
void attn_dots(float* S, int64_t lds, const float* A, int64_t lda, int64_t M, const float* Bm, int64_t ldb, int64_t N,
               int64_t D, float scale);
// C[m][:D] += alpha * sum_k W[m*wm + k*wk] * Bm[k][:D] for m < M, k < K (W may be a
// transposed view: wm = 1, wk = ld).
void attn_acc(float* C, int64_t ldc, const float* W, int64_t wm, int64_t wk, int64_t M, int64_t K, const float* Bm,
              int64_t ldb, int64_t D, float alpha);
}  // namespace avx2

// The same primitives on AVX-512 (attention_avx512.cpp; call only when tz::simd_level() is
// SimdLevel::avx512).
namespace avx512 {
void attn_dots(float* S, int64_t lds, const float* A, int64_t lda, int64_t M, const float* Bm, int64_t ldb, int64_t N,
               int64_t D, float scale);
void attn_acc(float* C, int64_t ldc, const float* W, int64_t wm, int64_t wk, int64_t M, int64_t K, const float* Bm,
              int64_t ldb, int64_t D, float alpha);
}  // namespace avx512

}  // namespace tz::kernels
