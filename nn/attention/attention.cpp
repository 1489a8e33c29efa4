#include "nn/attention/attention.h"

#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "nn/attention/qk_norm.h"
#include "nn/attention/score_transforms.h"
#include "nn/registry.h"

namespace tz::nn {

// ---- options -----------------------------------------------------------------------------

std::vector<ConfigKey> attention_config_keys() {
  return {
      {"attn_dim_head", "0", "per-head size D, independent of dim / heads (0 = dim / heads)"},
      {"attn_kv_heads", "0", "key/value heads G (1 = multi-query, divides heads = grouped-query; 0 = heads)"},
      {"attn_collab_heads", "false", "collaborative heads: shared query/key projections with per-head mixing vectors"},
      {"attn_collab_compression", "0.5", "collab_heads: shared query/key width = compression * heads * D"},
      {"attn_qk_norm", "false", "l2-normalise queries and keys per head; score = g q.k"},
      {"attn_qk_norm_scale", "0", "qk_norm: fixed g (cosine-sim attention, e.g. 10); 0 = learned, init log2(L^2 - L)"},
      {"attn_dconv", "false", "Primer: causal depthwise conv of width 3 on q, k, v (identity init)"},
      {"attn_talking_heads", "false", "learned heads x heads mixes before and after the softmax"},
      {"attn_residual", "false", "RealFormer: add the previous layer's pre-softmax scores"},
      {"attn_sparse_topk", "0", "keep the k largest logits per query (the paper uses 8); 0 = dense"},
      {"attn_entmax", "0", "alpha-entmax normaliser: 1.5 (entmax15), 2 (sparsemax) or any alpha > 1; 0 = softmax"},
      {"attn_adaptive_span", "0", "adaptive span: the longest span S of the learned soft mask; 0 = off"},
      {"attn_span_ramp", "8", "adaptive span: ramp length R of the soft mask"},
      {"attn_span_init", "0.5", "adaptive span: initial z / S per head, in [0, 1]"},
      {"attn_span_penalty", "2e-6", "adaptive span: coefficient of the L1 penalty on the spans (aux loss)"},
      {"attn_gate_values", "false", "gate each head's output with sigmoid(x W_g + b_g), W_g = 0, b_g = 1 at init"},
      {"attn_on_attn", "false", "attention on attention: GLU over the attended values replaces the output projection"},
      {"attn_dropout", "0.0", "dropout on the attention probabilities while training (composite path)"},
  };
}

std::vector<ConfigKey> attention_config_keys(const std::vector<std::string>& names) {
  std::vector<ConfigKey> out;
  for (auto& k : attention_config_keys())
    for (auto& n : names)
      if (k.key == n) out.push_back(k);
  TZ_CHECK(out.size() == names.size(), "attention_config_keys: unknown key among the requested ones");
  return out;
}

AttentionOptions attention_options(const ModelDims& d, const Config& c) {
  AttentionOptions o{.dim = d.dim, .heads = d.heads, .causal = true, .bias = d.bias, .dropout = d.dropout,
                     .out_init_std = 0.02 / std::sqrt(2.0 * double(std::max<int64_t>(d.depth, 1)))};
  o.context = d.context;
  o.dim_head = c.get_int("attn_dim_head", 0);
  o.kv_heads = c.get_int("attn_kv_heads", 0);
  o.attn_dropout = c.get_double("attn_dropout", 0.0);
  o.collab_heads = c.get_bool("attn_collab_heads", false);
  o.collab_compression = c.get_double("attn_collab_compression", 0.5);
  o.qk_norm = c.get_bool("attn_qk_norm", false);
  o.qk_norm_scale = c.get_double("attn_qk_norm_scale", 0.0);
  o.dconv = c.get_bool("attn_dconv", false);
  o.talking_heads = c.get_bool("attn_talking_heads", false);
  o.residual = c.get_bool("attn_residual", false);
  o.sparse_topk = c.get_int("attn_sparse_topk", 0);
  o.entmax = c.get_double("attn_entmax", 0.0);
  o.adaptive_span = c.get_int("attn_adaptive_span", 0);
  o.span_ramp = c.get_double("attn_span_ramp", 8.0);
  o.span_init = c.get_double("attn_span_init", 0.5);
  o.span_penalty = c.get_double("attn_span_penalty", 2e-6);
  o.gate_values = c.get_bool("attn_gate_values", false);
  o.on_attn = c.get_bool("attn_on_attn", false);
  // Sub-options given without their option are mistakes: say which option they need.
  auto needs = [&](const char* key, bool on, const char* option) {
    TZ_CHECK(!c.has(key) || on, c.source(), ": '", key, "' needs '", option, "'");
  };
  needs("attn_collab_compression", o.collab_heads, "attn_collab_heads");
  needs("attn_qk_norm_scale", o.qk_norm, "attn_qk_norm");
  needs("attn_span_ramp", o.adaptive_span > 0, "attn_adaptive_span");
  needs("attn_span_init", o.adaptive_span > 0, "attn_adaptive_span");
  needs("attn_span_penalty", o.adaptive_span > 0, "attn_adaptive_span");
  return o;
}

// ---- the module --------------------------------------------------------------------------

Attention::Attention(const AttentionOptions& o, Generator& gen) : options(o) {
  const int64_t H = o.heads;
  TZ_CHECK(o.dim > 0 && H > 0 && (o.dim_head > 0 || o.dim % H == 0), "Attention: heads (", H,
           ") must divide dim (", o.dim, ")");
  TZ_CHECK(o.dropout >= 0 && o.dropout < 1, "Attention: dropout must be in [0, 1), got ", o.dropout);
  TZ_CHECK(o.attn_dropout >= 0 && o.attn_dropout < 1, "Attention: attn_dropout must be in [0, 1), got ", o.attn_dropout);
  TZ_CHECK(o.dim_head >= 0, "Attention: attn_dim_head must be >= 0, got ", o.dim_head);
  TZ_CHECK(o.kv_heads >= 0 && o.kv_heads <= H && (o.kv_heads == 0 || H % o.kv_heads == 0),
           "Attention: attn_kv_heads (", o.kv_heads, ") must divide heads (", H, ")");
  TZ_CHECK(o.sparse_topk >= 0, "Attention: attn_sparse_topk must be >= 0, got ", o.sparse_topk);
  TZ_CHECK(o.entmax == 0 || (o.entmax > 1 && std::isfinite(o.entmax)), "Attention: attn_entmax must be 0 (softmax) "
           "or an alpha > 1 (1.5 = entmax15, 2 = sparsemax), got ", o.entmax);
  TZ_CHECK(o.adaptive_span >= 0, "Attention: attn_adaptive_span must be >= 0, got ", o.adaptive_span);
  TZ_CHECK(o.span_ramp > 0, "Attention: attn_span_ramp must be > 0, got ", o.span_ramp);
  TZ_CHECK(o.span_init >= 0 && o.span_init <= 1, "Attention: attn_span_init must be in [0, 1], got ", o.span_init);
  TZ_CHECK(o.span_penalty >= 0, "Attention: attn_span_penalty must be >= 0, got ", o.span_penalty);
  TZ_CHECK(o.qk_norm_scale >= 0, "Attention: attn_qk_norm_scale must be >= 0 (0 = learned), got ", o.qk_norm_scale);
  TZ_CHECK(o.collab_compression > 0, "Attention: attn_collab_compression must be > 0, got ", o.collab_compression);
  // Conflicting combinations, named.
  TZ_CHECK(!(o.entmax > 0 && o.sparse_topk > 0), "Attention: attn_entmax and attn_sparse_topk conflict (both "
           "replace the softmax normaliser; choose one)");
  TZ_CHECK(!(o.entmax > 0 && o.adaptive_span > 0), "Attention: attn_entmax and attn_adaptive_span conflict (the "
           "span mask reweights softmax's exponentials)");
  TZ_CHECK(!(o.collab_heads && o.kv_heads > 0 && o.kv_heads != H), "Attention: attn_collab_heads and attn_kv_heads "
           "conflict (collaborative heads already share one key projection)");
  TZ_CHECK(!(o.collab_heads && o.qk_norm), "Attention: attn_collab_heads and attn_qk_norm conflict (the per-head "
           "mixing vectors rescale the shared queries)");

  head_dim = o.dim_head > 0 ? o.dim_head : o.dim / H;
  const int64_t D = head_dim, G = o.kv_heads > 0 ? o.kv_heads : H;
  if (o.collab_heads) {
    const int64_t Dk = std::llround(o.collab_compression * double(H * D));
    TZ_CHECK(Dk >= H, "Attention: attn_collab_compression ", o.collab_compression, " gives a shared width ", Dk,
             " < heads ", H);
    q_width = k_width = Dk;
    v_width = H * D;
  } else {
    q_width = H * D;
    k_width = v_width = G * D;
  }
  qkv = register_module("qkv", std::make_shared<Linear>(
                                   LinearOptions{.in = o.dim, .out = q_width + k_width + v_width, .bias = o.bias}, gen));
  out = register_module("out", std::make_shared<Linear>(
                                   LinearOptions{.in = H * D, .out = o.on_attn ? 2 * o.dim : o.dim, .bias = o.bias,
                                                 .init_std = o.out_init_std}, gen));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout));
  if (o.gate_values) {  // W_g = 0, b_g = 1: every gate starts at sigmoid(1)
    gate = register_module("gate", std::make_shared<Linear>(
                                       LinearOptions{.in = o.dim, .out = H * D, .bias = true, .init_std = 0.0}, gen));
    core::fill_(gate->bias, 1.0);
  }
  if (o.collab_heads) {  // m_h = one-hot on its block of D_k / H columns (= plain heads when D_k = H D)
    const int64_t Dk = q_width;
    Tensor m = zeros({H, Dk});
    for (int64_t j = 0; j < Dk; ++j) m.set({j * H / Dk, j}, 1.0);
    collab_mix = register_parameter("collab_mix", m);
  }
  if (o.qk_norm && o.qk_norm_scale == 0)
    qk_scale = register_parameter("qk_scale", full({1}, qk_norm_init_scale(o.context)));
  if (o.dconv) {  // identity kernel [0, 0, 1]: starts as plain attention
    Tensor w = zeros({q_width + k_width + v_width, 3});
    core::fill_(w.narrow(1, 2, 1), 1.0);
    dconv_weight = register_parameter("dconv", w);
  }
  if (o.talking_heads) {
    pre_mix = register_parameter("pre_mix", eye(H));
    post_mix = register_parameter("post_mix", eye(H));
  }
  if (o.adaptive_span > 0) span = register_parameter("span", full({H}, o.span_init));
}

