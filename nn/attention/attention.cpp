// The attention pipeline (attention.h): projections, the stages the features hook, the core
// (sdpa.h), output. No option is named here: each stage walks the layer's features.
#include "nn/attention/attention.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"

namespace tz::nn {

AttentionOptions attention_options(const ModelDims& d, const Config& c) {
  AttentionOptions o{.dim = d.dim,
                     .heads = d.heads,
                     .causal = d.causal && d.context_dim == 0,  // cross-attention sees the whole context
                     .bias = d.bias,
                     .dropout = d.dropout,
                     .out_init_std = 0.02 / std::sqrt(2.0 * double(std::max<int64_t>(d.depth, 1))),
                     .context = d.context,
                     .context_dim = d.context_dim};
  o.features = make_features(o, c);
  return o;
}

// The composite path's hooks: each walks the features of its stage.
class Attention::Stages : public ScoreStages {
 public:
  Stages(const Attention& a, const AttentionCall& c) : a_(a), c_(c) {}
  bool needed() const {
    for (const auto& f : a_.options.features)
      if (f->needs_scores(c_)) return true;
    return false;
  }
  Tensor scores(const Tensor& s) const override {
    Tensor t = s;
    for (const auto& f : a_.options.features) t = f->scores(a_, t, c_);
    return t;
  }
  Tensor normalise(const Tensor& s) const override {
    return a_.normaliser_ ? a_.normaliser_->normalise(a_, s, c_) : ScoreStages::normalise(s);
  }
  Tensor probs(const Tensor& p) const override {
    Tensor t = p;
    for (const auto& f : a_.options.features) t = f->probs(a_, t, c_);
    return t;
  }

 private:
  const Attention& a_;
  const AttentionCall& c_;
};

Attention::Attention(const AttentionOptions& o, Generator& gen) : options(o) {
  const int64_t H = o.heads;
  TZ_CHECK(o.dim > 0 && H > 0, "Attention: dim and heads must be positive, got dim ", o.dim, ", heads ", H);
  TZ_CHECK(o.dropout >= 0 && o.dropout < 1, "Attention: dropout must be in [0, 1), got ", o.dropout);
  TZ_CHECK(o.context_dim >= 0, "Attention: context_dim must be >= 0, got ", o.context_dim);
  check_conflicts(o.features);
  const int64_t D = o.dim % H == 0 ? o.dim / H : 0;
  layout = {.H = H, .G = H, .D = D, .q_heads = H, .k_heads = H, .Dk = D, .out_width = o.dim};
  for (const auto& f : o.features) f->layout(layout);
  TZ_CHECK(layout.D > 0, "Attention: heads (", H, ") must divide dim (", o.dim, ")");
  const AttentionLayout& L = layout;
  if (cross()) {
    q = register_module("q",
                        std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = L.q_width(), .bias = o.bias}, gen));
    kv = register_module(
        "kv", std::make_shared<Linear>(
                  LinearOptions{.in = o.context_dim, .out = L.k_width() + L.v_width(), .bias = o.bias}, gen));
  } else {
    qkv = register_module(
        "qkv", std::make_shared<Linear>(
                   LinearOptions{.in = o.dim, .out = L.q_width() + L.k_width() + L.v_width(), .bias = o.bias}, gen));
  }
  out = register_module(
      "out", std::make_shared<Linear>(
                 LinearOptions{.in = H * L.D, .out = L.out_width, .bias = o.bias, .init_std = o.out_init_std}, gen));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout));
  split_views_ = !cross() && L.plain();
  takes_memory_ = !cross();
  for (const auto& f : o.features) {
    f->build(*this, gen);
    for (const Hook& h : f->hooks()) {
      if (h.stage == Stage::projections) split_views_ = takes_memory_ = false;
      if (h.stage == Stage::normaliser && h.replaces) normaliser_ = f.get();
      if (h.stage == Stage::cache && h.replaces) cache_policy_ = f.get();
    }
  }
}

Tensor Attention::add_parameter(const std::string& name, Tensor t) {
  return params_[name] = register_parameter(name, std::move(t));
}

