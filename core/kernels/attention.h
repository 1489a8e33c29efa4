// Fused scaled dot-product attention, forward and backward, that never stores the T x S
// probability matrix (FlashAttention, Dao et al. 2022, arXiv:2205.14135, done on a CPU), with
// masks and score terms given as data (the counterpart of FlexAttention's mask_mod and
// score_mod, arXiv:2412.05496) and grouped key/value heads read in place.
//
// Shape letters (used in every comment of attention*.cpp):
//   B = batch, H = query heads, G = key/value heads (H % G == 0), T = queries per head,
//   S = keys per head (S >= T with a KV cache), D = head dim, R = T + S - 1 distances,
//   Dr, Dp = widths of the relative-key and pair operands below.
//   q [B, H, T, D]; k, v [B, G, S, D]; o [B, H, T, D]; lse [B, H, T].
// Query head h reads key/value head g = h / (H / G) (GQA, Ainslie et al. 2023,
// arXiv:2305.13245; G = 1 is multi-query attention, G = H plain multi-head).
// Query i sits at key position q_offset + i. With `causal`, query i sees key j iff
// j <= q_offset + i (as in a KV cache: the T new queries are the last T of the S keys).
// A mask (attention_mask.h, an AND of terms such as a sliding window, key padding or
// forgotten keys) hides more pairs. With d = q_offset + i - j the distance of the pair:
//
//   s_ij = scale * q_i . k_j                          (scale = 1/sqrt(D) by default)
//        + bias_h(d)                                  relative bias table (ALiBi, T5)
//        + scale * a_i . r_h(d)                       relative keys (Transformer-XL's (b) + (d):
//                                                     a = q + v_txl, r = W_{k,R} R)
//        + pscale * c_i . e_j                         pair product (TUPE's (p_i U^Q).(p_j U^K))
//   top-k (Zhao et al. 2019, arXiv:1912.11637): s_ij = -inf where s_ij < thr_i, thr_i the
//        k-th largest visible score of row i (ties with it are all kept; -inf when fewer
//        than k keys are visible: nothing more is hidden)
//   p_ij = exp(s_ij - lse_i),  lse_i = log sum_j exp(s_ij)     (hidden s_ij = -inf)
//   o_i  = sum_j p_ij v_j
// Backward, with dO the gradient of o and D_i = sum_j p_ij (dO_i . v_j) = dO_i . o_i:
//   dv_j = sum_i p_ij dO_i,   dp_ij = dO_i . v_j,   ds_ij = p_ij (dp_ij - D_i),
//   dq_i = scale sum_j ds_ij k_j,   dk_j = scale sum_i ds_ij q_i,
//   dbias_h(d) = sum over b and the visible pairs (i, j) at distance d of ds_ij,
//   da_i = scale sum_j ds_ij r_h(d),   dr_h(d) = scale sum over the pairs at distance d of ds_ij a_i,
//   dc_i = pscale sum_j ds_ij e_j,     de_j = pscale sum_i ds_ij c_i,
// where dk and dv of a group g sum over the H / G query heads that read it. The top-k
// selection is a constant of the backward (a subgradient: the threshold moves no gradient).
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
// fill of a byte mask and -inf where it is 0, visible tiles nothing. With no mask terms,
// no bias and no score terms, the kernels run exactly the plain causal code (no virtual call).
// Relative keys, per tile: the rows of a chunk of 8 queries meet only the distances their
// keys are at (8 + Bc - 1 of them, consecutive rows of r), so the tile takes one block of
// dots a . r over those and gathers s_ij from it (the backward scatters ds the same way).
// Top-k, per block of Br query rows: a first pass over the key tiles keeps each row's k
// largest scores (a min-heap of k) and so its threshold, the second pass is the forward
// with scores below it hidden. Every pass computes a score by the same code in the same
// order (the tiles' scores are bit-identical across passes and in the backward), so the
// k-th score itself always compares equal to its threshold.
// Memory: O(Br * Bc) per thread instead of O(T * S) per head (+ B * H * (T + S - 1) for the
// bias gradient, B * H * T for the top-k thresholds, Br * k per thread for the top-k heaps).
// Reference kernels (*_ref): materialise the whole T x S score matrix of one head in f64,
// plain loops, for tests.
//
// Memory layout: every [B, H or G, rows, D] operand is given as a base pointer and three
// strides (elements) for b, the head and the row; the D entries of one row are contiguous.
// So permuted views such as q = qkv[B, T, 3, H, D].select(2, 0).permute(0, 2, 1, 3) are read
// in place, without a copy. lse is contiguous [B, H, T].
// T = float or double. f32 uses the AVX-512 or AVX2 tile primitives (attention_avx512.cpp,
// attention_avx2.cpp) as tz::simd_level() allows, for the score terms' dots and sums too.
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
  int64_t topk = 0;                     // > 0: each query keeps its topk largest scores (ties kept)
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

