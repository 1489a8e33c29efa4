// Mega (equations in mega.h).
#include "nn/ssm/mega.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "core/copy.h"
#include "core/creation.h"

namespace tz::nn {

MegaOptions mega_options(const ModelDims& dims, const Config& c) {
  MegaOptions o{.dim = dims.dim,
                .ema_dim = c.get(kMegaEmaDim),
                .z_dim = c.get(kMegaZDim),
                .v_dim = c.get(kMegaVDim),
                .chunk = c.get(kMegaChunk),
                .context = dims.context};
  const std::string src = c.source();
  if (o.z_dim == 0) o.z_dim = o.dim;
  if (o.v_dim == 0) o.v_dim = 2 * o.dim;
  TZ_CHECK(o.ema_dim >= 1, src, ": mega_ema_dim must be >= 1, got ", o.ema_dim);
  TZ_CHECK(o.z_dim >= 1 && o.v_dim >= 1, src, ": mega_z_dim and mega_v_dim must be >= 0, got ", o.z_dim, " and ",
           o.v_dim);
  TZ_CHECK(o.chunk >= 0, src, ": mega_chunk must be >= 0, got ", o.chunk);
  TZ_CHECK(o.context >= 1, src, ": mega needs the context length (its relative bias has one entry per distance)");
  TZ_CHECK(dims.causal, src, ": mega is causal here (its EMA runs forward in time); no bidirectional form");
  return o;
}

Mega::Mega(const MegaOptions& o, Generator& gen) : options(o) {
  const int64_t C = o.dim, N = o.ema_dim, Z = o.z_dim, V = o.v_dim;
  ema_a = register_parameter("ema_a", randn({C, N}, gen, DType::f32, 0.0, 0.2));
  ema_d = register_parameter("ema_d", randn({C, N}, gen, DType::f32, 0.0, 0.2));
  std::vector<float> sign(static_cast<size_t>(C * N));
  for (int64_t i = 0; i < C * N; ++i) sign[size_t(i)] = (i % N) % 2 == 0 ? 1.0f : -1.0f;
  ema_beta = register_parameter("ema_beta", from_vector(sign, {C, N}) + randn({C, N}, gen, DType::f32, 0.0, 0.02));
  ema_eta = register_parameter("ema_eta", o.complex ? randn({C, N, 2}, gen) : randn({C, N}, gen));
  ema_omega = register_parameter("ema_omega", randn({C}, gen));
  if (o.complex) ema_theta = register_parameter("ema_theta", randn({C}, gen));
  kappa = register_parameter("kappa", randn({2, Z}, gen, DType::f32, 0.0, 0.02) + 1.0);
  mu = register_parameter("mu", zeros({2, Z}));
  rel_bias = register_parameter("rel_bias", zeros({o.context}));
  mx_proj = register_module("mx_proj", std::make_shared<Linear>(LinearOptions{.in = C, .out = Z + V + 2 * C}, gen));
  v_proj = register_module("v_proj", std::make_shared<Linear>(LinearOptions{.in = C, .out = V}, gen));
  h_proj = register_module("h_proj", std::make_shared<Linear>(LinearOptions{.in = V, .out = C}, gen));
}

Mega::Decay Mega::decay() const {
  const int64_t N = options.ema_dim;
  Decay d;
  // log(1 - σ(a) σ(d)) without forming 1 - σ(a) σ(d)
  Tensor na = -ema_a, nd = -ema_d;
  d.log_q = logsumexp(stack({na, nd, na + nd}, -1), -1) - softplus(na) - softplus(nd);
  Tensor gain = sigmoid(ema_a) * ema_beta * (1.0 / std::sqrt(double(N)));  // α β, with η's 1/sqrt(N)
  if (options.complex) {
    std::vector<double> j1(static_cast<size_t>(N));
    for (int64_t j = 0; j < N; ++j) j1[size_t(j)] = double(j + 1) * 2 * std::numbers::pi / double(N);
    d.theta = sigmoid(ema_theta).unsqueeze(-1) * from_vector(j1, {N}).to(ema_a.dtype());  // [C, N]
    d.gain_re = gain * ema_eta.select(-1, 0);
    d.gain_im = gain * ema_eta.select(-1, 1);
  } else {
    d.gain_re = gain * ema_eta;
  }
  return d;
}

Tensor Mega::kernel(int64_t L) const {
  Decay d = decay();
  Tensor pos = arange(0.0, double(L), 1.0, ema_a.dtype());
  Tensor mag = exp(d.log_q.unsqueeze(-1) * pos);  // q^ℓ [C, N, L]
  if (!options.complex) return sum(mag * d.gain_re.unsqueeze(-1), {1});
  Tensor ang = d.theta.unsqueeze(-1) * pos;  // ℓ θ
  return sum(mag * (d.gain_re.unsqueeze(-1) * cos(ang) - d.gain_im.unsqueeze(-1) * sin(ang)), {1});
}

Tensor Mega::convolve(const Tensor& x) const {
  return long_conv(x.transpose(1, 2), kernel(x.size(1)), ema_omega).transpose(1, 2);
}

Tensor Mega::recur(const Tensor& x, Tensor* h) const {
  const int64_t B = x.size(0), T = x.size(1), C = options.dim, N = options.ema_dim;
  Decay d = decay();
  Tensor q = exp(d.log_q);
  // the input enters with α β; η sits in the gain and is applied at the output
  Tensor in = sigmoid(ema_a) * ema_beta * (1.0 / std::sqrt(double(N)));
  Tensor eta_re = options.complex ? ema_eta.select(-1, 0) : ema_eta;
  Tensor u = (x.unsqueeze(-1) * in).reshape({B, T, C * N});
  Tensor h0 = h && h->defined() ? *h : Tensor();
  Tensor y;
  if (!options.complex) {
    Tensor hs = scan(q.reshape({1, 1, C * N}).expand({B, T, C * N}), u, h0);  // [B, T, C N]
    if (h) *h = hs.select(1, T - 1).contiguous();
    y = sum(hs.reshape({B, T, C, N}) * eta_re, {-1});
  } else {
    Tensor a = stack({q * cos(d.theta), q * sin(d.theta)}, -1).reshape({1, 1, C * N, 2}).expand({B, T, C * N, 2});
    Tensor hs = scan(a, stack({u, zeros(u.shape(), u.dtype())}, -1), h0, {.complex = true});  // [B, T, C N, 2]
    if (h) *h = hs.select(1, T - 1).contiguous();
    Tensor h5 = hs.reshape({B, T, C, N, 2});
    y = sum(h5.select(-1, 0) * eta_re - h5.select(-1, 1) * ema_eta.select(-1, 1), {-1});
  }
  return y + x * ema_omega;
}

// One head over the keys 0..S-1, the queries at start..start+T-1, scores materialised [T, S]:
// the fused kernel needs one head size for q and v, and Mega's Z and V differ. The causal and
// chunk masks are data: -inf entries of the same gathered table that holds b_rel.
Tensor Mega::attend(const Tensor& q, const Tensor& k, const Tensor& v, int64_t start) const {
  const int64_t T = q.size(2), S = k.size(2), W = options.context, chunk = options.chunk;
  std::vector<int64_t> idx(static_cast<size_t>(T * S));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < S; ++j) {
      const int64_t p = start + i;
      const bool hidden = j > p || (chunk > 0 && j < p / chunk * chunk);
      idx[size_t(i * S + j)] = hidden ? W : std::min<int64_t>(p - j, W - 1);  // entry W is -inf
    }
  Tensor table = cat({rel_bias, full({1}, -INFINITY, rel_bias.dtype())}, 0);
  Tensor bias = index_select(table, 0, from_vector(idx, {T * S})).reshape({T, S});
  Tensor scores = matmul(q, k.transpose(2, 3)) * (1.0 / std::sqrt(double(q.size(3)))) + bias;
  return matmul(softmax(scores), v);
}

