// Mamba-2 (equations in mamba2.h).
#include "nn/ssm/mamba2.h"

#include <cmath>

#include "core/creation.h"

namespace tz::nn {

Mamba2Options mamba2_options(const ModelDims& dims, const Config& c) {
  Mamba2Options o{.dim = dims.dim,
                  .state = c.get(kSsmState),
                  .expand = c.get(kSsmExpand),
                  .head_dim = c.get(kSsmHeadDim),
                  .groups = c.get(kSsmGroups),
                  .conv = c.get(kSsmConv),
                  .dt_min = c.get(kSsmDtMin),
                  .dt_max = c.get(kSsmDtMax),
                  .chunk = linear_chunk(c),
                  .form = linear_form(c)};
  const std::string src = c.source();
  TZ_CHECK(dims.causal && dims.context_dim == 0, src, ": mamba2 is a causal recurrence; it has no bidirectional form");
  TZ_CHECK(o.state >= 1 && o.expand >= 1 && o.conv >= 1, src, ": ssm_state, ssm_expand and ssm_conv must be >= 1, got ",
           o.state, ", ", o.expand, ", ", o.conv);
  TZ_CHECK(o.head_dim >= 1 && (o.expand * o.dim) % o.head_dim == 0, src,
           ": ssm_head_dim must divide ssm_expand * dim = ", o.expand * o.dim, ", got ", o.head_dim);
  const int64_t M = o.expand * o.dim / o.head_dim;
  TZ_CHECK(o.groups >= 1 && M % o.groups == 0, src, ": ssm_groups must divide the ", M, " heads, got ", o.groups);
  TZ_CHECK(o.dt_min > 0 && o.dt_max >= o.dt_min, src, ": need 0 < ssm_dt_min <= ssm_dt_max, got ", o.dt_min, " and ",
           o.dt_max);
  return o;
}

Mamba2::Mamba2(const Mamba2Options& o, Generator& gen) : options(o) {
  const int64_t C = o.dim, E = o.expand * C, M = E / o.head_dim, X = E + 2 * o.groups * o.state, K = o.conv;
  auto torch_std = [](int64_t in) { return 1.0 / std::sqrt(3.0 * double(in)); };
  in_proj = register_module(
      "in_proj",
      std::make_shared<Linear>(LinearOptions{.in = C, .out = E + X + M, .bias = false, .init_std = torch_std(C)}, gen));
  const double conv_bound = 1.0 / std::sqrt(double(K));
  conv_weight = register_parameter("conv_weight", rand({X, K}, gen, DType::f32, -conv_bound, conv_bound));
  conv_bias = register_parameter("conv_bias", rand({X}, gen, DType::f32, -conv_bound, conv_bound));
  std::vector<float> dt(static_cast<size_t>(M)), a(static_cast<size_t>(M));
  Tensor r = rand({2, M}, gen, DType::f64);
  for (int64_t h = 0; h < M; ++h) {
    const double d =
        std::max(1e-4, std::exp(r.at({0, h}) * (std::log(o.dt_max) - std::log(o.dt_min)) + std::log(o.dt_min)));
    dt[size_t(h)] = float(d + std::log(-std::expm1(-d)));       // softplus^-1(d)
    a[size_t(h)] = float(std::log(1.0 + 15.0 * r.at({1, h})));  // A uniform in [1, 16]
  }
  dt_bias = register_parameter("dt_bias", from_vector(dt, {M}));
  A_log = register_parameter("A_log", from_vector(a, {M}));
  D = register_parameter("D", ones({M}));
  norm_weight = register_parameter("norm_weight", ones({E}));
  out_proj = register_module(
      "out_proj",
      std::make_shared<Linear>(LinearOptions{.in = E, .out = C, .bias = false, .init_std = torch_std(E)}, gen));
}

Mamba2::Ssd Mamba2::ssd_inputs(const Tensor& x, Tensor* conv_state) const {
  const int64_t B = x.size(0), T = x.size(1), E = options.expand * options.dim, P = options.head_dim, M = E / P;
  const int64_t G = options.groups, N = options.state, X = E + 2 * G * N;
  Tensor zxd = in_proj->forward(x);  // [B, T, E + X + M]: z, xBC, dt
  Ssd s;
  s.z = zxd.narrow(2, 0, E);
  Tensor xbc = zxd.narrow(2, E, X);
  xbc = silu(conv_state ? conv1d_causal_continue(xbc, conv_weight, conv_bias, *conv_state)
                        : conv1d_causal(xbc, conv_weight, conv_bias));
  // heads h = g (M / G) + i share group g's Bm and Cm
  auto per_head = [&](const Tensor& t) {
    return t.reshape({B, T, G, 1, N}).expand({B, T, G, M / G, N}).reshape({B, T, M, N}).permute({0, 2, 1, 3});
  };
  s.x = xbc.narrow(2, 0, E).reshape({B, T, M, P}).permute({0, 2, 1, 3});
  s.k = per_head(xbc.narrow(2, E, G * N));
  s.q = per_head(xbc.narrow(2, E + G * N, G * N));
  Tensor delta = softplus(zxd.narrow(2, E + X, M) + dt_bias).permute({0, 2, 1});  // [B, M, T]
  s.v = s.x * delta.unsqueeze(3);
  s.log_a = delta * (-1.0 * exp(A_log)).view({1, M, 1});
  return s;
}

Tensor Mamba2::finish(const Tensor& o, const Ssd& in) const {
  const int64_t M = o.size(1), B = o.size(0), T = o.size(2), E = options.expand * options.dim, G = options.groups;
  Tensor y = merge_heads(o + in.x * D.view({1, M, 1, 1})) * silu(in.z);  // [B, T, E]
  y = rms_norm(y.reshape({B, T, G, E / G}), Tensor(), 1e-5).reshape({B, T, E}) * norm_weight;
  return out_proj->forward(y);
}

Tensor Mamba2::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a recurrence has no keys to mask and takes no segment memory");
  Mamba2State* st = state ? &own_state<Mamba2State>(state, ctx) : nullptr;
  Ssd in = ssd_inputs(x, st ? &st->conv : nullptr);
  Tensor o =
      run_linear_attention(in.q, in.k, in.v, {.log_decay = in.log_a, .form = options.form, .chunk = options.chunk}, st);
  return finish(o, in);
}