bool Attention::composite() const {
  // Dropout on the probabilities needs them stored: the fused kernel never forms them.
  return options.talking_heads || options.residual || options.sparse_topk > 0 || options.entmax > 0 ||
         options.adaptive_span > 0 || (options.attn_dropout > 0 && is_training());
}

// The composite reference: matmul, scale, (+ bias), causal masked_fill, softmax, matmul. It
// stores the [B, H, T, S] scores and probabilities; used with a score bias, and by tests.
Tensor scaled_dot_product_attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                        int64_t q_offset, const Tensor& score_bias, double scale) {
  TZ_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: expected q, k, v of rank 4 "
           "[B, H, T, D], got ", q.shape(), ", ", k.shape(), ", ", v.shape());
  TZ_CHECK(k.size(2) == v.size(2) && k.size(0) == v.size(0) && k.size(1) == v.size(1) && q.size(-1) == k.size(-1) &&
               q.size(0) == k.size(0) && q.size(1) == k.size(1),
           "attention: shape mismatch, q ", q.shape(), " k ", k.shape(), " v ", v.shape());
  const int64_t T = q.size(2), S = k.size(2), D = q.size(3);
  Tensor scores = matmul(q, k.transpose(-1, -2)) * (scale != 0 ? scale : 1.0 / std::sqrt(double(D)));  // [B, H, T, S]
  if (score_bias.defined()) scores = scores + score_bias;
  if (causal) {
    // Key j is hidden from query i when j > q_offset + i: an upper-triangular mask.
    Tensor mask = triu(ones({T, S}, DType::i64), q_offset + 1);
    scores = masked_fill(scores, mask, -std::numeric_limits<double>::infinity());
  }
  return matmul(softmax(scores), v);
}

