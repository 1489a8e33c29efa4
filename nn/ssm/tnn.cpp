// TNN (equations in tnn.h).
#include "nn/ssm/tnn.h"

#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "core/copy.h"
#include "core/creation.h"

namespace tz::nn {

TnnOptions tnn_options(const ModelDims& dims, const Config& c) {
  TnnOptions o{.dim = dims.dim,
               .expand = c.get(kTnnExpand),
               .rpe_dim = c.get(kTnnRpeDim),
               .rpe_layers = c.get(kTnnRpeLayers),
               .decay = c.get(kTnnDecay),
               .context = dims.context};
  const std::string src = c.source();
  TZ_CHECK(o.expand >= 1, src, ": tnn_expand must be >= 1, got ", o.expand);
  TZ_CHECK(o.rpe_dim >= 2, src, ": tnn_rpe_dim must be >= 2 (a LayerNorm over it), got ", o.rpe_dim);
  TZ_CHECK(o.rpe_layers >= 0, src, ": tnn_rpe_layers must be >= 0, got ", o.rpe_layers);
  TZ_CHECK(o.context >= 1, src, ": tnn_toeplitz needs the context length (the RPE's initial offsets)");
  TZ_CHECK(o.decay > 0 && o.decay <= 1, src, ": tnn_decay must be in (0, 1], got ", o.decay);
  TZ_CHECK(dims.causal, src, ": tnn_toeplitz is causal here (t_ℓ = 0 for ℓ < 0); no bidirectional form");
  return o;
}

Tnn::Tnn(const TnnOptions& o, Generator& gen) : options(o) {
  const int64_t C = o.dim, E = o.expand * o.dim, W = o.rpe_dim;
  auto lin = [&](const char* name, int64_t in, int64_t out, double std) {
    return register_module(name, std::make_shared<Linear>(LinearOptions{.in = in, .out = out, .init_std = std}, gen));
  };
  u_proj = lin("u_proj", C, E, 1.0 / std::sqrt(double(C)));
  v_proj = lin("v_proj", C, E, 1.0 / std::sqrt(double(C)));
  o_proj = lin("o_proj", E, C, 1.0 / std::sqrt(double(E)));
  rpe_in = lin("rpe_in", 1, W, 1.0);
  {  // the features' kinks (where a ℓ + b changes sign) spread over the offsets 0..context
    NoGradGuard no_grad;
    core::copy_(rpe_in->bias, -(rpe_in->weight.select(1, 0) * rand({W}, gen, DType::f32, 0.0, double(o.context))));
  }
  for (int64_t i = 0; i < o.rpe_layers; ++i)
    rpe_hidden.push_back(lin(("rpe_hidden" + std::to_string(i)).c_str(), W, W, 1.0 / std::sqrt(double(W))));
  for (int64_t i = 0; i <= o.rpe_layers; ++i)
    rpe_norms.push_back(
        register_module("rpe_norm" + std::to_string(i), std::make_shared<LayerNorm>(NormOptions{.dim = W})));
  // a small initial kernel: the matvec sums up to L terms
  rpe_out = lin("rpe_out", W, E, 0.1 / std::sqrt(double(W)));
}

Tensor Tnn::kernel(int64_t L, DType dtype) const {
  Tensor pos = arange(0.0, double(L), 1.0, dtype);  // ℓ = 0..L-1
  Tensor h = rpe_in->forward(pos.unsqueeze(-1));    // [L, W]
  for (size_t i = 0; i < rpe_hidden.size(); ++i) h = rpe_hidden[i]->forward(relu(rpe_norms[i]->forward(h)));
  h = rpe_out->forward(relu(rpe_norms.back()->forward(h)));       // [L, E]
  return h.transpose(0, 1) * exp(pos * std::log(options.decay));  // [E, L]
}

Tensor Tnn::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a convolution has no keys to mask and takes no segment memory");
  const int64_t T = x.size(1);
  TnnState* s = state ? &own_state<TnnState>(state, ctx) : nullptr;
  const int64_t start = s ? s->length : 0, L = start + T;
  if (s)
    TZ_CHECK(L <= s->v.size(1), describe(), ": history full (", start, " + ", T, " > capacity ", s->v.size(1), ")");
  Tensor u = silu(u_proj->forward(x)), v = silu(v_proj->forward(x));
  // Without gradients a state's kernel is evaluated once, for its whole capacity.
  const bool cached = s && !grad_enabled();
  if (cached && !s->kernel.defined()) s->kernel = kernel(s->v.size(1), x.dtype()).transpose(0, 1).contiguous();
  const bool direct_step = cached && T <= core::kLongConvTailSteps;
  Tensor full = v;  // v over positions 0..L-1: the kept history, then this chunk
  if (s) {
    if (start > 0 && !direct_step) full = cat({s->v.narrow(1, 0, start), v}, 1);
    NoGradGuard no_grad;
    core::copy_(s->v.narrow(1, start, T), v.detach());
    s->length += T;
  }
  Tensor tv = direct_step ? core::long_conv_tail(s->v.narrow(1, 0, L), s->kernel.narrow(0, 0, L), Tensor(), T)
                          : long_conv(full.transpose(1, 2),
                                      cached ? s->kernel.narrow(0, 0, L).transpose(0, 1) : kernel(L, x.dtype()))
                                .transpose(1, 2)
                                .narrow(1, start, T);
  return o_proj->forward(u * tv);
}

std::unique_ptr<MixerState> Tnn::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  auto s = std::make_unique<TnnState>();
  s->v = zeros({batch, capacity, options.expand * options.dim}, dtype);
  return s;
}

std::string Tnn::describe() const {
  return "TNN(dim " + std::to_string(options.dim) + ", expand " + std::to_string(options.expand) + ", rpe " +
         std::to_string(options.rpe_dim) + " x " + std::to_string(options.rpe_layers) + ", λ " +
         std::to_string(options.decay) + ")";
}

}  // namespace tz::nn

namespace tz::zoo {

void register_tnn_toeplitz(nn::Registry& r) {
  r.add({.id = "tnn_toeplitz",
         .summary = "TNN: gated Toeplitz unit, kernel from a relative-position MLP with decay, matvec by FFT",
         .keys = {nn::kTnnExpand, nn::kTnnRpeDim, nn::kTnnRpeLayers, nn::kTnnDecay},
         .test_config = R"({"mixer": "tnn_toeplitz", "tnn_rpe_dim": 16})",
         .example = R"({"dim": 256, "mixer": "tnn_toeplitz", "tnn_rpe_dim": 64, "tnn_rpe_layers": 3})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::Tnn>(nn::tnn_options(d, c), gen);
         }});
}

}  // namespace tz::zoo
