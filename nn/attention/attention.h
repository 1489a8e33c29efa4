// Multi-head scaled dot-product attention (Vaswani et al. 2017, arXiv:1706.03762) as a
// pipeline: projections -> a fixed sequence of stages -> output, each option of the zoo an
// attention feature hooking some stages (nn/attention/feature.h, nn/attention/features/).
//
// Shapes: B batch, T query positions, S key positions (S = T without a cache, cache length
// + T with one; the context length for cross-attention), C model width, E context width,
// H query heads, G key/value heads, D head size (C / H unless attn_dim_head sets it).
//   q = x W_q [B, H, T, D];  k, v = x W_k, x W_v [B, G, S, D]    (cross: k, v = c W_k, c W_v)
//   q, k    = pos.rotate(q, k)                                   (RoPE-like schemes; self only)
//   A = softmax(q k^T / sqrt(D) + pos bias + masks)   [B, H, T, S] (sdpa.h: fused or composite)
//   y = concat_h(A v) W_o                             [B, T, C]
// Masks come as data: causal (ModelDims::causal), ctx.key_padding / ctx.context_padding,
// ctx.forgotten_keys (FCM). Keys that are no tokens (persistent memory: the lead_keys stage)
// come first, k = [M_k; k], and are visible to every query: the causal offset becomes
// q_offset + N and the key masks get N visible columns in front. Position schemes give a relative bias table (ALiBi,
// T5) or query-dependent score terms (Transformer-XL's relative keys, TUPE's pair product),
// all evaluated inside the fused kernel's tiles, with k, v of G heads read in place.
//
// Cross-attention (the encoder-decoder attention) is this layer built with
// ModelDims::context_dim = E > 0 (parameters q, kv, out): q from x, k and v from ctx.context
// through `kv` (E -> ...), ctx.context_padding hiding context positions, never causal (the
// keys are the context's), no position scheme. Bidirectional self-attention (encoders) is
// ModelDims::causal = false; ctx.key_padding hides padded keys from every query.
//
// Segment memory (Transformer-XL): with ctx.memory [B, M, C], keys and values come from
// [memory; x] (positions start - M ..), queries from x alone: q_offset = M. With a state,
// the memory's keys replace the cached ones (a new segment), so decoding keeps at most
// M + segment keys. ctx.segment gives the staircase mask of the same recurrence in one pass.
//
// Decoding: forward(x, ctx, state) with a KVState continues the sequence the state holds,
// for one token or a chunk (prefill). The cache holds, per feature: G heads (kv_heads: 1/H of
// MHA's for MQA), the shared keys (collab_heads), normalised keys (qk_norm), rotated keys
// (rotary schemes), the last 2 projected inputs (dconv, a rolling state); talking_heads, topk,
// entmax, adaptive_span (its mask depends on i - j only), gate_values and attn_on_attn need
// nothing more; realformer's score rows at layer l need only the same rows at layer l - 1,
// handed on through ctx.carry in the same call. A feature of the cache stage decides which keys
// stay (streaming_llm, lm_infinite: the first and the most recent ones, in buffers of that
// size). Cross-attention caches the context's keys and values at the first call. The cache is
// for no-grad decoding.
#pragma once

#include <map>

#include "core/random.h"
#include "nn/attention/feature.h"
#include "nn/attention/sdpa.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"

namespace tz::nn {

struct AttentionOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H; must divide dim unless a feature sets the head size
  bool causal = true;
  bool bias = true;            // biases of the projections
  double dropout = 0.0;        // on the output projection (residual dropout)
  double out_init_std = 0.02;  // GPT-2 scales the residual projection by 1/sqrt(2 * layers)
  int64_t context = 0;         // L, the training context (qk_norm's learned g starts at log2(L^2 - L))
  int64_t context_dim = 0;     // E > 0: cross-attention over ctx.context [B, S, E]
  FeatureList features;        // the options (attention_options() reads them from a config)
};

// The layer's sizes from the model's, and its features from the config (every key listed by
// attention_config_keys() is read here).
AttentionOptions attention_options(const ModelDims& dims, const Config& config);