// Without a score bias: the fused, tiled kernel (autograd/ops_attention.cpp), which never
// stores the T x S probabilities and returns a view of [B, T, H, D] memory (so merging the
// heads afterwards is free).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    int64_t q_offset, const Tensor& score_bias, double scale) {
  if (score_bias.defined() || (causal && q_offset < 0))
    return scaled_dot_product_attention_ref(q, k, v, causal, q_offset, score_bias, scale);
  TZ_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: expected q, k, v of rank 4 "
           "[B, H, T, D], got ", q.shape(), ", ", k.shape(), ", ", v.shape());
  return tz::attention(q, k, v, causal, q_offset, scale);
}

void Attention::project(const Tensor& x, Tensor& q, Tensor& k, Tensor& v, int64_t start, const MixerContext& ctx,
                        Tensor* conv_state) const {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, "Attention: expected x [B, T, ", options.dim,
           "], got ", x.shape());
  const int64_t B = x.size(0), T = x.size(1), H = options.heads, D = head_dim;
  const int64_t G = options.kv_heads > 0 ? options.kv_heads : H;
  Tensor p = ctx.pos ? ctx.pos->qk_input(start, T, x.dtype()) : Tensor();
  if (!options.collab_heads && !options.dconv && G == H) {
    // Plain layout: [q | k | v] each [H, D]; views, no copies.
    Tensor qkv_out = qkv->forward(x).view({B, T, 3, H, D});
    q = qkv_out.select(2, 0).permute({0, 2, 1, 3});  // [B, H, T, D]
    k = qkv_out.select(2, 1).permute({0, 2, 1, 3});
    v = qkv_out.select(2, 2).permute({0, 2, 1, 3});
    if (p.defined()) {  // queries and keys see x + p, values see x alone
      Tensor qk = qkv->forward(x + p).view({B, T, 3, H, D});
      q = qk.select(2, 0).permute({0, 2, 1, 3});
      k = qk.select(2, 1).permute({0, 2, 1, 3});
    }
    return;
  }
  Tensor full = qkv->forward(x);  // [B, T, C_qkv]
  if (p.defined()) {
    Tensor qk = qkv->forward(x + p);
    full = cat({qk.narrow(-1, 0, q_width + k_width), full.narrow(-1, q_width + k_width, v_width)}, -1);
  }
  if (options.dconv) {
    // Primer: y_t = w_0 x_{t-2} + w_1 x_{t-1} + w_2 x_t per channel (zero before the start).
    if (conv_state) {  // continue from the last two inputs of the cache
      Tensor seq = cat({*conv_state, full}, 1);
      *conv_state = seq.narrow(1, T, 2).contiguous();
      full = conv1d_causal(seq, dconv_weight).narrow(1, 2, T);
    } else {
      full = conv1d_causal(full, dconv_weight);
    }
  }
  auto heads = [&](int64_t offset, int64_t width, int64_t n) {
    return full.narrow(-1, offset, width).reshape({B, T, n, width / n}).permute({0, 2, 1, 3});
  };
  if (options.collab_heads) {  // shared q, k [B, 1, T, D_k]; per-head values
    q = heads(0, q_width, 1);
    k = heads(q_width, k_width, 1);
    v = heads(q_width + k_width, v_width, H);
  } else {
    q = heads(0, q_width, H);
    k = heads(q_width, k_width, G);
    v = heads(q_width + k_width, v_width, G);
  }
}

