// Gated Linear Attention: see gla.h.
#include "nn/linear_rnn/gla.h"

#include <cmath>

#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

GLA::GLA(const GLAOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0, "gla: dim must be a positive multiple of heads, got dim ",
           o.dim, ", heads ", o.heads);
  TZ_CHECK(o.chunk >= 1, "gla: linear_chunk must be >= 1, got ", o.chunk);
  TZ_CHECK(o.conv >= 0, "gla: gla_conv must be >= 0, got ", o.conv);
  TZ_CHECK(std::isfinite(o.gate_temp) && o.gate_temp > 0, "gla: gla_tau must be positive, got ", o.gate_temp);
  const int64_t C = o.dim;
  auto lin = [&](const char* name, int64_t in, int64_t out, bool bias) {
    return register_module(name, std::make_shared<Linear>(LinearOptions{.in = in, .out = out, .bias = bias}, gen));
  };
  q_proj = lin("q_proj", C, C, false);
  k_proj = lin("k_proj", C, C, false);
  v_proj = lin("v_proj", C, C, false);
  r_proj = lin("r_proj", C, C, false);
  o_proj = lin("o_proj", C, C, false);
  gate_down = lin("gate_down", C, o.gate_rank, false);
  gate_up = lin("gate_up", o.gate_rank, C, true);
  norm = register_module("norm", std::make_shared<HeadGroupNorm>(C));
  if (o.conv > 0) {  // PyTorch's Conv1d default: U(+-1/sqrt(K))
    const double bound = 1.0 / std::sqrt(double(o.conv));
    conv_weight = register_parameter("conv_weight", rand({3 * C, o.conv}, gen, DType::f32, -bound, bound));
  }
}

Tensor GLA::log_gates(const Tensor& x) const {
  return split_heads(log_sigmoid(gate_up->forward(gate_down->forward(x))) * (1.0 / options.gate_temp), options.heads);
}

Tensor GLA::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  GLAState* st = state ? &own_state<GLAState>(state, ctx) : nullptr;
  const int64_t H = options.heads, C = options.dim, D = C / H;
  Tensor q = q_proj->forward(x), k = k_proj->forward(x), v = v_proj->forward(x);
  if (options.conv > 0) {
    Tensor a = cat({q, k, v}, 2);  // [B, T, 3 C]
    a = silu(st && st->conv.defined() ? conv1d_causal_continue(a, conv_weight, Tensor(), st->conv)
                                      : conv1d_causal(a, conv_weight));
    q = a.narrow(2, 0, C), k = a.narrow(2, C, C), v = a.narrow(2, 2 * C, C);
  }
  q = split_heads(q, H) * (1.0 / std::sqrt(double(D)));
  k = split_heads(k, H);
  v = split_heads(v, H);
  Tensor o =
      run_linear_attention(q, k, v, {.log_decay = log_gates(x), .form = options.form, .chunk = options.chunk}, st);
  return o_proj->forward(silu(r_proj->forward(x)) * norm->forward(o));
}

std::unique_ptr<MixerState> GLA::make_state(int64_t batch, int64_t, DType dtype) const {
  const int64_t D = options.dim / options.heads;
  auto s = std::make_unique<GLAState>();
  s->S = zeros({batch, options.heads, D, D}, dtype);
  if (options.conv > 1) s->conv = zeros({batch, options.conv - 1, 3 * options.dim}, dtype);
  return s;
}

std::string GLA::describe() const {
  return cat_str("GLA(dim=", options.dim, ", heads=", options.heads, ", gate rank ", options.gate_rank, ", tau ",
                 options.gate_temp, ", conv ", options.conv, ", ", form_text(options.form, options.chunk), ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_gla(nn::Registry& r) {
  r.add({.id = "gla",
         .summary = "Gated linear attention: a low-rank data-dependent decay per key channel, GroupNorm, swish gate",
         .keys = {nn::kLinearChunk, nn::kLinearForm, nn::kGlaConv, nn::kGlaTau},
         .test_config = R"({"mixer": "gla", "linear_chunk": 4})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "gla"})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0, "gla: a causal self-mixer only (no encoder or cross use)");
               const int64_t conv = c.get(nn::kGlaConv);
               TZ_CHECK(conv >= 0, c.source(), ": gla_conv must be >= 0, got ", conv);
               const double tau = c.get(nn::kGlaTau);
               TZ_CHECK(std::isfinite(tau) && tau > 0, c.source(), ": gla_tau must be positive, got ", tau);
               return std::make_shared<nn::GLA>(nn::GLAOptions{.dim = d.dim,
                                                               .heads = d.heads,
                                                               .chunk = nn::linear_chunk(c),
                                                               .form = nn::linear_form(c),
                                                               .gate_temp = tau,
                                                               .conv = conv},
                                                gen);
             },
         .chunk = 4,
         .learn_steps = 2000,
         .learn_reason = "gates near 1 (sigma^(1/16)) and no softmax: reading tokens by absolute position is learnt "
                         "slowly (0.55 after 400 steps, 1.00 after 2000)"});
}

}  // namespace tz::zoo
