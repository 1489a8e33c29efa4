// DeltaNet: see deltanet.h.
#include "nn/linear_rnn/deltanet.h"

#include <cmath>

#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
// x / sqrt(|x|^2 + eps) over the last dim.
Tensor l2_normalise(const Tensor& x) { return x / sqrt(sum(x * x, {-1}, true) + 1e-6); }
}  // namespace

DeltaNet::DeltaNet(const DeltaNetOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0,
           "deltanet: dim must be a positive multiple of heads, got dim ", o.dim, ", heads ", o.heads);
  TZ_CHECK(o.chunk >= 1, "deltanet: linear_chunk must be >= 1, got ", o.chunk);
  TZ_CHECK(o.conv >= 0, "deltanet: deltanet_conv must be >= 0, got ", o.conv);
  TZ_CHECK(o.form != LinearAttentionForm::parallel,
           "deltanet: linear_form must be chunked or recurrent (the delta rule has no parallel form), got parallel");
  const int64_t C = o.dim, D = C / o.heads;
  auto lin = [&](const char* name, int64_t in, int64_t out) {
    return register_module(name, std::make_shared<Linear>(LinearOptions{.in = in, .out = out, .bias = false}, gen));
  };
  qkv_proj = lin("qkv_proj", C, 3 * C);
  beta_proj = lin("beta_proj", C, o.heads);
  o_proj = lin("o_proj", C, C);
  if (o.conv > 0) {
    const double bound = 1.0 / std::sqrt(double(o.conv));
    conv_weight = register_parameter("conv_weight", rand({3 * C, o.conv}, gen, DType::f32, -bound, bound));
  }
  norm_weight = register_parameter("norm_weight", ones({D}));
}

DeltaNet::RuleInputs DeltaNet::rule_inputs(const Tensor& x, Tensor* conv_state) const {
  const int64_t H = options.heads, C = options.dim, D = C / H;
  Tensor a = qkv_proj->forward(x);  // [B, T, 3 C]
  if (options.conv > 0)
    a = conv_state ? conv1d_causal_continue(a, conv_weight, Tensor(), *conv_state) : conv1d_causal(a, conv_weight);
  a = silu(a);
  RuleInputs r;
  r.q = l2_normalise(split_heads(a.narrow(2, 0, C), H)) * (1.0 / std::sqrt(double(D)));
  r.k = l2_normalise(split_heads(a.narrow(2, C, C), H));
  r.v = split_heads(a.narrow(2, 2 * C, C), H);
  r.beta = sigmoid(beta_proj->forward(x)).transpose(1, 2);  // [B, H, T]
  return r;
}

Tensor DeltaNet::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a recurrence has no keys to mask and takes no segment memory");
  DeltaNetState* s = state ? &own_state<DeltaNetState>(state, ctx) : nullptr;
  RuleInputs in = rule_inputs(x, s && s->conv.defined() ? &s->conv : nullptr);
  DeltaRuleSpec spec{.form = options.form, .chunk = options.chunk};
  if (s) {
    spec.h0 = s->S;
    if (x.size(1) == 1) spec.form = LinearAttentionForm::recurrent;  // the decode step
  }
  DeltaRuleResult r = delta_rule(in.q, in.k, in.v, in.beta, spec);
  if (s) {
    s->S = r.state;
    s->length += x.size(1);
  }
  return o_proj->forward(merge_heads(rms_norm(r.out, norm_weight, 1e-5)));
}

std::unique_ptr<MixerState> DeltaNet::make_state(int64_t batch, int64_t, DType dtype) const {
  const int64_t D = options.dim / options.heads;
  auto s = std::make_unique<DeltaNetState>();
  s->S = zeros({batch, options.heads, D, D}, dtype);
  if (options.conv > 1) s->conv = zeros({batch, options.conv - 1, 3 * options.dim}, dtype);
  return s;
}

std::string DeltaNet::describe() const {
  return cat_str("DeltaNet(dim=", options.dim, ", heads=", options.heads, ", conv ", options.conv,
                 ", q, k = L2(SiLU(.)), beta = sigmoid, ", form_text(options.form, options.chunk), ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_deltanet(nn::Registry& r) {
  r.add({.id = "deltanet",
         .summary = "DeltaNet: fast weights written by the delta rule (beta = sigmoid, L2-normalised keys), "
                    "chunked WY form, short conv, RMSNorm",
         .keys = {nn::kLinearChunk, nn::kLinearForm, nn::kDeltaConv},
         .test_config = R"({"mixer": "deltanet", "linear_chunk": 4})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "deltanet"})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0, "deltanet: a causal self-mixer only (no encoder or cross use)");
               const int64_t conv = c.get(nn::kDeltaConv);
               TZ_CHECK(conv >= 0, c.source(), ": deltanet_conv must be >= 0, got ", conv);
               return std::make_shared<nn::DeltaNet>(nn::DeltaNetOptions{.dim = d.dim,
                                                                         .heads = d.heads,
                                                                         .conv = conv,
                                                                         .chunk = nn::linear_chunk(c),
                                                                         .form = nn::linear_form(c)},
                                                     gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