// qk_norm, then the position scheme's rotation (a rotation keeps the norms).
static void prepare_qk(const Attention& a, Tensor& q, Tensor& k, int64_t start, const MixerContext& ctx) {
  if (a.options.qk_norm) {
    q = l2_normalize(q);
    k = l2_normalize(k);
  }
  if (ctx.pos && ctx.pos->rotates()) {
    TZ_CHECK(!a.options.collab_heads, "Attention: attn_collab_heads cannot be combined with a rotary position "
             "scheme (the per-head mixing vectors do not commute with the rotation)");
    ctx.pos->rotate(q, k, start, start);
  }
}

Tensor Attention::attend(Tensor q, Tensor k, Tensor v, int64_t q_start, int64_t k_start, int64_t mask_offset,
                         const MixerContext& ctx, Tensor* probs) {
  const int64_t H = options.heads, B = q.size(0), T = q.size(2), S = k.size(2);
  double scale = 0;  // 0 = 1 / sqrt(D)
  if (options.collab_heads) {
    // head h: (q * m_h) . k — the mixing vector selects/weights the shared dimensions.
    const int64_t Dk = q_width;
    q = q * collab_mix.view({1, H, 1, Dk});
    k = k.expand({B, H, S, Dk}).contiguous();
    scale = 1.0 / std::sqrt(double(head_dim));
  } else if (k.size(1) != H) {
    // GQA/MQA: query head i reads key/value group floor(i G / H).
    const int64_t G = k.size(1);
    std::vector<int64_t> group(static_cast<size_t>(H));
    for (int64_t i = 0; i < H; ++i) group[i] = i * G / H;
    Tensor idx = from_vector(group);
    k = index_select(k, 1, idx);
    v = index_select(v, 1, idx);
  }
  Tensor bias = position_bias(q, k, q_start, k_start, mask_offset, ctx);
  if (options.qk_norm) {
    if (options.qk_norm_scale > 0 && !grad_enabled() && !composite() && !bias.defined() && !probs)
      return cosine_attention_fixed_scale(q, k, v, options.qk_norm_scale, options.causal, mask_offset);
    q = options.qk_norm_scale > 0 ? q * options.qk_norm_scale : q * qk_scale;  // fold g into q
    scale = 1.0;
  }
  if (!composite() && !probs) {
    if (q.size(3) != v.size(3))  // collab heads: q/k width D_k != value size D (the fused op needs one D)
      return scaled_dot_product_attention_ref(q, k, v, options.causal, mask_offset, bias, scale);
    return scaled_dot_product_attention(q, k, v, options.causal, mask_offset, bias, scale);
  }

  // The composite path: scores -> transforms -> mask -> normaliser -> head mix -> values.
  Tensor scores = matmul(q, k.transpose(-1, -2)) * (scale != 0 ? scale : 1.0 / std::sqrt(double(q.size(3))));
  if (bias.defined()) scores = scores + bias;
  if (options.residual) scores = residual_scores(scores, ctx);    // RealFormer, before the mask
  if (options.talking_heads) scores = mix_heads(pre_mix, scores);  // still unmasked
  if (options.causal)
    scores = masked_fill(scores, triu(ones({T, S}, DType::i64), mask_offset + 1),
                         -std::numeric_limits<double>::infinity());
  Tensor p;
  if (options.entmax > 0) {
    p = entmax(scores, options.entmax);
  } else {
    if (options.sparse_topk > 0) scores = topk_mask(scores, options.sparse_topk);
    p = softmax(scores);
    if (options.adaptive_span > 0)
      p = adaptive_span_weights(p, clamp(span, 0.0, 1.0) * double(options.adaptive_span), options.span_ramp,
                                mask_offset);
  }
  if (options.talking_heads) p = mix_heads(post_mix, p);  // masked weights are 0 in every head
  if (options.attn_dropout > 0 && is_training()) p = dropout(p, options.attn_dropout, true, default_generator());
  if (probs) *probs = p;
  return matmul(p, v);
}

