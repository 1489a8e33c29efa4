// HyperMixer's hypernetwork token mixing (equations in hypermixer.h).
#include "nn/ffn/hypermixer.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"
#include "nn/position/absolute.h"
#include "nn/registry.h"

namespace tz::nn {

Hypermixer::Hypermixer(const HypermixerOptions& o, Generator& gen) : options(o) {
  const double s = 1 / std::sqrt(double(o.dim));
  auto layer = [&](const char* name, int64_t out) {
    return register_module(
        name, std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = out, .bias = false, .init_std = s}, gen));
  };
  h1_in = layer("h1_in", o.dim);
  h1_out = layer("h1_out", o.hidden);
  h2_in = layer("h2_in", o.dim);
  h2_out = layer("h2_out", o.hidden);
  out_norm = register_module("out_norm", std::make_shared<LayerNorm>(NormOptions{.dim = o.dim}));
}

std::pair<Tensor, Tensor> Hypermixer::weights(const Tensor& x, int64_t start) const {
  const Tensor z =
      options.positions ? x + sinusoidal_table(start, x.size(1), options.dim, options.pos_base, x.dtype()) : x;
  return {h1_out->forward(gelu(h1_in->forward(z))), h2_out->forward(gelu(h2_in->forward(z)))};
}

Tensor Hypermixer::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": the token MLP takes no key masks and no segment memory");
  TZ_CHECK(options.causal || !state, describe(), ": ", why_no_step());
  HypermixerState* s = state ? &own_state<HypermixerState>(state, ctx) : nullptr;
  const int64_t B = x.size(0), T = x.size(1), C = options.dim;
  auto [w1, w2] = weights(x, s ? s->length : ctx.start);
  Tensor y;
  if (!options.causal) {
    // The paper's token MLP: H = W1^T x over all T tokens, then W2 GELU(H).
    y = matmul(w2, gelu(matmul(w1.transpose(1, 2), x)));
  } else {
    // H_t = Σ_{j ≤ t} W1_j ⊗ x_j (plus the state's sum over earlier calls): one [F, C] per
    // position, as a cumulative sum of outer products; y_t = W2_t GELU(H_t).
    Tensor H = cumsum(w1.unsqueeze(3) * x.unsqueeze(2), 1);
    if (s) {
      H = H + s->sum.unsqueeze(1);
      s->sum = H.select(1, T - 1).contiguous();
      s->length += T;
    }
    y = matmul(w2.unsqueeze(2), gelu(H)).reshape({B, T, C});
  }
  return out_norm->forward(y);
}

std::unique_ptr<MixerState> Hypermixer::make_state(int64_t batch, int64_t, DType dtype) const {
  TZ_CHECK(options.causal, describe(), ": ", why_no_step());
  auto s = std::make_unique<HypermixerState>();
  s->sum = zeros({batch, options.hidden, options.dim}, dtype);
  return s;
}

std::string Hypermixer::describe() const {
  return cat_str("HyperMixer(dim ", options.dim, ", d' ", options.hidden, options.causal ? ", causal" : ", non-causal",
                 options.positions ? "" : ", no positions", ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_hypermixer(nn::Registry& r) {
  r.add(
      {.id = "hypermixer",
       .summary = "HyperMixer: token MLP W2·GELU(W1ᵀx) with W1, W2 made per token by hypernetworks; causal prefix sums",
       .keys = {nn::kHypermixerMult, nn::kHypermixerPositions, nn::kPosBase},
       .test_config = R"({"mixer": "hypermixer"})",
       .example = R"({"mixer": "hypermixer", "depth": 8, "dim": 256, "hypermixer_mult": 2})",
       .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) -> std::shared_ptr<nn::Mixer> {
         const int64_t mult = c.get(nn::kHypermixerMult);
         const double base = c.get(nn::kPosBase);
         TZ_CHECK(mult >= 1, c.source(), ": hypermixer_mult must be ≥ 1, got ", mult);
         TZ_CHECK(base > 1 && std::isfinite(base), c.source(), ": pos_base must be > 1, got ", base);
         return std::make_shared<nn::Hypermixer>(nn::HypermixerOptions{.dim = d.dim,
                                                                       .hidden = mult * d.dim,
                                                                       .causal = d.causal,
                                                                       .positions = c.get(nn::kHypermixerPositions),
                                                                       .pos_base = base},
                                                 gen);
       }});
}

}  // namespace tz::zoo
