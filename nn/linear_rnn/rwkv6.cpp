// RWKV-6 Finch: see rwkv6.h.
#include "nn/linear_rnn/rwkv6.h"

#include <cmath>

#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

Tensor rwkv_mix_schedule(int64_t C, double power) {
  std::vector<float> m(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) m[size_t(c)] = float(1.0 - std::pow(double(c) / double(C), power));
  return from_vector(m, {C});
}

Tensor token_shift(const Tensor& x, Tensor* shift) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2);
  Tensor first = shift && shift->defined() ? shift->view({B, 1, C}) : zeros({B, 1, C}, x.dtype());
  Tensor xp = T == 1 ? first : cat({first, x.narrow(1, 0, T - 1)}, 1);
  if (shift) *shift = x.narrow(1, T - 1, 1).reshape({B, C});
  return xp;
}

Rwkv6::Rwkv6(const Rwkv6Options& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0,
           "rwkv6: dim must be a positive multiple of heads, got dim ", o.dim, ", heads ", o.heads);
  TZ_CHECK(o.chunk >= 1, "rwkv6: linear_chunk must be >= 1, got ", o.chunk);
  TZ_CHECK(o.mix_rank >= 1 && o.decay_rank >= 1, "rwkv6: LoRA ranks must be >= 1, got ", o.mix_rank, " and ",
           o.decay_rank);
  TZ_CHECK(o.depth >= 1 && o.layer >= 0 && o.layer < o.depth, "rwkv6: layer ", o.layer, " outside depth ", o.depth);
  const int64_t C = o.dim, H = o.heads, D = C / H;
  auto lin = [&](const std::string& name, int64_t in, int64_t out) {
    return register_module(name, std::make_shared<Linear>(LinearOptions{.in = in, .out = out, .bias = false}, gen));
  };
  r_proj = lin("r_proj", C, C);
  k_proj = lin("k_proj", C, C);
  v_proj = lin("v_proj", C, C);
  g_proj = lin("g_proj", C, C);
  o_proj = lin("o_proj", C, C);
  if (!o.eagle) {  // Finch's data-dependent token shift and decay
    mix_down = lin("mix_down", C, 5 * o.mix_rank);
    for (const char* j : {"w", "k", "v", "r", "g"}) mix_up.push_back(lin(cat_str("mix_up_", j), o.mix_rank, C));
    decay_down = lin("decay_down", C, o.decay_rank);
    decay_up = lin("decay_up", o.decay_rank, C);
  }
  // the reference schedules: r01 = l / (L - 1) (0 with one layer), r10 = 1 - l / L
  const double r01 = o.depth > 1 ? double(o.layer) / double(o.depth - 1) : 0.0;
  const double r10 = 1.0 - double(o.layer) / double(o.depth);
  if (!o.eagle) mu_x = register_parameter("mu_x", rwkv_mix_schedule(C, r10));
  mu = register_parameter(
      "mu", cat({rwkv_mix_schedule(C, r10).view({1, C}), rwkv_mix_schedule(C, r10).view({1, C}),
                 (rwkv_mix_schedule(C, r10) + 0.3 * r01).view({1, C}), rwkv_mix_schedule(C, 0.5 * r10).view({1, C}),
                 rwkv_mix_schedule(C, 0.5 * r10).view({1, C})},
                0));
  std::vector<float> d(static_cast<size_t>(C)), u(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const double f = C > 1 ? double(c) / double(C - 1) : 0.0;
    d[size_t(c)] = float(-6.0 + 5.0 * std::pow(f, 0.7 + 1.3 * r01));
    u[size_t(c)] = float(r01 * (1.0 - f) + 0.1 * double((c + 1) % 3 - 1));
  }
  decay = register_parameter("decay", from_vector(d, {C}));
  bonus = register_parameter("bonus", from_vector(u, {H, D}));
  norm = register_module("norm", std::make_shared<HeadGroupNorm>(C, 64e-5));
}