Tensor Attention::output(const Tensor& y, const Tensor& x) {
  const int64_t B = y.size(0), T = y.size(2);
  Tensor m = y.permute({0, 2, 1, 3}).reshape({B, T, options.heads * head_dim});
  if (gate) m = m * sigmoid(gate->forward(x));  // per head and channel, from x at the same position
  Tensor o = out->forward(m);
  if (options.on_attn) o = o.narrow(-1, 0, options.dim) * sigmoid(o.narrow(-1, options.dim, options.dim));  // GLU
  return drop->forward(o);
}

Tensor Attention::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  if (state) return continue_cache(x, own_state<KVState>(state, ctx), ctx);
  Tensor q, k, v;
  project(x, q, k, v, ctx.start, ctx, nullptr);
  // Keys sit at positions ctx.start.. too; with no cache the masks and biases only need the
  // relative offset, so queries and keys are both numbered from 0 here, and rotations use
  // the absolute start.
  prepare_qk(*this, q, k, ctx.start, ctx);
  Tensor y = attend(q, k, v, ctx.start, ctx.start, 0, ctx, nullptr);
  if (options.adaptive_span > 0 && ctx.aux)  // L1 penalty on the spans z_h
    ctx.aux->add("adaptive_span", sum(clamp(span, 0.0, 1.0)) * (double(options.adaptive_span) * options.span_penalty));
  return output(y, x);
}

Tensor Attention::probabilities(const Tensor& x, const MixerContext& ctx) {
  Tensor q, k, v, p;
  project(x, q, k, v, ctx.start, ctx, nullptr);
  prepare_qk(*this, q, k, ctx.start, ctx);
  attend(q, k, v, ctx.start, ctx.start, 0, ctx, &p);
  return p;
}

