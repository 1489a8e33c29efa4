// Monarch Mixer (equations in monarch_mixer.h).
#include "nn/ssm/monarch_mixer.h"

#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "core/copy.h"
#include "core/creation.h"

namespace tz::nn {

Tensor monarch_multiply(const Tensor& x, const Tensor& L, const Tensor& R) {
  TZ_CHECK(L.dim() == 3 && R.dim() == 3 && L.size(1) == L.size(2) && R.size(1) == R.size(2) && L.size(0) == R.size(1) &&
               R.size(0) == L.size(1),
           "monarch: L must be [b2, b1, b1] and R [b1, b2, b2], got ", L.shape(), " and ", R.shape());
  const int64_t b1 = R.size(0), b2 = L.size(0), n = b1 * b2;
  TZ_CHECK(x.dim() >= 1 && x.size(-1) == n, "monarch: x must be [..., ", n, "], got ", x.shape());
  Shape lead(x.shape().begin(), x.shape().end() - 1);
  const int64_t M = n == 0 ? 0 : x.numel() / n;
  Tensor xr = x.reshape({M, b1, b2}).permute({1, 0, 2});       // [b1, M, b2]: group i1, entry i2
  Tensor y = matmul(xr, R.transpose(1, 2));                    // y[i1, m, k2] = Σ_i2 R[i1, k2, i2] x[m, i1, i2]
  Tensor z = matmul(y.permute({2, 1, 0}), L.transpose(1, 2));  // P, then z[k2, m, k1] = Σ_i1 L[k2, k1, i1] y[i1, m, k2]
  Shape out = lead;
  out.push_back(n);
  return z.permute({1, 2, 0}).reshape(out);  // P^T: entry k1 b2 + k2
}

Monarch::Monarch(int64_t b1, int64_t b2, Generator& gen) {
  // each output sums b2 then b1 terms: unit gain at init
  L = register_parameter("L", randn({b2, b1, b1}, gen, DType::f32, 0.0, 1.0 / std::sqrt(double(b1))));
  R = register_parameter("R", randn({b1, b2, b2}, gen, DType::f32, 0.0, 1.0 / std::sqrt(double(b2))));
  bias = register_parameter("bias", zeros({b1 * b2}));
}

Tensor Monarch::forward(const Tensor& x) const { return monarch_multiply(x, L, R) + bias; }

std::string Monarch::describe() const {
  return "Monarch(" + std::to_string(R.size(0)) + " x " + std::to_string(L.size(0)) + ")";
}

MonarchMixerOptions monarch_mixer_options(const ModelDims& dims, const Config& c) {
  MonarchMixerOptions o{
      .dim = dims.dim, .blocks = c.get(kM2Blocks), .short_conv = c.get(kM2ShortConv), .context = dims.context};
  const std::string src = c.source();
  if (o.blocks == 0)  // the divisor of C nearest its square root from below
    for (int64_t b = 1; b * b <= o.dim; ++b)
      if (o.dim % b == 0) o.blocks = b;
  TZ_CHECK(o.blocks >= 1 && o.dim % o.blocks == 0, src, ": m2_blocks must divide dim ", o.dim, ", got ", o.blocks);
  TZ_CHECK(o.short_conv >= 1, src, ": m2_short_conv must be >= 1, got ", o.short_conv);
  TZ_CHECK(o.context >= 1, src, ": m2_monarch_mixer needs the context length (its filter's length)");
  TZ_CHECK(dims.causal, src, ": m2_monarch_mixer is the causal variant here; no bidirectional form");
  return o;
}

MonarchMixer::MonarchMixer(const MonarchMixerOptions& o, Generator& gen) : options(o) {
  const int64_t C = o.dim, b1 = o.blocks, b2 = C / b1, K = o.short_conv;
  q_proj = register_module("q_proj", std::make_shared<Monarch>(b1, b2, gen));
  k_proj = register_module("k_proj", std::make_shared<Monarch>(b1, b2, gen));
  v_proj = register_module("v_proj", std::make_shared<Monarch>(b1, b2, gen));
  o_proj = register_module("o_proj", std::make_shared<Monarch>(b1, b2, gen));
  const double bound = 1.0 / std::sqrt(double(K));
  conv_weight = register_parameter("conv_weight", rand({3 * C, K}, gen, DType::f32, -bound, bound));
  conv_bias = register_parameter("conv_bias", zeros({3 * C}));
  // a filter that decays over the context, faster in the first channels (as Hyena's window)
  std::vector<float> w(static_cast<size_t>(C * o.context));
  Tensor r = randn({C, o.context}, gen, DType::f64);
  for (int64_t c = 0; c < C; ++c) {
    const double rate = std::log(1e2) / (0.3 + 1.2 * (C > 1 ? double(c) / double(C - 1) : 0.0)) / double(o.context);
    for (int64_t l = 0; l < o.context; ++l)
      w[size_t(c * o.context + l)] = float(0.3 * r.at({c, l}) * std::exp(-rate * double(l)));
  }
  filter = register_parameter("filter", from_vector(w, {C, o.context}));
  D = register_parameter("D", ones({C}));
}

Tensor MonarchMixer::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a convolution has no keys to mask and takes no segment memory");
  const int64_t C = options.dim, T = x.size(1);
  MonarchMixerState* s = state ? &own_state<MonarchMixerState>(state, ctx) : nullptr;
  const int64_t start = s ? s->length : 0, L = start + T;
  TZ_CHECK(L <= options.context, describe(), ": the filter covers ", options.context, " positions, asked for ", L);
  Tensor p = cat({q_proj->forward(x), k_proj->forward(x), v_proj->forward(x)}, 2);
  p = s ? conv1d_causal_continue(p, conv_weight, conv_bias, s->conv) : conv1d_causal(p, conv_weight, conv_bias);
  Tensor kv = p.narrow(2, C, C) * p.narrow(2, 2 * C, C), full = kv;
  if (s) {
    if (start > 0) full = cat({s->kv.narrow(1, 0, start), kv}, 1);
    NoGradGuard no_grad;
    core::copy_(s->kv.narrow(1, start, T), kv.detach());
    s->length += T;
  }
  Tensor h = filter.narrow(1, 0, L).contiguous();
  Tensor y = long_conv(full.transpose(1, 2), h, D).transpose(1, 2).narrow(1, start, T);
  return o_proj->forward(p.narrow(2, 0, C) * y);
}

std::unique_ptr<MixerState> MonarchMixer::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  auto s = std::make_unique<MonarchMixerState>();
  s->conv = zeros({batch, options.short_conv - 1, 3 * options.dim}, dtype);
  s->kv = zeros({batch, capacity, options.dim}, dtype);
  return s;
}

std::string MonarchMixer::describe() const {
  return "MonarchMixer(dim " + std::to_string(options.dim) + " = " + std::to_string(options.blocks) + " x " +
         std::to_string(options.dim / options.blocks) + ", short conv " + std::to_string(options.short_conv) + ")";
}

}  // namespace tz::nn

namespace tz::zoo {

void register_m2_monarch_mixer(nn::Registry& r) {
  r.add({.id = "m2_monarch_mixer",
         .summary = "Monarch Mixer: Monarch-matrix projections around a gated causal long convolution (FFT case)",
         .keys = {nn::kM2Blocks, nn::kM2ShortConv},
         .test_config = R"({"mixer": "m2_monarch_mixer"})",
         .example = R"({"dim": 256, "mixer": "m2_monarch_mixer", "m2_blocks": 16})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::MonarchMixer>(nn::monarch_mixer_options(d, c), gen);
         }});
}

}  // namespace tz::zoo
