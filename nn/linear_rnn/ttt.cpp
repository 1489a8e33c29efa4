// TTT-Linear and TTT-MLP: see ttt.h.
#include "nn/linear_rnn/ttt.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/linear_rnn/common.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
// The weights with a leading dim of B: the learnt initial ones are [1, ...], a state's [B, ...].
TttWeights batched(TttWeights w, int64_t B) {
  for (Tensor& t : w.w)
    if (t.size(0) != B) {
      Shape s = t.shape();
      s[0] = B;
      t = t.expand(s).contiguous();
    }
  return w;
}
}  // namespace

void TttState::visit(StateVisitor& v) {
  MixerState::visit(v);
  for (size_t i = 0; i < start.w.size(); ++i) v.tensor(cat_str("start", i), start.w[i]);
  for (size_t i = 0; i < current.w.size(); ++i) v.tensor(cat_str("current", i), current.w[i]);
}

Ttt::Ttt(const TttOptions& o, Generator& gen) : options(o) {
  const char* id = o.kind == TttKind::linear ? "ttt_linear" : "ttt_mlp";
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0, id, ": dim must be a positive multiple of heads, got dim ",
           o.dim, ", heads ", o.heads);
  TZ_CHECK(o.minibatch >= 1, id, ": ttt_minibatch must be >= 1, got ", o.minibatch);
  const int64_t C = o.dim, H = o.heads, D = C / H, F = 4 * D;
  auto lin = [&](const char* name, int64_t out, bool bias) {
    return register_module(name, std::make_shared<Linear>(LinearOptions{.in = C, .out = out, .bias = bias}, gen));
  };
  q_proj = lin("q_proj", C, false);
  k_proj = lin("k_proj", C, false);
  v_proj = lin("v_proj", C, false);
  lr_proj = lin("lr_proj", H, true);
  o_proj = lin("o_proj", C, false);
  auto weight = [&](const char* name, int64_t in, int64_t out) {
    return register_parameter(name, randn({1, H, in, out}, gen) * (1.0 / std::sqrt(double(in))));
  };
  if (o.kind == TttKind::linear) {
    w0 = {weight("inner_w", D, D), register_parameter("inner_b", zeros({1, H, 1, D}))};
  } else {
    w0 = {weight("inner_w1", D, F), register_parameter("inner_b1", zeros({1, H, 1, F})), weight("inner_w2", F, D),
          register_parameter("inner_b2", zeros({1, H, 1, D}))};
  }
  ln_weight = register_parameter("inner_ln_weight", ones({1, H, 1, D}));
  ln_bias = register_parameter("inner_ln_bias", zeros({1, H, 1, D}));
  out_norm_weight = register_parameter("out_norm_weight", ones({C}));
  out_norm_bias = register_parameter("out_norm_bias", zeros({C}));
}

TttWeights Ttt::initial() const { return {w0}; }

std::vector<Tensor> Ttt::inner_inputs(const Tensor& x) const {
  const int64_t H = options.heads, D = options.dim / H;
  Tensor eta = sigmoid(lr_proj->forward(x)).transpose(1, 2).unsqueeze(-1) * (options.lr / double(D));
  return {split_heads(q_proj->forward(x), H), split_heads(k_proj->forward(x), H), split_heads(v_proj->forward(x), H),
          eta};
}

Ttt::Inner Ttt::inner(const Tensor& x, int64_t start, TttState* state) const {
  std::vector<Tensor> in = inner_inputs(x);
  const int64_t T = x.size(1), b = options.minibatch;
  TttWeights w_start = state ? state->start : initial(), w_cur = state ? state->current : initial();
  std::vector<Tensor> zs, losses;
  int64_t t0 = 0;
  if (options.kind == TttKind::linear && options.form == TttForm::dual && start % b == 0) {
    // whole mini-batches by the fused op; a state keeps the start weights of a partial last
    // mini-batch, so with one that tail runs below
    const int64_t whole = state ? T / b * b : T;
    if (whole > 0) {
      auto part = [&](const Tensor& t) { return t.narrow(2, 0, whole); };
      TttLinearResult r = ttt_linear(
          {part(in[0]), part(in[1]), part(in[2]), part(in[3]), w_cur.w[0], w_cur.w[1], ln_weight, ln_bias, b});
      zs.push_back(r.z);
      losses.push_back(r.loss);
      w_start = w_cur = {{r.W, r.b}};
      t0 = whole;
    }
  }
  while (t0 < T) {
    const int64_t pos = start + t0, L = std::min(T - t0, b - pos % b);  // up to the mini-batch's end
    TttSegment s = ttt_segment(options.kind, options.form, in[0].narrow(2, t0, L), in[1].narrow(2, t0, L),
                               in[2].narrow(2, t0, L), in[3].narrow(2, t0, L), w_start, w_cur, ln_weight, ln_bias);
    zs.push_back(s.z);
    losses.push_back(s.loss);
    w_cur = s.next;
    if ((pos + L) % b == 0) w_start = w_cur;
    t0 += L;
  }
  if (state) {
    state->start = batched(w_start, x.size(0));
    state->current = batched(w_cur, x.size(0));
  }
  return {cat(zs, 2), cat(losses, 2)};
}

