// Hyena (equations in hyena.h).
#include "nn/ssm/hyena.h"

#include <cmath>
#include <numbers>

#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "core/copy.h"
#include "core/creation.h"

namespace tz::nn {

HyenaOptions hyena_options(const ModelDims& dims, const Config& c) {
  HyenaOptions o{.dim = dims.dim,
                 .order = c.get(kHyenaOrder),
                 .filter_dim = c.get(kHyenaFilterDim),
                 .pos_freqs = c.get(kHyenaPosFreqs),
                 .short_conv = c.get(kHyenaShortConv),
                 .sin_freq = c.get(kHyenaSinFreq),
                 .context = dims.context};
  const std::string src = c.source();
  TZ_CHECK(o.order >= 1, src, ": hyena_order must be >= 1, got ", o.order);
  TZ_CHECK(o.filter_dim >= 1, src, ": hyena_filter_dim must be >= 1, got ", o.filter_dim);
  TZ_CHECK(o.pos_freqs >= 0, src, ": hyena_pos_freqs must be >= 0, got ", o.pos_freqs);
  TZ_CHECK(o.short_conv >= 1, src, ": hyena_short_conv must be >= 1, got ", o.short_conv);
  TZ_CHECK(o.context >= 1, src, ": hyena needs the context length (positions are normalised by it), got ", o.context);
  TZ_CHECK(dims.causal, src, ": hyena is causal here; it has no bidirectional form");
  return o;
}

Hyena::Hyena(const HyenaOptions& o, Generator& gen) : options(o) {
  const int64_t C = o.dim, N = o.order, K = o.short_conv, E = 2 * o.pos_freqs + 1, W = o.filter_dim;
  // PyTorch's default Linear scale (std 1/sqrt(3 in)) for every projection, as the reference
  // keeps it: z^N is a product of N + 1 projections, which the zoo's N(0, 0.02) would shrink
  // to nothing at init.
  auto std_of = [](int64_t in) { return 1.0 / std::sqrt(3.0 * double(in)); };
  in_proj = register_module(
      "in_proj", std::make_shared<Linear>(LinearOptions{.in = C, .out = (N + 1) * C, .init_std = std_of(C)}, gen));
  const double bound = 1.0 / std::sqrt(double(K));
  conv_weight = register_parameter("conv_weight", rand({(N + 1) * C, K}, gen, DType::f32, -bound, bound));
  conv_bias = register_parameter("conv_bias", rand({(N + 1) * C}, gen, DType::f32, -bound, bound));
  ffn_in = register_module("filter_in",
                           std::make_shared<Linear>(LinearOptions{.in = E, .out = W, .init_std = std_of(E)}, gen));
  ffn_mid = register_module("filter_mid",
                            std::make_shared<Linear>(LinearOptions{.in = W, .out = W, .init_std = std_of(W)}, gen));
  ffn_out = register_module(
      "filter_out",
      std::make_shared<Linear>(LinearOptions{.in = W, .out = N * C, .bias = false, .init_std = std_of(W)}, gen));
  filter_bias = register_parameter("filter_bias", randn({N, C}, gen));
  out_proj = register_module("out_proj",
                             std::make_shared<Linear>(LinearOptions{.in = C, .out = C, .init_std = std_of(C)}, gen));
  // α_c from ln(1e2) / 1.5 (slow) to ln(1e2) / 0.3 (fast), as the reference's modulation
  std::vector<float> a(static_cast<size_t>(C));
  const double slow = std::log(1e2) / 1.5, fast = std::log(1e2) / 0.3;
  for (int64_t c = 0; c < C; ++c) a[size_t(c)] = float(fast + (slow - fast) * (C > 1 ? double(c) / double(C - 1) : 0));
  decay = from_vector(a, {C});
}

Tensor Hyena::filters(int64_t L, DType dtype) const {
  const int64_t C = options.dim, N = options.order, F = options.pos_freqs, E = 2 * F + 1;
  std::vector<double> pe(static_cast<size_t>(L * E)), tau(static_cast<size_t>(L));
  for (int64_t t = 0; t < L; ++t) {
    const double s = double(t) / double(options.context);
    tau[size_t(t)] = s;
    pe[size_t(t * E)] = s;
    for (int64_t f = 1; f <= F; ++f) {
      pe[size_t(t * E + 2 * f - 1)] = std::cos(2 * std::numbers::pi * double(f) * s);
      pe[size_t(t * E + 2 * f)] = std::sin(2 * std::numbers::pi * double(f) * s);
    }
  }
  Tensor z = from_vector(pe, {L, E}).to(dtype);
  Tensor h = sin(ffn_in->forward(z) * options.sin_freq);
  h = sin(ffn_mid->forward(h) * options.sin_freq);
  h = ffn_out->forward(h).view({L, N, C}).permute({1, 2, 0});                               // [N, C, L]
  Tensor window = exp(-(decay.to(dtype).unsqueeze(-1) * from_vector(tau, {L}).to(dtype)));  // [C, L]
  return h * window;
}

Tensor Hyena::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a convolution has no keys to mask and takes no segment memory");
  const int64_t C = options.dim, N = options.order, T = x.size(1);
  HyenaState* s = state ? &own_state<HyenaState>(state, ctx) : nullptr;
  const int64_t start = s ? s->length : 0, L = start + T;
  if (s)
    TZ_CHECK(L <= s->z[0].size(1), describe(), ": history full (", start, " + ", T, " > capacity ", s->z[0].size(1),
             ")");
  Tensor p = in_proj->forward(x);
  p = s ? conv1d_causal_continue(p, conv_weight, conv_bias, s->conv) : conv1d_causal(p, conv_weight, conv_bias);
  // Without gradients a state's filters are evaluated once, for its whole capacity.
  const bool cached = s && !grad_enabled();
  if (cached && !s->filters.defined()) s->filters = filters(s->z[0].size(1), x.dtype()).permute({0, 2, 1}).contiguous();
  const bool direct_step = cached && T <= core::kLongConvTailSteps;
  // h [N, C, L]
  Tensor h = cached ? s->filters.narrow(1, 0, L).permute({0, 2, 1}) : filters(L, x.dtype());
  Tensor z = p.narrow(2, 0, C);  // v
  for (int64_t n = 0; n < N; ++n) {
    Tensor full = z;  // z^n over positions 0..L-1: the kept history, then this chunk
    if (s) {
      if (start > 0 && !direct_step) full = cat({s->z[size_t(n)].narrow(1, 0, start), z}, 1);
      NoGradGuard no_grad;
      core::copy_(s->z[size_t(n)].narrow(1, start, T), z.detach());
    }
    Tensor conv =
        direct_step
            ? core::long_conv_tail(s->z[size_t(n)].narrow(1, 0, L), s->filters.select(0, n).narrow(0, 0, L),
                                   filter_bias.select(0, n), T)
            : long_conv(full.transpose(1, 2), h.select(0, n), filter_bias.select(0, n), {.reference = options.direct})
                  .transpose(1, 2)
                  .narrow(1, start, T);
    z = p.narrow(2, (n + 1) * C, C) * conv;
  }
  if (s) s->length += T;
  return out_proj->forward(z);
}

