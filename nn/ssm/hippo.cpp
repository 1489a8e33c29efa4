// HiPPO-LegS memory (equations in hippo.h).
#include "nn/ssm/hippo.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/kernels/ssm_kernels.h"
#include "nn/ssm/mamba.h"  // the shared SSM keys

namespace tz::nn {

HippoOptions hippo_options(const ModelDims& dims, const Config& c) {
  HippoOptions o{.dim = dims.dim, .state = c.get(kSsmState)};
  TZ_CHECK(o.state >= 1 && o.state <= 256, c.source(), ": ssm_state must be in [1, 256] (HiPPO's N), got ", o.state);
  TZ_CHECK(dims.causal, c.source(), ": hippo is a causal memory; it has no bidirectional form");
  return o;
}

Hippo::Hippo(const HippoOptions& o, Generator& gen) : options(o) {
  const int64_t Cn = o.dim, N = o.state;
  C = register_parameter("C", randn({Cn, N}, gen, DType::f32, 0.0, 1.0 / std::sqrt(double(N))));
  D = register_parameter("D", randn({Cn}, gen));
  out_proj = register_module("out_proj", std::make_shared<Linear>(LinearOptions{.in = Cn, .out = Cn}, gen));
}

void Hippo::steps(int64_t positions) const {
  const int64_t N = options.state, have = int64_t(Bb_.size()) / N;
  if (positions > have) {
    const int64_t K = std::max(positions, 2 * have);
    Ab_.resize(size_t(K * N * N));
    Bb_.resize(size_t(K * N));
    kernels::legs_memory_steps(Ab_.data(), Bb_.data(), N, K);
  }
}

Tensor Hippo::convolve(const Tensor& u) const {
  const int64_t T = u.size(1), N = options.state;
  steps(T);
  if (cached_T_ != T) {  // G[t, s] = Ā_t G[t-1, s], G[s, s] = B̄_s (position k = t + 1)
    G_.assign(size_t(T * T * N), 0.0);
    for (int64_t s = 0; s < T; ++s) {
      for (int64_t i = 0; i < N; ++i) G_[size_t((s * T + s) * N + i)] = Bb_[size_t(s * N + i)];
      for (int64_t t = s + 1; t < T; ++t) {
        const double* A = Ab_.data() + t * N * N;
        const double* prev = G_.data() + ((t - 1) * T + s) * N;
        double* out = G_.data() + (t * T + s) * N;
        for (int64_t i = 0; i < N; ++i) {
          double acc = 0;
          for (int64_t j = 0; j < N; ++j) acc += A[i * N + j] * prev[j];
          out[i] = acc;
        }
      }
    }
    cached_T_ = T;
  }
  Tensor G = from_vector(G_, {T * T, N}).to(C.dtype());
  Tensor K = matmul(G, C.t()).reshape({T, T, options.dim}).permute({2, 0, 1});  // [C, T, T]: K[c, t, s]
  Tensor uc = u.permute({2, 1, 0});                                             // [C, T, B]
  return matmul(K, uc).permute({2, 1, 0}) + u * D;                              // [B, T, C]
}

Tensor Hippo::recur(const Tensor& u, Tensor* c, int64_t start) const {
  const int64_t B = u.size(0), T = u.size(1), N = options.state;
  steps(start + T);
  Tensor h = c && c->defined() ? *c : zeros({B, options.dim, N}, u.dtype());
  Tensor AT =
      from_vector(std::vector<double>(Ab_.begin() + start * N * N, Ab_.begin() + (start + T) * N * N), {T, N, N})
          .to(C.dtype())
          .transpose(1, 2);  // c Āᵀ = (Ā c)ᵀ
  Tensor Bb =
      from_vector(std::vector<double>(Bb_.begin() + start * N, Bb_.begin() + (start + T) * N), {T, N}).to(C.dtype());
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < T; ++t) {
    Tensor ut = u.select(1, t);  // [B, C]
    h = matmul(h, AT.select(0, t)) + ut.unsqueeze(-1) * Bb.select(0, t);
    ys.push_back(sum(h * C, {-1}) + ut * D);
  }
  if (c) *c = h;
  return stack(ys, 1);
}

Tensor Hippo::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           describe(), ": a memory over time has no keys to mask and takes no segment memory");
  Tensor y;
  if (state) {  // continuing a sequence: the recurrence from the state, at its position
    HippoState& s = own_state<HippoState>(state, ctx);
    y = recur(x, &s.c, s.length);
    s.length += x.size(1);
  } else {  // the materialised form while its T x T x (N + C) tables stay small, else the recurrence
    const int64_t T = x.size(1);
    y = T * T * (options.state + options.dim) <= (int64_t(1) << 24) ? convolve(x) : recur(x);
  }
  return out_proj->forward(gelu(y));
}

std::unique_ptr<MixerState> Hippo::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<HippoState>();
  s->c = zeros({batch, options.dim, options.state}, dtype);
  return s;
}

std::string Hippo::describe() const {
  return "HiPPO-LegS(dim " + std::to_string(options.dim) + ", state " + std::to_string(options.state) + ")";
}

}  // namespace tz::nn

namespace tz::zoo {

void register_hippo(nn::Registry& r) {
  r.add({.id = "hippo",
         .summary = "HiPPO-LegS: per-channel Legendre memory of the whole history, read by a learned row",
         .keys = {nn::kSsmState},
         .test_config = R"({"mixer": "hippo", "ssm_state": 32})",
         .example = R"({"dim": 256, "mixer": "hippo", "ssm_state": 32, "norm": "layernorm"})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c,
                     Generator& gen) { return std::make_shared<nn::Hippo>(nn::hippo_options(d, c), gen); },
         .learn_steps = 800,
         .learn_reason = "a fixed memory of the whole history at resolution t / N, read by one row per channel: "
                         "0.90 on copy after 400 steps (N 32), so the suite gives it 800"});
}

}  // namespace tz::zoo