Tensor Mega::forward(const Tensor& x_in, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x_in.dim() == 3 && x_in.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x_in.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": takes no key padding, forgotten keys or segment memory");
  const int64_t C = options.dim, Z = options.z_dim, V = options.v_dim, T = x_in.size(1);
  MegaState* s = state ? &own_state<MegaState>(state, ctx) : nullptr;
  const int64_t start = s ? s->length : 0;  // no state: keys and queries are this chunk
  if (s)
    TZ_CHECK(start + T <= s->k.size(2), describe(), ": cache full (", start, " + ", T, " > capacity ", s->k.size(2),
             ")");
  Tensor x = prepare(x_in, s);
  Tensor xp = silu(s ? recur(x, &s->h) : convolve(x));  // X'
  Tensor base = mx_proj->forward(xp);
  Tensor z = silu(base.narrow(2, 0, Z));
  if (options.norm_z) z = rms_norm(z, Tensor());
  Tensor q = (z * kappa.select(0, 0) + mu.select(0, 0)).unsqueeze(1);  // [B, 1, T, Z]
  Tensor k = (z * kappa.select(0, 1) + mu.select(0, 1)).unsqueeze(1);
  Tensor v = silu(v_proj->forward(x)).unsqueeze(1);  // [B, 1, T, V]
  if (s) {                                           // the cached keys before this chunk, then this chunk's
    if (start > 0) {
      k = cat({s->k.narrow(2, 0, start), k}, 2);
      v = cat({s->v.narrow(2, 0, start), v}, 2);
    }
    NoGradGuard no_grad;
    core::copy_(s->k.narrow(2, start, T), k.narrow(2, start, T).detach());
    core::copy_(s->v.narrow(2, start, T), v.narrow(2, start, T).detach());
  }
  Tensor o = attend(q, k, v, start).squeeze(1);  // [B, T, V]
  Tensor gamma = silu(base.narrow(2, Z, V));
  Tensor h = silu(base.narrow(2, Z + V, C) + h_proj->forward(gamma * o));
  Tensor phi = sigmoid(base.narrow(2, Z + V + C, C));
  if (s) s->length += T;
  return x + phi * (h - x);
}

