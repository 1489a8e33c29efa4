// Gated State Space layer (equations in gss.h).
#include "nn/ssm/gss.h"

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/ssm/mamba.h"  // the shared SSM keys

namespace tz::nn {

GssOptions gss_options(const ModelDims& dims, const Config& c) {
  GssOptions o{.dim = dims.dim,
               .reduced = c.get(kGssReduced),
               .gated = c.get(kGssExpand) * dims.dim,
               .state = c.get(kSsmState),
               .dt_min = c.get(kSsmDtMin),
               .dt_max = c.get(kSsmDtMax)};
  const std::string src = c.source();
  if (o.reduced == 0) o.reduced = std::max<int64_t>(1, dims.dim / 4);
  TZ_CHECK(o.reduced >= 1, src, ": gss_reduced must be >= 1 (or 0 = dim / 4), got ", o.reduced);
  TZ_CHECK(o.gated >= 1, src, ": gss_expand must be >= 1, got ", c.get(kGssExpand));
  TZ_CHECK(dims.causal && dims.context_dim == 0, src, ": gss is a causal self-mixer here (no encoder or cross use)");
  return o;
}

Gss::Gss(const GssOptions& o, Generator& gen) : options(o) {
  auto lin = [&](const char* name, int64_t in, int64_t out) {
    return register_module(name, std::make_shared<Linear>(LinearOptions{.in = in, .out = out}, gen));
  };
  v_proj = lin("v_proj", o.dim, o.gated);
  u_proj = lin("u_proj", o.dim, o.reduced);
  up_proj = lin("up_proj", o.reduced, o.gated);
  out_proj = lin("out_proj", o.gated, o.dim);
  ssm = register_module(
      "ssm",
      std::make_shared<DiagonalSsm>(
          DiagonalSsmOptions{.channels = o.reduced, .state = o.state, .dt_min = o.dt_min, .dt_max = o.dt_max}, gen));
}

Tensor Gss::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a convolution has no keys to mask and takes no segment memory");
  GssState* s = state ? &own_state<GssState>(state, ctx) : nullptr;
  Tensor v = gelu(v_proj->forward(x)), u = gelu(u_proj->forward(x));
  Tensor y = s || options.recurrent ? ssm->recur(u, s ? &s->h : nullptr) : ssm->convolve(u);
  if (s) s->length += x.size(1);
  return out_proj->forward(up_proj->forward(y) * v);
}

std::unique_ptr<MixerState> Gss::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<GssState>();
  s->h = zeros({batch, options.reduced * (options.state / 2), 2}, dtype);
  return s;
}

std::string Gss::describe() const {
  return cat_str("GSS(dim ", options.dim, ", reduced ", options.reduced, ", gated ", options.gated, ", state ",
                 options.state, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_gss(nn::Registry& r) {
  r.add(
      {.id = "gss",
       .summary = "Gated State Space: a DSS-style diagonal SSM on a reduced width, gated by a GELU branch",
       .keys = {nn::kGssReduced, nn::kGssExpand, nn::kSsmState, nn::kSsmDtMin, nn::kSsmDtMax},
       .test_config = R"({"mixer": "gss", "gss_reduced": 16, "ssm_state": 32, "ssm_dt_min": 0.01, "ssm_dt_max": 0.5})",
       .example = R"({"dim": 256, "mixer": "gss", "layout": "ssss", "ssm_state": 64, "norm": "layernorm"})",
       .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
         return std::make_shared<nn::Gss>(nn::gss_options(d, c), gen);
       }});
}

}  // namespace tz::zoo