Tensor Attention::position_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                                int64_t mask_offset, const MixerContext& ctx) const {
  if (!ctx.pos) return Tensor();
  const int64_t H = options.heads, T = q.size(2), S = k.size(2);
  Tensor bias;
  // Static biases depend only on relative distance: queries numbered from mask_offset.
  if (ctx.pos->biases_scores()) bias = ctx.pos->score_bias(H, mask_offset, T, S, q.dtype(), &ctx).unsqueeze(0);
  if (ctx.pos->biases_with_queries()) {
    Tensor qb = ctx.pos->query_score_bias(q, k, q_start, k_start, &ctx);
    bias = bias.defined() ? bias + qb : qb;
  }
  return bias;
}

std::unique_ptr<MixerState> Attention::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  const int64_t H = options.heads, D = head_dim, G = options.kv_heads > 0 ? options.kv_heads : H;
  auto s = std::make_unique<KVState>();
  if (options.collab_heads) {
    s->k = zeros({batch, 1, capacity, q_width}, dtype);
    s->v = zeros({batch, H, capacity, D}, dtype);
  } else {
    s->k = zeros({batch, G, capacity, D}, dtype);
    s->v = zeros({batch, G, capacity, D}, dtype);
  }
  if (options.dconv) s->conv = zeros({batch, 2, q_width + k_width + v_width}, dtype);
  return s;
}

Tensor Attention::continue_cache(const Tensor& x, KVState& kv, const MixerContext& ctx) {
  TZ_CHECK(!grad_enabled() || !x.requires_grad(), "Attention: the KV cache is for decoding; run it "
           "under NoGradGuard");
  const int64_t T = x.size(1), start = kv.length;
  TZ_CHECK(x.size(0) == kv.k.size(0), "Attention: state made for batch ", kv.k.size(0), ", input has batch ",
           x.size(0));
  TZ_CHECK(start + T <= kv.k.size(2), "Attention: KV cache full (", start, " + ", T, " > capacity ",
           kv.k.size(2), ")");
  Tensor q, k, v;
  project(x, q, k, v, start, ctx, options.dconv ? &kv.conv : nullptr);
  // Normalise and rotate the new keys at their absolute positions before caching them.
  prepare_qk(*this, q, k, start, ctx);
  core::copy_(kv.k.narrow(2, start, T), k);
  core::copy_(kv.v.narrow(2, start, T), v);
  kv.length += T;
  Tensor keys = kv.k.narrow(2, 0, kv.length), values = kv.v.narrow(2, 0, kv.length);
  Tensor y = attend(q, keys, values, start, 0, start, ctx, nullptr);
  return output(y, x);
}

std::string Attention::describe() const {
  std::string opts;
  const AttentionOptions& o = options;
  if (o.dim_head > 0) opts += cat_str(", dim_head=", o.dim_head);
  if (o.kv_heads > 0) opts += cat_str(", kv_heads=", o.kv_heads);
  if (o.collab_heads) opts += cat_str(", collab_heads(", q_width, ")");
  if (o.qk_norm) opts += o.qk_norm_scale > 0 ? cat_str(", qk_norm(g=", o.qk_norm_scale, ")") : ", qk_norm";
  if (o.dconv) opts += ", dconv";
  if (o.talking_heads) opts += ", talking_heads";
  if (o.residual) opts += ", residual";
  if (o.sparse_topk > 0) opts += cat_str(", topk=", o.sparse_topk);
  if (o.entmax > 0) opts += cat_str(", entmax=", o.entmax);
  if (o.adaptive_span > 0) opts += cat_str(", span=", o.adaptive_span);
  if (o.gate_values) opts += ", gate_values";
  if (o.on_attn) opts += ", on_attn";
  return cat_str("Attention(dim=", o.dim, ", heads=", o.heads, o.causal ? ", causal" : "", opts, ")");
}

