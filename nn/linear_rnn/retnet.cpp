// RetNet's multi-scale retention: see retnet.h.
#include "nn/linear_rnn/retnet.h"

#include <cmath>

#include "core/creation.h"
#include "nn/position/rope.h"
#include "nn/registry.h"

namespace tz::nn {

RetNet::RetNet(const RetNetOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0 && (o.dim / o.heads) % 2 == 0,
           "retnet: dim must be a positive multiple of heads with an even head size, got dim ", o.dim, ", heads ",
           o.heads);
  TZ_CHECK(o.chunk >= 1, "retnet: linear_chunk must be >= 1, got ", o.chunk);
  const int64_t C = o.dim;
  auto lin = [&](const char* name) {
    return register_module(name, std::make_shared<Linear>(LinearOptions{.in = C, .out = C, .bias = false}, gen));
  };
  q_proj = lin("q_proj");
  k_proj = lin("k_proj");
  v_proj = lin("v_proj");
  g_proj = lin("g_proj");
  o_proj = lin("o_proj");
  norm = register_module("norm", std::make_shared<HeadGroupNorm>(C));
}

std::vector<double> RetNet::log_gammas() const {
  std::vector<double> g;
  for (int64_t h = 0; h < options.heads; ++h) g.push_back(std::log1p(-std::pow(2.0, -5.0 - double(h))));
  return g;
}

Tensor RetNet::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  LinearRnnState* st = state ? &own_state<LinearRnnState>(state, ctx) : nullptr;
  const int64_t B = x.size(0), T = x.size(1), H = options.heads, D = options.dim / H;
  Tensor q = apply_rotary(split_heads(q_proj->forward(x), H), ctx.start, options.rotary_base);
  Tensor k = apply_rotary(split_heads(k_proj->forward(x), H), ctx.start, options.rotary_base) * (1.0 / std::sqrt(D));
  Tensor v = split_heads(v_proj->forward(x), H);
  Tensor g = from_vector(log_gammas(), {1, H, 1}).to(x.dtype()).expand({B, H, T});
  Tensor o = run_linear_attention(q, k, v, {.log_decay = g, .form = options.form, .chunk = options.chunk}, st);
  Tensor y = norm->forward(o);
  return o_proj->forward(silu(g_proj->forward(x)) * y);
}

std::unique_ptr<MixerState> RetNet::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  const int64_t D = options.dim / options.heads;
  return make_linear_state(batch, options.heads, D, D, dtype);
}

std::string RetNet::describe() const {
  return cat_str("RetNet(dim=", options.dim, ", heads=", options.heads, ", ", form_text(options.form, options.chunk),
                 ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_retnet(nn::Registry& r) {
  r.add({.id = "retnet",
         .summary = "RetNet multi-scale retention: rotated q, k, fixed per-head decay γ_h, GroupNorm, swish gate",
         .keys = {nn::kLinearChunk, nn::kLinearForm, nn::kRotaryBase},
         .test_config = R"({"mixer": "retnet", "linear_chunk": 4})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "retnet"})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0, "retnet: a causal self-mixer only (no encoder or cross use)");
               return std::make_shared<nn::RetNet>(nn::RetNetOptions{.dim = d.dim,
                                                                     .heads = d.heads,
                                                                     .chunk = nn::linear_chunk(c),
                                                                     .form = nn::linear_form(c),
                                                                     .rotary_base = c.get(nn::kRotaryBase)},
                                                   gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