std::shared_ptr<Linear> Attention::add_linear(const std::string& name, const LinearOptions& o, Generator& gen) {
  return linears_[name] = register_module(name, std::make_shared<Linear>(o, gen));
}

Tensor Attention::param(const std::string& name) const {
  auto it = params_.find(name);
  if (it != params_.end()) return it->second;
  std::string have;
  for (auto& [n, t] : params_) have += " " + n;
  throw Error(cat_str(describe(), ": no feature parameter '", name, "' (has:", have.empty() ? " none" : have, ")"));
}

std::shared_ptr<Linear> Attention::linear(const std::string& name) const {
  auto it = linears_.find(name);
  TZ_CHECK(it != linears_.end(), describe(), ": no feature layer '", name, "'");
  return it->second;
}

void Attention::project(const AttentionCall& c, int64_t M, Tensor& q_out, Tensor& k_out, Tensor& v_out) const {
  const Tensor& x = c.x;
  const MixerContext& ctx = c.ctx;
  const AttentionLayout& L = layout;
  const int64_t B = x.size(0), T = x.size(1), H = L.H, D = L.D;
  // Columns [offset, offset + width) of p [B, N, *] as n heads [B, n, N, width / n].
  auto heads = [B](const Tensor& p, int64_t offset, int64_t width, int64_t n) {
    return p.narrow(-1, offset, width).reshape({B, p.size(1), n, width / n}).permute({0, 2, 1, 3});
  };
  if (cross()) {  // queries from x; keys and values from the context (once per cache)
    TZ_CHECK(ctx.context, describe(), ": cross-attention needs ctx.context [B, S, ", options.context_dim, "]");
    const Tensor& e = *ctx.context;
    TZ_CHECK(e.dim() == 3 && e.size(0) == B && e.size(2) == options.context_dim, describe(), ": expected x [B, T, ",
             options.dim, "] and context [B, S, ", options.context_dim, "], got ", x.shape(), " and ", e.shape());
    q_out = heads(q->forward(x), 0, L.q_width(), L.q_heads);
    if (!c.state || c.state->keys == 0) {
      Tensor p = kv->forward(e);
      k_out = heads(p, 0, L.k_width(), L.k_heads);
      v_out = heads(p, L.k_width(), L.v_width(), L.G);
    }
  } else {
    Tensor p = ctx.pos ? ctx.pos->qk_input(ctx.start, T, x.dtype()) : Tensor();
    if (split_views_) {
      // Plain layout: [q | k | v] each [H, D]; views, no copies.
      Tensor qkv_out = qkv->forward(x).view({B, T, 3, H, D});
      q_out = qkv_out.select(2, 0).permute({0, 2, 1, 3});  // [B, H, T, D]
      k_out = qkv_out.select(2, 1).permute({0, 2, 1, 3});
      v_out = qkv_out.select(2, 2).permute({0, 2, 1, 3});
      if (p.defined()) {  // queries and keys see x + p, values see x alone
        Tensor qk = qkv->forward(x + p).view({B, T, 3, H, D});
        q_out = qk.select(2, 0).permute({0, 2, 1, 3});
        k_out = qk.select(2, 1).permute({0, 2, 1, 3});
      }
    } else {
      const int64_t qw = L.q_width(), kw = L.k_width(), vw = L.v_width();
      Tensor full = qkv->forward(x);  // [B, T, C_qkv]
      if (p.defined()) {
        Tensor qk = qkv->forward(x + p);
        full = cat({qk.narrow(-1, 0, qw + kw), full.narrow(-1, qw + kw, vw)}, -1);
      }
      for (const auto& f : options.features) full = f->projections(*this, full, c);
      q_out = heads(full, 0, qw, L.q_heads);
      k_out = heads(full, qw, kw, L.k_heads);
      v_out = heads(full, qw + kw, vw, L.G);
    }
    if (M > 0) {  // the memory's keys and values, before x's: the k | v rows of W_qkv (no queries)
      const int64_t qw = L.q_width(), kw = L.k_width(), vw = L.v_width();
      const Tensor& w = qkv->f32_weight("attention over segment memory");
      Tensor p = tz::linear(ctx.memory.to(x.dtype()), w.narrow(0, qw, kw + vw),
                            qkv->bias.defined() ? qkv->bias.narrow(0, qw, kw + vw) : Tensor());
      k_out = cat({heads(p, 0, kw, L.k_heads), k_out}, 2);
      v_out = cat({heads(p, kw, vw, L.G), v_out}, 2);
    }
  }
  for (const auto& f : options.features) {
    q_out = f->qk(*this, q_out);
    if (k_out.defined()) k_out = f->qk(*this, k_out);
  }
  // Rotations after the qk stage (a rotation keeps norms); keys are rotated before caching.
  if (!cross() && ctx.pos && ctx.pos->rotates()) ctx.pos->rotate(q_out, k_out, ctx.start, ctx.start - M);
}