void gqa_from_mha(const Attention& mha, Attention& gqa) {
  const AttentionOptions &a = mha.options, &b = gqa.options;
  const int64_t H = a.heads, D = mha.head_dim, G = b.kv_heads > 0 ? b.kv_heads : b.heads;
  TZ_CHECK(a.dim == b.dim && a.heads == b.heads && mha.head_dim == gqa.head_dim && a.bias == b.bias &&
               (a.kv_heads == 0 || a.kv_heads == H) && !a.collab_heads && !b.collab_heads,
           "gqa_from_mha: expected an MHA layer and a GQA layer of the same dim, heads and head size, got ",
           mha.describe(), " and ", gqa.describe());
  NoGradGuard no_grad;
  const int64_t r = H / G;  // heads per group
  auto pool = [&](const Tensor& src, const Tensor& dst) {  // rows [q | k | v] of a weight or bias
    core::copy_(dst.narrow(0, 0, H * D), src.narrow(0, 0, H * D));
    for (int64_t part = 0; part < 2; ++part)  // keys, then values
      for (int64_t g = 0; g < G; ++g) {
        Tensor block = src.narrow(0, (1 + part) * H * D + g * r * D, r * D);
        Shape shape = block.shape();
        shape[0] = D;
        shape.insert(shape.begin(), r);
        core::copy_(dst.narrow(0, H * D + part * G * D + g * D, D), mean(block.reshape(shape), {0}));
      }
  };
  pool(mha.qkv->weight, gqa.qkv->weight);
  if (a.bias) pool(mha.qkv->bias, gqa.qkv->bias);
  core::copy_(gqa.out->weight, mha.out->weight);
  if (a.bias) core::copy_(gqa.out->bias, mha.out->bias);
}

}  // namespace tz::nn

namespace tz::zoo {

namespace {
nn::VariantInfo option(const std::string& id, const std::string& paper, const std::string& summary,
                       const std::vector<std::string>& keys, const std::string& test_config) {
  return {.id = id,
          .paper = paper,
          .summary = summary,
          .keys = nn::attention_config_keys(keys),
          .test_config = test_config,
          .example = test_config};
}
}  // namespace

void register_vanilla_mha(nn::Registry& r) {
  r.add({.id = "vanilla_mha",
         .summary = "Multi-head scaled dot-product attention, causal, with a KV cache for decoding",
         .keys = nn::attention_config_keys(),
         .test_config = R"({"mixer": "vanilla_mha"})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "vanilla_mha"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::Attention>(nn::attention_options(d, c), gen);
         }});
}

void register_head_dim_decoupled(nn::Registry& r) {
  r.add(option("head_dim_decoupled", "arXiv:2002.07028",
               "Per-head size D set apart from dim / heads: W_q, W_k, W_v: C -> H D, W_o: H D -> C",
               {"attn_dim_head"}, R"({"attn_dim_head": 12})"));
}

void register_mqa(nn::Registry& r) {
  r.add(option("mqa", "arXiv:1911.02150",
               "Multi-query attention: all query heads share one key/value head (GQA with G = 1); 1/H the KV cache",
               {"attn_kv_heads"}, R"({"attn_kv_heads": 1})"));
}

void register_gqa(nn::Registry& r) {
  r.add(option("gqa", "arXiv:2305.13245 (EMNLP 2023)",
               "Grouped-query attention: G key/value heads, query head i reads group floor(i G / H); MHA -> GQA by "
               "mean-pooling (nn::gqa_from_mha)",
               {"attn_kv_heads"}, R"({"heads": 4, "attn_kv_heads": 2})"));
}

void register_collab_heads(nn::Registry& r) {
  r.add(option("collab_heads", "arXiv:2006.16362",
               "Collaborative heads: shared W_q, W_k of width compression * H D; head h scores (q * m_h) . k",
               {"attn_collab_heads", "attn_collab_compression"},
               R"({"attn_collab_heads": true, "attn_collab_compression": 0.5})"));
}

void register_gate_values(nn::Registry& r) {
  r.add(option("gate_values", "Nature 2021 (AlphaFold2)",
               "Gated attention: o_h = sigmoid(x W_g + b_g) * (A_h V_h) before W_o; W_g = 0, b_g = 1 at init",
               {"attn_gate_values"}, R"({"attn_gate_values": true})"));
}

void register_attn_on_attn(nn::Registry& r) {
  r.add(option("attn_on_attn", "arXiv:1908.06954",
               "Attention on attention (x-transformers form): out = GLU(v_hat W), W: H D -> 2 C, replaces W_o",
               {"attn_on_attn"}, R"({"attn_on_attn": true})"));
}

void register_primer_mdha(nn::Registry& r) {
  r.add(option("primer_mdha", "arXiv:2109.08668",
               "Primer multi-dconv-head attention: causal depthwise conv (width 3) over time on q, k, v per channel",
               {"attn_dconv"}, R"({"attn_dconv": true})"));
}

}  // namespace tz::zoo
