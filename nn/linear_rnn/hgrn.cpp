// HGRN (equations in hgrn.h).
#include "nn/linear_rnn/hgrn.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"

namespace tz::nn {

HgrnOptions hgrn_options(const ModelDims& dims, const Config& c) {
  TZ_CHECK(dims.causal, c.source(), ": hgrn is a causal recurrence; it has no bidirectional form");
  TZ_CHECK(dims.depth >= 1 && dims.layer >= 0 && dims.layer < dims.depth, c.source(), ": hgrn: layer ", dims.layer,
           " of depth ", dims.depth, " (the forget gate's lower bound is layer / depth)");
  return {.dim = dims.dim, .lower_bound = double(dims.layer) / double(dims.depth)};
}

Hgrn::Hgrn(const HgrnOptions& o, Generator& gen) : options(o) {
  const int64_t C = o.dim;
  auto lin = [&](const char* name, bool bias) {
    return register_module(
        name, std::make_shared<Linear>(
                  LinearOptions{.in = C, .out = C, .bias = bias, .init_std = 1 / std::sqrt(double(C))}, gen));
  };
  f_proj = lin("f_proj", true);
  r_proj = lin("r_proj", true);
  i_proj = lin("i_proj", true);
  g_proj = lin("g_proj", true);
  norm = register_module("norm", std::make_shared<LayerNorm>(NormOptions{.dim = C}));
  out_proj = lin("out_proj", false);
  theta = register_parameter("theta", rand({C}, gen, DType::f32, -0.5, 0.5));
}

Hgrn::ScanInputs Hgrn::scan_inputs(const Tensor& x) const {
  ScanInputs s;
  const double lb = options.lower_bound;
  s.lambda = sigmoid(f_proj->forward(x)) * (1 - lb) + lb;  // >= gamma_l
  Tensor keep = 1.0 - s.lambda;
  s.a = stack({s.lambda * cos(theta), s.lambda * sin(theta)}, -1);
  s.b = stack({keep * silu(r_proj->forward(x)), keep * silu(i_proj->forward(x))}, -1);
  return s;
}

Tensor Hgrn::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a recurrence has no keys to mask and takes no segment memory");
  HgrnState* s = state ? &own_state<HgrnState>(state, ctx) : nullptr;
  ScanInputs in = scan_inputs(x);
  Tensor h = scan(in.a, in.b, s ? s->h : Tensor(), {.complex = true});  // [B, T, C, 2]
  if (s) {
    s->h = h.select(1, h.size(1) - 1).contiguous();
    s->length += x.size(1);
  }
  Tensor o = norm->forward(h.select(-1, 0)) * sigmoid(g_proj->forward(x));
  return out_proj->forward(o);
}

std::unique_ptr<MixerState> Hgrn::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<HgrnState>();
  s->h = zeros({batch, options.dim, 2}, dtype);
  return s;
}

std::string Hgrn::describe() const {
  return "HGRN(dim " + std::to_string(options.dim) + ", forget gate >= " + std::to_string(options.lower_bound) + ")";
}

}  // namespace tz::nn

namespace tz::zoo {

void register_hgrn(nn::Registry& r) {
  r.add({.id = "hgrn",
         .summary = "HGRN: complex gated linear recurrence with a forget gate bounded below by layer / depth",
         .test_config = R"({"mixer": "hgrn", "norm": "rmsnorm", "dim": 32})",
         .example = R"({"dim": 256, "mixer": "hgrn", "norm": "rmsnorm"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::Hgrn>(nn::hgrn_options(d, c), gen);
         }});
}

}  // namespace tz::zoo