void Attention::cache(const AttentionCall& c, Tensor& k, Tensor& v) const {
  KVState& s = *c.state;
  TZ_CHECK(!grad_enabled() || !c.x.requires_grad(),
           "Attention: the KV cache is for decoding; run it under "
           "NoGradGuard");
  if (cross()) {  // the context's keys and values, computed at the first call
    if (s.keys == 0) {
      s.k = k.contiguous();
      s.v = v.contiguous();
      s.keys = k.size(2);
    }
    TZ_CHECK(s.k.size(0) == c.x.size(0), "Attention: state made for batch ", s.k.size(0), ", input has batch ",
             c.x.size(0));
    k = s.k;
    v = s.v;
    return;
  }
  if (cache_policy_) return cache_policy_->cache(*this, s, k, v, c);  // e.g. a bounded cache
  if (c.ctx.memory.defined()) {  // a new segment: its memory's keys replace the cached ones
    s.keys = 0;
    s.key_start = c.ctx.start - c.ctx.memory.size(1);
  }
  const int64_t T = k.size(2), start = s.keys;
  TZ_CHECK(c.x.size(0) == s.k.size(0), "Attention: state made for batch ", s.k.size(0), ", input has batch ",
           c.x.size(0));
  TZ_CHECK(start + T <= s.k.size(2), "Attention: KV cache full (", start, " + ", T, " > capacity ", s.k.size(2), ")");
  core::copy_(s.k.narrow(2, start, T), k);
  core::copy_(s.v.narrow(2, start, T), v);
  s.keys += T;
  k = s.k.narrow(2, 0, s.keys);
  v = s.v.narrow(2, 0, s.keys);
}

int64_t Attention::lead(const AttentionCall& c, Tensor& k, Tensor& v) const {
  const AttentionLayout& L = layout;
  const int64_t B = c.x.size(0);
  std::vector<Tensor> ks, vs;
  int64_t n = 0;
  for (const auto& f : options.features) {
    AttentionFeature::LeadKeys m = f->lead_keys(*this, c);
    if (!m.k.defined()) continue;
    const int64_t N = m.k.size(1);
    TZ_CHECK((m.k.shape() == Shape{L.k_heads, N, L.Dk} && m.v.shape() == Shape{L.G, N, L.D}), describe(), ": '",
             f->key(), "' leading keys must be k [", L.k_heads, ", N, ", L.Dk, "] and v [", L.G, ", N, ", L.D,
             "], got ", m.k.shape(), " and ", m.v.shape());
    Tensor mk = m.k.unsqueeze(0);  // keys: the same qk stage as the call's keys, no rotation
    for (const auto& g : options.features) mk = g->qk(*this, mk);
    ks.push_back(mk.expand({B, -1, -1, -1}));
    vs.push_back(m.v.unsqueeze(0).expand({B, -1, -1, -1}));
    n += N;
  }
  if (n == 0) return 0;
  ks.push_back(k);
  vs.push_back(v);
  k = cat(ks, 2);
  v = cat(vs, 2);
  return n;
}

