// S²-MLP's causal 1-D spatial shift (equations in s2_mlp.h).
#include "nn/ffn/s2_mlp.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"
#include "nn/registry.h"

namespace tz::nn {

S2Mlp::S2Mlp(int64_t dim, int64_t hidden, int64_t groups, bool shift, Generator& gen)
    : dim_(dim), hidden_(hidden), groups_(groups), shift_(shift) {
  in = register_module("in", std::make_shared<Linear>(
                                 LinearOptions{.in = dim, .out = hidden, .init_std = 1 / std::sqrt(double(dim))}, gen));
  out = register_module("out", std::make_shared<Linear>(LinearOptions{.in = hidden, .out = dim}, gen));
}

Tensor S2Mlp::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == dim_, describe(), ": x must be [B, T, ", dim_, "], got ", x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": shifting has no keys to mask and takes no segment memory");
  S2MlpState* s = state ? &own_state<S2MlpState>(state, ctx) : nullptr;
  const int64_t B = x.size(0), T = x.size(1), g = groups_;
  Tensor h = gelu(in->forward(x));
  // Buffer row r holds position start - g + r: the g rows before this call (the state's, or
  // zeros: no past), then this call's T. Group i at position start + t reads row g + t - i - 1.
  Tensor buffer = cat({s ? s->rows : zeros({B, g, hidden_}, h.dtype()), h}, 1);
  std::vector<Tensor> parts;
  for (int64_t i = 0; i < g; ++i) {
    const int64_t lo = group_begin(i), n = group_begin(i + 1) - lo;
    parts.push_back(buffer.narrow(1, shift_ ? g - i - 1 : g, T).narrow(2, lo, n));
  }
  if (s) {
    s->rows = buffer.narrow(1, T, g).contiguous();
    s->length += T;
  }
  return out->forward(cat(parts, 2));
}

std::unique_ptr<MixerState> S2Mlp::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<S2MlpState>();
  s->rows = zeros({batch, groups_, hidden_}, dtype);
  return s;
}

std::string S2Mlp::describe() const {
  return shift_ ? cat_str("S2MLP(dim ", dim_, ", hidden ", hidden_, ", ", groups_, " groups shifted back 1..", groups_,
                          ")")
                : cat_str("S2MLP(dim ", dim_, ", hidden ", hidden_, ", no shift)");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_s2_mlp(nn::Registry& r) {
  r.add({.id = "s2_mlp",
         .summary = "S²-MLP, causal 1-D: GELU(x W1) in g channel groups, group i shifted back i + 1 steps, then W2",
         .keys = {nn::kS2MlpMult, nn::kS2MlpGroups, nn::kS2MlpShift},
         .test_config = R"({"mixer": "s2_mlp"})",
         .example = R"({"mixer": "s2_mlp", "depth": 8, "dim": 256, "s2_mlp_groups": 4})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) -> std::shared_ptr<nn::Mixer> {
           const int64_t mult = c.get(nn::kS2MlpMult), g = c.get(nn::kS2MlpGroups);
           TZ_CHECK(d.causal, c.source(), ": s2_mlp is the causal 1-D shift; it has no bidirectional form");
           TZ_CHECK(mult >= 1, c.source(), ": s2_mlp_mult must be ≥ 1, got ", mult);
           TZ_CHECK(g >= 1 && g <= mult * d.dim, c.source(),
                    ": s2_mlp_groups must be in [1, s2_mlp_mult · dim = ", mult * d.dim, "], got ", g);
           return std::make_shared<nn::S2Mlp>(d.dim, mult * d.dim, g, c.get(nn::kS2MlpShift), gen);
         }});
}

}  // namespace tz::zoo