std::unique_ptr<MixerState> Hyena::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  auto s = std::make_unique<HyenaState>();
  s->conv = zeros({batch, options.short_conv - 1, (options.order + 1) * options.dim}, dtype);
  for (int64_t n = 0; n < options.order; ++n) s->z.push_back(zeros({batch, capacity, options.dim}, dtype));
  return s;
}

std::string Hyena::describe() const {
  return "Hyena(dim " + std::to_string(options.dim) + ", order " + std::to_string(options.order) + ", filter width " +
         std::to_string(options.filter_dim) + ")";
}

}  // namespace tz::nn

namespace tz::zoo {

void register_hyena(nn::Registry& r) {
  r.add({.id = "hyena",
         .summary = "Hyena: implicit long-conv filters (positional FFN + exponential window) with order-N gating",
         .keys = {nn::kHyenaOrder, nn::kHyenaFilterDim, nn::kHyenaPosFreqs, nn::kHyenaShortConv, nn::kHyenaSinFreq},
         .test_config = R"({"mixer": "hyena", "hyena_filter_dim": 16})",
         .example = R"({"dim": 256, "mixer": "hyena", "hyena_order": 2, "norm": "layernorm"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::Hyena>(nn::hyena_options(d, c), gen);
         }});
}

}  // namespace tz::zoo