Rwkv6::Inputs Rwkv6::inputs(const Tensor& x, const Tensor& xp) const {
  const int64_t H = options.heads, R = options.mix_rank;
  Tensor delta = xp - x;
  // Finch: ddlerp, the mix of each of w, k, v, r, g data dependent; Eagle: lerp, a static mix
  Tensor lora = options.eagle ? Tensor() : tanh(mix_down->forward(x + delta * mu_x));  // [B, T, 5 R1]
  auto ddlerp = [&](int64_t j) {
    if (options.eagle) return x + delta * mu.select(0, j);
    return x + delta * (mu.select(0, j) + mix_up[size_t(j)]->forward(lora.narrow(2, j * R, R)));
  };
  Tensor xw = ddlerp(0), xk = ddlerp(1), xv = ddlerp(2), xr = ddlerp(3), xg = ddlerp(4);
  Inputs in;
  in.r = split_heads(r_proj->forward(xr), H);
  in.k = split_heads(k_proj->forward(xk), H);
  in.v = split_heads(v_proj->forward(xv), H);
  in.g = silu(g_proj->forward(xg));
  // log w_t = -exp(d_t): kept in log space (w_t itself underflows for steep decays)
  Tensor d = options.eagle ? decay.expand({x.size(0), x.size(1), options.dim})
                           : decay + decay_up->forward(tanh(decay_down->forward(xw)));
  in.log_w = split_heads(-1.0 * exp(d), H);
  return in;
}

Tensor Rwkv6::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  Rwkv6State* st = state ? &own_state<Rwkv6State>(state, ctx) : nullptr;
  Inputs in = inputs(x, token_shift(x, st ? &st->shift : nullptr));
  Tensor o = run_linear_attention(
      in.r, in.k, in.v, {.log_decay = in.log_w, .bonus = bonus, .form = options.form, .chunk = options.chunk}, st);
  return o_proj->forward(in.g * norm->forward(o));
}

std::unique_ptr<MixerState> Rwkv6::make_state(int64_t batch, int64_t, DType dtype) const {
  const int64_t H = options.heads, D = options.dim / H;
  auto s = std::make_unique<Rwkv6State>();
  s->S = zeros({batch, H, D, D}, dtype);
  s->shift = zeros({batch, options.dim}, dtype);
  return s;
}

std::string Rwkv6::describe() const {
  return cat_str(options.eagle ? "RWKV5-Eagle" : "RWKV6", "(dim=", options.dim, ", heads=", options.heads,
                 options.eagle ? std::string(", static decay")
                               : cat_str(", LoRA ranks ", options.mix_rank, "/", options.decay_rank),
                 ", ", form_text(options.form, options.chunk), ")");
}

RwkvChannelMix::RwkvChannelMix(const RwkvChannelMixOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.hidden >= 0, "rwkv channel mix: need dim > 0 and hidden >= 0, got ", o.dim, ", ", o.hidden);
  TZ_CHECK(o.depth >= 1 && o.layer >= 0 && o.layer < o.depth, "rwkv channel mix: layer ", o.layer, " outside depth ",
           o.depth);
  const int64_t C = o.dim;
  if (options.hidden == 0) options.hidden = std::max<int64_t>(32, (C * 7 / 2) / 32 * 32);
  const int64_t F = options.hidden;
  auto lin = [&](const char* name, int64_t in, int64_t out) {
    return register_module(name, std::make_shared<Linear>(LinearOptions{.in = in, .out = out, .bias = false}, gen));
  };
  k_proj = lin("k_proj", C, F);
  v_proj = lin("v_proj", F, C);
  r_proj = lin("r_proj", C, C);
  const double r10 = 1.0 - double(o.layer) / double(o.depth);
  mu_k = register_parameter("mu_k", rwkv_mix_schedule(C, r10));
  mu_r = register_parameter("mu_r", rwkv_mix_schedule(C, r10));
}

Tensor RwkvChannelMix::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  RwkvShiftState* st = state ? &own_state<RwkvShiftState>(state, ctx) : nullptr;
  Tensor out = mix(x, st ? &st->shift : nullptr);
  if (st) st->length += x.size(1);
  return out;
}

std::unique_ptr<MixerState> RwkvChannelMix::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<RwkvShiftState>();
  s->shift = zeros({batch, options.dim}, dtype);
  return s;
}

