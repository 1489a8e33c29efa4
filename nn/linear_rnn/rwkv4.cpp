// RWKV-4 time mixing: see rwkv4.h.
#include "nn/linear_rnn/rwkv4.h"

#include <cmath>

#include "core/creation.h"
#include "nn/linear_rnn/rwkv6.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
void check_wkv(const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u, const WkvState& s) {
  TZ_CHECK(k.dim() == 3 && v.shape() == k.shape(), "wkv: k and v must be [B, T, C] alike, got ", k.shape(), " and ",
           v.shape());
  const int64_t B = k.size(0), C = k.size(2);
  const Shape channels{C}, state{B, C};
  TZ_CHECK(w.shape() == channels && u.shape() == channels, "wkv: w and u must be [", C, "], got ", w.shape(), " and ",
           u.shape());
  TZ_CHECK(s.a.defined() && s.a.shape() == state && s.b.shape() == state && s.p.shape() == state,
           "wkv: the state (a, b, p) must be [", B, ", ", C, "] each");
}
}  // namespace

WkvState wkv_initial_state(int64_t batch, int64_t C, DType dtype) {
  return {zeros({batch, C}, dtype), zeros({batch, C}, dtype), full({batch, C}, -1e38, dtype)};
}

Tensor wkv_recurrent(const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u, WkvState& s) {
  check_wkv(k, v, w, u, s);
  Tensor a = s.a, b = s.b, p = s.p;
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < k.size(1); ++t) {
    Tensor kt = k.select(1, t), vt = v.select(1, t);
    // the output: the state's sums and the current token's e^{u + k_t}, scaled by e^{-q}
    Tensor uk = u + kt;
    Tensor q = maximum(p, uk).detach();
    Tensor e1 = exp(p - q), e2 = exp(uk - q);
    ys.push_back((e1 * a + e2 * vt) / (e1 * b + e2));
    // the state: decay by e^{-w}, add e^{k_t}, rescaled to the new max exponent
    Tensor pw = p - w;
    Tensor q2 = maximum(pw, kt).detach();
    Tensor f1 = exp(pw - q2), f2 = exp(kt - q2);
    a = f1 * a + f2 * vt;
    b = f1 * b + f2;
    p = q2;
  }
  s = {a, b, p};
  return stack(ys, 1);
}

Tensor wkv_parallel(const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u, WkvState& s) {
  check_wkv(k, v, w, u, s);
  const int64_t T = k.size(1);
  const DType dt = k.dtype();
  // per (t, i) constants [1, T, T, 1]: the decay count t - 1 - i below the diagonal, the
  // diagonal, and -inf above it (future keys)
  std::vector<double> lag(size_t(T * T), 0.0), diag(size_t(T * T), 0.0), mask(size_t(T * T), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < T; ++i) {
      const size_t j = size_t(t * T + i);
      if (i < t) lag[j] = double(t - 1 - i);
      if (i == t) diag[j] = 1.0;
      if (i > t) mask[j] = -INFINITY;
    }
  auto grid = [&](const std::vector<double>& x) { return from_vector(x, {1, T, T, 1}).to(dt); };
  // E_ti = k_i - (t-1-i) w (i < t), u + k_t (i = t): [B, T, T, C]
  Tensor E = k.unsqueeze(1) - grid(lag) * w + grid(diag) * u + grid(mask);
  // the state's column: A e^{-t w}, i.e. exponent p - t w with weights a, b: [B, T, C]
  Tensor steps = arange(0.0, double(T), 1.0, dt).reshape({1, T, 1});
  Tensor E0 = s.p.unsqueeze(1) - steps * w;
  Tensor m = maximum(max(E, 2), E0).detach();
  Tensor P = exp(E - m.unsqueeze(2)), P0 = exp(E0 - m);
  Tensor num = sum(P * v.unsqueeze(1), {2}) + P0 * s.a.unsqueeze(1);
  Tensor den = sum(P, {2}) + P0 * s.b.unsqueeze(1);
  // the state after T tokens: exponents k_i - (T-1-i) w and p - T w
  Tensor F = k - (double(T - 1) - steps) * w;
  Tensor F0 = s.p - double(T) * w;
  Tensor pT = maximum(max(F, 1), F0).detach();
  Tensor G = exp(F - pT.unsqueeze(1)), G0 = exp(F0 - pT);
  s = {sum(G * v, {1}) + G0 * s.a, sum(G, {1}) + G0 * s.b, pT};
  return num / den;
}

Tensor wkv_chunked(const Tensor& k, const Tensor& v, const Tensor& w, const Tensor& u, WkvState& s, int64_t chunk) {
  TZ_CHECK(chunk >= 1, "wkv: chunk must be >= 1, got ", chunk);
  const int64_t T = k.size(1);
  if (T <= chunk) return wkv_parallel(k, v, w, u, s);
  std::vector<Tensor> ys;
  for (int64_t t0 = 0; t0 < T; t0 += chunk) {
    const int64_t n = std::min(chunk, T - t0);
    ys.push_back(wkv_parallel(k.narrow(1, t0, n), v.narrow(1, t0, n), w, u, s));
  }
  return cat(ys, 1);
}