SdpaSpec Attention::spec(const AttentionCall& c, Tensor& q, const Tensor& k, int64_t lead) const {
  const MixerContext& ctx = c.ctx;
  const int64_t T = q.size(2), S = k.size(2) - lead;  // S keys of the sequence (or the context)
  SdpaSpec s{.scale = layout.scale, .causal = options.causal, .q_offset = c.q_offset + lead};
  // A key mask over the S keys, with the leading keys visible: `fill` in front of its columns.
  auto masks_lead = [&](const Tensor& m, double fill) {
    return !m.defined() || lead == 0 ? m : cat({full({m.size(0), lead}, fill, m.dtype()), m}, 1);
  };
  if (cross()) {  // context positions: no position scheme applies
    s.key_padding = masks_lead(key_columns(ctx.context_padding, 0, S, "context_padding"), 1);
    return s;
  }
  const int64_t M = ctx.memory.defined() ? ctx.memory.size(1) : 0;
  const int64_t k_start = c.state ? c.state->key_start : ctx.start - M;  // position of key column 0
  if (M > 0 && ctx.memory_valid.defined()) {
    const Tensor& valid = ctx.memory_valid;
    TZ_CHECK((valid.shape() == Shape{q.size(0), M}), describe(), ": memory_valid must be [", q.size(0), ", ", M,
             "], got ", valid.shape());
    s.key_padding = masks_lead(cat({valid.to(DType::i64), ones({q.size(0), T}, DType::i64)}, 1), 1);
  } else {
    s.key_padding = masks_lead(key_columns(ctx.key_padding, k_start, S, "key_padding"), 1);
    s.forgotten_keys = masks_lead(key_columns(ctx.forgotten_keys, k_start, S, "forgotten_keys"), 0);
  }
  if (ctx.segment > 0) {
    TZ_CHECK(lead == 0 && !c.state, describe(), ": the staircase mask is for one forward without leading keys");
    s.segment = ctx.segment;
    s.segment_memory = ctx.segment_memory;
  }
  if (!ctx.pos) return s;
  TZ_CHECK(lead == 0 || !(ctx.pos->biases_scores() || ctx.pos->biases_with_queries()), describe(),
           ": leading keys have no position, and the position scheme's score bias would give them one");
  // Relative biases need only q_offset (queries and keys numbered from the first key).
  if (ctx.pos->biases_scores()) s.rel_bias = ctx.pos->score_bias(layout.H, c.q_offset, T, S, q.dtype(), &ctx);
  // Query-dependent terms as score terms of the kernel (no [T, S] tensor, no copy of k per
  // query head); a scheme without that form gives the dense term.
  if (ctx.pos->biases_with_queries() && !ctx.pos->score_terms(q, S, ctx.start, k_start, s, &ctx))
    s.score_bias = ctx.pos->query_score_bias(q, expand_kv_heads(k, layout.H), ctx.start, k_start, &ctx);
  return s;
}

Tensor Attention::run(const AttentionCall& c, Tensor* probs) {
  TZ_CHECK(c.x.dim() == 3 && c.x.size(2) == options.dim, "Attention: expected x [B, T, ", options.dim, "], got ",
           c.x.shape());
  for (const auto& f : options.features) f->check_call(*this, c);
  Tensor q, k, v;
  project(c, memory_rows(c), q, k, v);
  if (c.state) cache(c, k, v);
  const int64_t n = lead(c, k, v);
  for (const auto& f : options.features) f->score_form(*this, q, k);
  SdpaSpec s = spec(c, q, k, n);
  for (const auto& f : options.features) f->sdpa_spec(*this, s, q, k, c);
  Stages stages(*this, c);
  s.materialise = stages.needed();
  // A position scheme's value term reads the weights (Shaw's a^V): the composite path.
  if (cross() || !c.ctx.pos || !c.ctx.pos->biases_values()) return sdpa(q, k, v, s, &stages, probs);
  TZ_CHECK(n == 0, describe(),
           ": leading keys have no position, and the position scheme's value term would give them one");
  Tensor p;
  Tensor y = sdpa(q, k, v, s, &stages, &p);
  if (probs) *probs = p;
  return y + c.ctx.pos->value_term(p, s.q_offset, &c.ctx);
}

