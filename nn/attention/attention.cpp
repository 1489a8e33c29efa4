#include "nn/attention/attention.h"

#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

Attention::Attention(const AttentionOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0, "Attention: heads (", o.heads,
           ") must divide dim (", o.dim, ")");
  TZ_CHECK(o.dropout >= 0 && o.dropout < 1, "Attention: dropout must be in [0, 1), got ", o.dropout);
  qkv = register_module("qkv", std::make_shared<Linear>(
                                   LinearOptions{.in = o.dim, .out = 3 * o.dim, .bias = o.bias}, gen));
  out = register_module("out", std::make_shared<Linear>(
                                   LinearOptions{.in = o.dim, .out = o.dim, .bias = o.bias,
                                                 .init_std = o.out_init_std}, gen));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout));
}

// The composite reference: matmul, scale, (+ bias), causal masked_fill, softmax, matmul. It
// stores the [B, H, T, S] scores and probabilities; used with a score bias, and by tests.
Tensor scaled_dot_product_attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    int64_t q_offset, const Tensor& score_bias) {
  TZ_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: expected q, k, v of rank 4 "
           "[B, H, T, D], got ", q.shape(), ", ", k.shape(), ", ", v.shape());
  TZ_CHECK(k.shape() == v.shape() && q.size(-1) == k.size(-1) && q.size(0) == k.size(0) &&
               q.size(1) == k.size(1),
           "attention: shape mismatch, q ", q.shape(), " k ", k.shape(), " v ", v.shape());
  const int64_t T = q.size(2), S = k.size(2), D = q.size(3);
  Tensor scores = matmul(q, k.transpose(-1, -2)) * (1.0 / std::sqrt(double(D)));  // [B, H, T, S]
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
                                    int64_t q_offset, const Tensor& score_bias) {
  if (score_bias.defined() || (causal && q_offset < 0))
    return scaled_dot_product_attention_ref(q, k, v, causal, q_offset, score_bias);
  TZ_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: expected q, k, v of rank 4 "
           "[B, H, T, D], got ", q.shape(), ", ", k.shape(), ", ", v.shape());
  return tz::attention(q, k, v, causal, q_offset);
}

void Attention::project(const Tensor& x, Tensor& q, Tensor& k, Tensor& v, int64_t start,
                        const MixerContext& ctx) const {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, "Attention: expected x [B, T, ", options.dim,
           "], got ", x.shape());
  const int64_t B = x.size(0), T = x.size(1), H = options.heads, D = options.dim / H;
  Tensor qkv_out = qkv->forward(x).view({B, T, 3, H, D});
  q = qkv_out.select(2, 0).permute({0, 2, 1, 3});  // [B, H, T, D]
  k = qkv_out.select(2, 1).permute({0, 2, 1, 3});
  v = qkv_out.select(2, 2).permute({0, 2, 1, 3});
  Tensor p = ctx.pos ? ctx.pos->qk_input(start, T, x.dtype()) : Tensor();
  if (p.defined()) {  // queries and keys see x + p, values see x alone
    Tensor qk = qkv->forward(x + p).view({B, T, 3, H, D});
    q = qk.select(2, 0).permute({0, 2, 1, 3});
    k = qk.select(2, 1).permute({0, 2, 1, 3});
  }
}

Tensor Attention::forward(const Tensor& x, const MixerContext& ctx) {
  Tensor q, k, v;
  project(x, q, k, v, ctx.start, ctx);
  // Keys sit at positions ctx.start.. too; with no cache the masks and biases only need the
  // relative offset, so queries and keys are both numbered from 0 here, and rotations use
  // the absolute start.
  if (ctx.pos && ctx.pos->rotates()) ctx.pos->rotate(q, k, ctx.start, ctx.start);
  const int64_t B = x.size(0), T = x.size(1);
  Tensor bias = position_bias(q, k, ctx.start, ctx.start, 0, ctx);
  Tensor y = scaled_dot_product_attention(q, k, v, options.causal, 0, bias);
  return drop->forward(out->forward(y.permute({0, 2, 1, 3}).reshape({B, T, options.dim})));
}

Tensor Attention::position_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                                int64_t mask_offset, const MixerContext& ctx) const {
  if (!ctx.pos) return Tensor();
  const int64_t H = options.heads, T = q.size(2), S = k.size(2);
  Tensor bias;
  // Static biases depend only on relative distance: queries numbered from mask_offset.
  if (ctx.pos->biases_scores()) bias = ctx.pos->score_bias(H, mask_offset, T, S, q.dtype()).unsqueeze(0);
  if (ctx.pos->biases_with_queries()) {
    Tensor qb = ctx.pos->query_score_bias(q, k, q_start, k_start);
    bias = bias.defined() ? bias + qb : qb;
  }
  return bias;
}

std::unique_ptr<MixerState> Attention::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  const int64_t H = options.heads, D = options.dim / options.heads;
  auto s = std::make_unique<KVState>();
  s->k = zeros({batch, H, capacity, D}, dtype);
  s->v = zeros({batch, H, capacity, D}, dtype);
  return s;
}

Tensor Attention::step(const Tensor& x, MixerState& state, const MixerContext& ctx) {
  auto* kv = dynamic_cast<KVState*>(&state);
  TZ_CHECK(kv, "Attention: step() needs the state made by its make_state()");
  TZ_CHECK(!grad_enabled() || !x.requires_grad(), "Attention: the KV cache is for decoding; run it "
           "under NoGradGuard");
  const int64_t T = x.size(1), start = kv->length;
  TZ_CHECK(x.size(0) == kv->k.size(0), "Attention: state made for batch ", kv->k.size(0), ", input has batch ",
           x.size(0));
  TZ_CHECK(start + T <= kv->k.size(2), "Attention: KV cache full (", start, " + ", T, " > capacity ",
           kv->k.size(2), ")");
  Tensor q, k, v;
  project(x, q, k, v, start, ctx);
  // Rotate the new keys at their absolute positions before caching them.
  if (ctx.pos && ctx.pos->rotates()) ctx.pos->rotate(q, k, start, start);
  core::copy_(kv->k.narrow(2, start, T), k);
  core::copy_(kv->v.narrow(2, start, T), v);
  kv->length += T;
  Tensor keys = kv->k.narrow(2, 0, kv->length), values = kv->v.narrow(2, 0, kv->length);
  const int64_t B = x.size(0);
  Tensor bias = position_bias(q, keys, start, 0, start, ctx);
  Tensor y = scaled_dot_product_attention(q, keys, values, options.causal, start, bias);
  return drop->forward(out->forward(y.permute({0, 2, 1, 3}).reshape({B, T, options.dim})));
}

std::string Attention::describe() const {
  return cat_str("Attention(dim=", options.dim, ", heads=", options.heads, options.causal ? ", causal" : "", ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_vanilla_mha(nn::Registry& r) {
  r.add({.id = "vanilla_mha",
         .family = "attention_core",
         .kind = "mixer",
         .paper = "arXiv:1706.03762",
         .summary = "Multi-head scaled dot-product attention, causal, with a KV cache for decoding",
         .source = "nn/attention/attention.cpp",
         .keys = {},
         .test_config = R"({"mixer": "vanilla_mha"})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "vanilla_mha"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config&, Generator& gen) {
           return std::make_shared<nn::Attention>(
               nn::AttentionOptions{.dim = d.dim, .heads = d.heads, .causal = true, .bias = d.bias,
                                    .dropout = d.dropout,
                                    .out_init_std = 0.02 / std::sqrt(2.0 * double(std::max<int64_t>(d.depth, 1)))},
               gen);
         }});
}

}  // namespace tz::zoo
