// The FFN with a gated recurrence inside (equations in simple_recurrence.h).
#include "nn/ffn/simple_recurrence.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/ffn/mlp.h"

namespace tz::nn {

SimpleRecurrenceOptions simple_recurrence_options(const ModelDims& d, const Config& c) {
  MLPOptions plain = ffn_options(d, c);
  const int64_t R = 2 * plain.hidden / 3;
  TZ_CHECK(R >= (d.causal ? 1 : 2), c.source(), ": simple_recurrence_mlm: ffn_mult ", c.get(kFfnMult), " x dim ", d.dim,
           " gives a recurrence ", R, " wide");
  return {.dim = d.dim, .width = R, .causal = d.causal, .bias = plain.bias};
}

SimpleRecurrenceFfn::SimpleRecurrenceFfn(const SimpleRecurrenceOptions& o, Generator& gen) : options(o) {
  in_proj = register_module(
      "in_proj",
      std::make_shared<Linear>(
          LinearOptions{.in = o.dim, .out = 2 * o.width, .bias = o.bias, .init_std = 1 / std::sqrt(double(o.dim))},
          gen));
  out_proj = register_module(
      "out_proj",
      std::make_shared<Linear>(LinearOptions{.in = o.width, .out = o.dim, .bias = o.bias, .init_std = 0.02}, gen));
}

SimpleRecurrenceFfn::ScanInputs SimpleRecurrenceFfn::scan_inputs(const Tensor& x) const {
  std::vector<Tensor> up = chunk(in_proj->forward(x), 2, -1);  // u, p
  Tensor f = sigmoid(up[1]);
  return {f, (1.0 - f) * up[0]};
}

Tensor SimpleRecurrenceFfn::output(const Tensor& c) const { return out_proj->forward(gelu(c)); }

namespace {
Tensor reversed_in_time(const Tensor& x) {
  const int64_t T = x.size(1);
  std::vector<int64_t> idx(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) idx[size_t(t)] = T - 1 - t;
  return index_select(x, 1, from_vector(idx, {T}));
}
}  // namespace

Tensor SimpleRecurrenceFfn::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a recurrence has no keys to mask and takes no segment memory");
  ScanInputs in = scan_inputs(x);
  if (!options.causal) {
    TZ_CHECK(!state, describe(), ": the bidirectional form has no decoding state");
    const int64_t half = options.width / 2, R = options.width;
    Tensor fwd = scan(in.a.narrow(2, 0, half), in.b.narrow(2, 0, half));
    Tensor bwd = reversed_in_time(
        scan(reversed_in_time(in.a.narrow(2, half, R - half)), reversed_in_time(in.b.narrow(2, half, R - half))));
    return output(cat({fwd, bwd}, 2));
  }
  SimpleRecurrenceState* s = state ? &own_state<SimpleRecurrenceState>(state, ctx) : nullptr;
  Tensor c = scan(in.a, in.b, s ? s->c : Tensor());  // [B, T, R]
  if (s) {
    s->c = c.select(1, c.size(1) - 1).contiguous();
    s->length += x.size(1);
  }
  return output(c);
}

std::unique_ptr<MixerState> SimpleRecurrenceFfn::make_state(int64_t batch, int64_t, DType dtype) const {
  TZ_CHECK(options.causal, describe(), ": the bidirectional form has no decoding state");
  auto s = std::make_unique<SimpleRecurrenceState>();
  s->c = zeros({batch, options.width}, dtype);
  return s;
}

std::string SimpleRecurrenceFfn::describe() const {
  return "SimpleRecurrenceFFN(dim " + std::to_string(options.dim) + ", recurrence " + std::to_string(options.width) +
         (options.causal ? ", forward)" : ", bidirectional)");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_simple_recurrence_mlm(nn::Registry& r) {
  r.add(
      {.id = "simple_recurrence_mlm",
       .summary = "FFN with an SRU-style gated recurrence inside (width 2F/3: parameters of the plain FFN)",
       .keys = {nn::kFfnMult},
       .test_config = R"({"layout": "ssss", "ffn_mult": 3, "bias": false,
                            "mixer": ["vanilla_mha", "simple_recurrence_mlm", "vanilla_mha", "simple_recurrence_mlm"]})",
       .example =
           R"({"dim": 256, "layout": "ssss", "mixer": ["vanilla_mha", "simple_recurrence_mlm", "vanilla_mha", "simple_recurrence_mlm"]})",
       .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
         return std::make_shared<nn::SimpleRecurrenceFfn>(nn::simple_recurrence_options(d, c), gen);
       }});
}

}  // namespace tz::zoo
