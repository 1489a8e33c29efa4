#include "nn/ffn/remixer.h"

#include <limits>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"
#include "nn/registry.h"

namespace tz::nn {

Remixer::Remixer(int64_t dim, int64_t hidden, int64_t context, Generator& gen)
    : dim_(dim), hidden_(hidden), context_(context) {
  in = register_module("in", std::make_shared<Linear>(LinearOptions{.in = dim, .out = 2 * hidden}, gen));
  mix = register_parameter("mix", randn({context, context}, gen, DType::f32, 0.0, 1.0));
  alpha = register_parameter("alpha", zeros({1}));  // α = ½: both compositions equally
  out = register_module("out", std::make_shared<Linear>(LinearOptions{.in = hidden, .out = dim}, gen));
}

Tensor Remixer::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == dim_, describe(), ": x must be [B, T, ", dim_, "], got ", x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": the remixing matrix takes no key masks and no segment memory");
  RemixerState* s = state ? &own_state<RemixerState>(state, ctx) : nullptr;
  const int64_t T = x.size(1), start = s ? s->length : ctx.start;
  TZ_CHECK(start + T <= context_, describe(), ": positions up to ", start + T, " exceed its ", context_,
           " (M has one weight per pair of positions)");
  std::vector<Tensor> ug = chunk(in->forward(x), 2, -1);
  Tensor u = gelu(ug[1]) * ug[0];
  Tensor keys = s ? append_history(s->rows, u, start) : u;
  if (s) s->length += T;
  const int64_t k0 = s ? 0 : start, S = keys.size(1);
  Tensor M = masked_fill(mix.narrow(0, start, T).narrow(1, k0, S), future_mask(T, S, start, k0),
                         -std::numeric_limits<double>::infinity());
  Tensor m = matmul(softmax(M).to(x.dtype()), keys);  // [B, T, F]
  Tensor a = sigmoid(alpha).to(x.dtype());
  return out->forward(a * (u * m) + (1.0 - a) * (u - m));
}

std::unique_ptr<MixerState> Remixer::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<RemixerState>();
  s->rows = zeros({batch, context_, hidden_}, dtype);
  return s;
}

std::string Remixer::describe() const {
  return cat_str("Remixer(dim ", dim_, ", hidden ", hidden_, ", context ", context_, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_remixer(nn::Registry& r) {
  r.add({.id = "remixer",
         .summary = "Remixer: GEGLU features mixed over positions by a causal softmax(M), α·(u⊙m) + (1−α)·(u−m)",
         .keys = {nn::kRemixerMult},
         .test_config = R"({"mixer": ["vanilla_mha", "remixer"], "layout": "ss", "remixer_mult": 2})",
         .example = R"({"mixer": ["vanilla_mha", "remixer"], "layout": "ssssssss", "depth": 4})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) -> std::shared_ptr<nn::Mixer> {
           const int64_t mult = c.get(nn::kRemixerMult);
           TZ_CHECK(mult >= 1, c.source(), ": remixer_mult must be ≥ 1, got ", mult);
           return std::make_shared<nn::Remixer>(d.dim, mult * d.dim, d.context, gen);
         }});
}

}  // namespace tz::zoo
