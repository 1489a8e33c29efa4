// Multi-head scaled dot-product attention (Vaswani et al. 2017, arXiv:1706.03762), with the
// x-transformers-style attention options of the zoo.
//
// Shapes: B batch, T query positions, S key positions (S = T without a cache, cache length
// + T with one), C model width, H query heads, G key/value heads, D head size (C / H unless
// attn_dim_head sets it).
//   q = x W_q [B, H, T, D];  k, v = x W_k, x W_v [B, G, S, D]     (G = H by default)
//   q, k    = pos.rotate(q, k)       (RoPE-like position schemes)
//   A = softmax(q k^T / sqrt(D) + pos.score_bias + M)   [B, H, T, S], M_ij = -inf for j > start + i
//   y = concat_h(A v) W_o                               [B, T, C]
// The step form keeps every past key and value (the KV cache), so decoding a token costs
// O(S), and cached decoding gives the same logits as the full forward (tests prove it).
//
// Options (config keys, all read by `vanilla_mha`; papers in the AttentionOptions comments):
//   attn_dim_head, attn_kv_heads (MQA/GQA), attn_collab_heads (+ attn_collab_compression)
//     change the projections;
//   attn_qk_norm (+ attn_qk_norm_scale), attn_dconv (Primer) transform q, k, v;
//   attn_talking_heads, attn_residual (RealFormer), attn_sparse_topk, attn_entmax,
//     attn_adaptive_span (+ attn_span_ramp, attn_span_init, attn_span_penalty) change the
//     scores or the normaliser: they take the composite path (scores -> transforms -> mask ->
//     normaliser -> head mix -> values), which stores the [B, H, T, S] probabilities;
//   attn_gate_values, attn_on_attn act on the attended values.
// Without options (and with only the projection/q-k/value options) the fused tiled kernel
// runs, exactly as for plain attention.
//
// Decoding with the KV cache (step()) is supported for EVERY option above:
//   dim_head, kv_heads (the cache holds G heads: 1/H of MHA's for MQA), collab_heads (the
//   cache holds the shared keys), qk_norm (normalised keys are cached), dconv (plus a
//   rolling state of the last 2 projected inputs), talking_heads, sparse_topk, entmax,
//   adaptive_span (the mask depends on i - j only), gate_values, on_attn, and residual
//   (RealFormer: the new query's score row at layer l needs only the same row at layer l-1,
//   which the previous layer computes in the same step and hands on through ctx.carry).
// Refused: no option refuses decoding. (Rotary position schemes with attn_collab_heads are
// refused in forward and step alike: the mixing vectors do not commute with rotations.)
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"

namespace tz::nn {

struct AttentionOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H; must divide dim unless dim_head is set
  bool causal = true;
  bool bias = true;   // biases of the projections
  double dropout = 0.0;        // on the output projection (residual dropout)
  double attn_dropout = 0.0;   // [attn_dropout] on the attention probabilities while training
  double out_init_std = 0.02;  // GPT-2 scales the residual projection by 1/sqrt(2 * layers)
  // ---- options (config key in brackets) ----
  int64_t dim_head = 0;   // [attn_dim_head] D chosen apart from C / H (arXiv:2002.07028); 0 = C / H
  int64_t kv_heads = 0;   // [attn_kv_heads] G shared key/value heads: 1 = MQA (arXiv:1911.02150),
                          //   1 < G < H = GQA (arXiv:2305.13245); 0 = H
  bool collab_heads = false;        // [attn_collab_heads] shared W_q, W_k with per-head mixing vectors (arXiv:2006.16362)
  double collab_compression = 0.5; // [attn_collab_compression] shared q/k width = compression * H * D
  bool qk_norm = false;             // [attn_qk_norm] l2-normalised q, k; score = g q.k (arXiv:2010.04245)
  double qk_norm_scale = 0;         // [attn_qk_norm_scale] fixed g (cosine-sim attention); 0 = learned g
  int64_t context = 0;              // L, for qk_norm's learned g init log2(L^2 - L)
  bool dconv = false;               // [attn_dconv] causal depthwise conv (width 3) on q, k, v (Primer, arXiv:2109.08668)
  bool talking_heads = false;       // [attn_talking_heads] H x H mixes before and after softmax (arXiv:2003.02436)
  bool residual = false;            // [attn_residual] RealFormer residual scores across layers (arXiv:2012.11747)
  int64_t sparse_topk = 0;          // [attn_sparse_topk] keep the k largest logits per row (arXiv:1912.11637); 0 = off
  double entmax = 0;                // [attn_entmax] alpha-entmax instead of softmax (arXiv:1909.00015); 0 = off
  int64_t adaptive_span = 0;        // [attn_adaptive_span] longest span S of the learned soft mask (arXiv:1905.07799); 0 = off
  double span_ramp = 8;             // [attn_span_ramp] R, the soft mask's ramp length
  double span_init = 0.5;           // [attn_span_init] initial z / S per head, in [0, 1]
  double span_penalty = 2e-6;       // [attn_span_penalty] L1 coefficient on the spans z (aux loss)
  bool gate_values = false;         // [attn_gate_values] o_h = sigmoid(x W_g + b_g) * (A_h V_h) (AlphaFold2)
  bool on_attn = false;             // [attn_on_attn] out = GLU(v_hat W) replaces W_o (arXiv:1908.06954, x-transformers)
};

