#include "nn/ffn/gmlp.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"
#include "nn/registry.h"

namespace tz::nn {

Gmlp::Gmlp(int64_t dim, int64_t gate, int64_t context, double init_eps, Generator& gen)
    : dim_(dim), gate_(gate), context_(context) {
  up = register_module("up", std::make_shared<Linear>(LinearOptions{.in = dim, .out = 2 * gate}, gen));
  gate_norm = register_module("gate_norm", std::make_shared<LayerNorm>(NormOptions{.dim = gate}));
  const double eps = init_eps / double(context);
  spatial_weight = register_parameter("spatial_weight", rand({context, context}, gen, DType::f32, -eps, eps));
  spatial_bias = register_parameter("spatial_bias", ones({context}));
  down = register_module("down", std::make_shared<Linear>(LinearOptions{.in = gate, .out = dim}, gen));
}

Tensor Gmlp::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == dim_, describe(), ": x must be [B, T, ", dim_, "], got ", x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": the spatial gate takes no key masks and no segment memory");
  GmlpState* s = state ? &own_state<GmlpState>(state, ctx) : nullptr;
  const int64_t T = x.size(1), start = s ? s->length : ctx.start;
  TZ_CHECK(start + T <= context_, describe(), ": positions up to ", start + T, " exceed its ", context_,
           " (W has one weight per pair of positions)");
  std::vector<Tensor> z = chunk(gelu(up->forward(x)), 2, -1);
  Tensor n2 = gate_norm->forward(z[1]);
  // Keys: the state's rows (positions 0..start-1) and this call's; without a state the call
  // is the whole sequence, its first position at `start`.
  Tensor keys = s ? append_history(s->rows, n2, start) : n2;
  const int64_t k0 = s ? 0 : start, S = keys.size(1);
  Tensor W = tril(spatial_weight.narrow(0, start, T).narrow(1, k0, S), start - k0);  // [T, S], j <= t
  Tensor gate = matmul(W.to(x.dtype()), keys) + spatial_bias.narrow(0, start, T).to(x.dtype()).reshape({T, 1});
  if (s) s->length += T;
  return down->forward(z[0] * gate);
}

std::unique_ptr<MixerState> Gmlp::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<GmlpState>();
  s->rows = zeros({batch, context_, gate_}, dtype);
  return s;
}

std::string Gmlp::describe() const { return cat_str("gMLP(dim ", dim_, ", gate ", gate_, ", context ", context_, ")"); }

}  // namespace tz::nn

namespace tz::zoo {

void register_gmlp(nn::Registry& r) {
  r.add({.id = "gmlp",
         .summary = "gMLP: GELU(xU) split in Z1, Z2; Z1 ⊙ (W·LN(Z2) + b) with a causal L×L spatial W; then V",
         .keys = {nn::kGmlpMult, nn::kGmlpInitEps},
         .test_config = R"({"mixer": "gmlp", "layout": "ss", "gmlp_mult": 2})",
         .example = R"({"mixer": "gmlp", "layout": "ssssss", "dim": 128, "context": 128})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) -> std::shared_ptr<nn::Mixer> {
           const int64_t mult = c.get(nn::kGmlpMult);
           const double eps = c.get(nn::kGmlpInitEps);
           TZ_CHECK(mult >= 1 && (mult * d.dim) % 2 == 0, c.source(),
                    ": gmlp_mult must be ≥ 1 with gmlp_mult · dim even, got ", mult, " · ", d.dim);
           TZ_CHECK(eps >= 0 && std::isfinite(eps), c.source(), ": gmlp_init_eps must be ≥ 0, got ", eps);
           return std::make_shared<nn::Gmlp>(d.dim, mult * d.dim / 2, d.context, eps, gen);
         }});
}

}  // namespace tz::zoo