// Score terms read from extra operands tile by tile (the equations above). Each is off while
// its query-side pointer is null. Operand rows as AttnRows (sb = 0: one operand for the
// whole batch). Gradients (+=; null p: not wanted) are written per (b, h) row: when B > 1 a
// gradient needs its own rows per batch row (sb != 0) even for an operand shared by the
// batch, and the caller sums over b (so that no two threads write one row).
template <class T>
struct ScoreTerms {
  // Relative keys: rel_q [B, H, T, Dr] (a), rel_k [., H, R, Dr] (r): row zero + d holds
  // distance d, the numbering of RelativeBias (R = T + S - 1, zero = S - 1 - q_offset).
  AttnRows<const T> rel_q{}, rel_k{};
  int64_t Dr = 0, R = 0, zero = 0;
  AttnRows<T> drel_q{}, drel_k{};
  // Pair product: pair_q [B, H, T, Dp] (c), pair_k [B, H, S, Dp] (e), scaled by pair_scale.
  AttnRows<const T> pair_q{}, pair_k{};
  int64_t Dp = 0;
  double pair_scale = 0;
  AttnRows<T> dpair_q{}, dpair_k{};
  // Top-k (AttnSizes::topk > 0 and < S): [B, H, T] thresholds, written by the forward
  // (attention_topk_threshold alone computes them too), read by the backward.
  T* threshold = nullptr;
};

// o = attention(q, k, v), lse = the per-row log-sum-exp of the scores (saved for the
// backward; -inf for a query that sees no key). Writes o and lse (does not read them).
// Throws tz::Error (before any work) for G not dividing H, a mask built for other sizes, or
// a bias table or relative-key table too short for the distances present, or top-k without a
// threshold buffer.
template <class T>
void attention_forward(AttnRows<T> o, T* lse, AttnRows<const T> q, AttnRows<const T> k, AttnRows<const T> v,
                       const AttnSizes& n, const RelativeBias<T>* bias = nullptr, const ScoreTerms<T>* terms = nullptr);
template <class T>
void attention_forward_ref(AttnRows<T> o, T* lse, AttnRows<const T> q, AttnRows<const T> k, AttnRows<const T> v,
                           const AttnSizes& n, const RelativeBias<T>* bias = nullptr,
                           const ScoreTerms<T>* terms = nullptr);

// The top-k thresholds alone (the forward's first pass): thr [B, H, T] contiguous, the
// k-th largest visible score of each row (-inf when fewer than topk keys are visible), for
// n.topk >= 1 (n.topk >= S: every threshold -inf).
template <class T>
void attention_topk_threshold(T* thr, AttnRows<const T> q, AttnRows<const T> k, const AttnSizes& n,
                              const RelativeBias<T>* bias = nullptr, const ScoreTerms<T>* terms = nullptr);

