// Lightning Attention-2: see lightning_attention2.h.
#include "nn/linear_rnn/lightning_attention2.h"

#include <cmath>

#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

LightningAttention::LightningAttention(const LightningAttentionOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0,
           "lightning_attention2: dim must be a positive multiple of heads, got dim ", o.dim, ", heads ", o.heads);
  TZ_CHECK(o.chunk >= 1, "lightning_attention2: linear_chunk must be >= 1, got ", o.chunk);
  TZ_CHECK(o.depth >= 1 && o.layer >= 0 && o.layer < o.depth, "lightning_attention2: layer ", o.layer, " out of depth ",
           o.depth);
  auto lin = [&](const char* name) {
    return register_module(name,
                           std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = o.dim, .bias = false}, gen));
  };
  q_proj = lin("q_proj");
  k_proj = lin("k_proj");
  v_proj = lin("v_proj");
  u_proj = lin("u_proj");
  o_proj = lin("o_proj");
}

std::vector<double> LightningAttention::log_lambdas() const {
  std::vector<double> r;
  const double H = double(options.heads), frac = 1.0 - double(options.layer) / double(options.depth);
  for (int64_t h = 0; h < options.heads; ++h) r.push_back(-8.0 * double(h) / H * frac);
  return r;
}

Tensor LightningAttention::positions(const Tensor& x, int64_t start) const {
  if (!options.lrpe) return x;
  const int64_t T = x.size(2), D = x.size(3);
  std::vector<double> c(static_cast<size_t>(T * D)), s(c.size());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t d = 0; d < D; ++d) {
      const double a = double(start + t) * std::pow(options.lrpe_base, -double(d) / double(D));
      c[size_t(t * D + d)] = std::cos(a);
      s[size_t(t * D + d)] = std::sin(a);
    }
  Tensor cs = from_vector(c, {1, 1, T, D}).to(x.dtype()), sn = from_vector(s, {1, 1, T, D}).to(x.dtype());
  return cat({x * cs, x * sn}, 3);
}

Tensor LightningAttention::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  LinearRnnState* st = state ? &own_state<LinearRnnState>(state, ctx) : nullptr;
  const int64_t B = x.size(0), T = x.size(1), H = options.heads;
  Tensor q = positions(split_heads(silu(q_proj->forward(x)), H), ctx.start);
  Tensor k = positions(split_heads(silu(k_proj->forward(x)), H), ctx.start);
  Tensor v = split_heads(v_proj->forward(x), H);
  Tensor g = from_vector(log_lambdas(), {1, H, 1}).to(x.dtype()).expand({B, H, T});
  Tensor o =
      merge_heads(run_linear_attention(q, k, v, {.log_decay = g, .form = options.form, .chunk = options.chunk}, st));
  // SRMSNorm over C: o / sqrt(mean(o^2) + eps) = o / ||o|| sqrt(C)
  Tensor n = o * rsqrt(mean(o * o, {2}, true) + 1e-6);
  return o_proj->forward(n * u_proj->forward(x));
}

std::unique_ptr<MixerState> LightningAttention::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  const int64_t D = options.dim / options.heads;
  return make_linear_state(batch, options.heads, options.lrpe ? 2 * D : D, D, dtype);
}

std::string LightningAttention::describe() const {
  return cat_str(options.lrpe ? "TransNormerLLM(dim=" : "LightningAttention2(dim=", options.dim,
                 ", heads=", options.heads, ", layer ", options.layer, " of ", options.depth, ", ",
                 linear_attention_form_name(options.form),
                 options.form == LinearAttentionForm::chunked ? cat_str(" block ", options.chunk) : "", ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_lightning_attention2(nn::Registry& r) {
  r.add({.id = "lightning_attention2",
         .summary = "Lightning Attention-2: decayed linear attention (lambda per head and layer) tiled in blocks, "
                    "SRMSNorm, U gate",
         .keys = {nn::kLinearChunk, nn::kLinearForm},
         .test_config = R"({"mixer": "lightning_attention2", "linear_chunk": 4})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "lightning_attention2"})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0,
                        "lightning_attention2: a causal self-mixer only (no encoder or cross use)");
               return std::make_shared<nn::LightningAttention>(
                   nn::LightningAttentionOptions{.dim = d.dim,
                                                 .heads = d.heads,
                                                 .layer = d.layer,
                                                 .depth = std::max<int64_t>(d.depth, d.layer + 1),
                                                 .chunk = nn::linear_chunk(c),
                                                 .form = nn::linear_form(c)},
                   gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