Rwkv4::Rwkv4(const Rwkv4Options& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0, "rwkv4: dim must be > 0, got ", o.dim);
  TZ_CHECK(o.chunk >= 1, "rwkv4: linear_chunk must be >= 1, got ", o.chunk);
  TZ_CHECK(o.depth >= 1 && o.layer >= 0 && o.layer < o.depth, "rwkv4: layer ", o.layer, " outside depth ", o.depth);
  const int64_t C = o.dim;
  auto lin = [&](const char* name) {
    return register_module(name, std::make_shared<Linear>(LinearOptions{.in = C, .out = C, .bias = false}, gen));
  };
  k_proj = lin("k_proj");
  v_proj = lin("v_proj");
  r_proj = lin("r_proj");
  o_proj = lin("o_proj");
  // the reference schedules: r01 = l / (L - 1) (0 with one layer), r10 = 1 - l / L
  const double r01 = o.depth > 1 ? double(o.layer) / double(o.depth - 1) : 0.0;
  const double r10 = 1.0 - double(o.layer) / double(o.depth);
  mu_k = register_parameter("mu_k", rwkv_mix_schedule(C, r10));
  // the reference's time_mix_v = (c / C)^r10 + 0.3 r01 mixes in that much less of x_{t-1}
  mu_v = register_parameter("mu_v", rwkv_mix_schedule(C, r10) - 0.3 * r01);
  mu_r = register_parameter("mu_r", rwkv_mix_schedule(C, 0.5 * r10));
  std::vector<float> d(static_cast<size_t>(C)), u(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const double f = C > 1 ? double(c) / double(C - 1) : 0.0;
    d[size_t(c)] = float(-5.0 + 8.0 * std::pow(f, 0.7 + 1.3 * r01));
    u[size_t(c)] = float(std::log(0.3) + 0.5 * double((c + 1) % 3 - 1));
  }
  decay = register_parameter("decay", from_vector(d, {C}));
  bonus = register_parameter("bonus", from_vector(u, {C}));
}

Tensor Rwkv4::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  Rwkv4State* st = state ? &own_state<Rwkv4State>(state, ctx) : nullptr;
  const int64_t B = x.size(0), T = x.size(1);
  Tensor delta = token_shift(x, st ? &st->shift : nullptr) - x;
  Tensor k = k_proj->forward(x + delta * mu_k);
  Tensor v = v_proj->forward(x + delta * mu_v);
  Tensor r = r_proj->forward(x + delta * mu_r);
  Tensor w = exp(decay).to(x.dtype()), u = bonus.to(x.dtype());
  WkvState s = st ? WkvState{st->a, st->b, st->p} : wkv_initial_state(B, options.dim, x.dtype());
  // one token from a state (decoding) runs the recurrent step
  const LinearAttentionForm form = st && T == 1 ? LinearAttentionForm::recurrent : options.form;
  Tensor y = form == LinearAttentionForm::recurrent  ? wkv_recurrent(k, v, w, u, s)
             : form == LinearAttentionForm::parallel ? wkv_parallel(k, v, w, u, s)
                                                     : wkv_chunked(k, v, w, u, s, options.chunk);
  if (st) {
    st->a = s.a;
    st->b = s.b;
    st->p = s.p;
    st->length += T;
  }
  return o_proj->forward(sigmoid(r) * y);
}

std::unique_ptr<MixerState> Rwkv4::make_state(int64_t batch, int64_t, DType dtype) const {
  auto st = std::make_unique<Rwkv4State>();
  WkvState s = wkv_initial_state(batch, options.dim, dtype);
  st->a = s.a;
  st->b = s.b;
  st->p = s.p;
  st->shift = zeros({batch, options.dim}, dtype);
  return st;
}

std::string Rwkv4::describe() const {
  return cat_str("RWKV4(dim=", options.dim, ", ", form_text(options.form, options.chunk), ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_rwkv4(nn::Registry& r) {
  r.add({.id = "rwkv4",
         .summary =
             "RWKV-4 time mixing: token shift, per-channel WKV with decay e^-w and bonus u, stable (a, b, p) state",
         .keys = {nn::kLinearChunk, nn::kLinearForm},
         // the RWKV model: two layers of [time mix, channel mix], each sublayer its own pre-LN block
         .test_config = R"({"depth": 4, "layout": "ssss", "linear_chunk": 4,
                            "mixer": ["rwkv4", "rwkv6_channel_mix", "rwkv4", "rwkv6_channel_mix"]})",
         .example = R"({"dim": 256, "depth": 8, "layout": "ssssssss", "pos": "none",
                        "mixer": ["rwkv4", "rwkv6_channel_mix", "rwkv4", "rwkv6_channel_mix",
                                  "rwkv4", "rwkv6_channel_mix", "rwkv4", "rwkv6_channel_mix"]})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0, "rwkv4: a causal self-mixer only (no encoder or cross use)");
               const int64_t depth = std::max<int64_t>(d.depth, 1);
               return std::make_shared<nn::Rwkv4>(nn::Rwkv4Options{.dim = d.dim,
                                                                   .chunk = nn::linear_chunk(c),
                                                                   .form = nn::linear_form(c),
                                                                   .layer = std::min(d.layer, depth - 1),
                                                                   .depth = depth},
                                                  gen);
             },
         .chunk = 4,
         .learn_steps = 1500,
         .learn_reason = "per-channel WKV weights depend on the key and the distance only (no query): copy 0.50 "
                         "after 400 steps, 0.93 after 1200 (lr 3e-3 and 6e-3 are slower: 0.33, 0.43 at 400)"});
}

}  // namespace tz::zoo