int64_t Attention::memory_rows(const AttentionCall& c) const {
  const MixerContext& ctx = c.ctx;
  if (!ctx.memory.defined() && ctx.segment == 0) return 0;
  TZ_CHECK(takes_memory(), describe(), ": takes no segment memory (",
           cross() ? "cross-attention" : "a feature transforms the projections", ")");
  if (!ctx.memory.defined()) return 0;
  const Tensor& m = ctx.memory;
  const int64_t M = m.size(1);
  TZ_CHECK(m.dim() == 3 && m.size(0) == c.x.size(0) && m.size(2) == options.dim, describe(),
           ": expected memory [B, M, ", options.dim, "] for x ", c.x.shape(), ", got ", m.shape());
  TZ_CHECK(M <= ctx.start, describe(), ": a memory of ", M, " positions before position ", ctx.start);
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && ctx.segment == 0, describe(),
           ": segment memory takes no key_padding, forgotten_keys or staircase mask (memory_valid hides memory)");
  TZ_CHECK(!c.state || !ctx.memory_valid.defined(), describe(),
           ": memory_valid is for training; decoding memory is real");
  return M;
}

Tensor Attention::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  KVState* kv = state ? &own_state<KVState>(state, ctx) : nullptr;
  // Query 0 sits after the cached keys, or after the memory, which replaces them.
  const int64_t M = ctx.memory.defined() ? ctx.memory.size(1) : 0;
  const AttentionCall c{x, ctx, kv, (kv && !cross() && !ctx.memory.defined() ? kv->keys : 0) + M, is_training()};
  Tensor y = run(c, nullptr);  // [B, H, T, D]
  if (kv)
    kv->length += x.size(1);
  else
    for (const auto& f : options.features) f->aux_loss(*this, ctx);
  const int64_t B = x.size(0), T = x.size(1);
  Tensor m = y.permute({0, 2, 1, 3}).reshape({B, T, layout.H * layout.D});
  for (const auto& f : options.features) m = f->values(*this, m, c);
  Tensor o = out->forward(m);
  for (const auto& f : options.features) o = f->output(*this, o, c);
  return drop->forward(o);
}

Tensor Attention::probabilities(const Tensor& x, const MixerContext& ctx) {
  Tensor p;
  run({x, ctx, nullptr, ctx.memory.defined() ? ctx.memory.size(1) : 0, is_training()}, &p);
  return p;
}

std::unique_ptr<MixerState> Attention::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  auto s = std::make_unique<KVState>();
  if (!cross()) {
    s->k = zeros({batch, layout.k_heads, capacity, layout.Dk}, dtype);
    s->v = zeros({batch, layout.G, capacity, layout.D}, dtype);
  }
  for (const auto& f : options.features) f->init_state(*this, *s, batch, dtype);
  return s;
}

std::string Attention::describe() const {
  std::string opts;
  for (const auto& f : options.features) opts += f->describe();
  return cat_str("Attention(dim=", options.dim, ", heads=", options.heads,
                 cross() ? cat_str(", cross(context_dim=", options.context_dim, ")") : "",
                 options.causal ? ", causal" : "", opts, ")");
}

void gqa_from_mha(const Attention& mha, Attention& gqa) {
  const AttentionLayout &a = mha.layout, &b = gqa.layout;
  const int64_t H = a.H, D = a.D, G = b.G;
  TZ_CHECK(mha.options.dim == gqa.options.dim && a.H == b.H && a.D == b.D && mha.options.bias == gqa.options.bias &&
               a.plain() && b.q_heads == b.H && b.k_heads == b.G && b.Dk == b.D && !mha.cross() && !gqa.cross(),
           "gqa_from_mha: expected an MHA layer and a GQA layer of the same dim, heads and head size, got ",
           mha.describe(), " and ", gqa.describe());
  NoGradGuard no_grad;
  const int64_t r = H / G;                                 // heads per group
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
  if (mha.options.bias) pool(mha.qkv->bias, gqa.qkv->bias);
  core::copy_(gqa.out->weight, mha.out->weight);
  if (mha.options.bias) core::copy_(gqa.out->bias, mha.out->bias);
}

}  // namespace tz::nn

namespace tz::zoo {

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

}  // namespace tz::zoo