// Reads the attention options from a config (the keys above), over the model's sizes.
AttentionOptions attention_options(const ModelDims& dims, const Config& config);
// The config keys of attention_options, with defaults and docs (vanilla_mha lists them all).
std::vector<ConfigKey> attention_config_keys();
// The subset of attention_config_keys() whose names are listed.
std::vector<ConfigKey> attention_config_keys(const std::vector<std::string>& names);

// The KV cache: past keys and values, preallocated to a capacity. For no-grad decoding.
struct KVState : MixerState {
  Tensor k, v;   // [B, G, capacity, D] (collab_heads: k [B, 1, capacity, D_k], v [B, H, capacity, D])
  Tensor conv;   // dconv only: the last 2 projected (pre-conv) inputs [B, 2, C_qkv]
  void visit(StateVisitor& s) override {  // for save_state / restore_state
    MixerState::visit(s);
    s.tensor("k", k);
    s.tensor("v", v);
    s.tensor("conv", conv);
  }
};

class Attention : public Mixer {
 public:
  Attention(const AttentionOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool causal() const override { return options.causal; }
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // The attention weights [B, H, T, T] of a forward over x (through the composite path),
  // after every transform; for tests and inspection.
  Tensor probabilities(const Tensor& x, const MixerContext& ctx);
  // True when an option needs the composite (score-materialising) path.
  bool composite() const;

  AttentionOptions options;
  int64_t head_dim = 0;        // D
  int64_t q_width = 0, k_width = 0, v_width = 0;  // columns of qkv for q, k, v
  std::shared_ptr<Linear> qkv, out, gate;
  std::shared_ptr<Dropout> drop;
  Tensor collab_mix;           // [H, D_k] mixing vectors m_h (collab_heads)
  Tensor qk_scale;             // [1] learned g (qk_norm without a fixed scale)
  Tensor dconv_weight;         // [C_qkv, 3] (dconv)
  Tensor pre_mix, post_mix;    // [H, H] (talking_heads)
  Tensor span;                 // [H] z / S in [0, 1] (adaptive_span)

 private:
  // q [B, H|1, T, D], k, v [B, G, T, D] of x (positions start..); conv_state continues the
  // dconv over a cache.
  void project(const Tensor& x, Tensor& q, Tensor& k, Tensor& v, int64_t start, const MixerContext& ctx,
               Tensor* conv_state) const;
  // The core: heads in, y [B, H, T, D] out; query i sits at key mask_offset + i.
  Tensor attend(Tensor q, Tensor k, Tensor v, int64_t q_start, int64_t k_start, int64_t mask_offset,
                const MixerContext& ctx, Tensor* probs);
  // forward() with a KV cache: appends x's keys and values, attends over all of them.
  Tensor continue_cache(const Tensor& x, KVState& kv, const MixerContext& ctx);
  // Merges heads, gates and projects out: y [B, H, T, D], x [B, T, C] → [B, T, C].
  Tensor output(const Tensor& y, const Tensor& x);
  // The position scheme's additive score terms for queries at q_start.. over keys at
  // k_start..; static biases are built for queries numbered from mask_offset.
  Tensor position_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start, int64_t mask_offset,
                       const MixerContext& ctx) const;
};

// Attention core on already projected heads: q [B, H, T, D], k, v [B, H, S, D]; query i sits
// at absolute position q_offset + i when causal. Without a score bias it is the fused tiled
// op (tz::attention: no T x S matrix is stored); its result [B, H, T, D] is a view of a
// [B, T, H, D] buffer, so permuting back to [B, T, C] is free. scale 0 = 1 / sqrt(D).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    int64_t q_offset = 0, const Tensor& score_bias = Tensor(), double scale = 0);
// The composite reference: matmul, scale, (+ bias), causal masked_fill, softmax, matmul. It
// stores the [B, H, T, S] probabilities; the tests compare the fused op against it.
Tensor scaled_dot_product_attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                        int64_t q_offset = 0, const Tensor& score_bias = Tensor(), double scale = 0);

// GQA uptraining (Ainslie et al. 2023, arXiv:2305.13245, sec. 2.1): copies an MHA layer into a
// GQA layer `gqa` (same dim, heads, dim_head; G = gqa.options.kv_heads), initialising each
// key/value head of group g with the mean of the MHA key/value projection heads in that group
// (heads g H/G .. (g+1) H/G - 1). Query and output projections are copied as they are.
void gqa_from_mha(const Attention& mha, Attention& gqa);

}  // namespace tz::nn