// Accumulates (+=) the gradients of q, k, v (and of the bias table into bias->grad), given
// o and lse from the forward and dout, the gradient of o (and of the score terms' operands
// into terms->d*). dk and dv are [B, G, S, D]. The reference recomputes everything from q,
// k, v (it ignores o, lse and the thresholds).
template <class T>
void attention_backward(AttnRows<T> dq, AttnRows<T> dk, AttnRows<T> dv, AttnRows<const T> o, const T* lse,
                        AttnRows<const T> dout, AttnRows<const T> q, AttnRows<const T> k, AttnRows<const T> v,
                        const AttnSizes& n, const RelativeBias<T>* bias = nullptr,
                        const ScoreTerms<T>* terms = nullptr);
template <class T>
void attention_backward_ref(AttnRows<T> dq, AttnRows<T> dk, AttnRows<T> dv, AttnRows<const T> o, const T* lse,
                            AttnRows<const T> dout, AttnRows<const T> q, AttnRows<const T> k, AttnRows<const T> v,
                            const AttnSizes& n, const RelativeBias<T>* bias = nullptr,
                            const ScoreTerms<T>* terms = nullptr);

// Tile primitives of the AVX2 path (attention_avx2.cpp; call only when tz::simd_enabled()).
namespace avx2 {
// S[m][n] = scale * (A_m . B_n) for m < M, n < N; A, B rows of D floats, strides lda, ldb.
void attn_dots(float* S, int64_t lds, const float* A, int64_t lda, int64_t M, const float* Bm, int64_t ldb, int64_t N,
               int64_t D, float scale);
// The same S from B stored transposed: Bt[d * ldbt + n] = B_n[d] (n < N, d < D).
void attn_dots_t(float* S, int64_t lds, const float* A, int64_t lda, int64_t M, const float* Bt, int64_t ldbt,
                 int64_t N, int64_t D, float scale);
// C[m][:D] += alpha * sum_k W[m*wm + k*wk] * Bm[k][:D] for m < M, k < K (W may be a
// transposed view: wm = 1, wk = ld).
void attn_acc(float* C, int64_t ldc, const float* W, int64_t wm, int64_t wk, int64_t M, int64_t K, const float* Bm,
              int64_t ldb, int64_t D, float alpha);
// Scores more than 32 below their row's max get weight exactly 0. Each dropped weight is below
// e^-32 = 1.3e-14 of the row's largest (which is 1), so together they move a row's softmax by
// less than f32's half ulp (6e-8) for rows of up to 4 million keys. Kept, such weights make
// p*V and p*(dP - delta) subnormal, and x86 takes a microcode assist per subnormal lane
// (measured: ALiBi's distant keys, 0.87x of the learned-position model's training step).
inline constexpr float kAttnExpCut = -32.0f;
// dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols (a transposed copy).
void attn_transpose(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows, int64_t cols);
// y[c] = exp(x[c] - m) for c < n (in place allowed), exactly 0 where x[c] - m < kAttnExpCut
// (hidden scores, -inf, included); returns sum y in f64.
double attn_exp(float* y, const float* x, int64_t n, float m);
// attn_exp's values in place over rows of a tile, y[r * ldy + c] for c < n, each row r less
// its own m[r], with no sums (the backward's p = exp(s - lse)).
void attn_exp_rows(float* y, int64_t ldy, int64_t rows, int64_t n, const float* m);
}  // namespace avx2

// The same primitives on AVX-512 (attention_avx512.cpp; call only when tz::simd_level() is
// SimdLevel::avx512).
namespace avx512 {
void attn_dots(float* S, int64_t lds, const float* A, int64_t lda, int64_t M, const float* Bm, int64_t ldb, int64_t N,
               int64_t D, float scale);
void attn_dots_t(float* S, int64_t lds, const float* A, int64_t lda, int64_t M, const float* Bt, int64_t ldbt,
                 int64_t N, int64_t D, float scale);
void attn_acc(float* C, int64_t ldc, const float* W, int64_t wm, int64_t wk, int64_t M, int64_t K, const float* Bm,
              int64_t ldb, int64_t D, float alpha);
double attn_exp(float* y, const float* x, int64_t n, float m);
void attn_exp_rows(float* y, int64_t ldy, int64_t rows, int64_t n, const float* m);
}  // namespace avx512

}  // namespace tz::kernels
