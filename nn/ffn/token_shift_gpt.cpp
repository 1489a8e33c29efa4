// Token Shift GPT (equations in token_shift_gpt.h).
#include "nn/ffn/token_shift_gpt.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/ffn/mlp.h"

namespace tz::nn {

TokenShiftGptOptions token_shift_gpt_options(const ModelDims& d, const Config& c) {
  TZ_CHECK(d.causal, c.source(), ": token_shift_gpt is a causal LM; it has no bidirectional form");
  const int64_t G = c.get(kFfnMult) * d.dim / 2;
  int64_t S = c.get(kTsgShifts);
  if (S == 0) S = std::max<int64_t>(1, int64_t(std::ceil(std::log2(double(std::max<int64_t>(d.context, 2))))));
  TZ_CHECK(S >= 1 && S < G && S <= 30, c.source(), ": token_shift_gpt_shifts must be in [1, min(30, gate width ", G,
           " - 1)], got ", S);
  const double gamma = c.get(kTsgGamma);
  TZ_CHECK(gamma >= 0 && gamma < 1, c.source(), ": token_shift_gpt_gamma must be in [0, 1), got ", gamma);
  return {.dim = d.dim, .gate = G, .shifts = S, .gamma = gamma};
}

Tensor discounted_cumsum(const Tensor& x, double gamma, const Tensor& h0) {
  return scan(full(x.shape(), gamma, x.dtype()), x, h0);
}

TokenShiftGpt::TokenShiftGpt(const TokenShiftGptOptions& o, Generator& gen) : options(o) {
  const double s = 1 / std::sqrt(double(o.dim));
  in_proj = register_module(
      "in_proj", std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = 2 * o.gate, .init_std = s}, gen));
  gate_norm = register_module("gate_norm", std::make_shared<LayerNorm>(NormOptions{.dim = o.gate}));
  gate_proj = register_module(
      "gate_proj", std::make_shared<Linear>(
                       LinearOptions{.in = o.gate, .out = o.gate, .init_std = 1 / std::sqrt(double(o.gate))}, gen));
  out_proj = register_module(
      "out_proj", std::make_shared<Linear>(LinearOptions{.in = o.gate, .out = o.dim, .init_std = 0.02}, gen));
}

Tensor TokenShiftGpt::shifted_gate(const Tensor& g, int64_t start, Tensor* rows) const {
  const int64_t B = g.size(0), T = g.size(1), G = options.gate;
  if (options.gamma > 0) {  // g'_t = h_{t-1}
    Tensor h0 = rows && rows->defined() ? *rows : zeros({B, G}, g.dtype());
    Tensor h = discounted_cumsum(g, options.gamma, h0);
    if (rows) *rows = h.select(1, T - 1).contiguous();
    return cat({h0.unsqueeze(1), h.narrow(1, 0, T - 1)}, 1);
  }
  // Buffer row r holds position base + r; P[r] the sum of rows < r.
  const int64_t H = history(), base = start - H;
  Tensor buffer = cat({rows && rows->defined() ? *rows : zeros({B, H, G}, g.dtype()), g}, 1);
  Tensor P = cat({zeros({B, 1, G}, g.dtype()), cumsum(buffer, 1)}, 1);
  if (rows) *rows = buffer.narrow(1, T, H).contiguous();
  const int64_t S = options.shifts, cs = G / (S + 1);  // the pass-through chunk takes the remainder
  std::vector<Tensor> parts;
  for (int64_t c = 0; c < S; ++c) {
    const int64_t w = int64_t(1) << c;
    std::vector<int64_t> lo(size_t(T), 0), hi(size_t(T), 0);
    std::vector<double> keep(size_t(T), 0);
    for (int64_t i = 0; i < T; ++i) {
      const int64_t p = start + i;
      if (p < w) continue;  // the window is empty
      const int64_t first = std::max<int64_t>(p - 2 * w + 1, 0), last = p - w;
      lo[size_t(i)] = first - base;
      hi[size_t(i)] = last + 1 - base;
      keep[size_t(i)] = 1.0 / double(last - first + 1);
    }
    Tensor Pc = P.narrow(2, c * cs, cs);
    Tensor sums = index_select(Pc, 1, from_vector(hi, {T})) - index_select(Pc, 1, from_vector(lo, {T}));
    parts.push_back(sums * from_vector(keep, {1, T, 1}).to(g.dtype()));
  }
  parts.push_back(g.narrow(2, S * cs, G - S * cs));
  return cat(parts, 2);
}

Tensor TokenShiftGpt::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": token shifting has no keys to mask and takes no segment memory");
  TokenShiftGptState* s = state ? &own_state<TokenShiftGptState>(state, ctx) : nullptr;
  std::vector<Tensor> vg = chunk(gelu(in_proj->forward(x)), 2, -1);
  Tensor g = shifted_gate(gate_norm->forward(vg[1]), s ? s->length : 0, s ? &s->rows : nullptr);
  if (s) s->length += x.size(1);
  return out_proj->forward(vg[0] * gate_proj->forward(g));
}

std::unique_ptr<MixerState> TokenShiftGpt::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<TokenShiftGptState>();
  s->rows = options.gamma > 0 ? zeros({batch, options.gate}, dtype) : zeros({batch, history(), options.gate}, dtype);
  return s;
}

std::string TokenShiftGpt::describe() const {
  return "TokenShiftGPT(dim " + std::to_string(options.dim) + ", gate " + std::to_string(options.gate) +
         (options.gamma > 0 ? ", discounted cumsum " + std::to_string(options.gamma) + ")"
                            : ", " + std::to_string(options.shifts) + " shifted chunks)");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_token_shift_gpt(nn::Registry& r) {
  r.add({.id = "token_shift_gpt",
         .summary = "Attention-free LM: gMLP-style FFN whose gate chunks take means of past 2^c-long windows",
         .keys = {nn::kTsgShifts, nn::kTsgGamma, nn::kFfnMult},
         .test_config = R"({"mixer": "token_shift_gpt", "layout": "ss", "pos": "none"})",
         .example = R"({"dim": 256, "depth": 8, "layout": "ssssssss", "mixer": "token_shift_gpt", "pos": "none"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::TokenShiftGpt>(nn::token_shift_gpt_options(d, c), gen);
         }});
}

}  // namespace tz::zoo