std::unique_ptr<MixerState> Mega::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  auto s = std::make_unique<MegaState>();
  const int64_t CN = options.dim * options.ema_dim;
  s->h = options.complex ? zeros({batch, CN, 2}, dtype) : zeros({batch, CN}, dtype);
  s->k = zeros({batch, 1, capacity, options.z_dim}, dtype);
  s->v = zeros({batch, 1, capacity, options.v_dim}, dtype);
  if (options.groups > 0) {
    s->sum = zeros({batch, options.groups}, dtype);
    s->sum_sq = zeros({batch, options.groups}, dtype);
  }
  return s;
}

std::string Mega::describe() const {
  return std::string(options.complex ? "Megalodon" : "Mega") + "(dim " + std::to_string(options.dim) + ", ema " +
         std::to_string(options.ema_dim) + ", z " + std::to_string(options.z_dim) + ", v " +
         std::to_string(options.v_dim) + (options.chunk > 0 ? ", chunk " + std::to_string(options.chunk) : "") + ")";
}

}  // namespace tz::nn

namespace tz::zoo {

void register_mega(nn::Registry& r) {
  r.add({.id = "mega",
         .summary = "Mega: multi-dimensional damped EMA (FFT kernel or recurrence) feeding single-head gated attention",
         .keys = {nn::kMegaEmaDim, nn::kMegaZDim, nn::kMegaVDim, nn::kMegaChunk},
         .test_config = R"({"mixer": "mega", "mega_ema_dim": 4})",
         .example = R"({"dim": 256, "mixer": "mega", "mega_ema_dim": 16, "mega_z_dim": 128, "mega_chunk": 128})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::Mega>(nn::mega_options(d, c), gen);
         }});
}

}  // namespace tz::zoo