Tensor Ttt::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a recurrence has no keys to mask and takes no segment memory");
  TttState* s = state ? &own_state<TttState>(state, ctx) : nullptr;
  Inner r = inner(x, s ? s->length : 0, s);
  if (s) s->length += x.size(1);
  return o_proj->forward(layer_norm(merge_heads(r.z), out_norm_weight, out_norm_bias));
}

std::unique_ptr<MixerState> Ttt::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<TttState>();
  for (const Tensor& w : w0) s->start.w.push_back(w.detach().to(dtype).clone());  // never the parameters' storage
  s->start = batched(s->start, batch);
  s->current = s->start;
  for (auto& t : s->current.w) t = t.clone();
  return s;
}

std::string Ttt::describe() const {
  return cat_str(options.kind == TttKind::linear ? "TTT-Linear" : "TTT-MLP", "(dim=", options.dim,
                 ", heads=", options.heads, ", mini-batch ", options.minibatch, ", ",
                 options.form == TttForm::dual ? "dual" : "primal", " form, eta ", options.lr, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

namespace {
nn::TttOptions ttt_options(nn::TttKind kind, const nn::ModelDims& d, const nn::Config& c) {
  const char* id = kind == nn::TttKind::linear ? "ttt_linear" : "ttt_mlp";
  TZ_CHECK(d.causal && d.context_dim == 0, id, ": a causal self-mixer only (no encoder or cross use)");
  const std::string form = c.get(nn::kTttForm);
  TZ_CHECK(form == "dual" || form == "primal", c.source(), ": ttt_form must be dual or primal, got '", form, "'");
  const int64_t b = c.get(nn::kTttMinibatch);
  TZ_CHECK(b >= 1, c.source(), ": ttt_minibatch must be >= 1, got ", b);
  return {.dim = d.dim,
          .heads = d.heads,
          .kind = kind,
          .form = form == "dual" ? nn::TttForm::dual : nn::TttForm::primal,
          .minibatch = b,
          .lr = c.get(nn::kTttLr)};
}
}  // namespace

void register_ttt_linear(nn::Registry& r) {
  r.add({.id = "ttt_linear",
         .summary = "TTT-Linear: the state is a linear model x + LN(x W + b) trained per mini-batch on "
                    "|f(k) - v|^2 (dual form)",
         .keys = {nn::kTttMinibatch, nn::kTttForm, nn::kTttLr},
         .test_config = R"({"mixer": "ttt_linear", "ttt_minibatch": 4})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "ttt_linear"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c,
                     Generator& gen) { return std::make_shared<nn::Ttt>(ttt_options(nn::TttKind::linear, d, c), gen); },
         .chunk = 4});
}

void register_ttt_mlp(nn::Registry& r) {
  r.add({.id = "ttt_mlp",
         .summary = "TTT-MLP: the state is a 2-layer GELU MLP (4x hidden) + residual + LN trained per "
                    "mini-batch (dual form)",
         .keys = {nn::kTttMinibatch, nn::kTttForm, nn::kTttLr},
         .test_config = R"({"mixer": "ttt_mlp", "ttt_minibatch": 4})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "ttt_mlp"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c,
                     Generator& gen) { return std::make_shared<nn::Ttt>(ttt_options(nn::TttKind::mlp, d, c), gen); },
         .chunk = 4});
}

}  // namespace tz::zoo
