#include "nn/attention/synthesizer.h"

#include <limits>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"
#include "nn/registry.h"

namespace tz::nn {

Synthesizer::Synthesizer(int64_t dim, int64_t heads, int64_t context, bool random, bool fixed, Generator& gen)
    : dim_(dim), heads_(heads), context_(context), random_(random) {
  if (random) {
    Tensor r = randn({heads, context, context}, gen, DType::f32, 0.0, 1.0);
    table = fixed ? register_buffer("table", r) : register_parameter("table", r);
  } else {
    dense1 = register_module("dense1", std::make_shared<Linear>(LinearOptions{.in = dim, .out = dim}, gen));
    dense2 = register_module("dense2", std::make_shared<Linear>(LinearOptions{.in = dim, .out = heads * context}, gen));
  }
  value = register_module("value", std::make_shared<Linear>(LinearOptions{.in = dim, .out = dim}, gen));
  out = register_module("out", std::make_shared<Linear>(LinearOptions{.in = dim, .out = dim}, gen));
}

Tensor Synthesizer::weights(const Tensor& x, int64_t start, int64_t k0, int64_t S) const {
  const int64_t B = x.size(0), T = x.size(1);
  Tensor logits = random_ ? table.narrow(1, start, T).narrow(2, k0, S).to(x.dtype()).unsqueeze(0)  // [1, H, T, S]
                          : dense2->forward(relu(dense1->forward(x)))
                                .reshape({B, T, heads_, context_})
                                .permute({0, 2, 1, 3})
                                .narrow(3, k0, S);  // [B, H, T, S]
  return softmax(masked_fill(logits, future_mask(T, S, start, k0), -std::numeric_limits<double>::infinity()));
}

Tensor Synthesizer::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == dim_, describe(), ": x must be [B, T, ", dim_, "], got ", x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": synthesized weights take no key masks and no segment memory");
  SynthesizerState* s = state ? &own_state<SynthesizerState>(state, ctx) : nullptr;
  const int64_t B = x.size(0), T = x.size(1), start = s ? s->length : ctx.start, D = dim_ / heads_;
  TZ_CHECK(start + T <= context_, describe(), ": positions up to ", start + T, " exceed its ", context_,
           " (the synthesized logits have one column per position)");
  Tensor v = value->forward(x);
  Tensor keys = s ? append_history(s->values, v, start) : v;
  const int64_t k0 = s ? 0 : start, S = keys.size(1);
  if (s) s->length += T;
  Tensor vh = keys.reshape({B, S, heads_, D}).permute({0, 2, 1, 3});  // [B, H, S, D]
  Tensor y = matmul(weights(x, start, k0, S), vh).permute({0, 2, 1, 3}).reshape({B, T, dim_});
  return out->forward(y);
}

std::unique_ptr<MixerState> Synthesizer::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<SynthesizerState>();
  s->values = zeros({batch, context_, dim_}, dtype);
  return s;
}

std::string Synthesizer::describe() const {
  return cat_str("Synthesizer(", random_ ? "random" : "dense", ", heads ", heads_, ", context ", context_, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_synthesizer(nn::Registry& r) {
  r.add({.id = "synthesizer",
         .summary = "Synthesizer: attention logits from an MLP of x_i (dense) or a learned L×L table (random)",
         .keys = {nn::kSynth, nn::kSynthFixed},
         .test_config = R"({"mixer": "synthesizer"})",
         .example = R"({"mixer": "synthesizer", "synthesizer": "random"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) -> std::shared_ptr<nn::Mixer> {
           const std::string form = c.get(nn::kSynth);
           TZ_CHECK(form == "dense" || form == "random", c.source(), ": synthesizer must be dense or random, got '",
                    form, "'");
           TZ_CHECK(form == "random" || !c.has(nn::kSynthFixed), c.source(),
                    ": synth_fixed is a key of synthesizer 'random'");
           return std::make_shared<nn::Synthesizer>(d.dim, d.heads, d.context, form == "random", c.get(nn::kSynthFixed),
                                                    gen);
         }});
}

}  // namespace tz::zoo