// The KV cache: past keys and values, preallocated to a capacity (cross-attention: the
// context's, set at the first call). For no-grad decoding.
struct KVState : MixerState {
  Tensor k, v;                          // [B, k_heads, capacity, Dk], [B, G, capacity, D]
  int64_t keys = 0;                     // keys held
  int64_t key_start = 0;                // position of key 0 (> 0 once segment memory replaced the keys)
  std::map<std::string, Tensor> extra;  // feature states by feature key (dconv's last inputs)
  void visit(StateVisitor& s) override {
    MixerState::visit(s);
    s.tensor("k", k);
    s.tensor("v", v);
    s.count("keys", keys);
    s.count("key_start", key_start);
    for (auto& [name, t] : extra) s.tensor("extra." + name, t);
  }
};

class Attention : public Mixer {
 public:
  Attention(const AttentionOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  // Causal in x; a cross-attention layer is too (its keys come from the context).
  bool causal() const override { return options.causal || cross(); }
  bool has_step() const override { return true; }
  // Segment memory: self-attention whose features leave the projections alone.
  bool takes_memory() const override { return takes_memory_; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // The attention weights [B, H, T, S] of a forward over x (composite path), after every
  // stage; for tests and inspection.
  Tensor probabilities(const Tensor& x, const MixerContext& ctx);
  bool cross() const { return options.context_dim > 0; }

  // For features: parameters and sub-layers registered under their state-dict names.
  Tensor add_parameter(const std::string& name, Tensor t);
  std::shared_ptr<Linear> add_linear(const std::string& name, const LinearOptions& o, Generator& gen);
  Tensor param(const std::string& name) const;  // throws naming the layer's parameters
  std::shared_ptr<Linear> linear(const std::string& name) const;

  AttentionOptions options;
  AttentionLayout layout;
  std::shared_ptr<Linear> qkv;    // self-attention: C -> q | k | v
  std::shared_ptr<Linear> q, kv;  // cross-attention: C -> q, E -> k | v
  std::shared_ptr<Linear> out;
  std::shared_ptr<Dropout> drop;

 private:
  class Stages;
  // q [B, q_heads, T, Dk], k [B, k_heads, S', Dk], v [B, G, S', D] of this call (k, v of
  // the M memory rows and x's positions, or of the context), after the projection and qk
  // stages and the rotation.
  void project(const AttentionCall& c, int64_t M, Tensor& q, Tensor& k, Tensor& v) const;
  // Appends the call's keys to the cache (or sets the context's) and returns all keys.
  void cache(const AttentionCall& c, Tensor& k, Tensor& v) const;
  // Puts the features' leading keys (the lead_keys stage) before k, v; returns how many.
  int64_t lead(const AttentionCall& c, Tensor& k, Tensor& v) const;
  // `lead` leading keys: visible to every query, no position (the masks and the causal
  // offset shift past them). A position scheme's score terms may replace q (Transformer-XL).
  SdpaSpec spec(const AttentionCall& c, Tensor& q, const Tensor& k, int64_t lead) const;
  Tensor run(const AttentionCall& c, Tensor* probs);
  // Rows of ctx.memory this call attends to (0 without), after checking what comes with it.
  int64_t memory_rows(const AttentionCall& c) const;
  std::map<std::string, Tensor> params_;
  std::map<std::string, std::shared_ptr<Linear>> linears_;
  bool split_views_ = false;  // q, k, v as views of one [B, T, 3, H, D] projection
  bool takes_memory_ = false;
  const AttentionFeature* normaliser_ = nullptr;    // the feature replacing softmax, if any
  const AttentionFeature* cache_policy_ = nullptr;  // the feature replacing the cache append, if any
};

// GQA uptraining (Ainslie et al. 2023, arXiv:2305.13245, sec. 2.1): copies an MHA layer into a
// GQA layer `gqa` (same dim, heads, head size; G = gqa.layout.G), initialising each key/value
// head of group g with the mean of the MHA key/value projection heads in that group (heads
// g H/G .. (g+1) H/G - 1). Query and output projections are copied as they are.
void gqa_from_mha(const Attention& mha, Attention& gqa);

}  // namespace tz::nn
