// The Hawk recurrent block (equations in rglru.h).
#include "nn/linear_rnn/rglru.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"

namespace tz::nn {

RglruOptions rglru_options(const ModelDims& dims, const Config& c) {
  RglruOptions o{.dim = dims.dim, .width = c.get(kRnnWidth), .conv = c.get(kRnnConv), .c = c.get(kRglruC)};
  const std::string src = c.source();
  TZ_CHECK(o.width >= 0, src, ": rnn_width must be >= 0 (0 = dim), got ", o.width);
  TZ_CHECK(o.conv >= 1, src, ": rnn_conv must be >= 1, got ", o.conv);
  TZ_CHECK(o.c > 0, src, ": rglru_c must be > 0, got ", o.c);
  TZ_CHECK(dims.causal, src, ": rglru_hawk is a causal recurrence; it has no bidirectional form");
  if (o.width == 0) o.width = o.dim;
  return o;
}

Rglru::Rglru(const RglruOptions& o, Generator& gen) : options(o) {
  const int64_t C = o.dim, E = o.width, K = o.conv;
  auto lin = [&](const char* name, int64_t in, int64_t out, bool bias) {
    // std 1/sqrt(in) (LeCun normal), as the paper's dense layers
    return register_module(
        name, std::make_shared<Linear>(
                  LinearOptions{.in = in, .out = out, .bias = bias, .init_std = 1 / std::sqrt(double(in))}, gen));
  };
  gate_proj = lin("gate_proj", C, E, false);
  in_proj = lin("in_proj", C, E, false);
  const double conv_bound = 1.0 / std::sqrt(double(K));
  conv_weight = register_parameter("conv_weight", rand({E, K}, gen, DType::f32, -conv_bound, conv_bound));
  conv_bias = register_parameter("conv_bias", zeros({E}));
  a_proj = lin("a_proj", E, E, true);
  i_proj = lin("i_proj", E, E, true);
  out_proj = lin("out_proj", E, C, false);
  // a^c uniform in [0.9, 0.999]: Lambda = logit(a) with a = (a^c)^(1/c)
  std::vector<float> lam(static_cast<size_t>(E));
  Tensor u = rand({E}, gen, DType::f64, 0.9, 0.999);
  for (int64_t e = 0; e < E; ++e) {
    const double a = std::pow(u.at({e}), 1.0 / o.c);
    lam[size_t(e)] = float(std::log(a / (1 - a)));
  }
  Lambda = register_parameter("Lambda", from_vector(lam, {E}));
}

Rglru::ScanInputs Rglru::scan_inputs(const Tensor& x, Tensor* conv_state) const {
  ScanInputs s;
  s.y = gelu(gate_proj->forward(x));
  Tensor v = in_proj->forward(x);
  v = conv_state ? conv1d_causal_continue(v, conv_weight, conv_bias, *conv_state)
                 : conv1d_causal(v, conv_weight, conv_bias);
  Tensor r = sigmoid(a_proj->forward(v)), i = sigmoid(i_proj->forward(v));
  Tensor log_a = r * (softplus(neg(Lambda)) * (-options.c));  // c r_t log sigmoid(Lambda), < 0
  s.a = exp(log_a);
  // sqrt(1 - a_t^2) i_t v_t. As a_t -> 1 the slope of sqrt at 0 is infinite: 1 - a_t^2 is kept
  // >= 1e-6 (zero gradient below), bounding the derivative at 500, as Griffin's code bounds it.
  s.b = sqrt(clamp(1.0 - exp(log_a * 2.0), 1e-6, 1.0)) * (i * v);
  return s;
}

Tensor Rglru::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a recurrence has no keys to mask and takes no segment memory");
  RglruState* s = state ? &own_state<RglruState>(state, ctx) : nullptr;
  ScanInputs in = scan_inputs(x, s ? &s->conv : nullptr);
  Tensor h = scan(in.a, in.b, s ? s->h : Tensor());
  if (s) {
    s->h = h.select(1, h.size(1) - 1).contiguous();
    s->length += x.size(1);
  }
  return out_proj->forward(in.y * h);
}

std::unique_ptr<MixerState> Rglru::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<RglruState>();
  s->conv = zeros({batch, options.conv - 1, options.width}, dtype);
  s->h = zeros({batch, options.width}, dtype);
  return s;
}

std::string Rglru::describe() const {
  return "RG-LRU(dim " + std::to_string(options.dim) + ", width " + std::to_string(options.width) + ", conv " +
         std::to_string(options.conv) + ", c " + std::to_string(options.c) + ")";
}

}  // namespace tz::nn

namespace tz::zoo {

void register_rglru_hawk(nn::Registry& r) {
  r.add({.id = "rglru_hawk",
         .summary =
             "Hawk's recurrent block: RG-LRU h_t = a_t h_{t-1} + sqrt(1 - a_t^2)(i_t x_t), a_t = sigmoid(Lambda)^(8 "
             "r_t), after a causal conv, gated by GeLU",
         .keys = {nn::kRnnWidth, nn::kRnnConv, nn::kRglruC},
         .test_config = R"({"mixer": "rglru_hawk", "norm": "rmsnorm", "dim": 32})",
         .example = R"({"dim": 256, "mixer": "rglru_hawk", "norm": "rmsnorm"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c,
                     Generator& gen) { return std::make_shared<nn::Rglru>(nn::rglru_options(d, c), gen); },
         .learn_steps = 800,
         .learn_reason =
             "the copied tokens must pass through the recurrent state: copy 0.84 after 400 steps, 0.96 after 800"});
}

}  // namespace tz::zoo
