// The attention core: scaled dot-product attention over projected heads (Vaswani et al. 2017,
// arXiv:1706.03762), with its masks and score modifiers given as data (in the manner of
// FlexAttention's mask_mod / score_mod, arXiv:2412.05496). Self- and cross-attention both
// end here.
//
// Shapes: B batch, H query heads, G key/value heads (G divides H), T queries, S keys,
// D head size (q and k may have their own size D_k), M = T + S - 1 relative distances.
//   scores_ij = scale q_i . k_j  +  rel_bias[h, S - 1 + i - j]
//             + scale rel_q[b, h, i] . rel_k[h, S - 1 + i - j]        (relative keys: Transformer-XL)
//             + pair_scale pair_q[b, h, i] . pair_k[b, h, j]           (pair product: TUPE)
//             + score_bias[b, h, i, j]
//   top-k: scores below the k-th largest visible score of their row hidden (ties kept)
//   hidden pairs: j > q_offset + i (causal), key_padding[b, j] = 0, forgotten_keys[b, j] != 0
//                 with q_offset + i > j (FCM: the key's own position still sees it),
//                 j < floor((q_offset + i) / L) L - M (segment staircase, L = segment)
//   y_i = sum_j softmax_j(scores_ij over the visible j) v_j          [B, H, T, D]
// Query head h reads key/value head h / (H / G) (MQA: G = 1, GQA: 1 < G < H).
//
// Two paths compute it:
//   fused      tz::attention (autograd/ops.h): tiled, online softmax, masks as tile predicates,
//              the bias table, relative keys and pair product read per tile, top-k by a first
//              pass for the thresholds, k, v of G heads read in place; no T x S matrix is
//              stored (memory linear in T). Used whenever the spec allows it (fused_supports
//              in sdpa.cpp is the one place that says what the kernel takes);
//   composite  matmul -> + biases and terms -> stages.scores -> masks -> top-k ->
//              stages.normalise -> stages.probs -> matmul: stores the [B, H, T, S] scores; the
//              reference of the fused path and the path of every feature that needs the scores
//              (ScoreStages), of dense query-dependent biases (score_bias) and of q, k with
//              another head size.
// A query row with no visible key has no softmax: the fused path gives 0 there, the
// composite NaN.
#pragma once

#include "core/tensor.h"

namespace tz::nn {

struct SdpaSpec {
  double scale = 0;            // 0 = 1 / sqrt(D_k)
  bool causal = false;         // key j hidden from query i when j > q_offset + i
  int64_t q_offset = 0;        // query i sits at key position q_offset + i
  Tensor key_padding;          // [B, S], nonzero = a real key; undefined = none
  Tensor forgotten_keys;       // [B, S], nonzero = hidden from every later query (FCM); undefined = none
  int64_t segment = 0;         // > 0: key j hidden from query i when j < floor((q_offset + i) / segment)
  int64_t segment_memory = 0;  //   segment - segment_memory (Transformer-XL's staircase)
  Tensor rel_bias;             // [H or 1, M] relative bias table (ALiBi, T5), differentiable; undefined = none
  Tensor rel_q, rel_k;         // [B, H, T, Dr], [H, M, Dr] relative keys (Transformer-XL); undefined = none
  Tensor pair_q, pair_k;       // [B or 1, H, T, Dp], [B or 1, H, S, Dp] pair product (TUPE); undefined = none
  double pair_scale = 0;       //   its scale
  int64_t topk = 0;            // > 0: each query keeps its topk largest scores (explicit sparse attention)
  Tensor score_bias;           // [B or 1, H, T, S] a dense query-dependent term: composite only
  bool materialise = false;    // a stage hook or the caller needs the scores: composite path
};

// What features do inside the composite path; the defaults are plain softmax attention.
class ScoreStages {
 public:
  virtual ~ScoreStages() = default;
  virtual Tensor scores(const Tensor& s) const { return s; }  // scaled + biased, before the masks
  virtual Tensor normalise(const Tensor& s) const;            // masked scores -> weights (softmax)
  virtual Tensor probs(const Tensor& p) const { return p; }   // weights -> weights
};

// q [B, H, T, D_k], k [B, G, S, D_k], v [B, G, S, D] -> [B, H, T, D]. `probs` (optional)
// receives the [B, H, T, S] weights, which forces the composite path.
Tensor sdpa(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaSpec& spec,
            const ScoreStages* stages = nullptr, Tensor* probs = nullptr);
// Always the composite path.
Tensor sdpa_composite(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaSpec& spec,
                      const ScoreStages* stages = nullptr, Tensor* probs = nullptr);

// The dense bias [H or 1, T, S] of a relative table [H or 1, T + S - 1]: entry (h, i, j) is
// table[h, S - 1 + i - j]. Differentiable (a gather of columns).
Tensor relative_bias_dense(const Tensor& table, int64_t T, int64_t S);
// The dense relative-key term [B, H, T, S] (unscaled) of rel_q [B, H, T, Dr] and rel_k
// [H, T + S - 1, Dr]: entry (b, h, i, j) is rel_q[b, h, i] . rel_k[h, S - 1 + i - j].
// Differentiable (a product, then a gather).
Tensor relative_keys_dense(const Tensor& rel_q, const Tensor& rel_k, int64_t S);
// k [B, G, S, D] read by H query heads: [B, H, S, D] (head h gets group h / (H / G)).
Tensor expand_kv_heads(const Tensor& k, int64_t H);
// Columns [first, first + S) of a key mask [B, >= first + S] (a mask of the whole sequence
// serves every chunk), or the mask itself when it has exactly S columns; undefined stays so.
Tensor key_columns(const Tensor& mask, int64_t first, int64_t S, const char* what);

// The functions the tests and older callers use: plain softmax attention with k, v of H
// heads and an optional additive bias [.., H, T, S]. Without a bias: the fused op, whose
// result [B, H, T, D] is a view of [B, T, H, D] memory (merging heads afterwards is free).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    int64_t q_offset = 0, const Tensor& score_bias = Tensor(), double scale = 0);
// The composite reference: matmul, scale, (+ bias), causal masked_fill, softmax, matmul.
Tensor scaled_dot_product_attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                        int64_t q_offset = 0, const Tensor& score_bias = Tensor(), double scale = 0);

}  // namespace tz::nn