Tensor RwkvChannelMix::mix(const Tensor& x, Tensor* shift) const {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  Tensor delta = token_shift(x, shift) - x;
  Tensor k = relu(k_proj->forward(x + delta * mu_k));
  return sigmoid(r_proj->forward(x + delta * mu_r)) * v_proj->forward(k * k);
}

std::string RwkvChannelMix::describe() const {
  return cat_str("RwkvChannelMix(dim=", options.dim, ", hidden=", options.hidden, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

namespace {
// The RWKV model: two layers of [time mix, channel mix], each sublayer its own pre-LN block.
// (Learned positions, the test base's default, although RWKV has none: at dim 16 the copy
// task is not learned in 400 steps without them, 0.37 against 1.00.)
constexpr const char* kRwkvModel = R"({"depth": 4, "layout": "ssss", "linear_chunk": 4,
    "mixer": ["rwkv6", "rwkv6_channel_mix", "rwkv6", "rwkv6_channel_mix"]})";
}  // namespace

void register_rwkv6_channel_mix(nn::Registry& r) {
  r.add({.id = "rwkv6_channel_mix",
         .family = "linear_rnn",
         .kind = "mixer",
         .paper = "arXiv:2404.05892",
         .summary = "RWKV channel mixing: token-shifted squared-ReLU FFN gated by sigmoid(r), in a mixer sublayer",
         .test_config = kRwkvModel,
         .example = R"({"dim": 256, "depth": 8, "heads": 4, "layout": "ssssssss", "pos": "none",
                        "mixer": ["rwkv6", "rwkv6_channel_mix", "rwkv6", "rwkv6_channel_mix",
                                  "rwkv6", "rwkv6_channel_mix", "rwkv6", "rwkv6_channel_mix"]})",
         .extra = true,
         .mixer =
             [](const nn::ModelDims& d, const nn::Config&, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0, "rwkv6_channel_mix: a causal self-mixer only");
               const int64_t depth = std::max<int64_t>(d.depth, 1);
               return std::make_shared<nn::RwkvChannelMix>(
                   nn::RwkvChannelMixOptions{.dim = d.dim, .layer = std::min(d.layer, depth - 1), .depth = depth}, gen);
             },
         .learn_lr = 6e-3,
         .learn_reason = "the RWKV model of rwkv6, whose time mix does not settle at 1e-2 (see rwkv6)"});
}

void register_rwkv6(nn::Registry& r) {
  r.add({.id = "rwkv6",
         .summary = "RWKV-6 Finch time mixing: ddlerp token shift, data-dependent decay exp(-exp(d_t)), bonus u",
         .keys = {nn::kRwkvEagle, nn::kLinearChunk, nn::kLinearForm},
         .test_config = kRwkvModel,
         .example = R"({"dim": 256, "depth": 8, "heads": 4, "layout": "ssssssss", "pos": "none",
                        "mixer": ["rwkv6", "rwkv6_channel_mix", "rwkv6", "rwkv6_channel_mix",
                                  "rwkv6", "rwkv6_channel_mix", "rwkv6", "rwkv6_channel_mix"]})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0, "rwkv6: a causal self-mixer only (no encoder or cross use)");
               return std::make_shared<nn::Rwkv6>(nn::Rwkv6Options{.dim = d.dim,
                                                                   .heads = d.heads,
                                                                   .chunk = nn::linear_chunk(c),
                                                                   .form = nn::linear_form(c),
                                                                   .eagle = c.get(nn::kRwkvEagle),
                                                                   .layer = d.layer,
                                                                   .depth = std::max<int64_t>(d.depth, 1)},
                                                  gen);
             },
         .chunk = 4,
         .learn_lr = 6e-3,
         .learn_reason = "at a constant 1e-2 the data-dependent decays exp(-exp(d_t)) and the LoRA token shift do not "
                         "settle (copy 0.07 after 400 steps); the RWKV model (channel mix, hidden 2 C) reaches 0.61 at "
                         "3e-3, 0.95 at 6e-3"});
}

}  // namespace tz::zoo