std::unique_ptr<MixerState> Mamba2::make_state(int64_t batch, int64_t, DType dtype) const {
  const int64_t E = options.expand * options.dim, M = E / options.head_dim;
  auto s = std::make_unique<Mamba2State>();
  s->conv = zeros({batch, options.conv - 1, E + 2 * options.groups * options.state}, dtype);
  s->S = zeros({batch, M, options.state, options.head_dim}, dtype);
  return s;
}

std::string Mamba2::describe() const {
  const int64_t E = options.expand * options.dim;
  return cat_str("Mamba2(dim ", options.dim, ", inner ", E, ", heads ", E / options.head_dim, " x ", options.head_dim,
                 ", groups ", options.groups, ", state ", options.state, ", conv ", options.conv, ", ",
                 form_text(options.form, options.chunk), ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_mamba2(nn::Registry& r) {
  r.add({.id = "mamba2",
         .summary = "Mamba-2: SSD (scalar decay per head) on the chunked linear-attention kernel, conv, gated RMSNorm",
         .keys = {nn::kSsmState, nn::kSsmExpand, nn::kSsmHeadDim, nn::kSsmGroups, nn::kSsmConv, nn::kSsmDtMin,
                  nn::kSsmDtMax, nn::kLinearChunk, nn::kLinearForm},
         .test_config = R"({"mixer": "mamba2", "norm": "rmsnorm", "layout": "ss", "dim": 32, "ssm_state": 8,)"
                        R"( "ssm_head_dim": 16, "ssm_groups": 2, "linear_chunk": 4})",
         .example = R"({"dim": 256, "mixer": "mamba2", "norm": "rmsnorm", "layout": "ssss"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c,
                     Generator& gen) { return std::make_shared<nn::Mamba2>(nn::mamba2_options(d, c), gen); },
         .chunk = 4,
         .learn_steps = 1500,
         .learn_lr = 5e-3,
         .learn_reason = "as mamba, the copied tokens must pass through the recurrent state (dim 32); at 1e-2 "
                         "selective copying reaches 0.87 after 1500 steps, at 5e-3 0.98 (copy 1.00)",
         .selective = true});
}

}  // namespace tz::zoo
